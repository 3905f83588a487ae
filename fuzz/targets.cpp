#include "targets.h"

#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "latentkit/error.h"
#include "latentkit/npz.h"
#include "latentkit/png.h"
#include "latentkit/tensor_data.h"
#include "latentkit/zip.h"
#include "pickle.h"

namespace latentkit::fuzz {

namespace {
pickle::Limits fuzz_limits() {
    pickle::Limits limits;
    limits.max_values = 1'000'000;
    return limits;
}

// Walks everything reachable (iteratively: values may nest deeply or form cycles) and converts tensors.
void walk(const pickle::Document& doc) {
    std::vector<const pickle::Value*> todo{doc.root};
    std::unordered_set<const pickle::Value*> seen;
    while (!todo.empty()) {
        const pickle::Value* v = todo.back();
        todo.pop_back();
        if (!v || !seen.insert(v).second) continue;
        if (v->kind == pickle::Kind::tensor) {
            try {
                pickle::to_tensor_data(*v, "fuzz");
            } catch (const Error&) {
            }
        }
        for (const pickle::Value* x : v->items) todo.push_back(x);
        todo.push_back(v->state);
    }
}
}  // namespace

void pickle_one(const uint8_t* data, size_t size) {
    try {
        walk(*pickle::parse(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz", fuzz_limits()));
    } catch (const Error&) {
    }
}

void torch_save_one(const uint8_t* data, size_t size) {
    try {
        auto bytes = std::make_shared<const std::string>(reinterpret_cast<const char*>(data), size);
        walk(*pickle::parse_torch_save(bytes, "fuzz", fuzz_limits()));
    } catch (const Error&) {
    }
}

void zip_one(const uint8_t* data, size_t size) {
    try {
        const ZipReader zip(std::make_shared<const std::string>(reinterpret_cast<const char*>(data), size), "fuzz");
        for (size_t k = 0; k < zip.entries().size(); ++k) {
            try {
                zip.read(k);
            } catch (const Error&) {
            }
        }
    } catch (const Error&) {
    }
}

void png_one(const uint8_t* data, size_t size) {
    try {
        decode_png(std::string(reinterpret_cast<const char*>(data), size), "fuzz");
    } catch (const Error&) {
    }
}

void npz_one(const uint8_t* data, size_t size) {
    try {
        parse_npz(std::make_shared<const std::string>(reinterpret_cast<const char*>(data), size), "fuzz");
    } catch (const Error&) {
    }
}

void safetensors_one(const uint8_t* data, size_t size) {
    try {
        auto bytes = std::make_shared<const std::string>(reinterpret_cast<const char*>(data), size);
        const TensorFile f = parse_safetensors(bytes, "fuzz");
        for (const auto& [name, t] : f.tensors) {
            if (t.nbytes() <= (1u << 20)) t.to_floats();
        }
    } catch (const Error&) {
    }
}

}  // namespace latentkit::fuzz
