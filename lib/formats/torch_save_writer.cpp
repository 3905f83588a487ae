// torch.save's zip layout: ARCHIVE/data.pkl (protocol 2; a tensor is torch._utils._rebuild_tensor_v2
// of a persistent id ('storage', torch.FloatStorage, key, 'cpu', numel)), ARCHIVE/data/KEY (the raw
// little-endian elements) and ARCHIVE/version.
#include "latentkit/torch_save_writer.h"

#include <cstring>
#include <vector>

#include "latentkit/error.h"
#include "latentkit/zip.h"

namespace latentkit {
namespace {

// Pickle opcodes (protocol 2).
constexpr char kProto = '\x80', kStop = '.', kMark = '(', kNone = 'N', kTrue = '\x88', kFalse = '\x89';
constexpr char kBinInt = 'J', kBinInt1 = 'K', kLong1 = '\x8a', kBinFloat = 'G', kBinUnicode = 'X';
constexpr char kEmptyDict = '}', kSetItems = 'u', kEmptyTuple = ')', kTuple = 't', kGlobal = 'c', kReduce = 'R', kBinPersId = 'Q';

}  // namespace

struct TorchSaveWriter::State {
    ZipWriter zip;
    std::string pkl;
    std::vector<std::string> storages;
    std::vector<char> open;  // 'd' dict, 't' tuple
    bool finished = false;
    explicit State(const std::string& path) : zip(path) {}

    void u32(uint32_t v) {
        for (int k = 0; k < 4; ++k) pkl.push_back(static_cast<char>((v >> (8 * k)) & 0xff));
    }
    void global(const char* module, const char* name) {
        pkl.push_back(kGlobal);
        pkl += module;
        pkl.push_back('\n');
        pkl += name;
        pkl.push_back('\n');
    }
    void text(const std::string& s) {
        pkl.push_back(kBinUnicode);
        u32(static_cast<uint32_t>(s.size()));
        pkl += s;
    }
    void integer(int64_t v) {
        if (v >= 0 && v < 256) {
            pkl.push_back(kBinInt1);
            pkl.push_back(static_cast<char>(v));
        } else if (v >= INT32_MIN && v <= INT32_MAX) {
            pkl.push_back(kBinInt);
            u32(static_cast<uint32_t>(static_cast<int32_t>(v)));
        } else {
            pkl.push_back(kLong1);
            pkl.push_back(8);
            for (int k = 0; k < 8; ++k) pkl.push_back(static_cast<char>((static_cast<uint64_t>(v) >> (8 * k)) & 0xff));
        }
    }
    void int_tuple(const std::vector<int64_t>& values) {
        if (values.empty()) {
            pkl.push_back(kEmptyTuple);
            return;
        }
        pkl.push_back(kMark);
        for (int64_t v : values) integer(v);
        pkl.push_back(kTuple);
    }
};

TorchSaveWriter::TorchSaveWriter(const std::string& path) : s_(std::make_unique<State>(path)) {
    s_->pkl.push_back(kProto);
    s_->pkl.push_back(2);
}

TorchSaveWriter::~TorchSaveWriter() = default;

void TorchSaveWriter::none() { s_->pkl.push_back(kNone); }
void TorchSaveWriter::boolean(bool v) { s_->pkl.push_back(v ? kTrue : kFalse); }
void TorchSaveWriter::integer(int64_t v) { s_->integer(v); }
void TorchSaveWriter::string(const std::string& v) { s_->text(v); }

void TorchSaveWriter::floating(double v) {
    s_->pkl.push_back(kBinFloat);
    uint64_t bits = 0;
    std::memcpy(&bits, &v, 8);
    for (int k = 7; k >= 0; --k) s_->pkl.push_back(static_cast<char>((bits >> (8 * k)) & 0xff));  // big-endian
}

void TorchSaveWriter::tensor(const TensorData& t) {
    if (t.dtype != DType::f32) throw ArgumentError("TorchSaveWriter: only float32 tensors are written");
    const std::string key = std::to_string(s_->storages.size());
    s_->storages.emplace_back(reinterpret_cast<const char*>(t.data()), t.nbytes());
    std::vector<int64_t> strides(t.shape.size(), 1);
    for (size_t k = t.shape.size(); k-- > 1;) strides[k - 1] = strides[k] * t.shape[k];
    std::string& p = s_->pkl;
    s_->global("torch._utils", "_rebuild_tensor_v2");
    p.push_back(kMark);
    p.push_back(kMark);  // the persistent id
    s_->text("storage");
    s_->global("torch", "FloatStorage");
    s_->text(key);
    s_->text("cpu");
    s_->integer(static_cast<int64_t>(t.numel()));
    p.push_back(kTuple);
    p.push_back(kBinPersId);
    s_->integer(0);  // storage offset
    s_->int_tuple(t.shape);
    s_->int_tuple(strides);
    p.push_back(kFalse);  // requires_grad
    s_->global("collections", "OrderedDict");
    p.push_back(kEmptyTuple);
    p.push_back(kReduce);  // backward hooks
    p.push_back(kTuple);
    p.push_back(kReduce);
}

void TorchSaveWriter::begin_dict(bool ordered) {
    if (ordered) {
        s_->global("collections", "OrderedDict");
        s_->pkl.push_back(kEmptyTuple);
        s_->pkl.push_back(kReduce);
    } else {
        s_->pkl.push_back(kEmptyDict);
    }
    s_->pkl.push_back(kMark);
    s_->open.push_back('d');
}

void TorchSaveWriter::end_dict() {
    if (s_->open.empty() || s_->open.back() != 'd') throw ArgumentError("TorchSaveWriter: end_dict without begin_dict");
    s_->open.pop_back();
    s_->pkl.push_back(kSetItems);
}

void TorchSaveWriter::begin_tuple() {
    s_->pkl.push_back(kMark);
    s_->open.push_back('t');
}

void TorchSaveWriter::end_tuple() {
    if (s_->open.empty() || s_->open.back() != 't') throw ArgumentError("TorchSaveWriter: end_tuple without begin_tuple");
    s_->open.pop_back();
    s_->pkl.push_back(kTuple);
}

void TorchSaveWriter::finish() {
    if (!s_->open.empty()) throw ArgumentError("TorchSaveWriter: a container is still open");
    if (s_->finished) return;
    s_->pkl.push_back(kStop);
    s_->zip.add("archive/data.pkl", s_->pkl);
    for (size_t k = 0; k < s_->storages.size(); ++k) s_->zip.add("archive/data/" + std::to_string(k), s_->storages[k]);
    s_->zip.add("archive/version", "3\n");
    s_->zip.finish();
    s_->finished = true;
}

}  // namespace latentkit
