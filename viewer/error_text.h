#pragma once
// Errors as the viewer shows them: library option fields named by the widgets that set them.
#include <exception>
#include <string>

namespace latentkit::viewer {

/// The first line of an error's message, the option fields it names written as the viewer's widgets
/// ("Projection > vgg16.pt") or flags; other exceptions give the first line of their what().
std::string error_text(const std::exception& e);

}  // namespace latentkit::viewer
