// torch.save files (.pt): rosinality stylegan2-pytorch checkpoints (g_ema, g, d, args, latent_avg) and
// bare generator state dicts. The layout of each network is read from its tensors.
#include <fmt/format.h>

#include <cmath>

#include "latentkit/error.h"
#include "latentkit/latent.h"
#include "latentkit/projector.h"
#include "model_loading.h"
#include "torch_convert.h"

namespace latentkit::detail {
namespace {
using json = nlohmann::json;
using pickle::Kind;
using pickle::Value;
using StateDict = std::map<std::string, TensorData>;

constexpr int kMeanWSamples = 10000;
constexpr uint32_t kMeanWSeed = 123;

const char* kind_name(Kind k) {
    switch (k) {
        case Kind::none: return "None";
        case Kind::boolean: return "a bool";
        case Kind::integer:
        case Kind::big_integer: return "an integer";
        case Kind::floating: return "a float";
        case Kind::string: return "a string";
        case Kind::bytes: return "bytes";
        case Kind::list: return "a list";
        case Kind::tuple: return "a tuple";
        case Kind::dict: return "a dict";
        case Kind::set: return "a set";
        case Kind::tensor: return "a tensor";
        case Kind::storage: return "a storage";
        default: return "an object";
    }
}

// What a torch.save file holds, for the error when it is not a model.
std::string describe(const Value* v) {
    if (v->kind == Kind::object) return "a " + v->s + " object";
    if (v->kind != Kind::dict) return kind_name(v->kind);
    std::vector<std::string> keys;
    size_t tensors = 0;
    for (size_t k = 0; k + 1 < v->items.size(); k += 2) {
        if (v->items[k + 1]->kind == Kind::tensor) ++tensors;
        if (keys.size() < 8) keys.push_back(v->items[k]->kind == Kind::string ? "'" + v->items[k]->s + "'" : "?");
    }
    const size_t n = v->items.size() / 2;
    if (n > 0 && tensors == n) return fmt::format("a state dict of {} tensors ({}{})", n, fmt::join(keys, ", "), n > keys.size() ? ", ..." : "");
    return fmt::format("a dict with keys {}{}", fmt::join(keys, ", "), n > keys.size() ? ", ..." : "");
}

bool is_state_dict(const Value* v) {
    if (!v || v->kind != Kind::dict || v->items.empty()) return false;
    for (size_t k = 0; k + 1 < v->items.size(); k += 2)
        if (v->items[k]->kind != Kind::string || v->items[k + 1]->kind != Kind::tensor) return false;
    return true;
}

StateDict state_dict(const Value* v, const std::string& where) {
    if (!is_state_dict(v)) throw ModelFormatError(where + ": not a state dict (a dict of named tensors)");
    StateDict out;
    for (size_t k = 0; k + 1 < v->items.size(); k += 2) out[v->items[k]->s] = pickle::to_tensor_data(*v->items[k + 1], where);
    return out;
}

// The checkpoint's argparse.Namespace, read as data: every field must be plain data.
json namespace_fields(const Value* args, const std::string& path) {
    if (!args || args->kind == Kind::none) return json::object();
    if (args->kind != Kind::object || args->s != "argparse.Namespace" || !args->state || args->state->kind != Kind::dict)
        throw ModelFormatError(path + ": 'args' is not an argparse.Namespace of plain values");
    json out = json::object();
    const auto& items = args->state->items;
    for (size_t k = 0; k + 1 < items.size(); k += 2) {
        if (items[k]->kind != Kind::string) throw ModelFormatError(path + ": an 'args' field name is not a string");
        try {
            out[items[k]->s] = pickle_json(items[k + 1], path);
        } catch (const ModelFormatError&) {
            throw ModelFormatError(fmt::format("{}: args.{} holds {}, not plain data", path, items[k]->s, kind_name(items[k + 1]->kind)));
        }
    }
    return out;
}

// An integer field of args that, when present, must agree with what the tensors say.
void check_arg(const json& args, const char* name, int64_t actual, const std::string& path) {
    if (!args.contains(name)) return;
    const json& v = args[name];
    if (!v.is_number_integer()) throw ModelFormatError(fmt::format("{}: args.{} is {}, not an integer", path, name, v.dump()));
    if (v.get<int64_t>() != actual)
        throw ModelFormatError(fmt::format("{}: args.{} is {}, but the networks' tensors say {}", path, name, v.get<int64_t>(), actual));
}

int64_t dim(const FileTensors& t, const std::string& name, size_t axis, size_t rank) {
    const auto it = t.all().find(name);
    if (it == t.all().end()) throw ModelFormatError(fmt::format("{}: tensor '{}' is missing", t.where(), name));
    const auto& shape = it->second.shape;
    if (shape.size() != rank)
        throw ShapeError(fmt::format("{}: tensor '{}' has shape [{}], not {} dimensions", t.where(), name, fmt::join(shape, ", "), rank));
    return shape[axis];
}

// Taps of a 1-D filter as long as a 2-D blur kernel (its row sums): they size latentkit's resampling
// filters, whose values are then the file's kernels themselves (any 2-D kernel works).
std::vector<float> filter_taps(const FileTensors& t, const std::string& name) {
    if (!t.has(name)) return {1, 3, 3, 1};
    const int64_t n = dim(t, name, 0, 2);
    if (dim(t, name, 1, 2) != n) throw ShapeError(fmt::format("{}: blur kernel '{}' is not square", t.where(), name));
    const torch::Tensor f = to_torch(t.all().at(name)).to(torch::kFloat32).sum(1).contiguous();
    return std::vector<float>(f.data_ptr<float>(), f.data_ptr<float>() + n);
}

void refuse_unused(const FileTensors& t, const char* what) {
    for (const std::string& name : t.unused())
        throw ModelFormatError(fmt::format("{}: tensor '{}' is not part of a rosinality StyleGAN2 {}", t.where(), name, what));
}

std::vector<int> channels_or_rule(std::vector<int> channels, int& base, int& max) {
    if (const auto rule = fit_channel_rule(channels)) {
        std::tie(base, max) = *rule;
        return {};
    }
    return channels;
}

int block_of(const std::string& r) { return static_cast<int>(std::lround(std::log2(std::stod(r)))) - 3; }

std::shared_ptr<Generator> rosinality_generator(const FileTensors& t, const json& args, const Value* latent_avg, Model& model) {
    GeneratorConfig c;
    int n_mlp = 0;
    while (t.has(fmt::format("style.{}.weight", n_mlp + 1))) ++n_mlp;
    if (n_mlp == 0) throw ModelFormatError(t.where() + ": no mapping layers (style.1.weight): not a rosinality generator");
    c.z_dim = static_cast<int>(dim(t, "style.1.weight", 1, 2));
    c.w_dim = static_cast<int>(dim(t, fmt::format("style.{}.weight", n_mlp), 0, 2));
    if (n_mlp > 1 && dim(t, "style.1.weight", 0, 2) != c.w_dim) c.mapping.layer_features = static_cast<int>(dim(t, "style.1.weight", 0, 2));
    c.mapping.num_layers = n_mlp;
    if (args.contains("lr_mlp")) {
        if (!args["lr_mlp"].is_number()) throw ModelFormatError(t.where() + ": args.lr_mlp is not a number");
        c.mapping.lr_multiplier = args["lr_mlp"].get<double>();
    }
    std::vector<int> channels{static_cast<int>(dim(t, "input.input", 1, 4))};
    int blocks = 0;
    for (; t.has(fmt::format("convs.{}.conv.weight", 2 * blocks)); ++blocks)
        channels.push_back(static_cast<int>(dim(t, fmt::format("convs.{}.conv.weight", 2 * blocks + 1), 1, 5)));
    c.img_resolution = 4 << blocks;
    c.img_channels = static_cast<int>(dim(t, "to_rgb1.conv.weight", 1, 5));
    auto& s = c.synthesis;
    s.kernel_size = static_cast<int>(dim(t, "conv1.conv.weight", 3, 5));
    s.conv_clamp.reset();
    s.resample_filter = filter_taps(t, "convs.0.conv.blur.kernel");
    s.channels = channels_or_rule(channels, s.channel_base, s.channel_max);
    check_arg(args, "size", c.img_resolution, t.where());
    check_arg(args, "latent", c.w_dim, t.where());
    check_arg(args, "n_mlp", n_mlp, t.where());
    auto G = std::make_shared<Generator>(c);

    // Synthesis layer k in latentkit's order (b4.conv1, b8.conv0, b8.conv1, ...) is rosinality's noise_k.
    auto noise = [&](const std::string& r, int conv) {
        const int k = r == "4" ? 0 : 2 * block_of(r) + 1 + conv;
        return t.first(fmt::format("noises.noise_{}", k), 4)[0];
    };
    auto conv = [&](const std::smatch& m) { return fmt::format("convs.{}", 2 * block_of(m[1].str()) + std::stoi(m[2].str())); };
    auto rgb = [&](const std::smatch& m) { return m[1].str() == "4" ? std::string("to_rgb1") : fmt::format("to_rgbs.{}", block_of(m[1].str())); };
    // rosinality's first layer is conv1 (not convs.*): its rules come ahead of the general ones.
    const std::vector<ConversionRule> rules = {
        {std::regex(R"(mapping\.w_avg)"), {}},
        {std::regex(R"(mapping\.fc(\d+)\.(weight|bias))"),
         [&](auto& m) { return t.get(fmt::format("style.{}.{}", std::stoi(m[1].str()) + 1, m[2].str())); }},
        {std::regex(R"(synthesis\.b4\.const)"), [&](auto&) { return t.first("input.input", 4); }},
        {std::regex(R"(synthesis\.b4\.conv1\.weight)"), [&](auto&) { return t.first("conv1.conv.weight", 5); }},
        {std::regex(R"(synthesis\.b4\.conv1\.bias)"), [&](auto&) { return t.get("conv1.activate.bias"); }},
        {std::regex(R"(synthesis\.b4\.conv1\.affine\.(weight|bias))"), [&](auto& m) { return t.get("conv1.conv.modulation." + m[1].str()); }},
        {std::regex(R"(synthesis\.b4\.conv1\.noise_strength)"), [&](auto&) { return t.scalar("conv1.noise.weight"); }},
        {std::regex(R"(synthesis\.b4\.conv1\.noise_const)"), [&](auto&) { return noise("4", 0); }},
        {std::regex(R"(synthesis\.b(\d+)\.conv(\d)\.weight)"), [&](auto& m) { return t.first(conv(m) + ".conv.weight", 5); }},
        {std::regex(R"(synthesis\.b(\d+)\.conv(\d)\.bias)"), [&](auto& m) { return t.get(conv(m) + ".activate.bias"); }},
        {std::regex(R"(synthesis\.b(\d+)\.conv(\d)\.affine\.(weight|bias))"),
         [&](auto& m) { return t.get(conv(m) + ".conv.modulation." + m[3].str()); }},
        {std::regex(R"(synthesis\.b(\d+)\.conv(\d)\.noise_strength)"), [&](auto& m) { return t.scalar(conv(m) + ".noise.weight"); }},
        {std::regex(R"(synthesis\.b(\d+)\.conv(\d)\.noise_const)"), [&](auto& m) { return noise(m[1].str(), std::stoi(m[2].str())); }},
        {std::regex(R"(synthesis\.b(\d+)\.torgb\.weight)"), [&](auto& m) { return t.first(rgb(m) + ".conv.weight", 5); }},
        {std::regex(R"(synthesis\.b(\d+)\.torgb\.bias)"), [&](auto& m) { return t.get(rgb(m) + ".bias").flatten(); }},
        {std::regex(R"(synthesis\.b(\d+)\.torgb\.affine\.(weight|bias))"),
         [&](auto& m) { return t.get(rgb(m) + ".conv.modulation." + m[2].str()); }},
        // rosinality's upsampling blur kernels carry the gain factor^2 = 4 that latentkit applies separately.
        {std::regex(R"(synthesis\.b(\d+)\.conv(0)\.resample_filter)"), [&](auto& m) { return t.get(conv(m) + ".conv.blur.kernel") / 4; }},
        {std::regex(R"(synthesis\.b(8|\d\d+)\.resample_filter)"),
         [&](auto& m) { return t.get(fmt::format("to_rgbs.{}.upsample.kernel", block_of(m[1].str()))) / 4; }},
        {std::regex(R"(.*\.resample_filter)"), {}},
    };
    populate(*G, rules, t);
    refuse_unused(t, "generator");

    torch::NoGradGuard no_grad;
    if (latent_avg) {
        const torch::Tensor avg = to_torch(pickle::to_tensor_data(*latent_avg, t.where())).to(torch::kFloat32).flatten();
        if (avg.numel() != c.w_dim) throw ShapeError(fmt::format("{}: latent_avg has {} values, the generator's w has {}", t.where(), avg.numel(), c.w_dim));
        G->mapping->w_avg.copy_(avg);
    } else {
        G->mapping->w_avg.copy_(w_statistics(*G, kMeanWSamples, kMeanWSeed).first.flatten());
        model.notes.push_back(fmt::format("{}: the file has no latent_avg, so w_avg (the truncation centre) is the mean of W over {} "
                                          "random z (numpy RandomState({}))", t.where(), kMeanWSamples, kMeanWSeed));
    }
    return G;
}

std::shared_ptr<Discriminator> rosinality_discriminator(const FileTensors& t) {
    DiscriminatorConfig c;
    int blocks = 0;
    while (t.has(fmt::format("convs.{}.conv1.0.weight", blocks + 1))) ++blocks;
    c.img_resolution = 4 << blocks;
    c.img_channels = static_cast<int>(dim(t, "convs.0.0.weight", 1, 4));
    std::vector<int> channels(static_cast<size_t>(blocks) + 1);
    channels[0] = static_cast<int>(dim(t, "final_conv.0.weight", 0, 4));
    channels[static_cast<size_t>(blocks)] = static_cast<int>(dim(t, "convs.0.0.weight", 0, 4));
    for (int k = 1; k <= blocks; ++k) channels[static_cast<size_t>(blocks - k)] = static_cast<int>(dim(t, fmt::format("convs.{}.conv2.1.weight", k), 0, 4));
    c.architecture = Architecture::resnet;
    c.conv_clamp.reset();
    c.mbstd_group_size = 4;  // rosinality's stddev_group
    c.mbstd_num_channels = static_cast<int>(dim(t, "final_conv.0.weight", 1, 4)) - channels[0];
    c.resample_filter = filter_taps(t, "convs.1.conv2.0.kernel");
    c.channels = channels_or_rule(channels, c.channel_base, c.channel_max);
    auto D = std::make_shared<Discriminator>(c);

    // Block k (1-based) of rosinality's convs is latentkit's block at resolution R / 2^(k-1).
    auto block = [&](const std::smatch& m) { return fmt::format("convs.{}", blocks + 3 - static_cast<int>(std::lround(std::log2(std::stod(m[1].str()))))); };
    const std::vector<ConversionRule> rules = {
        {std::regex(R"(b(\d+)\.fromrgb\.weight)"), [&](auto&) { return t.get("convs.0.0.weight"); }},
        {std::regex(R"(b(\d+)\.fromrgb\.bias)"), [&](auto&) { return t.get("convs.0.1.bias"); }},
        {std::regex(R"(b(\d+)\.conv0\.weight)"), [&](auto& m) { return t.get(block(m) + ".conv1.0.weight"); }},
        {std::regex(R"(b(\d+)\.conv0\.bias)"), [&](auto& m) { return t.get(block(m) + ".conv1.1.bias"); }},
        {std::regex(R"(b(\d+)\.conv1\.weight)"), [&](auto& m) { return t.get(block(m) + ".conv2.1.weight"); }},
        {std::regex(R"(b(\d+)\.conv1\.bias)"), [&](auto& m) { return t.get(block(m) + ".conv2.2.bias"); }},
        {std::regex(R"(b(\d+)\.skip\.weight)"), [&](auto& m) { return t.get(block(m) + ".skip.1.weight"); }},
        {std::regex(R"(b4\.conv\.(weight|bias))"), [&](auto& m) { return t.get(fmt::format("final_conv.{}.{}", m[1].str() == "weight" ? 0 : 1, m[1].str())); }},
        {std::regex(R"(b4\.fc\.(weight|bias))"), [&](auto& m) { return t.get("final_linear.0." + m[1].str()); }},
        {std::regex(R"(b4\.out\.(weight|bias))"), [&](auto& m) { return t.get("final_linear.1." + m[1].str()); }},
        {std::regex(R"(b(\d+)\.conv1\.resample_filter)"), [&](auto& m) { return t.get(block(m) + ".conv2.0.kernel"); }},
        {std::regex(R"(b(\d+)\.skip\.resample_filter)"), [&](auto& m) { return t.get(block(m) + ".skip.0.kernel"); }},
        {std::regex(R"(.*\.resample_filter)"), {}},
    };
    populate(*D, rules, t);
    refuse_unused(t, "discriminator");
    return D;
}

Model load_rosinality(const Value* root, const std::string& path) {
    Model model;
    model.path = path;
    model.format = "rosinality checkpoint";
    model.config_source = "tensor shapes (rosinality stylegan2-pytorch names), checked against the checkpoint's args";
    const json args = namespace_fields(root->get("args"), path);
    const Value* latent_avg = root->get("latent_avg");
    if (latent_avg && latent_avg->kind != Kind::tensor) throw ModelFormatError(path + ": latent_avg is not a tensor");
    for (const char* name : {"g_ema", "g"}) {
        const Value* v = root->get(name);
        if (!v) continue;
        const std::string where = fmt::format("{} ({})", path, name);
        FileTensors t(state_dict(v, where), where, "tensor");
        (std::string(name) == "g_ema" ? model.G_ema : model.G) = rosinality_generator(t, args, latent_avg, model);
    }
    if (const Value* d = root->get("d")) {
        const std::string where = path + " (d)";
        model.D = rosinality_discriminator(FileTensors(state_dict(d, where), where, "tensor"));
    }
    if (const Value* p = root->get("ada_aug_p"); p && (p->kind == Kind::floating || p->kind == Kind::integer))
        model.augment_p = p->kind == Kind::floating ? p->f : static_cast<double>(p->i);
    return model;
}

}  // namespace

Model load_torch_save(std::shared_ptr<const std::string> bytes, const std::string& path) {
    auto doc = pickle::parse_torch_save(std::move(bytes), path);
    const Value* root = doc->root;
    if (root->kind == Kind::dict && (root->get("g_ema") || root->get("g") || root->get("d"))) return load_rosinality(root, path);
    if (is_state_dict(root) && root->get("mapping.fc0.weight")) {
        TensorFile file;
        for (auto& [name, t] : state_dict(root, path)) file.tensors.emplace_back(name, std::move(t));
        return load_bare_state_dict(file, path, "torch.save state dict");
    }
    throw ModelFormatError(fmt::format("{}: a torch.save file holding {}: not a model latentkit reads (a rosinality checkpoint "
                                       "with g_ema, or a StyleGAN2 generator state dict)", path, describe(root)));
}

}  // namespace latentkit::detail
