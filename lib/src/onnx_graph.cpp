#include "onnx_graph.h"

#include <fmt/format.h>

#include <cmath>

#include "latentkit/error.h"
#include "ops.h"

namespace latentkit::onnx_export {

namespace {
void set_shape(onnx::ValueInfoProto& info, onnx::TensorProto_DataType type, const std::vector<int64_t>& dims) {
    auto* tensor_type = info.mutable_type()->mutable_tensor_type();
    tensor_type->set_elem_type(type);
    auto* shape = tensor_type->mutable_shape();
    for (int64_t d : dims) {
        auto* dim = shape->add_dim();
        if (d < 0) dim->set_dim_param("N");
        else dim->set_dim_value(d);
    }
}

void fill_tensor(onnx::TensorProto& out, const std::string& name, const torch::Tensor& t) {
    out.set_name(name);
    const bool integer = t.scalar_type() == torch::kLong || t.scalar_type() == torch::kInt;
    const torch::Tensor c = t.detach().to(torch::kCPU, integer ? torch::kLong : torch::kFloat32).contiguous();
    out.set_data_type(integer ? onnx::TensorProto_DataType_INT64 : onnx::TensorProto_DataType_FLOAT);
    for (int64_t d : c.sizes()) out.add_dims(d);
    out.set_raw_data(c.data_ptr(), static_cast<size_t>(c.numel()) * c.element_size());
}

void set_attr(onnx::NodeProto& node, const Attr& a) {
    auto* attr = node.add_attribute();
    attr->set_name(a.name);
    if (const auto* i = std::get_if<int64_t>(&a.value)) {
        attr->set_type(onnx::AttributeProto_AttributeType_INT);
        attr->set_i(*i);
    } else if (const auto* f = std::get_if<float>(&a.value)) {
        attr->set_type(onnx::AttributeProto_AttributeType_FLOAT);
        attr->set_f(*f);
    } else if (const auto* list = std::get_if<std::vector<int64_t>>(&a.value)) {
        attr->set_type(onnx::AttributeProto_AttributeType_INTS);
        for (int64_t v : *list) attr->add_ints(v);
    } else {
        attr->set_type(onnx::AttributeProto_AttributeType_STRING);
        attr->set_s(std::get<std::string>(a.value));
    }
}

int64_t axis_size(int64_t n, int64_t k, int64_t stride) { return (n - k) / stride + 1; }
}  // namespace

std::string GraphBuilder::unique(const std::string& hint) {
    const std::string base = hint.empty() ? "v" : hint;
    const int k = used_[base]++;
    return k == 0 ? base : fmt::format("{}_{}", base, k);
}

std::string GraphBuilder::initializer(const std::string& name, const torch::Tensor& t) {
    const std::string unique_name = unique(name);
    fill_tensor(*graph_.add_initializer(), unique_name, t);
    return unique_name;
}

std::string GraphBuilder::scalar(float v) {
    auto it = scalars_.find(v);
    if (it != scalars_.end()) return it->second;
    return scalars_[v] = initializer("const", torch::scalar_tensor(v, torch::kFloat32));
}

std::string GraphBuilder::ints(const std::vector<int64_t>& values) {
    auto it = int_lists_.find(values);
    if (it != int_lists_.end()) return it->second;
    return int_lists_[values] = initializer("ints", torch::tensor(values, torch::kLong));
}

std::string GraphBuilder::op(const std::string& type, const std::vector<std::string>& inputs, const std::vector<Attr>& attrs,
                             const std::string& hint) {
    auto* node = graph_.add_node();
    const std::string out = unique(hint.empty() ? type : hint + "/" + type);
    node->set_op_type(type);
    node->set_name(out);
    for (const auto& in : inputs) node->add_input(in);
    node->add_output(out);
    for (const auto& a : attrs) set_attr(*node, a);
    return out;
}

void GraphBuilder::input(const std::string& name, onnx::TensorProto_DataType type, const std::vector<int64_t>& dims) {
    if (used_[name]++ != 0) throw ArgumentError("ONNX graph: input name '" + name + "' is taken");
    auto* info = graph_.add_input();
    info->set_name(name);
    set_shape(*info, type, dims);
}

void GraphBuilder::output(const std::string& value, const std::string& name, const std::vector<int64_t>& dims) {
    std::string out = value;
    if (value != name) {
        if (used_[name]++ != 0) throw ArgumentError("ONNX graph: output name '" + name + "' is taken");
        auto* node = graph_.add_node();
        node->set_op_type("Identity");
        node->set_name(name);
        node->add_input(value);
        node->add_output(name);
        out = name;
    }
    auto* info = graph_.add_output();
    info->set_name(out);
    set_shape(*info, onnx::TensorProto_DataType_FLOAT, dims);
}

std::string bias_act(GraphBuilder& g, const std::string& x, int64_t rank, const torch::Tensor& bias, const std::string& name,
                     Activation act, double gain, std::optional<double> clamp) {
    std::string y = x;
    if (bias.defined()) {
        std::vector<int64_t> shape(static_cast<size_t>(rank), 1);
        shape[1] = bias.numel();
        y = g.op("Add", {y, g.initializer(name + ".bias", bias.reshape(shape))}, {}, name);
    }
    switch (act) {
        case Activation::linear: break;
        case Activation::lrelu: y = g.op("LeakyRelu", {y}, {{"alpha", 0.2f}}, name); break;
        case Activation::relu: y = g.op("Relu", {y}, {}, name); break;
        case Activation::tanh: y = g.op("Tanh", {y}, {}, name); break;
        case Activation::sigmoid: y = g.op("Sigmoid", {y}, {}, name); break;
        case Activation::elu: y = g.op("Elu", {y}, {}, name); break;
        case Activation::selu: y = g.op("Selu", {y}, {}, name); break;
        case Activation::softplus: y = g.op("Softplus", {y}, {}, name); break;
        case Activation::swish: y = g.op("Mul", {g.op("Sigmoid", {y}, {}, name), y}, {}, name); break;
    }
    if (gain != 1) y = g.op("Mul", {y, g.scalar(static_cast<float>(gain))}, {}, name);
    if (clamp && *clamp >= 0)
        y = g.op("Clip", {y, g.scalar(static_cast<float>(-*clamp)), g.scalar(static_cast<float>(*clamp))}, {}, name);
    return y;
}

std::string fully_connected(GraphBuilder& g, const std::string& x, const torch::Tensor& weight, const torch::Tensor& bias,
                            const std::string& name, Activation act, double lr_multiplier) {
    const double weight_gain = lr_multiplier / std::sqrt(static_cast<double>(weight.size(1)));
    std::string y = g.op("MatMul", {x, g.initializer(name + ".weight", (weight.to(torch::kFloat32) * weight_gain).t())}, {}, name);
    if (bias.defined()) {
        torch::Tensor b = bias.to(torch::kFloat32);
        if (lr_multiplier != 1) b = b * lr_multiplier;
        y = g.op("Add", {y, g.initializer(name + ".bias", b)}, {}, name);
    }
    return bias_act(g, y, 2, {}, name, act, ops::activation_defaults(act).gain, std::nullopt);
}

std::string normalize_2nd_moment(GraphBuilder& g, const std::string& x) {
    const std::string mean = g.op("ReduceMean", {g.op("Mul", {x, x})}, {{"axes", std::vector<int64_t>{1}}, {"keepdims", int64_t{1}}});
    const std::string inv = g.op("Reciprocal", {g.op("Sqrt", {g.op("Add", {mean, g.scalar(1e-8f)})})});
    return g.op("Mul", {x, inv}, {}, "normalize");
}

Map upfirdn2d(GraphBuilder& g, const Map& x, const torch::Tensor& filter, int64_t up, int64_t down, Pad pad, double gain,
              const std::string& name) {
    Map y = x;
    if (up > 1) {
        y.value = g.op("Reshape", {y.value, g.ints({-1, y.c, y.h, 1, y.w, 1})}, {}, name);
        y.value = g.op("Pad", {y.value, g.ints({0, 0, 0, 0, 0, 0, 0, 0, 0, up - 1, 0, up - 1})}, {}, name);
        y.h *= up;
        y.w *= up;
        y.value = g.op("Reshape", {y.value, g.ints({-1, y.c, y.h, y.w})}, {}, name);
    }
    const auto [px0, px1, py0, py1] = pad;
    if (px0 > 0 || px1 > 0 || py0 > 0 || py1 > 0) {
        const int64_t a = std::max<int64_t>(py0, 0), b = std::max<int64_t>(px0, 0), c = std::max<int64_t>(py1, 0),
                      d = std::max<int64_t>(px1, 0);
        y.value = g.op("Pad", {y.value, g.ints({0, 0, a, b, 0, 0, c, d})}, {}, name);
        y.h += a + c;
        y.w += b + d;
    }
    if (px0 < 0 || px1 < 0 || py0 < 0 || py1 < 0) {
        const int64_t top = std::max<int64_t>(-py0, 0), left = std::max<int64_t>(-px0, 0);
        const int64_t bottom = y.h - std::max<int64_t>(-py1, 0), right = y.w - std::max<int64_t>(-px1, 0);
        y.value = g.op("Slice", {y.value, g.ints({top, left}), g.ints({bottom, right}), g.ints({2, 3})}, {}, name);
        y.h = bottom - top;
        y.w = right - left;
    }
    torch::Tensor f = filter.defined() ? filter.to(torch::kFloat32) : torch::ones({1, 1});
    if (f.numel() == 1 && f.item<float>() * gain == 1 && down == 1) return y;  // the identity
    f = f * std::pow(gain, f.dim() / 2.0);
    f = f.dim() == 2 ? f.flip({0, 1}) : f.flip({0});  // upfirdn2d convolves; Conv correlates
    auto depthwise = [&](const torch::Tensor& kernel, int64_t sy, int64_t sx) {
        const int64_t kh = kernel.size(0), kw = kernel.size(1);
        const torch::Tensor w = kernel.reshape({1, 1, kh, kw}).repeat({y.c, 1, 1, 1});
        y.value = g.op("Conv", {y.value, g.initializer(name + ".filter", w)},
                       {{"group", y.c}, {"kernel_shape", std::vector<int64_t>{kh, kw}}, {"strides", std::vector<int64_t>{sy, sx}}}, name);
        y.h = axis_size(y.h, kh, sy);
        y.w = axis_size(y.w, kw, sx);
    };
    if (f.dim() == 1) {
        depthwise(f.reshape({1, -1}), 1, down);
        depthwise(f.reshape({-1, 1}), down, 1);
    } else {
        depthwise(f, down, down);
    }
    return y;
}

Map conv2d(GraphBuilder& g, const Map& x, const torch::Tensor& w, int64_t pad_y, int64_t pad_x, const std::string& name) {
    const int64_t kh = w.size(2), kw = w.size(3);
    Map y{g.op("Conv", {x.value, g.initializer(name + ".weight", w.to(torch::kFloat32))},
               {{"kernel_shape", std::vector<int64_t>{kh, kw}}, {"pads", std::vector<int64_t>{pad_y, pad_x, pad_y, pad_x}}}, name),
          w.size(0), x.h + 2 * pad_y - kh + 1, x.w + 2 * pad_x - kw + 1};
    return y;
}

Map conv2d_resample(GraphBuilder& g, const Map& x, const torch::Tensor& w, const torch::Tensor& f, int64_t up, int64_t padding,
                    bool flip_weight, const std::string& name) {
    const int64_t kh = w.size(2), kw = w.size(3);
    auto [px0, px1, py0, py1] = ops::resample_padding(f, up, 1, padding);
    const double up_gain = static_cast<double>(up * up);
    if (kw == 1 && kh == 1 && up > 1) return upfirdn2d(g, conv2d(g, x, w, 0, 0, name), f, up, 1, {px0, px1, py0, py1}, up_gain, name);
    if (up > 1) {
        // The reference's transposed convolution (weight [in, out, kh, kw]), then the filter.
        torch::Tensor wt = w.transpose(0, 1);
        if (flip_weight) wt = wt.flip({2, 3});
        px0 -= kw - 1;
        px1 -= kw - up;
        py0 -= kh - 1;
        py1 -= kh - up;
        const int64_t pxt = std::max<int64_t>(std::min(-px0, -px1), 0), pyt = std::max<int64_t>(std::min(-py0, -py1), 0);
        Map y{g.op("ConvTranspose", {x.value, g.initializer(name + ".weight", wt.contiguous())},
                   {{"kernel_shape", std::vector<int64_t>{kh, kw}},
                    {"strides", std::vector<int64_t>{up, up}},
                    {"pads", std::vector<int64_t>{pyt, pxt, pyt, pxt}}},
                   name),
              w.size(0), (x.h - 1) * up + kh - 2 * pyt, (x.w - 1) * up + kw - 2 * pxt};
        return upfirdn2d(g, y, f, 1, 1, {px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt}, up_gain, name);
    }
    const torch::Tensor wc = flip_weight ? w : w.flip({2, 3});
    if (px0 == px1 && py0 == py1 && px0 >= 0 && py0 >= 0) return conv2d(g, x, wc, py0, px0, name);
    return conv2d(g, upfirdn2d(g, x, {}, 1, 1, {px0, px1, py0, py1}, 1.0, name), wc, 0, 0, name);
}

Map scale_channels(GraphBuilder& g, const Map& x, const std::string& factors) {
    const std::string f = g.op("Reshape", {factors, g.ints({-1, x.c, 1, 1})});
    return {g.op("Mul", {x.value, f}), x.c, x.h, x.w};
}

}  // namespace latentkit::onnx_export
