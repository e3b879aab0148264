// Readers for float32 vector files: `.fvecs` (per row: int32 dimension, then that many floats)
// and `.npy` (NumPy format 1.0-3.0, dtype <f4, C order, 2-D). Errors name the file and what is
// wrong with it.
#pragma once

#include <string>

#include "tools/fashion_mnist.h"

namespace m3vdb::tools {

// Reads the file by its extension (.fvecs or .npy).
Result<Matrix> ReadVectors(const std::string& path);
Result<Matrix> ReadFvecs(const std::string& path);
Result<Matrix> ReadNpy(const std::string& path);

// Writes `m` as .npy (format 1.0, <f4) or .fvecs, by extension (used by tests and tools).
Status WriteVectors(const std::string& path, const Matrix& m);

}  // namespace m3vdb::tools
