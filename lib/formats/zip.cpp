#include "latentkit/zip.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>

#include "latentkit/atomic_file.h"
#include "bytes.h"
#include "latentkit/error.h"

namespace latentkit {
namespace {

constexpr uint64_t kMaxMemberBytes = uint64_t(1) << 34;
constexpr uint32_t k32 = 0xffffffffu;

using detail::le;
using detail::put;

}  // namespace

ZipReader::ZipReader(const std::string& path) : source_(path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) throw IoError(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
    struct stat st {};
    if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd_);
        fd_ = -1;
        throw IoError(path + ": not a regular file");
    }
    file_size_ = static_cast<uint64_t>(st.st_size);
    try {
        parse_directory();
    } catch (...) {
        ::close(fd_);
        fd_ = -1;
        throw;
    }
}

ZipReader::ZipReader(std::shared_ptr<const std::string> bytes, const std::string& source) : source_(source), bytes_(std::move(bytes)) {
    file_size_ = bytes_ ? bytes_->size() : 0;
    parse_directory();
}

void ZipReader::parse_directory() {
    auto fail = [&](const std::string& what) { return ModelFormatError(source_ + ": not a valid zip archive: " + what); };
    if (file_size_ < 22) throw fail("too short");
    const uint64_t tail_size = std::min<uint64_t>(file_size_, 22 + 65535 + 20);
    const std::string tail = read_raw(file_size_ - tail_size, tail_size);
    size_t eocd = std::string::npos;
    for (size_t p = tail.size() - 22 + 1; p-- > 0;)
        if (le<uint32_t>(tail, p) == 0x06054b50u) {
            eocd = p;
            break;
        }
    if (eocd == std::string::npos) throw fail("no zip directory (truncated or not a zip)");
    uint64_t entries = le<uint16_t>(tail, eocd + 10), cd_size = le<uint32_t>(tail, eocd + 12), cd_offset = le<uint32_t>(tail, eocd + 16);
    if ((entries == 0xffff || cd_offset == k32 || cd_size == k32) && eocd >= 20 && le<uint32_t>(tail, eocd - 20) == 0x07064b50u) {
        const uint64_t z64 = le<uint64_t>(tail, eocd - 12);
        if (z64 > file_size_ - 56) throw fail("bad zip64 directory");
        const std::string rec = read_raw(z64, 56);
        if (le<uint32_t>(rec, 0) != 0x06064b50u) throw fail("bad zip64 directory");
        entries = le<uint64_t>(rec, 32);
        cd_size = le<uint64_t>(rec, 40);
        cd_offset = le<uint64_t>(rec, 48);
    }
    if (cd_offset > file_size_ || cd_size > file_size_ - cd_offset) throw fail("directory runs past the end (truncated?)");
    const std::string b = read_raw(cd_offset, cd_size);
    size_t p = 0;
    for (uint64_t e = 0; e < entries; ++e) {
        if (b.size() - p < 46 || le<uint32_t>(b, p) != 0x02014b50u) throw fail("damaged zip directory");
        ZipEntry z;
        z.method = le<uint16_t>(b, p + 10);
        const uint16_t name_len = le<uint16_t>(b, p + 28), extra_len = le<uint16_t>(b, p + 30), comment_len = le<uint16_t>(b, p + 32);
        z.compressed = le<uint32_t>(b, p + 20);
        z.size = le<uint32_t>(b, p + 24);
        z.local_offset = le<uint32_t>(b, p + 42);
        if (b.size() - p - 46 < size_t(name_len) + extra_len + comment_len) throw fail("damaged zip directory");
        z.name = b.substr(p + 46, name_len);
        for (size_t x = p + 46 + name_len; x + 4 <= p + 46 + name_len + extra_len;) {
            const uint16_t id = le<uint16_t>(b, x), len = le<uint16_t>(b, x + 2);
            size_t q = x + 4;
            if (id == 1) {
                if (z.size == k32 && q + 8 <= x + 4 + len) z.size = le<uint64_t>(b, q), q += 8;
                if (z.compressed == k32 && q + 8 <= x + 4 + len) z.compressed = le<uint64_t>(b, q), q += 8;
                if (z.local_offset == k32 && q + 8 <= x + 4 + len) z.local_offset = le<uint64_t>(b, q);
            }
            x += 4 + len;
        }
        p += 46 + name_len + extra_len + comment_len;
        entries_.push_back(std::move(z));
    }
}

ZipReader::~ZipReader() {
    if (fd_ >= 0) ::close(fd_);
}

int64_t ZipReader::find(const std::string& name) const {
    for (size_t k = 0; k < entries_.size(); ++k)
        if (entries_[k].name == name) return static_cast<int64_t>(k);
    return -1;
}

std::string ZipReader::read_raw(uint64_t offset, uint64_t size) const {
    if (offset > file_size_ || size > file_size_ - offset) throw ModelFormatError(source_ + ": zip data runs past the end of the file (truncated?)");
    if (bytes_) return bytes_->substr(offset, size);
    std::string out(size, '\0');
    uint64_t done = 0;
    while (done < size) {
        const ssize_t n = ::pread(fd_, out.data() + done, size - done, static_cast<off_t>(offset + done));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) throw IoError(fmt::format("{}: read failed: {}", source_, n < 0 ? std::strerror(errno) : "unexpected end of file"));
        done += static_cast<uint64_t>(n);
    }
    return out;
}

std::string ZipReader::read(size_t index) const {
    const ZipEntry& z = entries_.at(index);
    auto fail = [&](const std::string& what) { return ModelFormatError(fmt::format("{}: member {} {}", source_, z.name, what)); };
    const std::string local = read_raw(z.local_offset, 30);
    if (le<uint32_t>(local, 0) != 0x04034b50u) throw fail("has a damaged header");
    const uint64_t data = z.local_offset + 30 + le<uint16_t>(local, 26) + le<uint16_t>(local, 28);
    if (data > file_size_ || z.compressed > file_size_ - data) throw fail("runs past the end (truncated?)");
    if (z.size > kMaxMemberBytes) throw fail("is implausibly large");
    // Deflate expands at most about 1032:1: a larger claim is damage, and must not size an allocation.
    if (z.method == 8 && z.size > z.compressed * 1100 + 65536) throw fail("claims more data than its compressed size can hold");
    std::string raw = read_raw(data, z.compressed);
    if (z.method == 0) {
        if (z.compressed != z.size) throw fail("has sizes that disagree");
        return raw;
    }
    if (z.method != 8) throw fail(fmt::format("uses compression method {}", z.method));
    std::string member(z.size, '\0');
    z_stream zs{};
    if (inflateInit2(&zs, -15) != Z_OK) throw fail("cannot be decompressed (zlib init failed)");
    zs.next_in = reinterpret_cast<Bytef*>(raw.data());
    zs.avail_in = static_cast<uInt>(raw.size());
    zs.next_out = reinterpret_cast<Bytef*>(member.data());
    zs.avail_out = static_cast<uInt>(member.size());
    const int rc = inflate(&zs, Z_FINISH);
    const uint64_t produced = zs.total_out;
    inflateEnd(&zs);
    if (rc != Z_STREAM_END || produced != z.size) throw fail("does not decompress");
    return member;
}

struct ZipWriter::State {
    AtomicFile file;
    std::string directory;
    uint64_t offset = 0;
    uint64_t count = 0;
    explicit State(const std::string& path) : file(path) {}
};

ZipWriter::ZipWriter(const std::string& path) : s_(std::make_unique<State>(path)) {}
ZipWriter::~ZipWriter() = default;

void ZipWriter::add(const std::string& name, const std::string& data) {
    if (data.size() >= k32) throw ArgumentError(fmt::format("{}: member {} is too large (4 GiB or more)", s_->file.path(), name));
    const uint32_t crc = static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size())));
    const bool far = s_->offset >= k32;
    auto header = [&](std::string& out, bool central) {
        put<uint32_t>(out, central ? 0x02014b50u : 0x04034b50u);
        if (central) put<uint16_t>(out, 45);
        put<uint16_t>(out, central && far ? 45 : 20);
        put<uint16_t>(out, 0);
        put<uint16_t>(out, 0);
        put<uint16_t>(out, 0);
        put<uint16_t>(out, 0x21);
        put<uint32_t>(out, crc);
        put<uint32_t>(out, static_cast<uint32_t>(data.size()));
        put<uint32_t>(out, static_cast<uint32_t>(data.size()));
        put<uint16_t>(out, static_cast<uint16_t>(name.size()));
        put<uint16_t>(out, central && far ? 12 : 0);
        if (central) {
            put<uint16_t>(out, 0);
            put<uint16_t>(out, 0);
            put<uint16_t>(out, 0);
            put<uint32_t>(out, 0);
            put<uint32_t>(out, far ? k32 : static_cast<uint32_t>(s_->offset));
        }
        out += name;
        if (central && far) {
            put<uint16_t>(out, 1);
            put<uint16_t>(out, 8);
            put<uint64_t>(out, s_->offset);
        }
    };
    std::string local;
    header(local, false);
    s_->file.write(local.data(), local.size());
    s_->file.write(data.data(), data.size());
    header(s_->directory, true);
    s_->offset += local.size() + data.size();
    ++s_->count;
}

void ZipWriter::finish() {
    std::string tail = s_->directory;
    const uint64_t cd_offset = s_->offset, cd_size = s_->directory.size();
    const bool zip64 = s_->count >= 0xffff || cd_offset >= k32 || cd_size >= k32;
    if (zip64) {
        const uint64_t z64 = cd_offset + cd_size;
        put<uint32_t>(tail, 0x06064b50u);
        put<uint64_t>(tail, 44);
        put<uint16_t>(tail, 45);
        put<uint16_t>(tail, 45);
        put<uint32_t>(tail, 0);
        put<uint32_t>(tail, 0);
        put<uint64_t>(tail, s_->count);
        put<uint64_t>(tail, s_->count);
        put<uint64_t>(tail, cd_size);
        put<uint64_t>(tail, cd_offset);
        put<uint32_t>(tail, 0x07064b50u);
        put<uint32_t>(tail, 0);
        put<uint64_t>(tail, z64);
        put<uint32_t>(tail, 1);
    }
    put<uint32_t>(tail, 0x06054b50u);
    put<uint16_t>(tail, 0);
    put<uint16_t>(tail, 0);
    put<uint16_t>(tail, zip64 ? 0xffff : static_cast<uint16_t>(s_->count));
    put<uint16_t>(tail, zip64 ? 0xffff : static_cast<uint16_t>(s_->count));
    put<uint32_t>(tail, zip64 ? k32 : static_cast<uint32_t>(cd_size));
    put<uint32_t>(tail, zip64 ? k32 : static_cast<uint32_t>(cd_offset));
    put<uint16_t>(tail, 0);
    s_->file.write(tail.data(), tail.size());
    s_->file.commit();
}

}  // namespace latentkit
