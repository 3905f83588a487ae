#pragma once
// The viewer's panels. Widgets only edit the state; the app acts on what they set.
#include "gl_image.h"
#include "morph_exporter.h"
#include "projection_runner.h"
#include "viewer_state.h"

namespace latentkit::viewer {

/// Width of the panel column on the left of the window, in pixels.
constexpr float kPanelWidth = 380.0f;

/// Draws every panel for one frame: `target` / `current` are the projection's images, `label_grid` the
/// labelling thumbnails (`label_fresh` opens that panel once).
void draw_panels(ViewerState& s, const ProjectionSnapshot& p, const GlImage& target, const GlImage& current, const GlImage& label_grid,
                 bool& label_fresh, const MorphExportState& export_state, const GlImage& curate_grid);

/// A text input bound to `value` (ImGuiInputTextFlags in `flags`); true when it changed or was entered.
bool text_field(const char* label, std::string& value, int flags = 0);

/// The Curate panel (curate_panel.cpp): thumbnails of the images to label next, marks, labels, export.
void draw_curate_panel(ViewerState& s, const GlImage& grid);

/// The Audio panel (audio_panel.cpp): file or input device, mapping and gains, meters, recording, OSC.
void draw_audio_panel(ViewerState& s);

}  // namespace latentkit::viewer
