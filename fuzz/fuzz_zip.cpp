// libFuzzer target: see targets.h.
#include "targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    latentkit::fuzz::zip_one(data, size);
    return 0;
}
