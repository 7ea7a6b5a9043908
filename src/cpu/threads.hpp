// How a cpu stage runs on its context's threads. OpenMP loops and the OpenMP build of OpenBLAS both
// take their thread count from the calling thread's nthreads-var (OpenBLAS reads
// omp_get_max_threads() at every call), so a stage sets that per-thread value for its duration and
// restores it: two contexts used from two threads never write each other's setting.
#pragma once

#include <omp.h>

#include "ngd/context.hpp"

namespace ngd::cpu {

/// For the lifetime of the object, the calling thread's OpenMP thread count is ctx.n_threads()
/// (unchanged for 0, OpenMP's default). Not copyable; restores the previous value on destruction.
class ThreadScope {
  public:
    explicit ThreadScope(const Context& ctx) : previous_(omp_get_max_threads()) {
        if (ctx.n_threads() > 0 && ctx.n_threads() != previous_) {
            omp_set_num_threads(ctx.n_threads());
            changed_ = true;
        }
    }
    ~ThreadScope() {
        if (changed_) omp_set_num_threads(previous_);
    }
    ThreadScope(const ThreadScope&) = delete;
    ThreadScope& operator=(const ThreadScope&) = delete;

  private:
    int previous_;
    bool changed_ = false;
};

}  // namespace ngd::cpu
