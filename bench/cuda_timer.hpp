// CUDA-event timing for the benchmarks: events recorded on the ngd context's own stream around the
// timed work, so a benchmark reports device time (what the GPU spent between the two events), not
// host time with launch latency and synchronisation noise. Host-only CUDA runtime API: usable from
// .cpp files. Only compiled with NGD_WITH_CUDA.
#pragma once

#include <benchmark/benchmark.h>
#include <cuda_runtime.h>

#include <string>

#include "ngd/context.hpp"
#include "ngd/error.hpp"

namespace ngd_bench {

/// The benchmarks' CUDA context on device 0, made on first use; null when CUDA cannot be used, with
/// the reason in *why. Defined in cuda_context.cu.
ngd::Context* cuda_context(std::string* why);

/// The stream the context's stages run on (it reads the private state). Defined in cuda_context.cu.
cudaStream_t context_stream(ngd::Context& ctx);

/// The CUDA context, or null after state.SkipWithError("no usable CUDA device: ...").
inline ngd::Context* cuda_or_skip(benchmark::State& state) {
    std::string why;
    ngd::Context* ctx = cuda_context(&why);
    if (ctx == nullptr) {
        // The library's DeviceUnavailable message already opens with the phrase.
        const std::string head = "no usable CUDA device";
        state.SkipWithError(
            (why.find(head) != std::string::npos ? why : head + ": " + why).c_str());
    }
    return ctx;
}

inline void cuda_check(cudaError_t status, const char* what) {
    if (status != cudaSuccess) {
        throw ngd::CudaError(std::string("ngd_bench: ") + what + ": " + cudaGetErrorString(status),
                             int(status));
    }
}

/// A pair of CUDA events on one stream: start() before the timed work, stop() after it.
class EventTimer {
  public:
    explicit EventTimer(cudaStream_t stream) : stream_(stream) {
        cuda_check(cudaEventCreate(&start_), "cudaEventCreate");
        cuda_check(cudaEventCreate(&stop_), "cudaEventCreate");
    }
    ~EventTimer() {
        cudaEventDestroy(start_);
        cudaEventDestroy(stop_);
    }
    EventTimer(const EventTimer&) = delete;
    EventTimer& operator=(const EventTimer&) = delete;

    void start() { cuda_check(cudaEventRecord(start_, stream_), "cudaEventRecord"); }
    /// Seconds of device time since start(). Waits for the stop event.
    double stop() {
        cuda_check(cudaEventRecord(stop_, stream_), "cudaEventRecord");
        cuda_check(cudaEventSynchronize(stop_), "cudaEventSynchronize");
        float ms = 0;
        cuda_check(cudaEventElapsedTime(&ms, start_, stop_), "cudaEventElapsedTime");
        return 1e-3 * double(ms);
    }
    /// Device seconds of fn().
    template <class F>
    double time(F&& fn) {
        start();
        fn();
        return stop();
    }

  private:
    cudaStream_t stream_;
    cudaEvent_t start_ = nullptr, stop_ = nullptr;
};

}  // namespace ngd_bench
