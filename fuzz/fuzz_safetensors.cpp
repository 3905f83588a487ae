// libFuzzer target: the safetensors reader.
#include "targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    latentkit::fuzz::safetensors_one(data, size);
    return 0;
}
