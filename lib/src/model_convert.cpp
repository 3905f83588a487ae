// Converting other tools' tensors into latentkit's networks by rules over tensor names.
#include <fmt/format.h>

#include "latentkit/error.h"
#include "model_loading.h"
#include "torch_convert.h"

namespace latentkit::detail {

torch::Tensor FileTensors::get(const std::string& name) const {
    last_ = name;
    auto it = tensors_.find(name);
    if (it == tensors_.end()) throw ModelFormatError(fmt::format("{}: {} '{}' is missing", where_, kind_, name));
    used_.insert(name);
    return to_torch(it->second).to(torch::kFloat32);
}

torch::Tensor FileTensors::need(torch::Tensor t, int64_t dims) const {
    if (t.dim() != dims)
        throw ShapeError(fmt::format("{}: {} '{}' has shape [{}], not {} dimensions", where_, kind_, last_, fmt::join(t.sizes(), ", "), dims));
    return t;
}

torch::Tensor FileTensors::dense(const std::string& name) const { return need(get(name), 2).t(); }

torch::Tensor FileTensors::conv(const std::string& name, bool flip) const {
    torch::Tensor w = need(get(name), 4);
    if (flip) w = w.flip({0, 1});
    return w.permute({3, 2, 0, 1});
}

torch::Tensor FileTensors::first(const std::string& name, int dims) const { return need(get(name), dims)[0]; }

torch::Tensor FileTensors::scalar(const std::string& name) const {
    torch::Tensor t = get(name);
    if (t.numel() != 1)
        throw ShapeError(fmt::format("{}: {} '{}' has shape [{}], not one value", where_, kind_, name, fmt::join(t.sizes(), ", ")));
    return t.reshape({});
}

std::vector<std::string> FileTensors::unused() const {
    std::vector<std::string> out;
    for (const auto& [name, t] : tensors_)
        if (!used_.count(name)) out.push_back(name);
    return out;
}

void populate(torch::nn::Module& module, const std::vector<ConversionRule>& rules, const FileTensors& source) {
    torch::NoGradGuard no_grad;
    std::vector<std::pair<std::string, torch::Tensor>> targets;
    for (const auto& p : module.named_parameters(true)) targets.emplace_back(p.key(), p.value());
    for (const auto& b : module.named_buffers(true)) targets.emplace_back(b.key(), b.value());
    for (auto& [name, tensor] : targets) {
        const ConversionRule* rule = nullptr;
        std::smatch m;
        for (const ConversionRule& r : rules)
            if (std::regex_match(name, m, r.pattern)) {
                rule = &r;
                break;
            }
        if (!rule) throw ModelFormatError(fmt::format("{}: nothing in the file converts to '{}'", source.where(), name));
        if (!rule->value) continue;
        const torch::Tensor v = rule->value(m);
        if (v.sizes() != tensor.sizes())
            throw ShapeError(fmt::format("{}: {} '{}' gives shape [{}] for '{}', which needs [{}]", source.where(), source.kind(), source.last(),
                                         fmt::join(v.sizes(), ", "), name, fmt::join(tensor.sizes(), ", ")));
        tensor.copy_(v);
    }
    module.eval();
}

}  // namespace latentkit::detail
