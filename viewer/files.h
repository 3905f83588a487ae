#pragma once
// What the viewer does with a file it is given (dropped on the window or picked in the browser).
#include <string>
#include <vector>

namespace latentkit::viewer {

struct FileEntry;

/// The kinds of file the viewer opens.
enum class FileKind {
    model,       ///< .pkl, .pt, .pth, .safetensors: opened as the model
    directions,  ///< .json: direction sliders
    latent,      ///< .npz: a projected_w.npz shown as the current latent
    photo,       ///< .png, .jpg, .jpeg, .bmp, .webp, .tif, .tiff: projected into the model
    other        ///< none of these
};

/// The kind of `path`, by its extension (case-insensitive).
FileKind file_kind(const std::string& path);

/// The sub-folders and the files of the kinds above in `dir`, folders first, each group sorted by name,
/// with ".." first unless `dir` is the root. Throws IoError naming the folder when it cannot be read.
std::vector<FileEntry> list_folder(const std::string& dir);

}  // namespace latentkit::viewer
