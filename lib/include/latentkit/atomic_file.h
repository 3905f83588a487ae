#pragma once
// Write-then-rename output files: a failed run never leaves a partial file or clobbers an old one.
#include <string>

namespace latentkit {

/// A temporary file next to `path` that becomes `path` only on commit().
/// Destroying it uncommitted removes the temporary file.
class AtomicFile {
public:
    /// Creates the temporary file; throws IoError if the folder is not writable.
    explicit AtomicFile(const std::string& path);
    ~AtomicFile();
    AtomicFile(const AtomicFile&) = delete;
    AtomicFile& operator=(const AtomicFile&) = delete;

    /// Path of the temporary file to write into.
    const std::string& temp_path() const { return temp_path_; }
    /// Final path.
    const std::string& path() const { return path_; }
    /// Appends bytes to the temporary file.
    void write(const void* data, size_t size);
    /// Flushes, closes and renames the temporary file onto the final path.
    void commit();

private:
    std::string path_;
    std::string temp_path_;
    int fd_ = -1;
    bool committed_ = false;
};

/// Writes `size` bytes to `path` atomically.
void write_file_atomic(const std::string& path, const void* data, size_t size);

/// Reads a whole file; throws IoError naming the file on failure.
std::string read_file(const std::string& path);

}  // namespace latentkit
