#pragma once
// The viewer's plain state: widgets and scripts edit it; the app turns it into render requests.
#include <optional>
#include <string>
#include <vector>

#include "latentkit/directions.h"
#include "morph_exporter.h"
#include "projection_runner.h"
#include "render_worker.h"

namespace latentkit::viewer {

/// A loaded direction with its slider.
struct DirectionSlider {
    std::string file;
    Direction direction;
    double strength = 0;
    int first_layer = 0, last_layer = -1;
};

/// Everything the panels show and edit.
struct ViewerState {
    // Model
    std::string model_path, model_input, device = "cpu";
    std::vector<std::string> recent_models;
    ModelSummary model;
    // Latent
    double seed_x = 0, seed_y = 0;
    bool animate = false;
    double speed = 0.25;  ///< seeds per second while animating
    double psi = 1.0;
    int cutoff = -1;
    int noise_mode = 0;  ///< 0 const, 1 random, 2 none
    int noise_seed = 0;
    double translate_x = 0, translate_y = 0, rotate = 0;  ///< StyleGAN3 input transform (degrees)
    // Style mixing
    bool mix = false;
    int mix_seed = 1;
    std::vector<bool> mix_layers;
    // Directions
    std::vector<DirectionSlider> directions;
    std::string direction_input;
    int compute_components = 10, compute_samples = 10000;
    bool computing = false;
    std::optional<DirectionsJob> job_request;  ///< set by a widget or script; the app hands it to the worker
    // Projection
    std::string project_target, project_vgg, project_save = "projected_w.npz";
    int project_align = 0;  ///< auto, face, center, none
    int project_space = 0;  ///< w, w+
    int project_steps = 300;
    std::optional<ProjectionJob> project_request;  ///< handed to the projection runner by the app
    bool cancel_projection = false, use_projection = false, save_projection = false;
    std::vector<float> base_ws;  ///< the current latent when it comes from a projection (empty: seeds)
    // Labelling: thumbnails of seeds, marked positive (+1) or negative (-1), fitted into a direction
    int label_first_seed = 0, label_count = 16;
    std::vector<uint32_t> label_seeds;
    std::vector<float> label_w;          ///< label_seeds.size() x w_dim
    std::vector<int> label_marks;        ///< per sample: +1, -1 or 0
    std::string label_name = "labels";
    bool fit_marks = false;              ///< set by the Fit button / script; the app fits
    // Morph: keyframes are W+ latents taken from what is shown (seeds, edits, projections)
    std::vector<std::pair<std::string, std::vector<float>>> morph_keys;
    std::vector<float> current_ws;  ///< the latent of the image on screen (from the worker)
    std::string current_label;
    bool morph_add = false, morph_preview = false, morph_play = false, morph_cubic = false, morph_loop = false;
    double morph_t = 0;             ///< preview position, 0..1 over the whole path
    int morph_frames = 60, morph_fps = 30;
    std::string morph_out = "morph.mp4";
    std::optional<MorphExportJob> morph_export;  ///< handed to the exporter by the app
    bool cancel_export = false;
    // Layer view
    bool layer_view = false;
    int layer_block = 0, layer_channel = -1;
    // Display and capture
    bool nearest = false;
    double zoom = 1.0, pan_x = 0, pan_y = 0;
    std::string capture_path = "latentkit-capture.png";
    bool capture_window = false;  ///< set by the button; the app saves the next frame to capture_path
    bool vsync = true;
    int fps_cap = 60;
    // Status
    std::string error, status;
    double render_ms = 0, frame_ms = 0;
    std::string upload;  ///< how images reach the texture, and why not through CUDA-GL interop
};

/// The render request for the state.
RenderRequest request_from(const ViewerState& s);

/// Whether two requests render the same image (ids are ignored).
bool same_render(const RenderRequest& a, const RenderRequest& b);

/// Loads a direction file into the state (checking it fits the open model); throws on error.
void add_direction_file(ViewerState& s, const std::string& spec);

/// Adds sliders for the directions of a set (`source` names where they came from).
void add_direction_set(ViewerState& s, const DirectionSet& set, const std::string& source);

/// Fits a direction (logistic regression in W) to the marked samples and adds it as a slider;
/// throws ArgumentError when fewer than 2 positive and 2 negative samples are marked.
void fit_marked_direction(ViewerState& s);

/// The W+ latent of the morph preview at morph_t (empty when there are fewer than 2 keyframes).
std::vector<float> morph_preview_ws(const ViewerState& s);

/// Adds `path` to the front of the recent list (at most 8 entries, no duplicates).
void remember_model(ViewerState& s, const std::string& path);

/// Applies one script line ("seed 3 0.5", "psi 0.7", "direction f.json", "slider 0 2.5", ...) to the
/// state; returns false when the line is not a state command. Throws ArgumentError on a bad value.
bool apply_script_line(ViewerState& s, const std::string& line);

}  // namespace latentkit::viewer
