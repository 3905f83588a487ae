#include "targets.h"

#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "latentkit/error.h"
#include "latentkit/tensor_data.h"
#include "pickle.h"

namespace latentkit::fuzz {

void pickle_one(const uint8_t* data, size_t size) {
    try {
        pickle::Limits limits;
        limits.max_values = 1'000'000;
        auto doc = pickle::parse(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz", limits);
        // Walk everything reachable (iteratively: values may nest deeply or form cycles) and convert tensors.
        std::vector<const pickle::Value*> todo{doc->root};
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
