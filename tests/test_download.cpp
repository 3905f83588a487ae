// Models by URL: downloaded once into the cache, reused, and nothing left behind by a failed download.
#include "test_util.h"

#include <stdlib.h>

#include <filesystem>

#include "cli_util.h"
#include "http_server.h"
#include "latentkit/atomic_file.h"
#include "latentkit/error.h"
#include "latentkit/io/download.h"

using namespace latentkit;
namespace fs = std::filesystem;

namespace {
// XDG_CACHE_HOME pointed at a fresh folder for the life of the object.
struct CacheHome {
    lktest::TempDir dir;
    std::string old;
    bool had = false;
    CacheHome() {
        if (const char* v = std::getenv("XDG_CACHE_HOME")) old = v, had = true;
        ::setenv("XDG_CACHE_HOME", dir.path().c_str(), 1);
    }
    ~CacheHome() {
        if (had) ::setenv("XDG_CACHE_HOME", old.c_str(), 1);
        else ::unsetenv("XDG_CACHE_HOME");
    }
    size_t files() const {
        size_t n = 0;
        if (fs::exists(dir.path()))
            for (const auto& e : fs::recursive_directory_iterator(dir.path())) n += e.is_regular_file();
        return n;
    }
};
}  // namespace

TEST_CASE("download: a model URL is fetched once into the cache and reused") {
    CacheHome cache;
    const std::string pkl = read_file(lktest::data_path("formats/tf_tiny32.pkl"));
    lktest::HttpServer server({{"/nets/tf_tiny32.pkl", pkl}});
    const std::string url = server.url("/nets/tf_tiny32.pkl");
    CHECK(io::is_url(url));
    CHECK_FALSE(io::is_url("models/x.pkl"));
    uint64_t last_done = 0, last_total = 0;
    const std::string path = io::cached_download(url, [&](uint64_t done, uint64_t total) {
        last_done = done, last_total = total;
        return true;
    });
    CHECK(path.rfind(cache.dir.path() + "/latentkit/", 0) == 0);
    CHECK(path.size() > 13);
    CHECK(path.substr(path.size() - 13) == "tf_tiny32.pkl");
    CHECK(read_file(path) == pkl);
    CHECK(last_total == pkl.size());
    CHECK(last_done == pkl.size());
    CHECK(server.requests() == 1);
    const Model m = io::load_model_location(url);  // from the cache: no second request
    CHECK(server.requests() == 1);
    CHECK(m.path == url);
    CHECK(m.format == "TensorFlow StyleGAN2 pickle");
    CHECK(cache.files() == 1);
}

TEST_CASE("download: a dropped connection, a missing file or a cancel leave no cache entry") {
    CacheHome cache;
    const std::string pt = read_file(lktest::data_path("formats/rosi_32.pt"));
    lktest::HttpServer server({{"/cut.pt", pt}}, {{"/cut.pt", true}});
    CHECK_THROWS_WITH_AS(io::cached_download(server.url("/cut.pt")), doctest::Contains("the connection ended before the file did"), IoError);
    CHECK_THROWS_WITH_AS(io::cached_download(server.url("/none.pt")), doctest::Contains("404"), IoError);
    CHECK_THROWS_WITH_AS(io::cached_download(server.url("/cut.pt"), [](uint64_t, uint64_t) { return false; }), doctest::Contains("cancelled"),
                         IoError);
    CHECK(cache.files() == 0);
    CHECK_FALSE(fs::exists(io::cache_path(server.url("/cut.pt"))));
}

TEST_CASE("download: latentkit --model URL on the command line, and a truncated download is one line, exit 1") {
    CacheHome cache;
    const std::string pt = read_file(lktest::data_path("formats/rosi_32.pt"));
    lktest::HttpServer server({{"/rosi_32.pt", pt}, {"/cut/rosi_32.pt", pt}}, {{"/cut/rosi_32.pt", true}});
    lktest::TempDir out;
    const auto r = lktest::run({"generate", "--model", server.url("/rosi_32.pt"), "--seeds", "1", "--outdir", out.path()});
    CHECK_MESSAGE(r.code == 0, r.err);
    CHECK(fs::exists(out / "seed0001.png"));
    const auto again = lktest::run({"info", server.url("/rosi_32.pt")});
    CHECK(again.code == 0);
    CHECK(again.out.find("rosinality checkpoint") != std::string::npos);
    CHECK(server.requests() == 1);
    lktest::check_error(lktest::run({"info", server.url("/cut/rosi_32.pt")}), 1, "download failed");
    CHECK(cache.files() == 1);
}
