#pragma once
// One name table per option enum (train.h, metrics.h): the names files, messages and the command
// line use, in the reference's spellings.
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace latentkit {

/// Specialised for each option enum: `names`, one per value, in the enum's order.
template <class E>
struct OptionNames;

/// Optionally specialised: other spellings accepted on input, e.g. {"W+", LatentSpace::w_plus}.
template <class E>
struct OptionAliases {
    static constexpr std::pair<const char*, E> entries[] = {{nullptr, E{}}};
};

/// The name of an option value.
template <class E>
const char* option_name(E value) {
    return OptionNames<E>::names[static_cast<size_t>(value)];
}

/// The value called `name` (or one of its aliases), or nothing.
template <class E>
std::optional<E> option_from_name(std::string_view name) {
    size_t k = 0;
    for (const char* n : OptionNames<E>::names) {
        if (name == n) return static_cast<E>(k);
        ++k;
    }
    for (const auto& [alias, value] : OptionAliases<E>::entries)
        if (alias && name == alias) return value;
    return std::nullopt;
}

/// "a, b or c": the names, for messages and help texts.
template <class E>
std::string option_choices() {
    std::string out;
    const size_t count = std::size(OptionNames<E>::names);
    for (size_t k = 0; k < count; ++k) out += std::string(k == 0 ? "" : k + 1 == count ? " or " : ", ") + OptionNames<E>::names[k];
    return out;
}

}  // namespace latentkit
