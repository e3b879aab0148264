// M3VDB_VECTOR_CLONES: compile a function twice, for x86-64-v3 (AVX2, FMA) and for the baseline,
// with the choice made once when the library loads (an ifunc), never with -march=native.
// "arch=x86-64-v3" dispatches on the CPU's features; "arch=haswell" would dispatch on the CPU
// model and pick the baseline on every non-Haswell CPU with AVX2 (AMD EPYC, newer Intel).
// Files using it need the options set in common/CMakeLists.txt (m3vdb_vector_options). Not under
// ASan or TSan: an ifunc resolver is instrumented and runs at relocation time, before the
// sanitizer's runtime is set up (TSan: a segfault at start-up).
#pragma once

#if defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#define M3VDB_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define M3VDB_VECTOR_CLONES
#endif
