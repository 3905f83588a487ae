// ONNX export of a generator: mapping, StyleGAN2 or StyleGAN3 synthesis, or both, as a graph of standard
// operators (opset 17) with the weights as initializers, checked by onnx::checker before it is written.
#include <fmt/format.h>

#include <onnx/checker.h>

#include <cmath>
#include <map>

#include "latentkit/atomic_file.h"
#include "latentkit/error.h"
#include "latentkit/log.h"
#include "latentkit/networks.h"
#include "model_loading.h"
#include "onnx_graph.h"
#include "ops.h"

namespace latentkit::detail {

namespace {
using namespace onnx_export;
constexpr double kPi = 3.14159265358979323846;
constexpr int64_t kOpset = 17;
constexpr auto kFloat = onnx::TensorProto_DataType_FLOAT;
constexpr auto kInt64 = onnx::TensorProto_DataType_INT64;

// The generator's parameters and buffers by their reference names, and the graph being built.
class GeneratorGraph {
public:
    GeneratorGraph(GraphBuilder& g, const Generator& G) : g_(g), G_(G), config_(G.config) {
        for (const auto& p : G.named_parameters(true)) tensors_[p.key()] = p.value().detach().to(torch::kCPU, torch::kFloat32);
        for (const auto& b : G.named_buffers(true)) tensors_[b.key()] = b.value().detach().to(torch::kCPU, torch::kFloat32);
    }

    std::string mapping(const std::string& z, const std::string& c);
    std::string truncation(const std::string& ws);
    Map stylegan2(const std::string& ws, bool noise_inputs);
    Map stylegan3(const std::string& ws, const std::string& transform);

private:
    const torch::Tensor& t(const std::string& name) const {
        auto it = tensors_.find(name);
        if (it == tensors_.end()) throw ModelFormatError("ONNX export: the generator has no tensor '" + name + "'");
        return it->second;
    }
    torch::Tensor optional_t(const std::string& name) const {
        auto it = tensors_.find(name);
        return it == tensors_.end() ? torch::Tensor() : it->second;
    }
    std::string fc(const std::string& x, const std::string& name, Activation act, double lr_multiplier) {
        return fully_connected(g_, x, t(name + ".weight"), optional_t(name + ".bias"), name, act, lr_multiplier);
    }
    std::string ws_at(const std::string& ws, int64_t index) {
        return g_.op("Gather", {ws, g_.initializer("ws_index", torch::scalar_tensor(index, torch::kLong))}, {{"axis", int64_t{1}}});
    }
    Map stylegan2_layer(const Map& x, const std::string& name, const std::string& w, int64_t up, int res, bool noise_inputs, double gain);
    Map stylegan2_torgb(const Map& x, const std::string& name, const std::string& w);
    std::string noise(const std::string& name, int res, bool noise_inputs);
    Map stylegan3_input(const std::string& w, const std::string& transform);
    Map stylegan3_layer(const Map& x, const Stylegan3LayerShape& shape, const std::string& w);

    GraphBuilder& g_;
    const Generator& G_;
    const GeneratorConfig& config_;
    std::map<std::string, torch::Tensor> tensors_;
    int noise_index_ = 0;
};

// z (and c) -> w broadcast to [N, num_ws, w_dim], as MappingNetwork::forward before truncation.
std::string GeneratorGraph::mapping(const std::string& z, const std::string& c) {
    const MappingConfig& m = config_.mapping;
    std::string x = normalize_2nd_moment(g_, z);
    if (config_.c_dim > 0) {
        const std::string y = normalize_2nd_moment(g_, fc(c, "mapping.embed", Activation::linear, 1.0));
        x = g_.op("Concat", {x, y}, {{"axis", int64_t{1}}});
    }
    for (int k = 0; k < m.num_layers; ++k) x = fc(x, fmt::format("mapping.fc{}", k), m.activation, m.lr_multiplier);
    const std::string unsqueezed = g_.op("Unsqueeze", {x, g_.ints({1})});
    return g_.op("Expand", {unsqueezed, g_.ints({1, G_.synthesis->num_ws, 1})}, {}, "broadcast");
}

// w_avg + (ws - w_avg) * psi on the first `truncation_cutoff` ws (inputs: psi = 1 and truncation_cutoff
// = num_ws leave ws unchanged).
std::string GeneratorGraph::truncation(const std::string& ws) {
    const int num_ws = G_.synthesis->num_ws;
    g_.input("psi", kFloat, {1});
    g_.input("truncation_cutoff", kInt64, {1});
    const std::string index = g_.initializer("ws_indices", torch::arange(num_ws, torch::kLong));
    const std::string mask = g_.op("Cast", {g_.op("Less", {index, "truncation_cutoff"})}, {{"to", int64_t{kFloat}}});
    const std::string factor = g_.op("Add", {g_.op("Mul", {mask, g_.op("Sub", {"psi", g_.scalar(1.0f)})}), g_.scalar(1.0f)});
    const std::string column = g_.op("Unsqueeze", {factor, g_.ints({1})});
    const std::string w_avg = g_.initializer("mapping.w_avg", t("mapping.w_avg"));
    const std::string moved = g_.op("Mul", {g_.op("Sub", {ws, w_avg}), column});
    return g_.op("Add", {w_avg, moved}, {}, "truncation");
}

std::string GeneratorGraph::noise(const std::string& name, int res, bool noise_inputs) {
    const torch::Tensor strength = t(name + ".noise_strength");
    if (!noise_inputs) return g_.initializer(name + ".noise", t(name + ".noise_const") * strength);
    // A unit-variance noise input per layer ([1, 1, R, R] broadcasts over the batch).
    const std::string input = fmt::format("noise{}", noise_index_++);
    g_.input(input, kFloat, {-1, 1, res, res});
    return g_.op("Mul", {input, g_.initializer(name + ".noise_strength", strength)}, {}, name);
}

// SynthesisLayer: modulated convolution (x * styles, convolution, * demodulation coefficients, the
// reference's non-fused formulation), noise, bias, activation, gain, clamp.
Map GeneratorGraph::stylegan2_layer(const Map& x, const std::string& name, const std::string& w, int64_t up, int res, bool noise_inputs,
                                    double gain) {
    const SynthesisConfig& s = config_.synthesis;
    const std::string styles = fc(w, name + ".affine", Activation::linear, 1.0);
    const torch::Tensor& weight = t(name + ".weight");
    Map y = conv2d_resample(g_, scale_channels(g_, x, styles), weight, t(name + ".resample_filter"), up, weight.size(2) / 2, up == 1,
                            name);
    const std::string square_sums = g_.initializer(name + ".weight_square_sum", weight.square().sum({2, 3}).t());
    const std::string sum = g_.op("MatMul", {g_.op("Mul", {styles, styles}), square_sums}, {}, name);
    const std::string dcoefs = g_.op("Reciprocal", {g_.op("Sqrt", {g_.op("Add", {sum, g_.scalar(1e-8f)})})}, {}, name);
    y = scale_channels(g_, y, dcoefs);
    if (s.use_noise) y.value = g_.op("Add", {y.value, noise(name, res, noise_inputs)}, {}, name);
    std::optional<double> clamp;
    if (s.conv_clamp) clamp = *s.conv_clamp * gain;
    const double act_gain = ops::activation_defaults(s.activation).gain;
    y.value = bias_act(g_, y.value, 4, t(name + ".bias"), name, s.activation, act_gain * gain, clamp);
    return y;
}

// ToRGBLayer: modulated 1x1 convolution without demodulation, bias, clamp.
Map GeneratorGraph::stylegan2_torgb(const Map& x, const std::string& name, const std::string& w) {
    const torch::Tensor& weight = t(name + ".weight");
    const double weight_gain = 1.0 / std::sqrt(static_cast<double>(weight.size(1)));
    const std::string styles = g_.op("Mul", {fc(w, name + ".affine", Activation::linear, 1.0), g_.scalar(static_cast<float>(weight_gain))});
    Map y = conv2d(g_, scale_channels(g_, x, styles), weight, 0, 0, name);
    y.value = bias_act(g_, y.value, 4, t(name + ".bias"), name, Activation::linear, 1.0, config_.synthesis.conv_clamp);
    return y;
}

Map GeneratorGraph::stylegan2(const std::string& ws, bool noise_inputs) {
    const Architecture arch = config_.synthesis.architecture;
    Map x, img;
    int64_t w_index = 0;
    for (int res = 4; res <= config_.img_resolution; res *= 2) {
        const std::string b = fmt::format("synthesis.b{}", res);
        int64_t wi = w_index;
        if (res == 4) {
            const torch::Tensor& constant = t(b + ".const");
            x = {g_.initializer(b + ".const", constant.unsqueeze(0)), constant.size(0), res, res};
            x = stylegan2_layer(x, b + ".conv1", ws_at(ws, wi++), 1, res, noise_inputs, 1.0);
        } else if (arch == Architecture::resnet) {
            const torch::Tensor& skip_weight = t(b + ".skip.weight");
            const double skip_gain = 1.0 / std::sqrt(static_cast<double>(skip_weight.size(1)));
            Map y = conv2d_resample(g_, x, skip_weight * skip_gain, t(b + ".skip.resample_filter"), 2, 0, false, b + ".skip");
            y.value = bias_act(g_, y.value, 4, {}, b + ".skip", Activation::linear, std::sqrt(0.5), std::nullopt);
            x = stylegan2_layer(x, b + ".conv0", ws_at(ws, wi++), 2, res, noise_inputs, 1.0);
            x = stylegan2_layer(x, b + ".conv1", ws_at(ws, wi++), 1, res, noise_inputs, std::sqrt(0.5));
            x.value = g_.op("Add", {y.value, x.value}, {}, b);
        } else {
            x = stylegan2_layer(x, b + ".conv0", ws_at(ws, wi++), 2, res, noise_inputs, 1.0);
            x = stylegan2_layer(x, b + ".conv1", ws_at(ws, wi++), 1, res, noise_inputs, 1.0);
        }
        if (!img.value.empty()) {
            const torch::Tensor& f = t(b + ".resample_filter");
            const int64_t fw = f.size(-1), fh = f.size(0);
            img = upfirdn2d(g_, img, f, 2, 1, {(fw + 1) / 2, (fw - 2) / 2, (fh + 1) / 2, (fh - 2) / 2}, 4.0, b + ".img");
        }
        if (res == config_.img_resolution || arch == Architecture::skip) {
            const Map y = stylegan2_torgb(x, b + ".torgb", ws_at(ws, wi));
            img = img.value.empty() ? y : Map{g_.op("Add", {img.value, y.value}, {}, b), y.c, y.h, y.w};
        }
        w_index = wi;
    }
    return img;
}

// SynthesisInput: Fourier features of a w-dependent rotation and translation, times the input transform.
Map GeneratorGraph::stylegan3_input(const std::string& w, const std::string& transform) {
    const Stylegan3InputShape shape = dynamic_cast<const Stylegan3Synthesis&>(*G_.synthesis).input_shape();
    const std::string n = "synthesis.input";
    const std::string t4 = fc(w, n + ".affine", Activation::linear, 1.0);  // (r_c, r_s, t_x, t_y)
    const std::string rot = g_.op("Slice", {t4, g_.ints({0}), g_.ints({2}), g_.ints({1})});
    const std::string norm = g_.op("Sqrt", {g_.op("ReduceSum", {g_.op("Mul", {rot, rot}), g_.ints({1})}, {{"keepdims", int64_t{1}}})});
    const std::string tn = g_.op("Div", {t4, norm});
    auto column = [&](int64_t k) { return g_.op("Slice", {tn, g_.ints({k}), g_.ints({k + 1}), g_.ints({1})}); };
    const std::string c = column(0), s = column(1), tx = column(2), ty = column(3);
    // The top two rows of rotation(c, s) @ translation(-tx, -ty): [[c, -s, s ty - c tx], [s, c, -(s tx + c ty)]].
    const std::string neg_s = g_.op("Neg", {s});
    const std::string a = g_.op("Sub", {g_.op("Mul", {s, ty}), g_.op("Mul", {c, tx})});
    const std::string b = g_.op("Neg", {g_.op("Add", {g_.op("Mul", {s, tx}), g_.op("Mul", {c, ty})})});
    const std::string rows = g_.op("Reshape", {g_.op("Concat", {c, neg_s, a, s, c, b}, {{"axis", int64_t{1}}}), g_.ints({-1, 2, 3})});
    const std::string m = g_.op("MatMul", {rows, transform});  // [N, 2, 3]
    const std::string freqs = g_.initializer(n + ".freqs", t(n + ".freqs"));
    const std::string f = g_.op("MatMul", {freqs, g_.op("Slice", {m, g_.ints({0}), g_.ints({2}), g_.ints({2})})});  // [N, C, 2]
    const std::string shift = g_.op("MatMul", {freqs, g_.op("Slice", {m, g_.ints({2}), g_.ints({3}), g_.ints({2})})});
    const std::string phases = g_.op("Add", {g_.initializer(n + ".phases", t(n + ".phases")), g_.op("Squeeze", {shift, g_.ints({2})})});
    const std::string radius = g_.op("Sqrt", {g_.op("ReduceSum", {g_.op("Mul", {f, f}), g_.ints({2})}, {{"keepdims", int64_t{0}}})});
    const float bw = static_cast<float>(shape.bandwidth), span = static_cast<float>(shape.sampling_rate / 2 - shape.bandwidth);
    const std::string fade = g_.op("Div", {g_.op("Sub", {radius, g_.scalar(bw)}), g_.scalar(span)});
    const std::string amplitudes = g_.op("Clip", {g_.op("Sub", {g_.scalar(1.0f), fade}), g_.scalar(0.0f), g_.scalar(1.0f)});
    // The sampling grid of affine_grid (align_corners false), [1, size * size, 2].
    const int64_t size = shape.size;
    torch::Tensor theta = torch::zeros({1, 2, 3});
    theta[0][0][0] = 0.5 * size / shape.sampling_rate;
    theta[0][1][1] = 0.5 * size / shape.sampling_rate;
    const torch::Tensor grid = torch::nn::functional::affine_grid(theta, {1, 1, size, size}, false).reshape({1, size * size, 2});
    std::string x = g_.op("MatMul", {g_.initializer(n + ".grid", grid), g_.op("Transpose", {f}, {{"perm", std::vector<int64_t>{0, 2, 1}}})});
    x = g_.op("Add", {x, g_.op("Unsqueeze", {phases, g_.ints({1})})});
    x = g_.op("Sin", {g_.op("Mul", {x, g_.scalar(static_cast<float>(kPi * 2))})});
    x = g_.op("Mul", {x, g_.op("Unsqueeze", {amplitudes, g_.ints({1})})});
    const torch::Tensor& weight = t(n + ".weight");
    x = g_.op("MatMul", {x, g_.initializer(n + ".weight", (weight / std::sqrt(static_cast<double>(shape.channels))).t())});
    x = g_.op("Reshape", {x, g_.ints({-1, size, size, shape.channels})});
    return {g_.op("Transpose", {x}, {{"perm", std::vector<int64_t>{0, 3, 1, 2}}}, n), shape.channels, size, size};
}

// SynthesisLayer of StyleGAN3: modulated convolution with pre-normalised weight and styles and the
// input gain, then filtered_lrelu (bias, upsampling, leaky ReLU with gain and clamp, downsampling).
Map GeneratorGraph::stylegan3_layer(const Map& x, const Stylegan3LayerShape& shape, const std::string& w) {
    const std::string n = "synthesis." + shape.name;
    const torch::Tensor& weight = t(n + ".weight");
    const float input_gain = t(n + ".magnitude_ema").rsqrt().item<float>();
    std::string styles = fc(w, n + ".affine", Activation::linear, 1.0);
    Map y;
    if (shape.is_torgb) {
        const double weight_gain = 1.0 / std::sqrt(static_cast<double>(shape.in_channels * shape.kernel * shape.kernel));
        styles = g_.op("Mul", {styles, g_.scalar(static_cast<float>(weight_gain))});
        y = conv2d(g_, scale_channels(g_, x, g_.op("Mul", {styles, g_.scalar(input_gain)})), weight, 0, 0, n);
    } else {
        const torch::Tensor wn = weight * weight.square().mean({1, 2, 3}, true).rsqrt();
        const std::string mean = g_.op("ReduceMean", {g_.op("Mul", {styles, styles})}, {{"axes", std::vector<int64_t>{1}}, {"keepdims", int64_t{1}}});
        const std::string sn = g_.op("Mul", {styles, g_.op("Reciprocal", {g_.op("Sqrt", {mean})})});
        const int64_t pad = shape.kernel - 1;
        y = conv2d(g_, scale_channels(g_, x, g_.op("Mul", {sn, g_.scalar(input_gain)})), wn, pad, pad, n);
        const std::string square_sums = g_.initializer(n + ".weight_square_sum", wn.square().sum({2, 3}).t());
        const std::string sum = g_.op("MatMul", {g_.op("Mul", {sn, sn}), square_sums});
        y = scale_channels(g_, y, g_.op("Reciprocal", {g_.op("Sqrt", {g_.op("Add", {sum, g_.scalar(1e-8f)})})}));
    }
    y.value = bias_act(g_, y.value, 4, t(n + ".bias"), n, Activation::linear, 1.0, std::nullopt);
    y = upfirdn2d(g_, y, optional_t(n + ".up_filter"), shape.up, 1, shape.padding, static_cast<double>(shape.up * shape.up), n + ".up");
    y.value = bias_act(g_, y.value, 4, {}, n, shape.is_torgb ? Activation::linear : Activation::lrelu, shape.is_torgb ? 1.0 : std::sqrt(2.0),
                       config_.stylegan3.conv_clamp);
    return upfirdn2d(g_, y, optional_t(n + ".down_filter"), 1, shape.down, {0, 0, 0, 0}, 1.0, n + ".down");
}

Map GeneratorGraph::stylegan3(const std::string& ws, const std::string& transform) {
    Map x = stylegan3_input(ws_at(ws, 0), transform);
    int64_t k = 1;
    for (const auto& shape : dynamic_cast<const Stylegan3Synthesis&>(*G_.synthesis).layer_shapes()) x = stylegan3_layer(x, shape, ws_at(ws, k++));
    if (config_.stylegan3.output_scale != 1) x.value = g_.op("Mul", {x.value, g_.scalar(static_cast<float>(config_.stylegan3.output_scale))});
    return x;
}

void check_exportable(const std::string& path, const Model& model, const ExportOptions& options) {
    if (!model.G_ema) throw ModelFormatError(path + ": ONNX export needs a generator, and this model has none");
    const GeneratorConfig& c = model.G_ema->config;
    if (c.z_dim == 0 && options.onnx_part != OnnxPart::synthesis)
        throw ModelFormatError(path + ": this generator takes no z; export --part synthesis");
    if (options.onnx_noise_inputs && c.family == GeneratorFamily::stylegan3)
        throw ArgumentError(path + ": StyleGAN3 has no noise inputs (--noise-inputs is for StyleGAN2)");
    if (options.onnx_noise_inputs && options.onnx_part == OnnxPart::mapping)
        throw ArgumentError(path + ": the mapping network has no noise inputs (--noise-inputs is for --part full or synthesis)");
}

void add_metadata(onnx::ModelProto& model, const Generator& G, const ExportOptions& options) {
    const GeneratorConfig& c = G.config;
    const int num_ws = G.synthesis->num_ws;
    std::vector<std::pair<std::string, std::string>> entries{
        {"latentkit.family", c.family_name()},
        {"latentkit.part", option_name(options.onnx_part)},
        {"latentkit.z_dim", std::to_string(c.z_dim)},
        {"latentkit.c_dim", std::to_string(c.c_dim)},
        {"latentkit.w_dim", std::to_string(c.w_dim)},
        {"latentkit.num_ws", std::to_string(num_ws)},
        {"latentkit.img_resolution", std::to_string(c.img_resolution)},
        {"latentkit.img_channels", std::to_string(c.img_channels)},
    };
    if (c.family == GeneratorFamily::stylegan3) {
        // The network's own input transform (what to pass as `transform` for the model's default view).
        const torch::Tensor t = G.named_buffers(true)["synthesis.input.transform"].detach().cpu().to(torch::kFloat64).flatten();
        entries.emplace_back("latentkit.transform", fmt::format("[{}]", fmt::join(t.data_ptr<double>(), t.data_ptr<double>() + 9, ", ")));
    }
    for (const auto& [key, value] : entries) {
        auto* prop = model.add_metadata_props();
        prop->set_key(key);
        prop->set_value(value);
    }
}

// The graph of options.onnx_part: inputs, network, outputs.
void build_graph(GraphBuilder& g, const Generator& G, const ExportOptions& options) {
    torch::NoGradGuard no_grad;
    const GeneratorConfig& c = G.config;
    const int num_ws = G.synthesis->num_ws;
    GeneratorGraph net(g, G);
    std::string ws = "ws";
    if (options.onnx_part == OnnxPart::synthesis) {
        g.input("ws", kFloat, {-1, num_ws, c.w_dim});
    } else {
        g.input("z", kFloat, {-1, c.z_dim});
        if (c.c_dim > 0) g.input("c", kFloat, {-1, c.c_dim});
        ws = net.mapping("z", c.c_dim > 0 ? "c" : "");
        if (G.mapping->w_avg.defined()) ws = net.truncation(ws);
    }
    if (options.onnx_part == OnnxPart::mapping) {
        g.output(ws, "ws", {-1, num_ws, c.w_dim});
        return;
    }
    Map img;
    if (c.family == GeneratorFamily::stylegan3) {
        g.input("transform", kFloat, {3, 3});
        img = net.stylegan3(ws, "transform");
    } else {
        img = net.stylegan2(ws, options.onnx_noise_inputs);
    }
    g.output(img.value, "img", {-1, img.c, img.h, img.w});
}
}  // namespace

void write_onnx(const std::string& path, const Model& model, const ExportOptions& options) {
    check_exportable(path, model, options);
    const Generator& G = *model.G_ema;
    onnx::ModelProto proto;
    proto.set_ir_version(8);
    proto.set_producer_name("latentkit");
    proto.set_doc_string(fmt::format("{} generator ({}), exported by latentkit", G.config.family_name(), option_name(options.onnx_part)));
    auto* opset = proto.add_opset_import();
    opset->set_domain("");
    opset->set_version(kOpset);
    onnx::GraphProto& graph = *proto.mutable_graph();
    graph.set_name("latentkit_generator");
    GraphBuilder builder(graph);
    build_graph(builder, G, options);
    add_metadata(proto, G, options);
    try {
        onnx::checker::check_model(proto);
    } catch (const std::exception& e) {
        throw ModelFormatError(fmt::format("{}: the ONNX graph fails onnx::checker: {}", path, e.what()));
    }
    if (proto.ByteSizeLong() > (size_t{1} << 31) - 1)
        throw ModelFormatError(fmt::format("{}: the model is over 2 GiB, more than one ONNX file holds", path));
    std::string bytes;
    if (!proto.SerializeToString(&bytes)) throw IoError(path + ": could not serialise the ONNX model");
    write_file_atomic(path, bytes.data(), bytes.size());
}

}  // namespace latentkit::detail
