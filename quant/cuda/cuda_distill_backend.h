// The Distill-VQ step on a CUDA device: the same forward and backward pass as the CPU backend
// (quant/detail/distill_step.h), with cuBLAS for every GEMM and kernels for the code assignment
// (hard argmin forward, softmax backward), the L2 score terms, ListNet and the scatter of
// gradients into codewords and centroids. Compiled when nvcc is found (cuda_distill_backend.cu);
// otherwise cuda_distill_backend_none.cc is built and the factory reports Unavailable.
//
// Every reduction has a fixed order (no atomics), so a step is deterministic on a given GPU and
// toolkit; it differs from the CPU backend only by float rounding (GEMM summation order, and a
// code that flips where two codewords are within rounding of each other).
#pragma once

#include <memory>

#include "m3vdb/status.h"
#include "quant/distill_trainer.h"

namespace m3vdb::quant {

// Uses device 0. Unavailable when CUDA was not compiled in or no GPU is usable.
Result<std::unique_ptr<DistillBackend>> CreateCudaDistillBackend();

}  // namespace m3vdb::quant
