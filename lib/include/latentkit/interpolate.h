#pragma once
// Paths through latent keyframes: linear, spherical and looping cubic (Catmull-Rom) interpolation.
// Keyframes are stacked along dim 0 ([K, ...] with any trailing shape: z [K, z_dim] or W+ [K, num_ws, w_dim]).
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "latentkit/option_names.h"

namespace latentkit {

/// How consecutive keyframes are joined.
enum class PathKind {
    linear,     ///< a + t (b - a)
    spherical,  ///< slerp (meant for z)
    cubic       ///< Catmull-Rom through all keyframes: continuous position and velocity
};

template <>
struct OptionNames<PathKind> {
    static constexpr const char* names[] = {"lerp", "slerp", "cubic"};
};
template <>
struct OptionAliases<PathKind> {
    static constexpr std::pair<const char*, PathKind> entries[] = {{"linear", PathKind::linear}};
};

/// Timing within each transition.
enum class Easing {
    linear,      ///< constant speed
    ease_in_out  ///< smoothstep t^2 (3 - 2t): slow at each keyframe
};
template <>
struct OptionNames<Easing> {
    static constexpr const char* names[] = {"linear", "ease-in-out"};
};

/// Path parameters.
struct PathOptions {
    PathKind kind = PathKind::linear;
    Easing easing = Easing::linear;
    int64_t frames_per_transition = 60;  ///< frames from one keyframe to the next
    bool loop = false;                   ///< the last keyframe flows back into the first
};

/// Frames in a path through `keys` keyframes: K*F when looping (the first frame is not repeated),
/// else (K-1)*F + 1 (the last keyframe is the last frame). Throws ArgumentError for too few keys or F < 1.
int64_t path_frame_count(int64_t keys, const PathOptions& options);

/// The latent at continuous position u in [0, transitions]: keyframe k sits at u = k.
torch::Tensor path_sample(const torch::Tensor& keys, const PathOptions& options, double u);

/// The latent of frame `index` (0 <= index < path_frame_count).
torch::Tensor path_frame(const torch::Tensor& keys, const PathOptions& options, int64_t index);

/// Keeps only `layers` of a W+ latent [..., num_ws, w_dim] from `moving`; the other layers come from `held`.
torch::Tensor select_layers(const torch::Tensor& moving, const torch::Tensor& held, const std::vector<int>& layers);

}  // namespace latentkit
