// torch.save's zip layout: ARCHIVE/data.pkl (protocol 2; a tensor is torch._utils._rebuild_tensor_v2
// of a persistent id ('storage', torch.FloatStorage, key, 'cpu', numel)), ARCHIVE/data/KEY (the raw
// little-endian elements) and ARCHIVE/version.
#include "latentkit/torch_save_writer.h"

#include <vector>

#include "latentkit/error.h"
#include "latentkit/zip.h"
#include "pickle_writer.h"

namespace latentkit {

struct TorchSaveWriter::State {
    ZipWriter zip;
    pickle::PickleWriter pkl{2};
    std::vector<std::string> storages;
    std::vector<char> open;  // 'd' dict, 't' tuple
    bool finished = false;
    explicit State(const std::string& path) : zip(path) {}
};

TorchSaveWriter::TorchSaveWriter(const std::string& path) : s_(std::make_unique<State>(path)) {}
TorchSaveWriter::~TorchSaveWriter() = default;

void TorchSaveWriter::none() { s_->pkl.none(); }
void TorchSaveWriter::boolean(bool v) { s_->pkl.boolean(v); }
void TorchSaveWriter::integer(int64_t v) { s_->pkl.integer(v); }
void TorchSaveWriter::floating(double v) { s_->pkl.floating(v); }
void TorchSaveWriter::string(const std::string& v) { s_->pkl.text(v); }

void TorchSaveWriter::tensor(const TensorData& t) {
    if (t.dtype != DType::f32) throw ArgumentError("TorchSaveWriter: only float32 tensors are written");
    const std::string key = std::to_string(s_->storages.size());
    s_->storages.emplace_back(reinterpret_cast<const char*>(t.data()), t.nbytes());
    std::vector<int64_t> strides(t.shape.size(), 1);
    for (size_t k = t.shape.size(); k-- > 1;) strides[k - 1] = strides[k] * t.shape[k];
    pickle::PickleWriter& p = s_->pkl;
    p.global("torch._utils", "_rebuild_tensor_v2");
    p.mark();
    p.mark();  // the storage's persistent id
    p.text("storage");
    p.global("torch", "FloatStorage");
    p.text(key);
    p.text("cpu");
    p.integer(static_cast<int64_t>(t.numel()));
    p.tuple();
    p.persistent_id();
    p.integer(0);  // storage offset
    p.int_tuple(t.shape);
    p.int_tuple(strides);
    p.boolean(false);  // requires_grad
    p.global("collections", "OrderedDict");  // backward hooks
    p.empty_tuple();
    p.reduce();
    p.tuple();
    p.reduce();
}

void TorchSaveWriter::begin_dict(bool ordered) {
    if (ordered) {
        s_->pkl.global("collections", "OrderedDict");
        s_->pkl.empty_tuple();
        s_->pkl.reduce();
    } else {
        s_->pkl.empty_dict();
    }
    s_->pkl.mark();
    s_->open.push_back('d');
}

void TorchSaveWriter::end_dict() {
    if (s_->open.empty() || s_->open.back() != 'd') throw ArgumentError("TorchSaveWriter: end_dict without begin_dict");
    s_->open.pop_back();
    s_->pkl.setitems();
}

void TorchSaveWriter::begin_tuple() {
    s_->pkl.mark();
    s_->open.push_back('t');
}

void TorchSaveWriter::end_tuple() {
    if (s_->open.empty() || s_->open.back() != 't') throw ArgumentError("TorchSaveWriter: end_tuple without begin_tuple");
    s_->open.pop_back();
    s_->pkl.tuple();
}

void TorchSaveWriter::finish() {
    if (!s_->open.empty()) throw ArgumentError("TorchSaveWriter: a container is still open");
    if (s_->finished) return;
    s_->zip.add("archive/data.pkl", s_->pkl.finish());
    for (size_t k = 0; k < s_->storages.size(); ++k) s_->zip.add("archive/data/" + std::to_string(k), s_->storages[k]);
    s_->zip.add("archive/version", "3\n");
    s_->zip.finish();
    s_->finished = true;
}

}  // namespace latentkit
