// libFuzzer target: the data-only pickle reader.
#include "targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    latentkit::fuzz::pickle_one(data, size);
    return 0;
}
