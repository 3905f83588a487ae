// libFuzzer target: torch.save files (PyTorch's zip archives and legacy streams) through the zip
// reader and the data-only pickle reader.
#include "targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    latentkit::fuzz::torch_save_one(data, size);
    return 0;
}
