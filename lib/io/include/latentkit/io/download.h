#pragma once
// Models by URL, as the reference scripts' --network URL: downloaded once (libcurl) into the cache
// folder and reused afterwards. A download is written to a temporary file that is renamed only
// when complete, so a failed one leaves no cache entry.
#include <cstdint>
#include <functional>
#include <string>

#include "latentkit/model_io.h"

namespace latentkit::io {

/// True for http:// and https:// locations.
bool is_url(const std::string& location);

/// The download cache: $XDG_CACHE_HOME/latentkit, else ~/.cache/latentkit.
std::string cache_dir();

/// Bytes received so far and the total (0 while unknown); return false to cancel.
using DownloadProgress = std::function<bool(uint64_t done, uint64_t total)>;

/// The cache file that holds `url` (whether or not it has been downloaded yet).
std::string cache_path(const std::string& url);

/// The cached copy of `url`, downloading it first when there is none. Throws IoError naming the URL
/// on failure (HTTP error, dropped connection, short file, cancel), leaving no cache entry, or when
/// this build has no libcurl.
std::string cached_download(const std::string& url, const DownloadProgress& progress = {});

/// load_model() for a file path or a URL (downloaded through the cache).
Model load_model_location(const std::string& path_or_url, const DownloadProgress& progress = {});

}  // namespace latentkit::io
