#pragma once
// Typed errors thrown by latentkit. Programs catch them once in main and print what().
#include <stdexcept>
#include <string>

namespace latentkit {

/// Base of every error latentkit throws.
class Error : public std::runtime_error {
public:
    explicit Error(const std::string& message) : std::runtime_error(message) {}
};

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

/// An operation was cancelled through its progress callback.
class CancelledError : public Error {
public:
    using Error::Error;
};

}  // namespace latentkit
