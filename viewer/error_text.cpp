#include "error_text.h"

#include <utility>

#include "latentkit/error.h"

namespace latentkit::viewer {

namespace {
// The widget that sets each option field the library names in its errors (the others keep their names).
constexpr std::pair<const char*, const char*> kFieldWidgets[] = {
    {"device", "--device"},
    {"model.path", "Model > path"},
    {"RenderSpec.class_index", "Latent > class"},
    {"Projector.lpips", "Projection > vgg16.pt"},
    {"align.mode", "Projection > align"},
};

std::string widget_of(const std::string& field) {
    for (const auto& [name, widget] : kFieldWidgets)
        if (field == name) return widget;
    return field;
}
}  // namespace

std::string error_text(const std::exception& e) { return first_line(e, widget_of); }

}  // namespace latentkit::viewer
