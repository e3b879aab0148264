// OpenBLAS (pthreads build) keeps one global thread count. Code that parallelizes on its own
// threads and calls single-threaded BLAS from each of them (the encoder's WorkerTeam, the
// Distill-VQ CPU step's OpenMP loops) holds one of these: while any is alive OpenBLAS is set to
// one thread, and the previous setting is restored when the last one ends. Other BLAS users in
// the process (the dense index) run single-threaded meanwhile.
#pragma once

#include <cblas.h>

#include <mutex>

namespace m3vdb {

class SingleThreadedBlas {
 public:
  SingleThreadedBlas() {
    std::lock_guard<std::mutex> lock(mu_);
    if (active_++ == 0) {
      saved_ = openblas_get_num_threads();
      openblas_set_num_threads(1);
    }
  }
  ~SingleThreadedBlas() {
    std::lock_guard<std::mutex> lock(mu_);
    if (--active_ == 0) openblas_set_num_threads(saved_);
  }
  SingleThreadedBlas(const SingleThreadedBlas&) = delete;
  SingleThreadedBlas& operator=(const SingleThreadedBlas&) = delete;

 private:
  static inline std::mutex mu_;
  static inline int active_ = 0;
  static inline int saved_ = 1;
};

}  // namespace m3vdb
