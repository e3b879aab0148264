// Readers for the two weight containers of a BGE-M3 release: PyTorch's zip-pickle format
// (`pytorch_model.bin`, `colbert_linear.pt`, `sparse_linear.pt`) and safetensors
// (`model.safetensors`). Both map the file and return views into it, without copying.
//
// The pickle reader is restricted: it understands a state dict (a dict or
// collections.OrderedDict of str -> tensor) built from torch._utils._rebuild_tensor_v2 /
// _rebuild_parameter over persistent storages, and refuses every other callable, so loading
// a checkpoint can never run arbitrary code. Errors name the file (and the key when one is
// at fault).
#pragma once

#include <string>

#include "embedder/detail/tensor.h"
#include "m3vdb/status.h"

namespace m3vdb::embedder {

Result<TensorFile> ReadTorchFile(const std::string& path);
Result<TensorFile> ReadSafetensors(const std::string& path);

}  // namespace m3vdb::embedder
