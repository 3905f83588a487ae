#include "latentkit/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <vector>

#include "latentkit/error.h"

namespace latentkit {
namespace {
std::string sys_error() { return std::strerror(errno); }
}  // namespace

AtomicFile::AtomicFile(const std::string& path) : path_(path) {
    std::string tmpl = path + ".tmp-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    fd_ = ::mkstemp(buf.data());
    if (fd_ < 0) throw IoError(path + ": cannot create output file: " + sys_error());
    temp_path_ = buf.data();
    ::fchmod(fd_, 0644);
}

AtomicFile::~AtomicFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_ && !temp_path_.empty()) ::unlink(temp_path_.c_str());
}

void AtomicFile::write(const void* data, size_t size) {
    const char* p = static_cast<const char*>(data);
    while (size > 0) {
        ssize_t n = ::write(fd_, p, size);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw IoError(path_ + ": write failed: " + sys_error());
        }
        p += n;
        size -= static_cast<size_t>(n);
    }
}

void AtomicFile::commit() {
    if (fd_ >= 0) {
        const int rc = ::close(fd_);
        fd_ = -1;
        if (rc != 0) throw IoError(path_ + ": write failed: " + sys_error());
    }
    if (std::rename(temp_path_.c_str(), path_.c_str()) != 0) {
        throw IoError(path_ + ": cannot rename temporary file into place: " + sys_error());
    }
    committed_ = true;
}

void write_file_atomic(const std::string& path, const void* data, size_t size) {
    AtomicFile f(path);
    f.write(data, size);
    f.commit();
}

std::string read_file(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) throw IoError(path + ": cannot open: " + sys_error());
    if (S_ISDIR(st.st_mode)) throw IoError(path + ": is a directory, not a file");
    std::ifstream in(path, std::ios::binary);
    if (!in) throw IoError(path + ": cannot open: " + sys_error());
    std::string data;
    data.resize(static_cast<size_t>(st.st_size));
    in.read(data.data(), static_cast<std::streamsize>(data.size()));
    if (static_cast<size_t>(in.gcount()) != data.size()) throw IoError(path + ": read failed");
    return data;
}

}  // namespace latentkit
