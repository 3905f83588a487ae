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
                 bool& label_fresh, const MorphExportState& export_state);

}  // namespace latentkit::viewer
