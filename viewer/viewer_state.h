#pragma once
// The viewer's plain state: widgets and scripts edit it; the dispatcher turns what they ask for into
// work for the workers and brings the results back into it.
#include <optional>
#include <string>
#include <vector>

#include "latentkit/audio_map.h"
#include "curate_session.h"
#include "latentkit/directions.h"
#include "latentkit/io/face_align.h"
#include "latentkit/latent_space.h"
#include "latentkit/noise_mode.h"
#include "model_jobs.h"
#include "model_store.h"
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

/// A message from the library or the viewer, for the log panel.
struct LogLine {
    std::string level;  ///< "info", "warning" or "error"
    std::string text;
};

/// An entry of the file browser.
struct FileEntry {
    std::string name;
    bool folder = false;
};

/// What the live audio is doing, for the panels (LiveAudio writes it every frame).
struct AudioView {
    std::string source;        ///< the file playing, "input device", or "" (none)
    std::string status;        ///< one line: what plays, or why nothing does
    double time = 0, duration = 0;  ///< seconds into the audio; its length (0 for the input device)
    bool paused = false;
    AudioFrame meter{};        ///< the features now, 0..1
    std::string map = "pulse"; ///< the mapping: a preset's name or a file
    std::vector<std::string> links;  ///< per link of the mapping: "loudness -> speed"
    std::vector<double> gains;       ///< per link: its gain now
    std::string recording;     ///< the file being recorded ("" : none)
};

/// Everything the panels show and edit.
struct ViewerState {
    // Model
    std::string model_path, model_input, device = "cpu";
    std::vector<std::string> recent_models;
    ModelSummary model;
    // Latent
    double seed_x = 0, seed_y = 0;  ///< continuous seed position (the image when spec.ws is unset)
    bool animate = false;
    double speed = 0.25;  ///< seeds per second while animating
    /// What is shown, but for the seeds and the edits (the seed position and the sliders give those):
    /// truncation, class, noise, StyleGAN3 transform, style mixing (on while spec.mix_seed is set), and
    /// spec.ws [1, num_ws, w_dim] while a projected or loaded latent is shown.
    RenderSpec spec;
    // Directions
    std::vector<DirectionSlider> directions;
    std::string direction_input;
    std::vector<std::string> direction_files;  ///< asked to be loaded ("file.json" or "file.json#name")
    int compute_components = 10, compute_samples = 10000;
    bool computing = false;
    std::optional<DirectionsJob> job_request;  ///< set by a widget or script; the dispatcher runs it
    // Projection
    std::string project_save = "projected_w.npz";
    ProjectionJob project;  ///< what the Project button starts (the model and device are filled in then)
    std::optional<ProjectionJob> project_request;
    bool cancel_projection = false, use_projection = false, save_projection = false;
    // Labelling: thumbnails of seeds, marked positive (+1) or negative (-1), fitted into a direction
    int label_first_seed = 0, label_count = 16;
    std::vector<uint32_t> label_seeds;
    std::vector<float> label_w;          ///< label_seeds.size() x w_dim
    std::vector<int> label_marks;        ///< per sample: +1, -1 or 0
    Image8 label_grid;                   ///< the thumbnails tiled (grid_cols columns)
    int label_grid_version = 0;          ///< changes with label_grid
    std::string label_name = "labels";
    bool fit_marks = false;              ///< set by the Fit button / script
    // Morph: keyframes are W+ latents taken from what is shown (seeds, edits, projections)
    MorphSpec morph;                ///< the path and its keyframes (w_keys, each [1, num_ws, w_dim]); frames as `spec` renders them
    std::vector<std::string> morph_labels;  ///< one per keyframe
    std::vector<float> current_ws;  ///< the latent of the image on screen (from the worker)
    std::string current_label;
    bool morph_add = false, morph_preview = false, morph_play = false;
    double morph_t = 0;             ///< preview position, 0..1 over the whole path
    int morph_fps = 30;
    std::string morph_out = "morph.mp4";
    std::optional<MorphExportJob> morph_export;
    bool cancel_export = false;
    // Audio and OSC: scripts, widgets and OSC messages queue audio commands ("audio FILE", "audio-map
    // beats", "record FILE", ...); LiveAudio runs them and reports in `audio`
    std::vector<std::string> audio_commands;
    AudioView audio;
    std::string audio_input, audio_map_input = "pulse", record_input = "latentkit-recording.json";  ///< the Audio panel's fields
    std::string osc_status;  ///< "" : OSC is off
    // Blend: the open model (coarse layers) with a second one (fine layers), rendered live
    std::string blend_input;              ///< the Blend panel's path field
    std::string blend_model;              ///< the detail model ("" : no blend)
    BlendOptions blend;
    std::string blend_save = "blend.safetensors";
    std::optional<std::string> blend_save_request;  ///< save the blend to this file (task thread)
    // Curate: a folder or zip, labels one image at a time, the rest re-ranked after each (CurateSession)
    std::string curate_input, curate_labels = "labels.csv", curate_out = "curated.zip";
    double curate_threshold = 0.5;
    /// "curate-open DIR|ZIP", "curate-mark CELL 1|0|skip", "curate-load FILE", "curate-save FILE",
    /// "curate-export DEST [THRESHOLD]": run in order on the task thread
    std::vector<std::string> curate_commands;
    CurateView curate;
    int curate_version = 0;  ///< changes with curate.grid
    // Layer view
    bool layer_view = false;
    int layer_block = 0, layer_channel = -1;
    // Files: dropped on the window or picked in the browser, opened by kind
    std::vector<std::string> open_files;
    std::string browse_dir;               ///< the browser's folder ("" : the working folder)
    std::vector<FileEntry> browse_entries;
    bool browse_refresh = true;           ///< list browse_dir again
    // Display and capture
    bool nearest = false;
    double zoom = 1.0, pan_x = 0, pan_y = 0;
    std::string capture_path = "latentkit-capture.png";
    bool capture_image = false, capture_window = false;  ///< set by the buttons; the app reads the pixels
    bool vsync = true;
    int fps_cap = 60;
    // Status
    std::string error, status;
    std::vector<LogLine> log;  ///< newest last, at most kLogLines
    double render_ms = 0, frame_ms = 0;
    std::string upload;  ///< how images reach the texture, and why not through CUDA-GL interop
};

/// Lines kept in ViewerState::log.
constexpr size_t kLogLines = 200;

/// Columns of the labelling grid for n samples.
int grid_cols(size_t n);

/// The render request for the state.
RenderRequest request_from(const ViewerState& s);

/// The morph of the state's keyframes, its frames rendered with the state's truncation, class, noise
/// and transform (the keyframes already hold their mixing and edits).
MorphSpec morph_from(const ViewerState& s);

/// The state's latent as a tensor [1, num_ws, w_dim] from num_ws * w_dim floats; throws ShapeError
/// when they do not fit the open model.
torch::Tensor latent_tensor(const ViewerState& s, const std::vector<float>& ws);

/// Adds the current latent as a morph keyframe; removes keyframe k.
void add_morph_key(ViewerState& s);
void remove_morph_key(ViewerState& s, size_t k);

/// Adds sliders for the directions of a set (`source` names where they came from).
void add_direction_set(ViewerState& s, const DirectionSet& set, const std::string& source);

/// Adds `path` to the front of the recent list (at most 8 entries, no duplicates).
void remember_model(ViewerState& s, const std::string& path);

/// Applies one script line ("seed 3 0.5", "psi 0.7", "direction f.json", "slider 0 2.5", ...) to the
/// state; returns false when the line is not a state command. Throws ArgumentError on a bad value.
bool apply_script_line(ViewerState& s, const std::string& line);

/// The script lines that set what is shown (seed position, truncation, class, noise, transform, mixing,
/// sliders) to the state's values: apply_script_line of each gives the same image again.
std::vector<std::string> state_lines(const ViewerState& s);

}  // namespace latentkit::viewer
