// `latentkit serve` over loopback: the API against the command's own images, hostile requests, many
// clients at once, projection and morph jobs, a clean stop.
#include "test_util.h"
#include "cli_util.h"

#include <httplib.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "latentkit/atomic_file.h"
#include "latentkit/directions.h"
#include "latentkit/editing.h"
#include "latentkit/model_io.h"
#include "latentkit/npz.h"
#include "latentkit/png.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

std::string read_log(const std::string& path) { return fs::exists(path) ? latentkit::read_file(path) : std::string(); }

// A server process on a free loopback port (its output names the port); SIGTERM and wait at the end.
class ServeProcess {
public:
    // `latentkit serve ARGS --port 0`.
    explicit ServeProcess(std::vector<std::string> args) : ServeProcess(with_cli(std::move(args)), "listening on http://127\\.0\\.0\\.1:([0-9]+)/") {}
    // Any program; `ready` matches its output and captures the port.
    ServeProcess(std::vector<std::string> args, const std::string& ready) {
        err_ = logs_ / "err";
        std::fflush(nullptr);  // nothing buffered is written twice
        std::cout.flush();
        pid_ = ::fork();
        if (pid_ == 0) {
            const int err = ::open(err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            ::dup2(err, 2);
            ::dup2(err, 1);
            std::vector<char*> argv;
            for (auto& a : args) argv.push_back(a.data());
            argv.push_back(nullptr);
            ::execv(argv[0], argv.data());
            ::_exit(127);
        }
        const std::regex listening(ready);
        for (int k = 0; k < 600 && port_ == 0; ++k) {
            std::smatch m;
            const std::string text = read_log(err_);
            if (std::regex_search(text, m, listening)) port_ = std::stoi(m[1]);
            else if (::waitpid(pid_, &status_, WNOHANG) == pid_) break;
            else std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        REQUIRE_MESSAGE(port_ > 0, "the server did not start: " << read_log(err_));
    }
    ~ServeProcess() { stop(); }
    // SIGTERM; the exit status.
    int stop() {
        if (pid_ > 0) {
            ::kill(pid_, SIGTERM);
            ::waitpid(pid_, &status_, 0);
            pid_ = -1;
        }
        return WIFEXITED(status_) ? WEXITSTATUS(status_) : -1;
    }
    static std::vector<std::string> with_cli(std::vector<std::string> args) {
        args.insert(args.begin(), {LATENTKIT_CLI, "serve", "--port", "0"});
        return args;
    }
    int port() const { return port_; }
    pid_t pid() const { return pid_; }
    httplib::Client client() const {
        httplib::Client c("127.0.0.1", port_);
        c.set_read_timeout(120, 0);
        return c;
    }
    std::string log() const { return read_log(err_); }
    // Resident memory of the server in MiB.
    double rss_mib() const {
        std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
        for (std::string line; std::getline(in, line);)
            if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
        return -1;
    }

private:
    lktest::TempDir logs_;
    std::string err_;
    pid_t pid_ = -1;
    int port_ = 0, status_ = 0;
};

// Percent-encodes everything but unreserved characters.
std::string url_encode(const std::string& text) {
    std::string out;
    for (unsigned char ch : text) {
        if (std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~') out += static_cast<char>(ch);
        else out += fmt::format("%{:02X}", ch);
    }
    return out;
}

std::string error_of(const httplib::Result& r) { return r ? json::parse(r->body).value("error", "") : "no response"; }

// A direction file for the model, written with the library.
std::string write_pca_directions(const std::string& model, const std::string& path) {
    const latentkit::Model m = latentkit::load_model(model);
    latentkit::DirectionSet set = latentkit::pca_directions(*m.G_ema, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, 2, 1.0, 100);
    latentkit::save_directions(path, set);
    return path;
}
}  // namespace

TEST_CASE("serve: /api/render equals generate, directions edit the image, bad parameters get 400 and the server keeps serving") {
    lktest::TempDir dir;
    const std::string model = lktest::data_path("golden/tiny32.pkl");
    fs::create_directories(dir / "models/sub");
    fs::copy_file(model, dir / "models/sub/tiny.pkl");
    write_pca_directions(model, dir / "models/pca.json");
    ServeProcess server({"--model", model, "--models", dir / "models"});
    auto c = server.client();

    const auto models = c.Get("/api/models");
    REQUIRE(models);
    const json list = json::parse(models->body);
    CHECK(list["models"] == json{"tiny32.pkl", "sub/tiny.pkl"});
    CHECK(list["directions"] == json{"pca.json"});
    CHECK(list["summary"]["resolution"] == 32);

    REQUIRE(lktest::run({"generate", "-m", model, "-s", "42", "--trunc", "0.7", "-o", dir / "gen"}).code == 0);
    const auto png = c.Get("/api/render?seed=42&psi=0.7");
    REQUIRE(png);
    CHECK(png->status == 200);
    CHECK(png->get_header_value("Content-Type") == "image/png");
    CHECK(png->body == latentkit::read_file(dir / "gen/seed0042.png"));  // the same bytes
    CHECK(c.Get("/api/render?seed=42&psi=0.7&model=sub/tiny.pkl")->body == png->body);
    CHECK(c.Get("/api/render?x=42&y=0&psi=0.7")->body == png->body);  // an integer position is that seed
    const auto jpeg = c.Get("/api/render?seed=42&format=jpeg");
    REQUIRE(jpeg);
    CHECK(jpeg->get_header_value("Content-Type") == "image/jpeg");
    CHECK(jpeg->body.substr(0, 2) == "\xff\xd8");

    const auto dirs = c.Get("/api/directions?file=pca.json");
    REQUIRE(dirs);
    CHECK(json::parse(dirs->body)["directions"].size() == 2);
    const auto edited = c.Get("/api/render?seed=42&psi=0.7&dir=pca.json%23pca0@2");
    REQUIRE(edited);
    CHECK(edited->status == 200);
    const latentkit::Image8 a = latentkit::decode_png(png->body, "a"), b = latentkit::decode_png(edited->body, "b");
    int changed = 0;
    for (size_t k = 0; k < a.pixels.size(); ++k) changed += std::abs(int(a.pixels[k]) - int(b.pixels[k])) > 8;
    CHECK(changed > 100);

    // A latent posted as a projected_w.npz renders as generate --projected-w does.
    const std::string npz = lktest::data_path("tiny32_projected_w.npz");
    REQUIRE(lktest::run({"generate", "-m", model, "--projected-w", npz, "-o", dir / "proj"}).code == 0);
    const auto posted = c.Post("/api/render", latentkit::read_file(npz), "application/octet-stream");
    REQUIRE(posted);
    CHECK(posted->status == 200);
    CHECK(posted->body == latentkit::read_file(dir / "proj/proj00.png"));
    CHECK(c.Post("/api/render?seed=1", latentkit::read_file(npz), "application/octet-stream")->status == 400);
    const auto junk = c.Post("/api/render", "junk", "application/octet-stream");
    CHECK(junk->status == 400);
    CHECK(error_of(junk).find("the posted latent") != std::string::npos);

    // Directions the server computes are offered as a new file.
    const auto computed = c.Post("/api/directions/compute?kind=sefa&components=3", "", "text/plain");
    REQUIRE(computed);
    REQUIRE(computed->status == 200);
    const std::string file = json::parse(computed->body)["file"];
    CHECK(json::parse(c.Get("/api/models")->body)["directions"].size() == 2);
    const auto sefa = c.Get("/api/render?seed=42&psi=0.7&dir=" + url_encode(file + "#sefa0@3"));
    REQUIRE(sefa);
    CHECK(sefa->status == 200);
    CHECK(sefa->body != png->body);
    CHECK(c.Post("/api/directions/compute?kind=samples", "", "text/plain")->status == 400);

    const std::vector<std::pair<std::string, std::string>> bad{
        {"/api/render?seed=abc", "seed=abc: not a finite number"},
        {"/api/render?seed=1&psi=nan", "psi=nan: not a finite number"},
        {"/api/render?seed=-1", "seed=-1: expected a whole number"},
        {"/api/render?seed=4294967296", "seed=4294967296: expected a whole number"},
        {"/api/render?seed=1&cutoff=99", "cutoff=99"},
        {"/api/render?seed=1&class=2", "class: this model is unconditional"},
        {"/api/render?seed=1&noise=loud", "noise=loud: expected const, random or none"},
        {"/api/render?seed=1&rotate=10", "translate and rotate move a StyleGAN3"},
        {"/api/render?seed=1&format=gif", "format=gif"},
        {"/api/render?seed=1&bogus=1", "bogus: not a parameter"},
        {"/api/render?seed=1&x=2", "give seed or x and y"},
        {"/api/render?seed=1&dir=pca.json", "name one direction"},
        {"/api/render?seed=1&dir=pca.json%23nope@1", "nope"},
        {"/api/directions", "file: which direction file"},
    };
    for (const auto& [path, needle] : bad) {
        INFO(path);
        const auto r = c.Get(path);
        REQUIRE(r);
        CHECK(r->status == 400);
        CHECK(error_of(r).find(needle) != std::string::npos);
    }
    CHECK(c.Get("/nothing")->status == 404);
    CHECK(c.Get("/api/render?seed=42&psi=0.7")->body == png->body);  // still serving, unchanged
    CHECK(server.stop() == 0);
    CHECK(server.log().find("server stopped") != std::string::npos);
}

TEST_CASE("serve: only the files the command line named are opened, tokens are checked, uploads are limited") {
    lktest::TempDir dir;
    const std::string model = lktest::data_path("golden/tiny32.pkl");
    fs::create_directories(dir / "models");
    fs::create_directories(dir / "outside");
    fs::copy_file(model, dir / "outside/secret.pkl");
    write_pca_directions(model, dir / "outside/secret.json");
    fs::create_symlink(dir / "outside/secret.pkl", dir / "models/link.pkl");  // a link out of the folder
    fs::create_symlink(dir / "outside", dir / "models/linked-folder");
    fs::copy_file(model, dir / "models/ok.pkl");

    // Beyond loopback only with a token.
    lktest::check_error(lktest::run({"serve", "--models", dir / "models", "--host", "0.0.0.0"}), 2, "--host 0.0.0.0: serving beyond this machine needs --token");
    lktest::check_error(lktest::run({"serve", "--models", dir / "missing"}), 1, "missing: not a folder");

    ServeProcess server({"--models", dir / "models", "--token", "s3cret", "--max-upload", "1"});
    auto c = server.client();
    CHECK(c.Get("/api/models")->status == 401);
    CHECK(c.Get("/api/models?token=wrong")->status == 401);
    CHECK(c.Get("/api/models?token=s3cret1")->status == 401);
    c.set_bearer_token_auth("s3cret");
    const auto models = c.Get("/api/models");
    REQUIRE(models);
    REQUIRE(models->status == 200);
    CHECK(json::parse(models->body)["models"] == json{"ok.pkl"});  // no link out of the folder
    CHECK(json::parse(models->body)["directions"] == json::array());
    for (const std::string& name : std::vector<std::string>{"../outside/secret.pkl", dir / "outside/secret.pkl", "link.pkl", "linked-folder/secret.pkl",
                                                            "ok.pkl/..", "%2e%2e/outside/secret.pkl"}) {
        INFO(name);
        const auto r = c.Get("/api/render?seed=1&model=" + url_encode(name));
        REQUIRE(r);
        CHECK(r->status == 400);
        CHECK(error_of(r).find("not one of the served models") != std::string::npos);
    }
    const auto d = c.Get("/api/render?seed=1&dir=" + url_encode("../outside/secret.json#pca0@1"));
    REQUIRE(d);
    CHECK(d->status == 400);
    const std::string big(2u << 20, 'x');
    const auto upload = c.Post("/api/project", httplib::MultipartFormDataItems{{"photo", big, "big.png", "image/png"}});
    REQUIRE(upload);
    CHECK(upload->status == 413);
    const auto junk = c.Post("/api/project", httplib::MultipartFormDataItems{{"photo", "not an image", "junk.png", "image/png"}});
    REQUIRE(junk);
    CHECK(junk->status == 400);
    CHECK(c.Get("/api/render?seed=1")->status == 200);  // still serving
}

TEST_CASE("serve: 50 clients at once for 10 s: every answer valid, memory bounded, newest-only per client") {
    const std::string model = lktest::data_path("golden/tiny32.pkl");
    ServeProcess server({"--model", model, "--threads", "16"});
    REQUIRE(server.client().Get("/api/render?seed=0")->status == 200);
    const double rss_before = server.rss_mib();
    std::atomic<int> ok{0}, bad{0};
    std::vector<std::thread> clients;
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (int k = 0; k < 50; ++k)
        clients.emplace_back([&, k] {
            httplib::Client c("127.0.0.1", server.port());
            c.set_read_timeout(120, 0);
            for (int i = 0; std::chrono::steady_clock::now() < end; ++i) {
                const bool broken = i % 5 == 4;  // a fifth are bad requests
                const auto r = c.Get(broken ? "/api/render?seed=x" + std::to_string(k) : "/api/render?seed=" + std::to_string(k * 1000 + i));
                const bool valid = r && (broken ? r->status == 400 : r->status == 200 && r->body.compare(1, 3, "PNG") == 0);
                (valid ? ok : bad)++;
            }
        });
    for (auto& t : clients) t.join();
    INFO("ok " << ok << ", bad " << bad);
    CHECK(bad == 0);
    CHECK(ok >= 50);
    CHECK(server.rss_mib() < rss_before + 300);

    // A client's older request still waiting is dropped for its newer one (409), never answered late.
    std::vector<std::thread> burst;
    std::atomic<int> done{0}, superseded{0};
    for (int k = 0; k < 8; ++k)
        burst.emplace_back([&, k] {
            httplib::Client c("127.0.0.1", server.port());
            c.set_read_timeout(120, 0);
            const auto r = c.Get("/api/render?client=page&seed=" + std::to_string(k));
            if (r && r->status == 200) ++done;
            if (r && r->status == 409) ++superseded;
        });
    for (auto& t : burst) t.join();
    CHECK(done + superseded == 8);
    CHECK(done >= 1);
    CHECK(server.stop() == 0);
}

TEST_CASE("serve: a projection of an uploaded photo with its progress, and a morph video to download") {
    lktest::TempDir dir;
    const std::string model = lktest::data_path("golden/tiny32.pkl");
    REQUIRE(lktest::run({"generate", "-m", model, "-s", "7", "-o", dir / "gen"}).code == 0);
    ServeProcess server({"--model", model});
    auto c = server.client();
    const auto start = c.Post("/api/project?steps=8&align=none",
                              httplib::MultipartFormDataItems{{"photo", latentkit::read_file(dir / "gen/seed0007.png"), "seed7.png", "image/png"}});
    REQUIRE(start);
    REQUIRE(start->status == 200);
    json status;
    for (int k = 0; k < 600; ++k) {
        status = json::parse(c.Get("/api/project")->body);
        if (status["done"] || !status["error"].get<std::string>().empty()) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    INFO(status.dump());
    REQUIRE(status["done"] == true);
    CHECK(status["step"] == 8);
    CHECK(c.Get("/api/project/image?which=target")->status == 200);
    const auto latent = c.Get("/api/project/latent");
    REQUIRE(latent);
    REQUIRE(latent->status == 200);
    latentkit::write_file_atomic(dir / "p.npz", latent->body.data(), latent->body.size());
    CHECK(latentkit::read_projected_w(dir / "p.npz", 8, 64).shape[0] == 1);

    CHECK(c.Post("/api/morph?seeds=1", "", "text/plain")->status == 400);
    const auto morph = c.Post("/api/morph?seeds=1,2,3&frames=3&fps=12&psi=0.7", "", "text/plain");
    REQUIRE(morph);
    REQUIRE(morph->status == 200);
    for (int k = 0; k < 600 && !json::parse(c.Get("/api/morph")->body)["done"]; ++k) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const json m = json::parse(c.Get("/api/morph")->body);
    CHECK(m["frames"] == 7);
    const auto video = c.Get("/api/morph/video");
    REQUIRE(video);
    CHECK(video->status == 200);
    CHECK(video->body.substr(4, 4) == "ftyp");
    const int pid = server.pid();
    CHECK(server.stop() == 0);
    CHECK_FALSE(fs::exists(fs::temp_directory_path() / ("latentkit-serve-" + std::to_string(pid))));  // uploads and videos go with it
}

namespace {
// Runs tests/tools/page_test.js on `url` with `actions`; the canvas's RGB pixels and the report.
struct PageRun {
    std::vector<uint8_t> rgb, rgb_after_slider;
    json report;
};

std::vector<uint8_t> rgb_of(const std::string& rgba) {
    std::vector<uint8_t> out;
    for (size_t k = 0; k + 3 < rgba.size(); k += 4) out.insert(out.end(), rgba.begin() + k, rgba.begin() + k + 3);
    return out;
}

PageRun run_page(const std::string& url, const std::string& actions, const lktest::TempDir& dir) {
    const std::string script = std::string(LATENTKIT_SOURCE_DIR) + "/tests/tools/page_test.js";
    const std::string cmd = "cd " + lktest::quote(LATENTKIT_SOURCE_DIR) + " && node " + lktest::quote(script) + " " + lktest::quote(url) + " " +
                            lktest::quote(dir.path()) + " " + actions + " 2>&1";
    std::string output;
    FILE* p = ::popen(cmd.c_str(), "r");
    char buf[4096];
    for (size_t n; p && (n = std::fread(buf, 1, sizeof(buf), p)) > 0;) output.append(buf, n);
    const int status = p ? ::pclose(p) : -1;
    REQUIRE_MESSAGE(status == 0, "page_test.js: " << output);
    PageRun r;
    r.report = json::parse(latentkit::read_file(dir / "page.json"));
    r.rgb = rgb_of(latentkit::read_file(dir / "canvas.rgba"));
    if (fs::exists(dir / "canvas-slider.rgba")) r.rgb_after_slider = rgb_of(latentkit::read_file(dir / "canvas-slider.rgba"));
    return r;
}

int max_difference(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
    REQUIRE(a.size() == b.size());
    int worst = 0;
    for (size_t k = 0; k < a.size(); ++k) worst = std::max(worst, std::abs(int(a[k]) - int(b[k])));
    return worst;
}

int changed_values(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
    int n = 0;
    for (size_t k = 0; k < a.size() && k < b.size(); ++k) n += std::abs(int(a[k]) - int(b[k])) > 8;
    return n;
}

// What both page tests start from: the bundled model, PCA directions of it, and `generate`'s seed 7 at psi 0.7.
struct PageFixture {
    lktest::TempDir dir, out;
    std::string model = std::string(LATENTKIT_SOURCE_DIR) + "/models/emoji64.safetensors";
    latentkit::Image8 expected;
    PageFixture() {
        write_pca_directions(model, dir / "pca.json");
        REQUIRE(lktest::run({"generate", "-m", model, "-s", "7", "--trunc", "0.7", "-o", dir / "gen"}).code == 0);
        expected = latentkit::read_png(dir / "gen/seed0007.png");
    }
};

bool browser_available() {
    return fs::exists("/usr/bin/chromium") && fs::exists(std::string(LATENTKIT_SOURCE_DIR) + "/node_modules/puppeteer-core") &&
           fs::exists(std::string(LATENTKIT_SOURCE_DIR) + "/node_modules/onnxruntime-web");
}
}  // namespace

TEST_CASE("page: in headless Chromium the served UI draws seed 7 as latentkit does, a slider changes it, a projection shows progress") {
    if (!browser_available()) LKTEST_SKIP("no chromium or npm puppeteer-core here (scripts/setup.sh installs them)");
    const PageFixture f;
    const lktest::TempDir& dir = f.dir;
    const std::string& model = f.model;
    ServeProcess server({"--model", model, "--directions", dir / "pca.json"});
    const PageRun page = run_page(fmt::format("http://127.0.0.1:{}/?seed=7&psi=0.7", server.port()),
                                  "slider pca0 2 project " + lktest::quote(dir / "gen/seed0007.png"), f.out);
    INFO(page.report.dump());
    CHECK(page.report["backend"] == "server");
    CHECK(page.report["width"] == 64);  // the canvas holds the image at the model's resolution
    CHECK(max_difference(page.rgb, f.expected.pixels) <= 2);
    CHECK(changed_values(page.rgb, page.rgb_after_slider) > 200);
    CHECK(page.report["url_after_slider"].get<std::string>().find("d.pca0=2") != std::string::npos);  // the link shares the image
    CHECK(page.report["project_step"].get<int>() > 0);
    CHECK(page.report["project_status"].get<std::string>().find("of 40") != std::string::npos);
}

TEST_CASE("page: export --format web runs the model in headless Chromium from a static server, as latentkit draws it") {
    if (!browser_available()) LKTEST_SKIP("no chromium or npm puppeteer-core here (scripts/setup.sh installs them)");
    const PageFixture f;
    const lktest::TempDir& dir = f.dir;
    const std::string& model = f.model;
    REQUIRE(lktest::run({"export", model, dir / "site", "--format", "web", "--directions", dir / "pca.json", "--title", "Emoji"}).code == 0);
    for (const char* name : {"index.html", "latentkit.js", "mapping.onnx", "synthesis.onnx", "ort.min.js", "directions.json", "latentkit-page.json"})
        CHECK(fs::exists(fs::path(dir / "site") / name));
    lktest::check_error(lktest::run({"export", model, dir / "site", "--format", "web"}), 1, "already exists");
    ServeProcess http({"/usr/bin/python3", "-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory", dir / "site"},
                      "port ([0-9]+)");
    const PageRun page = run_page(fmt::format("http://127.0.0.1:{}/?seed=7&psi=0.7", http.port()), "slider pca0 2", f.out);
    INFO(page.report.dump());
    CHECK(page.report["backend"] == "onnx");
    const std::string status = page.report["status"];
    CHECK((status.rfind("wasm: ", 0) == 0 || status.rfind("webgpu: ", 0) == 0));  // it says which backend, and its ms per image
    CHECK(status.find("ms per image") != std::string::npos);
    CHECK(page.report["width"] == 64);
    CHECK(max_difference(page.rgb, f.expected.pixels) <= 2);
    CHECK(changed_values(page.rgb, page.rgb_after_slider) > 200);
}
