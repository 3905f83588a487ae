#pragma once
// Zip archives as numpy's .npz, the reference dataset tool and torch.save use them: reading stored or
// deflated members (zip64 included) and writing stored members atomically. Torch-free (latentkit_formats).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace latentkit {

/// One member of a zip archive.
struct ZipEntry {
    std::string name;          ///< path inside the archive ('/'-separated)
    uint64_t size = 0;         ///< uncompressed bytes
    uint64_t compressed = 0;   ///< bytes in the archive
    uint16_t method = 0;       ///< 0 stored, 8 deflated
    uint64_t local_offset = 0; ///< offset of the local header
};

/// Reads members of a zip file on demand. Thread-safe for concurrent read() calls.
class ZipReader {
public:
    /// Opens `path` and reads its directory; throws IoError (missing) or ModelFormatError (not a zip) naming it.
    explicit ZipReader(const std::string& path);
    /// Parses an archive held in memory; `source` names it in errors.
    ZipReader(std::shared_ptr<const std::string> bytes, const std::string& source);
    ~ZipReader();
    ZipReader(const ZipReader&) = delete;
    ZipReader& operator=(const ZipReader&) = delete;

    /// Members in directory order (folders included, their names end in '/').
    const std::vector<ZipEntry>& entries() const { return entries_; }
    /// Index of the member called `name`, or -1.
    int64_t find(const std::string& name) const;
    /// The uncompressed bytes of member `index`; throws ModelFormatError when it is damaged.
    std::string read(size_t index) const;
    /// Name of the archive used in error messages.
    const std::string& source() const { return source_; }

private:
    void parse_directory();
    std::string read_raw(uint64_t offset, uint64_t size) const;
    std::string source_;
    int fd_ = -1;
    uint64_t file_size_ = 0;
    std::shared_ptr<const std::string> bytes_;
    std::vector<ZipEntry> entries_;
};

/// Writes a zip of stored (uncompressed) members to a temporary file that becomes `path` on finish().
/// Archives with more than 65,535 members or over 4 GiB get zip64 records.
class ZipWriter {
public:
    /// Creates the temporary file; throws IoError when the folder is not writable.
    explicit ZipWriter(const std::string& path);
    ~ZipWriter();
    ZipWriter(const ZipWriter&) = delete;
    ZipWriter& operator=(const ZipWriter&) = delete;
    /// Appends a member.
    void add(const std::string& name, const std::string& data);
    /// Writes the directory and renames the archive into place.
    void finish();

private:
    struct State;
    std::unique_ptr<State> s_;
};

}  // namespace latentkit
