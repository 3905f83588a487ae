// File kinds and the browser's folder listing.
#include "files.h"

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "latentkit/error.h"
#include "viewer_state.h"

namespace latentkit::viewer {

FileKind file_kind(const std::string& path) {
    std::string ext = std::filesystem::path(path).extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (ext == ".pkl" || ext == ".pt" || ext == ".pth" || ext == ".safetensors") return FileKind::model;
    if (ext == ".json") return FileKind::directions;
    if (ext == ".npz") return FileKind::latent;
    for (const char* e : {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"})
        if (ext == e) return FileKind::photo;
    return FileKind::other;
}

std::vector<FileEntry> list_folder(const std::string& dir) {
    namespace fs = std::filesystem;
    const fs::path base = dir.empty() ? fs::current_path() : fs::path(dir);
    std::vector<FileEntry> folders, files;
    std::error_code ec;
    fs::directory_iterator it(base, fs::directory_options::skip_permission_denied, ec);
    if (ec) throw IoError(base.string() + ": cannot list the folder (" + ec.message() + ")");
    for (; it != fs::directory_iterator(); it.increment(ec)) {
        if (ec) throw IoError(base.string() + ": cannot list the folder (" + ec.message() + ")");
        const std::string name = it->path().filename().string();
        if (name.empty() || name[0] == '.') continue;
        std::error_code kind_ec;
        if (it->is_directory(kind_ec)) folders.push_back({name, true});
        else if (file_kind(name) != FileKind::other) files.push_back({name, false});
    }
    auto by_name = [](const FileEntry& a, const FileEntry& b) { return a.name < b.name; };
    std::sort(folders.begin(), folders.end(), by_name);
    std::sort(files.begin(), files.end(), by_name);
    std::vector<FileEntry> out;
    if (fs::absolute(base).has_relative_path()) out.push_back({"..", true});
    out.insert(out.end(), folders.begin(), folders.end());
    out.insert(out.end(), files.begin(), files.end());
    return out;
}

}  // namespace latentkit::viewer
