// The static page of `latentkit export --format web`.
#include "export_web.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <filesystem>

#include "common.h"
#include "latentkit/atomic_file.h"
#include "latentkit/directions.h"
#include "latentkit/editing.h"
#include "latentkit/error.h"
#include "latentkit/model_export.h"
#include "latentkit/networks.h"

namespace latentkit::tools {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {
// The page's settings: how to run the model, and its sizes.
json page_config(const Generator& G, const std::string& title, bool with_directions) {
    const auto& c = G.config;
    json j = {{"mode", "onnx"},          {"title", title},       {"mapping", "mapping.onnx"}, {"synthesis", "synthesis.onnx"},
              {"z_dim", c.z_dim},        {"c_dim", c.c_dim},     {"w_dim", c.w_dim},           {"num_ws", c.num_ws()},
              {"resolution", c.img_resolution}, {"img_channels", c.img_channels}, {"family", c.family_name()}};
    if (with_directions) j["directions"] = "directions.json";
    if (c.family == GeneratorFamily::stylegan3) {
        const torch::Tensor t = G.named_buffers(true)["synthesis.input.transform"].detach().cpu().to(torch::kFloat32).contiguous();
        j["transform"] = std::vector<float>(t.data_ptr<float>(), t.data_ptr<float>() + 9);
    }
    return j;
}

// Every direction of the files, checked against the model, as the page reads them.
json directions_json(const std::vector<std::string>& files, Generator& G) {
    json list = json::array();
    for (const auto& file : files) {
        const DirectionSet set = load_direction_ref(parse_direction_ref(file), G.config.w_dim, model_fingerprint(G));
        for (const auto& d : set.directions)
            list.push_back({{"name", d.name}, {"scale", d.scale}, {"vector", d.vector}, {"min", d.strength_min}, {"max", d.strength_max},
                            {"layers", d.layers ? json{d.layers->first, d.layers->second} : json()}});
    }
    return list;
}

void write_json(const fs::path& path, const json& j) {
    const std::string text = j.dump();
    write_file_atomic(path.string(), text.data(), text.size());
}

void fill(const fs::path& out, const Model& model, const std::vector<std::string>& directions, const std::string& title) {
    Generator& G = *model.generator();
    ExportOptions eo;
    eo.format = ExportFormat::onnx;
    eo.onnx_part = OnnxPart::mapping;
    export_model((out / "mapping.onnx").string(), model, eo);
    eo.onnx_part = OnnxPart::synthesis;
    export_model((out / "synthesis.onnx").string(), model, eo);
    const fs::path page = web_dir(), ort = ort_web_dir();
    for (const char* f : {"index.html", "latentkit.js"}) fs::copy_file(page / f, out / f);
    for (const char* f : {"ort.min.js", "ort-wasm-simd-threaded.jsep.mjs", "ort-wasm-simd-threaded.jsep.wasm"}) {
        if (!fs::is_regular_file(ort / f)) throw IoError((ort / f).string() + ": ONNX Runtime Web's file is missing");
        fs::copy_file(ort / f, out / f);
    }
    if (!directions.empty()) write_json(out / "directions.json", directions_json(directions, G));
    write_json(out / "latentkit-page.json", page_config(G, title, !directions.empty()));
}
}  // namespace

void export_web(const Model& model, const std::string& dir, const std::vector<std::string>& directions, const std::string& title) {
    const fs::path target = fs::absolute(dir).lexically_normal();
    std::error_code ec;
    if (fs::exists(target) && !(fs::is_directory(target) && fs::is_empty(target, ec)))
        throw IoError(target.string() + ": already exists and is not an empty folder; choose another");
    fs::create_directories(target.parent_path());
    std::string pattern = (target.parent_path() / (target.filename().string() + ".tmp-XXXXXX")).string();
    if (!::mkdtemp(pattern.data())) throw IoError(target.parent_path().string() + ": cannot create a folder there");
    const fs::path tmp = pattern;
    fs::permissions(tmp, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec | fs::perms::others_read | fs::perms::others_exec);
    try {
        fill(tmp, model, directions, title);
        fs::rename(tmp, target);  // replaces an empty folder
    } catch (...) {
        fs::remove_all(tmp, ec);
        throw;
    }
}

}  // namespace latentkit::tools
