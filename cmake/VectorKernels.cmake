# m3vdb_vector_kernels(<source>...): options for sources written to be auto-vectorized, with
# M3VDB_VECTOR_CLONES (common/detail/vector_clones.h) for per-CPU variants.
# - -O3 in optimized builds (RelWithDebInfo's -O2 leaves their loops scalar) and
#   -fno-trapping-math (without it GCC does not if-convert their float clamps).
# - Under TSan, -fno-sanitize=thread: target_clones resolvers (ifuncs) run while the dynamic
#   loader relocates, before the TSan runtime is up, and crash every binary at start when
#   instrumented. These sources are pure arithmetic on caller-owned buffers; TSan still sees
#   every caller.
function(m3vdb_vector_kernels)
  set(options "-fno-trapping-math;$<$<CONFIG:RelWithDebInfo,Release>:-O3>")
  if(M3VDB_SANITIZE MATCHES "thread")
    list(APPEND options "-fno-sanitize=thread")
  endif()
  # Clang (the fuzz preset) warns when an `omp simd` loop stays scalar, as it does under the
  # sanitizers' instrumentation; the loops are correct either way.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    list(APPEND options "-Wno-pass-failed")
  endif()
  set_source_files_properties(${ARGN} PROPERTIES COMPILE_OPTIONS "${options}")
endfunction()
