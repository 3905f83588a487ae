#pragma once
// numpy-compatible random numbers: seed N gives the same z as numpy.random.RandomState(N).randn(1, z_dim).
#include <cstdint>
#include <vector>

namespace latentkit {

/// MT19937 with numpy's legacy seeding and its legacy polar Box-Muller Gaussian.
class NumpyRandomState {
public:
    /// Seeds exactly as numpy.random.RandomState(seed) for a seed in [0, 2^32-1].
    explicit NumpyRandomState(uint32_t seed);
    /// Next raw 32-bit output.
    uint32_t next_u32();
    /// Next double in [0, 1) with 53 random bits (numpy's random_sample).
    double next_double();
    /// Next standard normal (numpy's legacy gauss, caching the second value).
    double next_gauss();
    /// `n` standard normals in numpy's order.
    std::vector<double> randn(int64_t n);

private:
    uint32_t state_[624];
    int pos_ = 624;
    bool has_gauss_ = false;
    double gauss_ = 0.0;
};

/// z for one seed as float32, length z_dim.
std::vector<float> seed_to_z(uint32_t seed, int64_t z_dim);

}  // namespace latentkit
