// Dataset tool and trainer: library calls and end-to-end runs of `latentkit dataset` / `latentkit train`
// on tiny configurations (16x16, 32-wide latents) so that they run in seconds on a CPU.
#include <fmt/format.h>
#include <sys/wait.h>
#include <torch/script.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli_util.h"
#include "latentkit/atomic_file.h"
#include "latentkit/error.h"
#include "latentkit/io/config.h"
#include "latentkit/io/dataset.h"
#include "latentkit/png.h"
#include "latentkit/zip.h"
#include "latentkit/latent.h"
#include "latentkit/metrics.h"
#include "latentkit/model_io.h"
#include "latentkit/networks.h"
#include "latentkit/tensor_data.h"
#include "latentkit/train.h"
#include "test_util.h"
#include "train/distributed.h"

namespace fs = std::filesystem;
using namespace latentkit;
using lktest::check_error;
using lktest::run;
using lktest::TempDir;

namespace {

const std::string kOpencvData = LATENTKIT_OPENCV_DATA;

// A 24x20 RGB picture: a coloured blob at a position given by k (distinct images for distinct k).
Image8 picture(int k, int w = 24, int h = 20) {
    Image8 im{w, h, 3, std::vector<uint8_t>(static_cast<size_t>(w) * h * 3)};
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            const double d = std::hypot(x - (k * 7) % w, y - (k * 5) % h);
            uint8_t* p = &im.pixels[(static_cast<size_t>(y) * w + x) * 3];
            p[0] = static_cast<uint8_t>(d < 6 ? 40 + (k * 37) % 200 : 20);
            p[1] = static_cast<uint8_t>((x * 10 + k * 13) % 256);
            p[2] = static_cast<uint8_t>((y * 12 + k * 29) % 256);
        }
    return im;
}

// A folder of `n` pictures in two class sub-folders.
void make_source(const std::string& dir, int n, bool same = false) {
    for (int k = 0; k < n; ++k) {
        const std::string sub = dir + (k % 2 ? "/cats" : "/dogs");
        fs::create_directories(sub);
        write_png(fmt::format("{}/p{:03d}.png", sub, k), picture(same ? 3 : k));
    }
}

// The training options of the tiny test configuration.
std::vector<std::string> tiny(const std::string& data, const std::string& outdir, double kimg) {
    return {"--threads", "1", "train", "--data", data, "-o", outdir, "--kimg", fmt::format("{}", kimg), "--tick", "0.064", "--batch", "8",
            "--gamma", "0.05", "--cbase", "256", "--cmax", "32", "--z-dim", "32", "--w-dim", "32", "--map", "2", "--grid", "4x2"};
}

std::vector<std::string> operator+(std::vector<std::string> a, const std::vector<std::string>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

// Every tensor of two snapshots equal byte for byte (metadata aside).
void check_same_tensors(const std::string& a, const std::string& b) {
    const TensorFile fa = read_safetensors(a), fb = read_safetensors(b);
    REQUIRE(fa.tensors.size() == fb.tensors.size());
    int differ = 0;
    for (const auto& [name, t] : fa.tensors) {
        const TensorData* u = fb.find(name);
        REQUIRE(u);
        if (t.nbytes() != u->nbytes() || std::memcmp(t.data(), u->data(), t.nbytes()) != 0) {
            INFO(name);
            ++differ;
        }
    }
    CHECK(differ == 0);
}

nlohmann::json last_log(const std::string& outdir) {
    std::ifstream in(outdir + "/log.jsonl");
    std::string line, last;
    while (std::getline(in, line))
        if (!line.empty()) last = line;
    REQUIRE(!last.empty());
    return nlohmann::json::parse(last);
}

// A stand-in for the reference Inception's call interface: 4x4-pooled pixels as features.
void save_fake_inception(const std::string& path) {
    torch::jit::Module det("FakeInception");
    det.define(R"(
def forward(self, img, return_features: bool = False):
    x = torch.avg_pool2d(img.float() / 255.0, [4, 4])
    return x.flatten(1)
)");
    det.save(path);
}

// Runs `latentkit -q ARGS` as ranks 0 and 1 of a two-process Gloo run on loopback; true when both exit 0.
bool run_two_processes(const std::vector<std::string>& args, int port_salt) {
    std::string cmd;
    for (const auto& a : args) cmd += " " + lktest::quote(a);
    const std::string port = std::to_string(20000 + ((::getpid() + port_salt) % 20000));
    const std::string env = "WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + port;
    const std::string line = "(" + env + " RANK=1 " + lktest::quote(LATENTKIT_CLI) + " -q" + cmd + " & " + env + " RANK=0 " +
                             lktest::quote(LATENTKIT_CLI) + " -q" + cmd + "; a=$?; wait $!; b=$?; exit $((a|b)))";
    return std::system(line.c_str()) == 0;
}

struct Shared {
    TempDir dir;
    std::string data;  // 64 distinct 16x16 pictures with folder labels
    Shared() {
        make_source(dir / "src", 64);
        data = dir / "data.zip";
        const auto r = run({"dataset", "-s", dir / "src", "-d", data, "-r", "16", "--labels-from-folders"});
        REQUIRE_MESSAGE(r.code == 0, r.err);
    }
};
Shared& shared() {
    static Shared s;
    return s;
}

}  // namespace

TEST_CASE("zip: writer output is read back, members and zip64-free directory") {
    TempDir d;
    {
        ZipWriter z(d / "a.zip");
        z.add("x/one.bin", std::string("hello"));
        z.add("two.bin", std::string(70000, 'q'));
        z.finish();
    }
    ZipReader r(d / "a.zip");
    REQUIRE(r.entries().size() == 2);
    CHECK(r.read(static_cast<size_t>(r.find("x/one.bin"))) == "hello");
    CHECK(r.read(static_cast<size_t>(r.find("two.bin"))) == std::string(70000, 'q'));
    const std::string bytes = read_file(d / "a.zip");
    lktest::write_bytes(d / "cut.zip", bytes.substr(0, bytes.size() - 10));
    CHECK_THROWS_AS(ZipReader(d / "cut.zip"), ModelFormatError);
}

TEST_CASE("dataset: folder to reference layout with folder labels, read back by ImageDataset") {
    TempDir d;
    make_source(d / "src", 10);
    lktest::write_bytes(d / "src/dogs/broken.png", "not a png");
    const auto r = run({"dataset", "-s", d / "src", "-d", d / "out", "-r", "16", "--labels-from-folders"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK(r.err.find("skipped") != std::string::npos);
    CHECK(r.err.find("broken.png") != std::string::npos);
    CHECK(fs::exists(d / "out/00000/img00000000.png"));
    CHECK(fs::exists(d / "out/00000/img00000009.png"));
    const auto meta = nlohmann::json::parse(read_file(d / "out/dataset.json"));
    REQUIRE(meta["labels"].size() == 10);
    CHECK(meta["labels"][0][0] == "00000/img00000000.png");
    CHECK(meta["class_names"] == nlohmann::json({"cats", "dogs"}));
    io::ImageDataset ds(d / "out");
    CHECK(ds.size() == 10);
    CHECK(ds.resolution() == 16);
    CHECK(ds.channels() == 3);
    CHECK(ds.label_dim() == 2);
    const auto l0 = ds.label(0), l5 = ds.label(5);
    CHECK(l0[0] + l0[1] == 1.0f);
    // Sorted source order: cats/p001.png is first and has class 0.
    CHECK(l0[0] == 1.0f);
    std::vector<uint8_t> px(3 * 16 * 16);
    ds.read_image(3, px.data());
    const Image8 png = read_png(d / "out/00000/img00000003.png");
    CHECK(png.pixels[0] == px[0]);
    CHECK(png.pixels[1] == px[256]);

    // A second run must not write into the existing dataset.
    const auto again = run({"dataset", "-s", d / "src", "-d", d / "out", "-r", "16"});
    check_error(again, 1, "already exists");
}

TEST_CASE("dataset: duplicates, gray output, pad, max-images and the zip source") {
    TempDir d;
    make_source(d / "src", 6, true);  // six copies of one picture
    auto r = run({"dataset", "-s", d / "src", "-d", d / "a.zip", "-r", "8", "--dedupe", "0", "--gray", "--transform", "pad"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK(r.err.find("kept 1 image") != std::string::npos);
    CHECK(r.err.find("5 duplicates") != std::string::npos);
    io::ImageDataset a(d / "a.zip");
    CHECK(a.size() == 1);
    CHECK(a.channels() == 1);
    CHECK(a.resolution() == 8);
    // Zip source, re-encoded at another size, limited.
    r = run({"dataset", "-s", shared().data, "-d", d / "b", "-r", "8", "--max-images", "5"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    io::ImageDataset b(d / "b");
    CHECK(b.size() == 5);
    CHECK(b.label_dim() > 0);  // the labels of the source zip's dataset.json carry over
    // Nothing usable: an error, and nothing written.
    TempDir e;
    lktest::write_bytes(e / "x.png", "junk");
    check_error(run({"dataset", "-s", e.path(), "-d", e / "o.zip", "-r", "8"}), 1, "no image was kept");
    CHECK(!fs::exists(e / "o.zip"));
    check_error(run({"dataset", "-s", e.path(), "-d", e / "o.zip", "-r", "12"}), 2, "power of two");
}

TEST_CASE("dataset: frames of a real video, and a truncated video") {
#if LATENTKIT_HAVE_LIBAV
    TempDir d;
    const std::string video = kOpencvData + "/Megamind.avi";
    auto r = run({"dataset", "-s", video, "-d", d / "v.zip", "-r", "16", "--every", "10", "--max-images", "12"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    io::ImageDataset v(d / "v.zip");
    CHECK(v.size() == 12);
    r = run({"dataset", "-s", video, "-d", d / "f.zip", "-r", "16", "--fps", "2", "--start", "1", "--end", "3"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    const size_t n = io::ImageDataset(d / "f.zip").size();
    CHECK(n >= 4);
    CHECK(n <= 5);
    const std::string bytes = read_file(video);
    lktest::write_bytes(d / "cut.avi", bytes.substr(0, bytes.size() / 3));
    r = run({"dataset", "-s", d / "cut.avi", "-d", d / "c.zip", "-r", "16", "--every", "5"});
    // Either the frames before the damage are kept, or one clean error: never a crash.
    if (r.code == 0) CHECK(io::ImageDataset(d / "c.zip").size() > 0);
    else check_error(r, 1, "cut.avi");
#else
    MESSAGE("built without libav: video sources are not available");
#endif
}

TEST_CASE("train: losses finite, D separates early, snapshot loads in generate, morph, project and info") {
    TempDir d;
    const std::string out = d / "run";
    const auto r = run(tiny(shared().data, out, 0.256) + std::vector<std::string>{"--progress-video"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    const std::string snap = latest_snapshot(out);
    REQUIRE(snap == out + "/snapshot-000000256.safetensors");
    const auto last = last_log(out);
    for (const char* k : {"loss_G", "loss_D", "loss_r1", "loss_pl"}) CHECK(std::isfinite(last[k].get<double>()));
    CHECK(last["score_real"].get<double>() > last["score_fake"].get<double>());
    CHECK(fs::exists(out + "/reals.png"));
    CHECK(fs::exists(out + "/fakes-init.png"));
    CHECK(fs::exists(out + "/training_options.json"));
#if LATENTKIT_HAVE_LIBAV
    CHECK(fs::exists(out + "/progress.mp4"));
#endif
    Model m = load_model(snap);
    REQUIRE(m.G);
    REQUIRE(m.D);
    REQUIRE(m.G_ema);
    CHECK(m.augment_p.has_value());
    auto g = run({"generate", "--model", snap, "--seeds", "0-1", "--outdir", d / "gen"});
    CHECK_MESSAGE(g.code == 0, g.err);
    CHECK(fs::exists(d / "gen/seed0001.png"));
    g = run({"morph", "--model", snap, "--seeds", "1,2", "--frames", "3", "--out", d / "m/"});
    CHECK_MESSAGE(g.code == 0, g.err);
    g = run({"project", "--model", snap, "--target", d / "gen/seed0001.png", "--outdir", d / "proj", "--steps", "5", "--loss", "pixel", "--w-avg-samples", "500"});
    CHECK_MESSAGE(g.code == 0, g.err);
    CHECK(fs::exists(d / "proj/projected_w.npz"));
    // The run folder refuses a second, fresh run into it.
    check_error(run(tiny(shared().data, out, 0.5)), 2, "--resume auto");
}

TEST_CASE("train: an interrupted run resumed from its snapshot equals the uninterrupted run, bit for bit") {
    TempDir d;
    REQUIRE(run(tiny(shared().data, d / "a", 0.192) + std::vector<std::string>{"--mirror", "--ada-kimg", "1"}).code == 0);
    REQUIRE(run(tiny(shared().data, d / "b", 0.096) + std::vector<std::string>{"--mirror", "--ada-kimg", "1"}).code == 0);
    const auto r = run(tiny(shared().data, d / "b", 0.192) + std::vector<std::string>{"--mirror", "--ada-kimg", "1", "--resume", "auto"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    check_same_tensors(d / "a/snapshot-000000192.safetensors", d / "b/snapshot-000000192.safetensors");
}

TEST_CASE("train: two Gloo processes give the parameters of one process with the same global batch") {
    if (!distributed_available()) {
        LKTEST_SKIP("this LibTorch has no c10d");
    }
    TempDir d;
    const auto args = tiny(shared().data, d / "one", 0.064) + std::vector<std::string>{"--batch-gpu", "4"};
    REQUIRE(run(args).code == 0);
    REQUIRE(run_two_processes(tiny(shared().data, d / "two", 0.064) + std::vector<std::string>{"--batch-gpu", "4"}, 0));
    check_same_tensors(d / "one/snapshot-000000064.safetensors", d / "two/snapshot-000000064.safetensors");
}

TEST_CASE("train: with two Gloo processes every process computes its share of the metrics, and the values equal one process's") {
    if (!distributed_available()) {
        LKTEST_SKIP("this LibTorch has no c10d");
    }
    TempDir d;
    save_fake_inception(d / "inception.pt");
    const std::vector<std::string> metrics{"--batch-gpu", "4", "--metrics", "fid50k_full,kid50k_full", "--inception", d / "inception.pt",
                                           "--metric-samples", "22"};
    REQUIRE(run(tiny(shared().data, d / "one", 0.064) + metrics).code == 0);
    REQUIRE(run_two_processes(tiny(shared().data, d / "two", 0.064) + metrics, 7919));
    const auto one = last_log(d / "one")["metrics"], two = last_log(d / "two")["metrics"];
    MESSAGE("one process " << one.dump() << ", two " << two.dump());
    REQUIRE(one.contains("fid50k_full"));
    CHECK(one["fid50k_full"].get<double>() > 0);
    CHECK(one == two);
}

TEST_CASE("train: --dist-backend: auto is Gloo on the CPU and NCCL on CUDA when built with it, and NCCL needs CUDA") {
    using training::Backend;
    using training::choose_backend;
    const torch::Device cpu(torch::kCPU), cuda(torch::kCUDA, 0);
    CHECK(choose_backend(DistBackend::automatic, cpu) == Backend::Gloo);
    CHECK(choose_backend(DistBackend::gloo, cpu) == Backend::Gloo);
    CHECK(choose_backend(DistBackend::gloo, cuda) == Backend::Gloo);
    CHECK(choose_backend(DistBackend::automatic, cuda) == (nccl_available() ? Backend::Nccl : Backend::Gloo));
    CHECK_THROWS_WITH_AS(choose_backend(DistBackend::nccl, cpu), doctest::Contains("TrainOptions.dist_backend nccl needs a CUDA TrainOptions.device"),
                         ArgumentError);
    if (nccl_available()) CHECK(choose_backend(DistBackend::nccl, cuda) == Backend::Nccl);
    else CHECK_THROWS_WITH_AS(choose_backend(DistBackend::nccl, cuda), doctest::Contains("no NCCL"), Error);
}

TEST_CASE("train: with several processes a bare cuda device means GPU LOCAL_RANK") {
    DistributedEnv one, two;
    two.world_size = 2;
    two.rank = two.local_rank = 1;
    CHECK(process_device("cuda", one) == "cuda");
    CHECK(process_device("cpu", two) == "cpu");
    const auto gpus = torch::cuda::device_count();
    if (gpus == 0) CHECK(process_device("cuda", two) == "cuda");  // left for the trainer's "no CUDA" error
    else if (gpus == 1) CHECK_THROWS_WITH_AS(process_device("cuda", two), doctest::Contains("LOCAL_RANK 1"), ArgumentError);
    else CHECK(process_device("cuda", two) == "cuda:1");
    // The rule with any number of GPUs: an explicit index does not put every process on one GPU.
    using training::map_process_device;
    CHECK(map_process_device("cuda:0", two, 4, false) == "cuda:1");
    CHECK(map_process_device("cuda:3", two, 4, false) == "cuda:1");
    CHECK(map_process_device("cuda", two, 2, false) == "cuda:1");
    CHECK(map_process_device("cuda", one, 2, false) == "cuda");
    CHECK(map_process_device("cuda:1", one, 2, false) == "cuda:1");
    CHECK(map_process_device("cuda:2", two, 1, true) == "cuda:0");  // CUDA_VISIBLE_DEVICES gave this process its own GPU
    CHECK_THROWS_WITH_AS(map_process_device("cuda", two, 1, false), doctest::Contains("LOCAL_RANK 1"), ArgumentError);
    CHECK(map_process_device("cpu", two, 4, false) == "cpu");
}

TEST_CASE("train: Gloo listens on this node's own address, not on MASTER_ADDR's") {
    using training::gloo_binding;
    using Kind = training::GlooBinding::Kind;
    DistributedEnv env;
    env.world_size = 2;
    env.master_addr = "10.0.0.5";  // another node
    CHECK(gloo_binding(env, nullptr).kind == Kind::node);
    CHECK(gloo_binding(env, "").kind == Kind::node);
    const auto named = gloo_binding(env, "eth1,eth2");
    CHECK(named.kind == Kind::interface);
    CHECK(named.value == "eth1");
    env.master_addr = "localhost";
    CHECK(gloo_binding(env, nullptr).kind == Kind::hostname);
    CHECK(gloo_binding(env, nullptr).value == "127.0.0.1");
    env.master_addr = "127.0.0.2";
    CHECK(gloo_binding(env, nullptr).value == "127.0.0.2");
}

TEST_CASE("train: ADA's p rises on one repeated image and stays lower with distinct images") {
    TempDir d;
    fs::create_directories(d / "same");
    for (int k = 0; k < 64; ++k) fs::copy_file(kOpencvData + "/box.png", d / fmt::format("same/b{:02d}.png", k));
    REQUIRE(run({"dataset", "-s", d / "same", "-d", d / "same.zip", "-r", "16"}).code == 0);
    const std::vector<std::string> fast{"--ada-kimg", "0.5", "--target", "0.6"};
    REQUIRE(run(tiny(d / "same.zip", d / "r1", 1.024) + fast).code == 0);
    REQUIRE(run(tiny(shared().data, d / "r2", 1.024) + fast).code == 0);
    const double p_same = last_log(d / "r1")["augment_p"].get<double>();
    const double p_distinct = last_log(d / "r2")["augment_p"].get<double>();
    MESSAGE("augment p: repeated image " << p_same << ", distinct images " << p_distinct);
    CHECK(p_same > 0.8);
    CHECK(p_same > p_distinct + 0.2);
}

TEST_CASE("train: bad input gives one line and keeps earlier files") {
    TempDir d;
    // Labels missing with --cond.
    make_source(d / "src", 8);
    REQUIRE(run({"dataset", "-s", d / "src", "-d", d / "nolabels.zip", "-r", "16"}).code == 0);
    check_error(run(tiny(d / "nolabels.zip", d / "c", 0.064) + std::vector<std::string>{"--cond"}), 1, "--cond needs labels");
    // Mixed resolutions.
    fs::create_directories(d / "mixed");
    write_png(d / "mixed/a.png", picture(1, 16, 16));
    write_png(d / "mixed/b.png", picture(2, 8, 8));
    check_error(run(tiny(d / "mixed", d / "m", 0.064)), 1, "mixed resolutions");
    // Empty dataset.
    fs::create_directories(d / "empty");
    check_error(run(tiny(d / "empty", d / "e", 0.064)), 1, "no images");
    // NCCL on the CPU.
    check_error(run(tiny(shared().data, d / "n", 0.064) + std::vector<std::string>{"--dist-backend", "nccl"}), 2, "needs a CUDA --device");
    // The library's field names come out as the command's flags.
    check_error(run(tiny(shared().data, d / "b", 0.064) + std::vector<std::string>{"--batch-gpu", "3"}), 2,
                "--batch 8 is not a multiple of --batch-gpu 3");
    check_error(run(tiny(shared().data, d / "f", 0.064) + std::vector<std::string>{"--aug", "fixed"}), 2, "--aug fixed needs --p");
    // A resume file for another architecture (a 32x32 golden model on 16x16 data).
    check_error(run(tiny(shared().data, d / "x", 0.064) + std::vector<std::string>{"--resume", lktest::data_path("golden/tiny32.pkl")}), 1,
                "32x32");
    // Divergence: a huge learning rate; the earlier snapshot stays.
    REQUIRE(run(tiny(shared().data, d / "nan", 0.064)).code == 0);
    const std::string before = read_file(d / "nan/snapshot-000000064.safetensors");
    const auto r = run(tiny(shared().data, d / "nan", 2.0) + std::vector<std::string>{"--resume", "auto", "--glr", "1e30", "--dlr", "1e30"});
    check_error(r, 1, "diverged");
    CHECK(r.err.find("snapshot-000000064") != std::string::npos);
    CHECK(read_file(d / "nan/snapshot-000000064.safetensors") == before);
}

TEST_CASE("train: SIGINT finishes the minibatch, writes a snapshot and exits 130 saying which") {
    TempDir d;
    const auto r = lktest::run_and_signal(tiny(shared().data, d / "run", 1000), d / "run/log.jsonl", "INT");
    const std::string snap = latest_snapshot(d / "run");
    REQUIRE(!snap.empty());
    lktest::check_interrupted(r, "continue with --resume auto");
    CHECK(r.err.find("interrupted: training stopped on request: kept the snapshot " + snap) != std::string::npos);
    CHECK(load_model(snap).G_ema);
}

TEST_CASE("metrics: FID of a set with itself is 0, KID and FID grow with a shift, a stand-in Inception runs") {
    std::vector<double> mu{0, 0}, s{1, 0.2, 0.2, 2};
    CHECK(frechet_distance(mu, s, mu, s) == doctest::Approx(0).epsilon(1e-9));
    std::vector<double> mu2{3, 4};
    CHECK(frechet_distance(mu, s, mu2, s) == doctest::Approx(25).epsilon(1e-9));
    std::vector<double> s2{4, 0, 0, 9}, s1{1, 0, 0, 1};
    CHECK(frechet_distance(mu, s1, mu, s2) == doctest::Approx((1 + 1) + (4 + 9) - 2 * (2 + 3)).epsilon(1e-9));
    std::vector<float> a, b;
    for (int k = 0; k < 200; ++k) {
        a.push_back(std::sin(k * 1.3f));
        a.push_back(std::cos(k * 0.7f));
        b.push_back(std::sin(k * 1.3f) + 2);
        b.push_back(std::cos(k * 0.7f));
    }
    const double kid_same = kernel_inception_distance(a, a, 2, 1), kid_shift = kernel_inception_distance(a, b, 2, 1);
    MESSAGE("KID same " << kid_same << ", shifted " << kid_shift);
    CHECK(std::abs(kid_same) < kid_shift / 20);

    TempDir d;
    save_fake_inception(d / "inception.pt");
    io::ImageDataset data(shared().data);
    MetricOptions o;
    o.detector = d / "inception.pt";
    o.num_generated = 16;
    o.cache_dir = d / "cache";
    // A fresh tiny generator at the data's 16x16.
    GeneratorConfig gc;
    gc.z_dim = gc.w_dim = 32;
    gc.img_resolution = 16;
    gc.mapping.num_layers = 2;
    gc.synthesis.channel_base = 256;
    gc.synthesis.channel_max = 32;
    Generator G(gc);
    const auto res = compute_metrics(G, data, {Metric::fid50k_full, Metric::kid50k_full}, o);
    REQUIRE(res.size() == 2);
    CHECK(res[0].second > 0);
    CHECK(std::isfinite(res[1].second));
    CHECK(!fs::is_empty(d / "cache"));
    // A TorchScript file without the Inception interface is refused.
    torch::jit::Module bad("Bad");
    bad.define("def forward(self, img):\n    return img\n");
    bad.save(d / "bad.pt");
    o.detector = d / "bad.pt";
    CHECK_THROWS_AS(compute_metrics(G, data, {Metric::fid50k_full}, o), ModelFormatError);
}

TEST_CASE("train: snapshots at tick 0 and every --snap ticks, and G_ema equals G after the first minibatch with a ramp-up") {
    TempDir d;
    const auto r = run(tiny(shared().data, d / "run", 0.256) + std::vector<std::string>{"--snap", "2"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    // batch 8: tick 0 ends after the first minibatch (8 images), then every 64 images: 72, 136, 200, 256 (done).
    for (int nimg : {8, 136, 256}) CHECK(fs::exists(d / fmt::format("run/snapshot-{:09d}.safetensors", nimg)));
    for (int nimg : {72, 200}) CHECK_FALSE(fs::exists(d / fmt::format("run/snapshot-{:09d}.safetensors", nimg)));
    // The ramp-up's half-life is 0 images before the first minibatch: G_ema takes G's weights.
    Model m = load_model(d / "run/snapshot-000000008.safetensors");
    auto g = m.G->named_parameters(true);
    int differ = 0;
    for (const auto& p : m.G_ema->named_parameters(true)) differ += torch::equal(p.value(), g[p.key()]) ? 0 : 1;
    CHECK(differ == 0);
    CHECK(nlohmann::json::parse(read_file(d / "run/training_options.json"))["ada_kimg"] == 500);
}

TEST_CASE("train: fine-tuning from a model uses the reference's transfer defaults, kept when the fine-tune continues") {
    TempDir d;
    const std::string model = lktest::data_path("reference_training/train16.pkl");
    auto options = [&](const std::string& run_dir) { return nlohmann::json::parse(read_file(d / (run_dir + "/training_options.json"))); };
    REQUIRE(run(tiny(shared().data, d / "ft", 0.016) + std::vector<std::string>{"--resume", model}).code == 0);
    CHECK(options("ft")["ada_kimg"] == 100);
    CHECK(options("ft")["ema_rampup"].is_null());
    // No ramp-up: G_ema moves from the model's G_ema, it is not overwritten by G.
    Model m = load_model(latest_snapshot(d / "ft"));
    auto g = m.G->named_parameters(true);
    int differ = 0;
    for (const auto& p : m.G_ema->named_parameters(true)) differ += torch::equal(p.value(), g[p.key()]) ? 0 : 1;
    CHECK(differ > 0);
    const auto r = run(tiny(shared().data, d / "ft", 0.032) + std::vector<std::string>{"--resume", "auto"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK(options("ft")["ada_kimg"] == 100);
    CHECK(options("ft")["ema_rampup"].is_null());
    REQUIRE(run(tiny(shared().data, d / "given", 0.016) +
                std::vector<std::string>{"--resume", model, "--ada-kimg", "300", "--ema-rampup", "0.1"}).code == 0);
    CHECK(options("given")["ada_kimg"] == 300);
    CHECK(options("given")["ema_rampup"] == 0.1);
}

TEST_CASE("train: presets resolve to the reference's batch, per-GPU batch and minibatch-stddev group on 1, 2, 4 and 8 processes") {
    // The reference's train.py: batch_gpu = mb // ref_gpus for the fixed presets (ref_gpus 8, cifar 2),
    // mb // gpus for auto, and --batch // gpus when a batch is given.
    struct Row {
        TrainPreset cfg;
        int batch[4], batch_gpu[4], mbstd;
    };
    const Row rows[] = {
        {TrainPreset::automatic, {16, 32, 64, 64}, {16, 16, 16, 8}, 4},  // 256x256: mb = max(min(gpus * 16, 64), gpus)
        {TrainPreset::stylegan2, {32, 32, 32, 32}, {4, 4, 4, 4}, 4},
        {TrainPreset::paper256, {64, 64, 64, 64}, {8, 8, 8, 8}, 8},
        {TrainPreset::paper512, {64, 64, 64, 64}, {8, 8, 8, 8}, 8},
        {TrainPreset::paper1024, {32, 32, 32, 32}, {4, 4, 4, 4}, 4},
    };
    const int gpus[] = {1, 2, 4, 8};
    for (const Row& row : rows)
        for (int k = 0; k < 4; ++k) {
            TrainOptions o;
            o.cfg = row.cfg;
            INFO(option_name(row.cfg) << " on " << gpus[k] << " process(es)");
            const ResolvedTraining r = resolve_training(o, 256, gpus[k]);
            CHECK(r.batch == row.batch[k]);
            CHECK(r.batch_gpu == row.batch_gpu[k]);
            CHECK(r.mbstd_group == row.mbstd);
        }
    TrainOptions cifar;
    cifar.cfg = TrainPreset::cifar;
    CHECK(resolve_training(cifar, 32, 1).batch_gpu == 32);
    CHECK(resolve_training(cifar, 32, 2).batch_gpu == 32);
    CHECK_THROWS_AS(resolve_training(cifar, 32, 4), ArgumentError);  // 64 images cannot give 4 GPUs 32 each (the reference fails too)
    TrainOptions given;
    given.cfg = TrainPreset::paper1024;
    given.batch = 24;
    CHECK(resolve_training(given, 1024, 2).batch_gpu == 12);
    given.batch_gpu = 4;
    CHECK(resolve_training(given, 1024, 2).batch_gpu == 4);
    CHECK_FALSE(TrainOptions().allow_tf32);  // TF32 off unless asked for, as the reference
}

TEST_CASE("blend: a model fine-tuned by a few ticks of train --resume blends with its base into images between the two") {
    TempDir d;
    const std::string base = lktest::data_path("reference_training/train16.pkl");
    REQUIRE(run(tiny(shared().data, d / "ft", 0.064) + std::vector<std::string>{"--resume", base}).code == 0);
    const std::string detail = latest_snapshot(d / "ft");
    REQUIRE(run({"blend", base, detail, d / "blend.safetensors", "--from-res", "8", "--width", "1"}).code == 0);
    auto images = [](const std::string& file) {
        torch::NoGradGuard no_grad;
        const Model m = load_model(file);
        const auto G = m.generator();
        return G->forward(z_from_seeds({0, 1, 2, 3}, G->config.z_dim), {}, 1.0);
    };
    const torch::Tensor a = images(base), b = images(detail), mix = images(d / "blend.safetensors");
    const double apart = (a - b).abs().mean().item<double>();
    CHECK(apart > 1e-3);  // the fine-tune moved the model
    CHECK((mix - a).abs().mean().item<double>() > 0.05 * apart);
    CHECK((mix - b).abs().mean().item<double>() > 0.05 * apart);
    CHECK((mix - a).abs().mean().item<double>() < apart);
    CHECK((mix - b).abs().mean().item<double>() < apart);
}
