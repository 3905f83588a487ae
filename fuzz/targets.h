#pragma once
// Fuzz entry points shared by the libFuzzer binaries and the CTest corpus replay: each parses
// untrusted bytes and must never crash, only throw latentkit::Error.
#include <cstddef>
#include <cstdint>

namespace latentkit::fuzz {

/// Parses bytes as a pickle and walks every tensor; must never crash, only throw latentkit::Error.
void pickle_one(const uint8_t* data, size_t size);
/// Parses bytes as a torch.save file (zip archive or legacy stream) and walks every tensor.
void torch_save_one(const uint8_t* data, size_t size);
/// Opens bytes as a zip archive and reads every member.
void zip_one(const uint8_t* data, size_t size);
/// Decodes bytes as a PNG image.
void png_one(const uint8_t* data, size_t size);
/// Parses bytes as a numpy .npz (zip of .npy arrays).
void npz_one(const uint8_t* data, size_t size);
/// Parses bytes as safetensors and reads every tensor; must never crash, only throw latentkit::Error.
void safetensors_one(const uint8_t* data, size_t size);

}  // namespace latentkit::fuzz
