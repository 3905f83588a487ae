#include "latentkit/io/download.h"

#include <fmt/format.h>

#include <cstdlib>
#include <filesystem>

#include "latentkit/atomic_file.h"
#include "latentkit/error.h"
#include "latentkit/io/config.h"
#include "latentkit/log.h"

#if LATENTKIT_HAVE_CURL
#include <curl/curl.h>
#endif

namespace latentkit::io {
namespace fs = std::filesystem;

bool is_url(const std::string& s) { return s.rfind("http://", 0) == 0 || s.rfind("https://", 0) == 0; }

std::string cache_dir() {
    const char* xdg = std::getenv("XDG_CACHE_HOME");
    if (xdg && *xdg) return (fs::path(xdg) / "latentkit").string();
    const char* home = std::getenv("HOME");
    if (!home || !*home) throw IoError("no download cache folder: neither XDG_CACHE_HOME nor HOME is set");
    return (fs::path(home) / ".cache" / "latentkit").string();
}

std::string cache_path(const std::string& url) {
    // FNV-1a of the whole URL (query included), then the file name the URL ends in, made safe.
    uint64_t h = 1469598103934665603ull;
    for (unsigned char c : url) h = (h ^ c) * 1099511628211ull;
    std::string name = url.substr(url.find("://") + 3);
    name = name.substr(0, name.find_first_of("?#"));
    name = name.substr(name.find_last_of('/') + 1);
    for (char& c : name)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_') c = '_';
    if (name.empty() || name[0] == '.') name = "download" + name;
    return (fs::path(cache_dir()) / fmt::format("{:016x}_{}", h, name)).string();
}

#if LATENTKIT_HAVE_CURL
namespace {
struct Transfer {
    AtomicFile* file;
    const DownloadProgress* progress;
    bool cancelled = false;
};

size_t write_body(char* data, size_t size, size_t n, void* user) {
    auto* t = static_cast<Transfer*>(user);
    t->file->write(data, size * n);
    return size * n;
}

int on_progress(void* user, curl_off_t total, curl_off_t done, curl_off_t, curl_off_t) {
    auto* t = static_cast<Transfer*>(user);
    if (*t->progress && !(*t->progress)(static_cast<uint64_t>(done), static_cast<uint64_t>(total))) t->cancelled = true;
    return t->cancelled ? 1 : 0;
}

void download(const std::string& url, AtomicFile& file, const DownloadProgress& progress) {
    static const CURLcode init = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (init != CURLE_OK) throw IoError(url + ": cannot start libcurl");
    std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
    if (!curl) throw IoError(url + ": cannot start libcurl");
    Transfer t{&file, &progress};
    char error[CURL_ERROR_SIZE] = "";
    CURL* c = curl.get();
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);  // give up after a minute without data
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "latentkit");
    const CURLcode rc = curl_easy_perform(c);
    if (t.cancelled) throw IoError(url + ": download cancelled");
    if (rc != CURLE_OK) {
        const std::string why = *error ? error : curl_easy_strerror(rc);
        const bool short_file = rc == CURLE_PARTIAL_FILE || rc == CURLE_RECV_ERROR;
        throw IoError(fmt::format("{}: download failed: {}{}", url, why, short_file ? " (the connection ended before the file did)" : ""));
    }
}
}  // namespace
#endif

std::string cached_download(const std::string& url, const DownloadProgress& progress) {
    const std::string path = cache_path(url);
    if (fs::is_regular_file(path)) return path;
#if LATENTKIT_HAVE_CURL
    std::error_code ec;
    fs::create_directories(cache_dir(), ec);
    if (ec) throw IoError(cache_dir() + ": cannot create the download cache folder: " + ec.message());
    log_info(fmt::format("downloading {} into {}", url, path));
    AtomicFile file(path);
    download(url, file, progress);
    file.commit();
    return path;
#else
    (void)progress;
    throw IoError(url + ": this build has no libcurl (apt install libcurl4-openssl-dev and rebuild): download the file and pass its path");
#endif
}

Model load_model_location(const std::string& path_or_url, const DownloadProgress& progress) {
    if (!is_url(path_or_url)) return load_model(path_or_url);
    Model m = load_model(cached_download(path_or_url, progress));
    m.path = path_or_url;
    return m;
}

}  // namespace latentkit::io
