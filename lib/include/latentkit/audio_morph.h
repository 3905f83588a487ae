#pragma once
// Audio-reactive morphs: a morph whose position, truncation, noise, edits and class follow per-frame
// controls from an AudioMap (audio_map.h).
#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "latentkit/audio_map.h"
#include "latentkit/directions.h"
#include "latentkit/morph.h"

namespace latentkit {

/// A unit direction in W drawn from `seed`, its scale the W spread along it (measured on 1000 mapped
/// samples): what a mapping's "random" direction is. Name "random".
Direction random_direction(Generator& G, uint32_t seed, std::optional<int> class_index = std::nullopt);

/// Renders the frames of a morph driven by audio controls.
class AudioMorphRenderer {
public:
    /// `spec`: the morph (its truncation psi is the base the psi links add to; its edits stay on every
    /// frame). `directions`: what the map's direction links name (besides "random"). Throws ArgumentError
    /// when a link names a direction that is not there.
    AudioMorphRenderer(std::shared_ptr<Generator> G, MorphSpec spec, const AudioMap& map, std::vector<AudioControl> controls,
                       const std::vector<Direction>& directions = {});
    /// Frames in the video (one per control).
    int64_t frame_count() const { return static_cast<int64_t>(controls_.size()); }
    /// Frames rendered per call of render() that fill one batch.
    int64_t frames_per_batch() const;
    /// W+ latents of frames [first, first + n), cells inner: [n * cells, num_ws, w_dim].
    torch::Tensor latents(int64_t first, int64_t n);
    /// Images of frames [first, first + n), cells inner: [n * cells, C, R, R].
    torch::Tensor render(int64_t first, int64_t n);
    /// Notes on links that do nothing for this model (noise on StyleGAN3, class on unconditional models).
    const std::vector<std::string>& notes() const { return notes_; }

private:
    MorphRenderer& path_for(int class_steps);
    std::shared_ptr<Generator> G_;
    MorphSpec spec_;
    std::vector<AudioControl> controls_;
    std::vector<double> positions_;
    std::vector<Direction> link_directions_;  ///< per direction link
    std::map<int, std::unique_ptr<MorphRenderer>> paths_;  ///< by class
    std::vector<std::string> notes_;
    double transitions_ = 1;
};

}  // namespace latentkit
