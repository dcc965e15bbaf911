// safetensors files (SPEC 9): little-endian u64 header length, a JSON header mapping each
// tensor name to {dtype, shape, data_offsets} (plus optional "__metadata__" of strings),
// then the packed row-major data. The reader validates everything before trusting it.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace tether::safetensors {

struct File {
  std::map<std::string, Tensor> tensors;        // by name
  std::vector<std::string> order;               // names in data-offset order
  std::map<std::string, std::string> metadata;  // "__metadata__"
};

// Reads a whole file. Dtypes map to: F32 -> f32, F64 -> f64, F16/BF16 -> f32 (converted),
// I64 -> i64, I32 -> i64, U8/BOOL -> u8. Throws tether::Error naming the file and, where it
// applies, the tensor: truncated file, header too large or not JSON, unknown dtype,
// offsets out of range, overlapping or leaving holes, size not dtype x shape.
File load(const std::string& path);
File parse(const std::string& bytes, const std::string& origin);  // the same, from memory

// Writes f32/f64/i64/u8 CPU or GPU tensors (copied to host) atomically: a temporary file in
// the same folder, then rename, so a crash never leaves a half-written file behind.
void save(const std::string& path, const std::map<std::string, Tensor>& tensors,
          const std::map<std::string, std::string>& metadata = {});

}  // namespace tether::safetensors
