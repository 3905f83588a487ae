#include "latentkit/rng.h"

#include <cmath>

namespace latentkit {

NumpyRandomState::NumpyRandomState(uint32_t seed) {
    state_[0] = seed;
    for (int i = 1; i < 624; ++i) {
        state_[i] = 1812433253u * (state_[i - 1] ^ (state_[i - 1] >> 30)) + static_cast<uint32_t>(i);
    }
    pos_ = 624;
}

uint32_t NumpyRandomState::next_u32() {
    constexpr uint32_t upper = 0x80000000u, lower = 0x7fffffffu, matrix = 0x9908b0dfu;
    if (pos_ >= 624) {
        for (int i = 0; i < 624; ++i) {
            uint32_t y = (state_[i] & upper) | (state_[(i + 1) % 624] & lower);
            state_[i] = state_[(i + 397) % 624] ^ (y >> 1) ^ ((y & 1u) ? matrix : 0u);
        }
        pos_ = 0;
    }
    uint32_t y = state_[pos_++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

double NumpyRandomState::next_double() {
    const uint32_t a = next_u32() >> 5, b = next_u32() >> 6;
    return (a * 67108864.0 + b) / 9007199254740992.0;
}

double NumpyRandomState::next_gauss() {
    if (has_gauss_) {
        has_gauss_ = false;
        return gauss_;
    }
    double x1, x2, r2;
    do {
        x1 = 2.0 * next_double() - 1.0;
        x2 = 2.0 * next_double() - 1.0;
        r2 = x1 * x1 + x2 * x2;
    } while (r2 >= 1.0 || r2 == 0.0);
    const double f = std::sqrt(-2.0 * std::log(r2) / r2);
    gauss_ = f * x1;
    has_gauss_ = true;
    return f * x2;
}

std::vector<double> NumpyRandomState::randn(int64_t n) {
    std::vector<double> out(static_cast<size_t>(n));
    for (auto& v : out) v = next_gauss();
    return out;
}

std::vector<float> seed_to_z(uint32_t seed, int64_t z_dim) {
    NumpyRandomState rs(seed);
    std::vector<float> z(static_cast<size_t>(z_dim));
    for (auto& v : z) v = static_cast<float>(rs.next_gauss());
    return z;
}

}  // namespace latentkit
