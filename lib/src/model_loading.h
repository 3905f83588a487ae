#pragma once
// Internal to the model readers (model_io.cpp, model_tf.cpp, model_torch_save.cpp, model_convert.cpp):
// what they share.
#include <torch/torch.h>

#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "latentkit/model_export.h"
#include "latentkit/model_io.h"
#include "latentkit/networks.h"
#include "pickle.h"

namespace latentkit::detail {

/// Tensors under their latentkit (= reference state_dict) names.
using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

/// A pickled value of plain data (None, bool, number, string, list, tuple, dict) as JSON; anything
/// else throws ModelFormatError naming `source`.
nlohmann::json pickle_json(const pickle::Value* v, const std::string& source, int depth = 0);

/// Builds a network of `config`, copies `tensors` into it (every parameter and buffer, nothing left
/// over) and puts it in eval mode.
template <class Net, class Config>
std::shared_ptr<Net> build_network(const Config& config, const NamedTensors& tensors, const std::string& where) {
    auto net = std::make_shared<Net>(config);
    load_state(*net, tensors, where);
    net->eval();
    return net;
}

/// Tensors of another tool's file by that file's names, reshaped for latentkit's networks; errors name
/// the file's tensor (`kind`: "TensorFlow variable", "tensor"). Remembers which were used.
class FileTensors {
public:
    FileTensors(std::map<std::string, TensorData> tensors, std::string where, std::string kind)
        : tensors_(std::move(tensors)), where_(std::move(where)), kind_(std::move(kind)) {}
    /// The tensor called `name` as float32; ModelFormatError when missing.
    torch::Tensor get(const std::string& name) const;
    /// True when the file has `name`.
    bool has(const std::string& name) const { return tensors_.count(name) > 0; }
    /// A [in, out] matrix transposed to [out, in].
    torch::Tensor dense(const std::string& name) const;
    /// A TensorFlow [kh, kw, in, out] kernel as [out, in, kh, kw], flipped in space first when `flip`.
    torch::Tensor conv(const std::string& name, bool flip = false) const;
    /// Element 0 along the first axis of a tensor with `dims` dimensions.
    torch::Tensor first(const std::string& name, int dims) const;
    /// A one-element tensor as a scalar.
    torch::Tensor scalar(const std::string& name) const;
    /// The name of the tensor read last (for errors).
    const std::string& last() const { return last_; }
    /// Names never read.
    std::vector<std::string> unused() const;
    const std::map<std::string, TensorData>& all() const { return tensors_; }
    const std::string& where() const { return where_; }
    const std::string& kind() const { return kind_; }

private:
    torch::Tensor need(torch::Tensor t, int64_t dims) const;
    std::map<std::string, TensorData> tensors_;
    std::string where_, kind_;
    mutable std::string last_;
    mutable std::set<std::string> used_;
};

/// A conversion rule: a pattern over latentkit tensor names and the value such a tensor takes
/// (an empty function keeps the tensor as constructed, e.g. resample_filter).
struct ConversionRule {
    std::regex pattern;
    std::function<torch::Tensor(const std::smatch&)> value;
};

/// Sets every parameter and buffer of `module` by the first rule whose pattern matches its name
/// (as legacy.py's _populate_module_params); a name no rule matches or a value of the wrong shape
/// throws, naming the file's tensor. Leaves the module in eval mode.
void populate(torch::nn::Module& module, const std::vector<ConversionRule>& rules, const FileTensors& source);

/// The generator a bare state dict (reference names, no configuration) describes, from tensor shapes.
Model load_bare_state_dict(const TensorFile& file, const std::string& path, const std::string& format);

/// True for the root of a TensorFlow-era pickle: a dnnlib.tflib.network.Network or a tuple of them.
bool is_tf_networks(const pickle::Value* root);
/// Converts TensorFlow-era networks (G, D, Gs) with the rules of stylegan2-ada-pytorch's legacy.py.
Model load_tf_networks(const pickle::Value* root, const std::string& path);

/// Reads a torch.save file (zip or legacy): a rosinality stylegan2-pytorch checkpoint or a bare
/// generator state dict; anything else is refused with a description of what the file holds.
Model load_torch_save(std::shared_ptr<const std::string> bytes, const std::string& path);

/// Writes a rosinality stylegan2-pytorch checkpoint (export_rosinality.cpp): g_ema, g and d when the
/// model has them (only g_ema with `g_ema_only`), latent_avg. See export_model.
void write_rosinality(const std::string& path, const Model& model, bool g_ema_only);

/// Writes an NVIDIA .pkl in the TensorFlow-era layout that stylegan2-ada-pytorch's and stylegan3's
/// legacy.load_network_pkl convert (export_nvidia_pkl.cpp): (G, D, Gs); G is G_ema when the model has
/// no training generator. See export_model.
void write_nvidia_pkl(const std::string& path, const Model& model);

/// Writes G_ema as an ONNX graph (export_onnx.cpp; only in builds with ONNX). See export_model.
void write_onnx(const std::string& path, const Model& model, const ExportOptions& options);

}  // namespace latentkit::detail
