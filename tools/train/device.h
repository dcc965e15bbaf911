// --device and --tf32, shared by every subcommand that computes: which device runs the model,
// checked against this build and the visible GPUs before any work starts.
#pragma once
#include <string>

#include "core/device.h"
#include "data/loader.h"

namespace tether::train {

// Parses --device ("cpu", "cuda", "cuda:N") and checks it can be used here: a CUDA device needs
// a build with the back end and a visible GPU of that index. Throws naming --device.
Device resolve_device(const std::string& text);
// resolve_device, and sets the TF32 mode (--tf32: conv, all, none; core/device.h).
Device setup_device(const std::string& device, const std::string& tf32);

// A batch's images and labels on `device` (asynchronous from the loader's pinned buffers).
struct DeviceBatch {
  Tensor images, labels;
};
DeviceBatch to_device(const data::Batch& batch, Device device);

// Loader options whose batches are allocated in pinned host memory when the model runs on a GPU
// (so their copies overlap with compute), unchanged on the CPU.
data::LoaderOptions pinned_for(data::LoaderOptions options, Device device);

}  // namespace tether::train
