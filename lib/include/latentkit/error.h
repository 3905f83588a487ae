#pragma once
// Typed errors thrown by latentkit. An error's message may name option fields of the library's structs
// ("TrainOptions.batch") as data, so that each front end shows its own name for them (a command-line
// flag, a widget) without reading the text. Programs catch errors once in main.
#include <functional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace latentkit {

/// An option field of a library struct, named "Struct.member" (e.g. "TrainOptions.batch").
struct Field {
    std::string name;
};

/// Names an option field in a Message: `Message() << field("TrainOptions.p") << " must be in [0, 1]"`.
inline Field field(std::string name) { return {std::move(name)}; }

/// Turns a field's name into what a front end calls it.
using FieldNamer = std::function<std::string(const std::string& field)>;

/// An error message made of text and option fields.
class Message {
public:
    Message() = default;
    /// Plain text, no fields.
    Message(std::string text) { parts_.push_back({std::move(text), false}); }  // NOLINT: implicit on purpose
    /// Appends text.
    Message& operator<<(std::string text) & { parts_.push_back({std::move(text), false}); return *this; }
    Message&& operator<<(std::string text) && { return std::move(*this << std::move(text)); }
    /// Appends a field.
    Message& operator<<(Field f) & { parts_.push_back({std::move(f.name), true}); return *this; }
    Message&& operator<<(Field f) && { return std::move(*this << std::move(f)); }
    /// The text, each field written by `name_of` (unset: the field's own name).
    std::string render(const FieldNamer& name_of = {}) const {
        std::string out;
        for (const auto& p : parts_) out += p.is_field && name_of ? name_of(p.text) : p.text;
        return out;
    }
    /// The fields named, in order.
    std::vector<std::string> fields() const {
        std::vector<std::string> out;
        for (const auto& p : parts_)
            if (p.is_field) out.push_back(p.text);
        return out;
    }

private:
    struct Part {
        std::string text;
        bool is_field = false;
    };
    std::vector<Part> parts_;
};

/// Base of every error latentkit throws; what() names fields by their library names.
class Error : public std::runtime_error {
public:
    explicit Error(const std::string& message) : std::runtime_error(message), message_(message) {}
    explicit Error(Message message) : std::runtime_error(message.render()), message_(std::move(message)) {}
    /// The message with its fields as data.
    const Message& message() const { return message_; }

private:
    Message message_;
};

/// The first line of any exception's message; a latentkit Error's fields written by `name_of`.
inline std::string first_line(const std::exception& e, const FieldNamer& name_of = {}) {
    const auto* error = dynamic_cast<const Error*>(&e);
    const std::string text = error ? error->message().render(name_of) : std::string(e.what());
    return text.substr(0, text.find('\n'));
}

/// A file is not a model / tensor file of a supported kind, or is damaged.
class ModelFormatError : public Error {
public:
    using Error::Error;
};

/// A tensor or latent has the wrong shape for the model it is used with.
class ShapeError : public Error {
public:
    using Error::Error;
};

/// A file could not be read or written.
class IoError : public Error {
public:
    using Error::Error;
};

/// An argument or option value is invalid.
class ArgumentError : public Error {
public:
    using Error::Error;
};

/// LibTorch failed inside a computation (out of memory, an operation the device lacks, ...); the
/// message says which latentkit operation it was. No c10::Error leaves latentkit's API.
class ComputeError : public Error {
public:
    using Error::Error;
};

/// An operation was cancelled through its progress callback or a stop request.
class CancelledError : public Error {
public:
    using Error::Error;
};

}  // namespace latentkit
