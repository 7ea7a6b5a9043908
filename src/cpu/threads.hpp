// How a cpu stage runs on its context's threads. OpenMP loops and OpenBLAS's OpenMP build both take
// their thread count from the calling thread's nthreads-var (OpenBLAS reads omp_get_max_threads()
// at every call), so a stage sets that per-thread value for its duration and restores it: contexts
// in different threads never write each other's setting (OpenBLAS's own global copy of the last
// count is refreshed from the caller's at each call; it can affect speed, never results).
#pragma once

#include <omp.h>

#include <cstdint>

#include "ngd/context.hpp"

namespace ngd::cpu {

/// OpenMP loops over fewer entries than this run on the calling thread (`if` clause): waking a
/// team and meeting at its barrier costs more than a pass over 32k numbers, and far more on a
/// machine whose cores are shared.
constexpr std::int64_t kParallelMinEntries = std::int64_t(1) << 15;

/// For the lifetime of the object, the calling thread's OpenMP thread count is ctx.n_threads()
/// (unchanged for 0, OpenMP's default), or 1 when `serial` (work too small to share). Not
/// copyable; restores the previous value on destruction.
class ThreadScope {
  public:
    explicit ThreadScope(const Context& ctx, bool serial = false)
        : previous_(omp_get_max_threads()) {
        const int wanted = serial ? 1 : ctx.n_threads();
        if (wanted > 0 && wanted != previous_) {
            omp_set_num_threads(wanted);
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
