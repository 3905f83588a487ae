#pragma once
// Little-endian reads and writes of fixed-size integers in byte strings (zip, npy and pickle headers).
#include <cstring>
#include <string>

namespace latentkit::detail {

/// The value of type T stored little-endian at `pos` (the caller checks the bounds).
template <class T>
T le(const std::string& b, size_t pos) {
    T v;
    std::memcpy(&v, b.data() + pos, sizeof(T));
    return v;
}

/// Appends `v` little-endian.
template <class T>
void put(std::string& out, T v) {
    out.append(reinterpret_cast<const char*>(&v), sizeof(T));
}

}  // namespace latentkit::io::detail
