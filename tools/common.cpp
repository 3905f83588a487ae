#include "common.h"

#ifdef LATENTKIT_CUDA_MEMORY_STATS
#include <c10/cuda/CUDACachingAllocator.h>
#endif

#include <fmt/format.h>
#include <torch/torch.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <filesystem>

#include "latentkit/device.h"
#include "latentkit/error.h"
#include "latentkit/io/bundled_model.h"
#include "latentkit/io/download.h"
#include "latentkit/npz.h"
#include "latentkit/log.h"
#include "latentkit/latent.h"
#include "latentkit/networks.h"
#include "latentkit/projector.h"
#include "progress_bar.h"

namespace latentkit::tools {
namespace fs = std::filesystem;

std::vector<uint64_t> parse_ranges(const std::string& text, const std::string& option, uint64_t max_value) {
    std::vector<uint64_t> values;
    auto number = [&](const std::string& s) -> uint64_t {
        if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos || s.size() > 19)
            throw ArgumentError(fmt::format("{}: '{}' is not a whole number from 0 to {}", option, s, max_value));
        const uint64_t v = std::stoull(s);
        if (v > max_value) throw ArgumentError(fmt::format("{}: {} is larger than {}", option, s, max_value));
        return v;
    };
    size_t start = 0;
    while (start <= text.size()) {
        size_t end = text.find(',', start);
        if (end == std::string::npos) end = text.size();
        std::string part = text.substr(start, end - start);
        part.erase(0, part.find_first_not_of(" \t"));
        part.erase(part.find_last_not_of(" \t") + 1);
        if (!part.empty()) {
            const size_t dash = part.find('-', 1);
            if (dash == std::string::npos) {
                values.push_back(number(part));
            } else {
                const uint64_t a = number(part.substr(0, dash)), b = number(part.substr(dash + 1));
                if (b < a) throw ArgumentError(fmt::format("{}: range '{}' runs backwards", option, part));
                if (b - a >= 1000000) throw ArgumentError(fmt::format("{}: range '{}' has more than a million values", option, part));
                for (uint64_t s = a; s <= b; ++s) values.push_back(s);
            }
        }
        start = end + 1;
    }
    if (values.empty()) throw ArgumentError(fmt::format("{}: '{}' names no values", option, text));
    return values;
}

std::vector<uint32_t> parse_seeds(const std::string& text, const std::string& option) {
    std::vector<uint32_t> seeds;
    for (uint64_t v : parse_ranges(text, option, 0xffffffffull)) seeds.push_back(static_cast<uint32_t>(v));
    return seeds;
}

std::vector<int> parse_layers(const std::string& text, int num_ws, const std::string& option) {
    std::vector<int> layers;
    for (uint64_t v : parse_ranges(text, option, static_cast<uint64_t>(num_ws - 1))) layers.push_back(static_cast<int>(v));
    return layers;
}

GridSize parse_grid(const std::string& text, const std::string& option) {
    GridSize g;
    char extra = 0;
    if (text.empty()) return g;
    if (std::sscanf(text.c_str(), "%dx%d%c", &g.cols, &g.rows, &extra) != 2 || g.cols < 1 || g.rows < 1 || g.cols * g.rows > 256)
        throw ArgumentError(option + " " + text + ": expected COLSxROWS, e.g. 2x2 (at most 256 cells)");
    return g;
}

namespace {
// The flag of every option field the library names in its errors. A field missing here is shown by its
// library name ("Struct.member"), which still says what it is.
constexpr std::pair<const char*, const char*> kFieldFlags[] = {
    {"DatasetOptions.channels", "--gray"},
    {"DatasetOptions.dest", "--dest"},
    {"curate.out", "--out"},
    {"DatasetOptions.every_nth", "--every"},
    {"DatasetOptions.keep_unlabeled", "--keep-unlabeled"},
    {"DatasetOptions.labels_from_folders", "--labels-from-folders"},
    {"DatasetOptions.resolution", "--resolution"},
    {"DatasetOptions.transform", "--transform"},
    {"directions.any_model", "--any-model"},
    {"ExportOptions.g_ema_only", "--g-ema-only"},
    {"MetricOptions.detector", "--inception"},
    {"Projector.lpips", "--vgg"},
    {"RenderSpec.class_index", "--class"},
    {"TrainOptions.ada_kimg", "--ada-kimg"},
    {"TrainOptions.aug", "--aug"},
    {"TrainOptions.batch", "--batch"},
    {"TrainOptions.batch_gpu", "--batch-gpu"},
    {"TrainOptions.cond", "--cond"},
    {"TrainOptions.device", "--device"},
    {"TrainOptions.dist_backend", "--dist-backend"},
    {"TrainOptions.kimg", "--kimg"},
    {"TrainOptions.mbstd_group", "--mbstd-group"},
    {"TrainOptions.outdir", "--outdir"},
    {"TrainOptions.p", "--p"},
    {"TrainOptions.resume", "--resume"},
    {"TrainOptions.tick_kimg", "--tick"},
    {"align.face_index", "--face-index"},
    {"device", "--device"},
    {"align.mode", "--align"},
    {"model.path", "--model"},
};
}  // namespace

std::string flag_of(const std::string& field) {
    for (const auto& [name, flag] : kFieldFlags)
        if (field == name) return flag;
    return field;
}

std::string describe(const Message& message) { return message.render(flag_of); }

void check_finite_options(const CLI::App& app) {
    for (const CLI::Option* opt : app.get_options()) {
        if (opt->count() == 0 || opt->get_type_name().find("FLOAT") == std::string::npos) continue;
        for (const std::string& given : opt->results()) {
            size_t start = 0;
            while (start <= given.size()) {
                const size_t end = std::min(given.find(',', start), given.size());
                const std::string item = given.substr(start, end - start);
                char* stop = nullptr;
                const double v = std::strtod(item.c_str(), &stop);
                if (!item.empty() && stop && *stop == '\0' && !std::isfinite(v))
                    throw ArgumentError(fmt::format("{} {}: not a finite number", opt->get_name(), item));
                start = end + 1;
            }
        }
    }
    for (const CLI::App* sub : app.get_subcommands()) check_finite_options(*sub);
}

namespace {
CLI::Validator number_bound(double min, bool inclusive) {
    return CLI::Validator(
        [min, inclusive](std::string& s) -> std::string {
            char* stop = nullptr;
            const double v = std::strtod(s.c_str(), &stop);
            if (s.empty() || *stop != '\0') return "'" + s + "' is not a number";
            if (inclusive ? v >= min : v > min) return {};
            return fmt::format("must be {} {:g}, not {}", inclusive ? "at least" : "more than", min, s);
        },
        fmt::format("{}{:g}", inclusive ? ">=" : ">", min));
}
}  // namespace

CLI::Validator at_least(double min) { return number_bound(min, true); }

CLI::Validator above(double min) { return number_bound(min, false); }

CLI::Option* add_model_option(CLI::App* cmd, std::string& model, const std::string& help) {
    return cmd->add_option("--model,-m", model, help);
}

CLI::Option* add_device_option(CLI::App* cmd, std::string& device, const std::string& help) {
    const CLI::Validator form(
        [](std::string& s) -> std::string {
            if (s == "cpu" || s == "cuda" || s == "auto") return {};
            if (s.rfind("cuda:", 0) == 0 && s.size() > 5 && s.size() < 9 && s.find_first_not_of("0123456789", 5) == std::string::npos) return {};
            return "'" + s + "' is not cpu, cuda, cuda:N or auto";
        },
        "DEVICE");
    return cmd->add_option("--device", device, help)->check(form);
}

CLI::Option* add_seeds_option(CLI::App* cmd, std::string& seeds, const std::string& help) {
    const CLI::Validator form(
        [](std::string& s) -> std::string {
            try {
                parse_seeds(s, "");
            } catch (const ArgumentError& e) {
                const std::string what = e.what();
                return what.substr(what.find_first_not_of(": "));
            }
            return {};
        },
        "SEEDS");
    return cmd->add_option("--seeds,-s", seeds, help)->check(form);
}

CLI::Option* add_outdir_option(CLI::App* cmd, std::string& dir, const std::string& help) {
    return cmd->add_option("--outdir,-o", dir, help)->required();
}

namespace {
const CLI::App* g_invocation = nullptr;

// Options of StyleGAN2's noise inputs, which a StyleGAN3 network does not have: said once, not refused.
void note_stylegan3_options(const Model& m) {
    if (!m.G_ema && !m.G) return;
    if (m.generator()->config.family != GeneratorFamily::stylegan3) return;
    for (const char* option : {"--noise-mode", "--noise-loop", "--fixed-noise"})
        if (option_given(option)) log_warn(fmt::format("{}: StyleGAN3 networks have no noise inputs, so it changes nothing here", option));
}
}  // namespace

void set_invocation(const CLI::App& app) {
    const CLI::App* a = &app;
    while (!a->get_subcommands().empty()) a = a->get_subcommands().front();
    g_invocation = a;
}

bool option_given(const std::string& option) {
    const CLI::Option* o = g_invocation ? g_invocation->get_option_no_throw(option) : nullptr;
    return o && o->count() > 0;
}

void add_render_options(CLI::App* cmd, RenderSpec& spec, unsigned which) {
    if (which & kTruncCutoff) cmd->add_option("--trunc-cutoff", spec.cutoff, "Truncate only the first N ws")->check(at_least(0));
    if (which & kClass) cmd->add_option("--class", spec.class_index, "Class index for conditional models");
    if (which & kNoiseMode)
        cmd->add_option_function<std::string>("--noise-mode", [&spec](const std::string& s) { spec.noise_mode = *option_from_name<NoiseMode>(s); },
                                              "Noise: const, random or none")
            ->check(CLI::IsMember({"const", "random", "none"}))
            ->default_str(option_name(spec.noise_mode));
    if (which & kNoiseSeed)
        cmd->add_option("--noise-seed", spec.noise_seed, "With --noise-mode random: one noise from this seed for every image (default: new noise each time)");
    if (which & kTransform) {
        cmd->add_option_function<std::vector<double>>(
               "--translate", [&spec](const std::vector<double>& v) { spec.translate_x = v.at(0), spec.translate_y = v.at(1); },
               "StyleGAN3: translate the output by X,Y (as gen_images.py)")
            ->delimiter(',')
            ->expected(2);
        cmd->add_option("--rotate", spec.rotate, "StyleGAN3: rotate the output by DEG degrees (as gen_images.py)");
    }
}

void check_render_options(const RenderSpec& spec, const GeneratorConfig& config, bool mapped) {
    if (config.family != GeneratorFamily::stylegan3 && (spec.translate_x != 0 || spec.translate_y != 0 || spec.rotate != 0))
        throw ArgumentError("--translate and --rotate move a StyleGAN3 network's input; this is a StyleGAN2 model, which has none");
    if (mapped) class_labels(config.c_dim, spec.class_index, 1);
}

io::DownloadProgress download_bar() {
    auto bar = std::make_shared<std::unique_ptr<ProgressBar>>();
    return [bar](uint64_t done, uint64_t total) {
        if (total > 0 && !*bar) *bar = std::make_unique<ProgressBar>("download", static_cast<int64_t>(total / 1024), "KiB");
        if (*bar) (*bar)->update(static_cast<int64_t>(done / 1024));
        if (*bar && total > 0 && done >= total) (*bar)->finish();
        return true;
    };
}

namespace {
// The first of $env, then the candidates, that holds `file`; IoError naming all when none does.
std::string data_dir(const char* env, std::initializer_list<const char*> candidates, const char* file, const std::string& what) {
    if (const char* e = std::getenv(env); e && *e) return e;
    std::string looked;
    for (const char* c : candidates) {
        if (std::filesystem::is_regular_file(std::filesystem::path(c) / file)) return c;
        looked += (looked.empty() ? "" : " and ") + std::string(c);
    }
    throw IoError(fmt::format("{} are missing (looked in {}; set {})", what, looked, env));
}
}  // namespace

std::string web_dir() {
    return data_dir("LATENTKIT_WEB_DIR", {LATENTKIT_WEB_SOURCE_DIR, LATENTKIT_WEB_INSTALL_DIR}, "index.html", "the page's files");
}

std::string ort_web_dir() {
    return data_dir("LATENTKIT_ORT_WEB_DIR", {LATENTKIT_ORT_WEB_SOURCE_DIR, LATENTKIT_ORT_WEB_INSTALL_DIR}, "ort.min.js",
                    "ONNX Runtime Web's files (npm onnxruntime-web: scripts/setup.sh installs it)");
}

std::string model_file_arg(const std::string& location) {
    return io::is_url(location) ? io::cached_download(location, download_bar()) : location;
}

Model load_model_arg(const std::string& path) {
    if (path.empty()) {
        const io::DefaultModel d = io::default_model();
        Model m = load_model(d.path);
        const auto description = m.info.find("description");
        log_info(fmt::format("no --model given: using the {} model {}{}", d.origin, d.path,
                             description == m.info.end() ? "" : " (" + description->second + ")"));
        return m;
    }
    Model m = io::load_model_location(path, download_bar());
    log_info(fmt::format("loaded {} ({})", path, m.format));
    for (const std::string& note : m.notes) log_info(note);
    note_stylegan3_options(m);
    return m;
}

void ensure_output_dir(const std::string& dir) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) throw IoError(dir + ": cannot create output folder: " + ec.message());
    if (!fs::is_directory(dir)) throw IoError(dir + ": exists and is not a folder");
    if (::access(dir.c_str(), W_OK) != 0) throw IoError(dir + ": output folder is not writable");
}

LossWeights parse_losses(const std::vector<std::string>& items) {
    LossWeights w;
    for (const std::string& item : items) {
        const size_t eq = item.find('=');
        const std::string name = item.substr(0, eq);
        double weight = 1.0;
        if (eq != std::string::npos) {
            try {
                size_t used = 0;
                weight = std::stod(item.substr(eq + 1), &used);
                if (used != item.size() - eq - 1) throw std::invalid_argument("trailing text");
            } catch (const std::exception&) {
                throw ArgumentError("--loss " + item + ": the weight is not a number");
            }
            if (!(weight >= 0)) throw ArgumentError("--loss " + item + ": the weight must not be negative");
        }
        if (name == "lpips") w.lpips = weight;
        else if (name == "discriminator" || name == "d") w.discriminator = weight;
        else if (name == "pixel" || name == "mse") w.pixel = weight;
        else throw ArgumentError("--loss " + item + ": unknown loss (use lpips, discriminator or pixel, optionally =WEIGHT)");
    }
    return w;
}

std::string describe_losses(const LossWeights& w) {
    std::vector<std::string> parts;
    if (w.lpips > 0) parts.push_back(fmt::format("lpips={:g}", w.lpips));
    if (w.discriminator > 0) parts.push_back(fmt::format("discriminator={:g}", w.discriminator));
    if (w.pixel > 0) parts.push_back(fmt::format("pixel={:g}", w.pixel));
    return fmt::format("{}", fmt::join(parts, ","));
}

double peak_memory_mib(const c10::Device& device) {
#ifdef LATENTKIT_CUDA_MEMORY_STATS
    if (device.is_cuda())
        return c10::cuda::CUDACachingAllocator::getDeviceStats(device.index() < 0 ? 0 : device.index()).allocated_bytes[0].peak / 1048576.0;
#endif
    if (device.is_cuda()) return -1;
    rusage usage{};
    ::getrusage(RUSAGE_SELF, &usage);
    return usage.ru_maxrss / 1024.0;
}

void reset_peak_memory(const c10::Device& device) {
#ifdef LATENTKIT_CUDA_MEMORY_STATS
    if (device.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(device.index() < 0 ? 0 : device.index());
#endif
    (void)device;
}

}  // namespace latentkit::tools
