#pragma once
// Building an ONNX graph (the ONNX project's own protobuf classes, Debian libonnx-dev) from standard
// operators, and the StyleGAN building blocks of ops.h written as such operators: the same functions
// as the reference's non-plugin code paths, so an exported network computes what latentkit computes.
#include <torch/torch.h>

#include <onnx/onnx_pb.h>

#include <array>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "latentkit/model_config.h"

namespace latentkit::onnx_export {

/// One node attribute: an integer, a float, a list of integers or a string.
struct Attr {
    std::string name;
    std::variant<int64_t, float, std::vector<int64_t>, std::string> value;
};

/// Appends nodes, initializers, inputs and outputs to one GraphProto, with unique value names.
class GraphBuilder {
public:
    explicit GraphBuilder(onnx::GraphProto& graph) : graph_(graph) {}

    /// A float32 (or int64) initializer holding `t`, named `name` (made unique); returns its name.
    std::string initializer(const std::string& name, const torch::Tensor& t);
    /// A float32 constant of shape [] (one per value).
    std::string scalar(float v);
    /// An int64 constant of shape [values.size()] (one per list), e.g. for Reshape and Pad.
    std::string ints(const std::vector<int64_t>& values);
    /// Appends a node; returns the name of its (first) output.
    std::string op(const std::string& type, const std::vector<std::string>& inputs, const std::vector<Attr>& attrs = {},
                   const std::string& hint = "");
    /// Declares a graph input; a dimension of -1 is the symbolic batch size "N".
    void input(const std::string& name, onnx::TensorProto_DataType type, const std::vector<int64_t>& dims);
    /// Declares `value` a graph output named `name` (an Identity node when the names differ).
    void output(const std::string& value, const std::string& name, const std::vector<int64_t>& dims);

private:
    std::string unique(const std::string& hint);
    onnx::GraphProto& graph_;
    std::map<std::string, int> used_;
    std::map<float, std::string> scalars_;
    std::map<std::vector<int64_t>, std::string> int_lists_;
};

/// A feature map value with its static channel count and size (the batch dimension is symbolic).
struct Map {
    std::string value;
    int64_t c = 0, h = 0, w = 0;
};

/// Padding as [x0, x1, y0, y1] (ops::Pad).
using Pad = std::array<int64_t, 4>;

/// ops::bias_act: bias (broadcast along dim 1 of a rank-`rank` value; may be undefined), activation,
/// gain, clamp.
std::string bias_act(GraphBuilder& g, const std::string& x, int64_t rank, const torch::Tensor& bias, const std::string& name,
                     Activation act, double gain, std::optional<double> clamp);
/// A FullyConnectedLayer of the reference (weight [out, in], equalised learning rate): x [.., in] -> [.., out].
std::string fully_connected(GraphBuilder& g, const std::string& x, const torch::Tensor& weight, const torch::Tensor& bias,
                            const std::string& name, Activation act, double lr_multiplier);
/// ops::normalize_2nd_moment along axis 1.
std::string normalize_2nd_moment(GraphBuilder& g, const std::string& x);
/// ops::upfirdn2d (filter undefined = identity): zero insertion, pad/crop, depthwise FIR, subsampling.
Map upfirdn2d(GraphBuilder& g, const Map& x, const torch::Tensor& filter, int64_t up, int64_t down, Pad pad, double gain,
              const std::string& name);
/// ops::conv2d_resample for a generator (down = 1, groups = 1): the reference's branches.
Map conv2d_resample(GraphBuilder& g, const Map& x, const torch::Tensor& w, const torch::Tensor& f, int64_t up, int64_t padding,
                    bool flip_weight, const std::string& name);
/// The stride-1 convolution of x with a constant weight [out, in, kh, kw] and symmetric padding.
Map conv2d(GraphBuilder& g, const Map& x, const torch::Tensor& w, int64_t pad_y, int64_t pad_x, const std::string& name);
/// x [N, C, H, W] times a per-sample, per-channel factor [N, C].
Map scale_channels(GraphBuilder& g, const Map& x, const std::string& factors);

}  // namespace latentkit::onnx_export
