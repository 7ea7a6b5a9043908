// The FP64 tensor-core probe (first-light risk 1): a kernel that issues only mma.sync in a loop,
// once with the m8n8k4 shape (sm_80+, what the fused Gram kernel uses by default) and once with
// m16n8k4 (sm_90), so the first run says whether m8n8k4 reaches the device's FP64 tensor-core peak
// or half of it. If m16n8k4 is about twice as fast, configure with
// -DCMAKE_CUDA_FLAGS=-DNGD_DMMA_M16 (kernels/gram_tiles.cuh). Reports TFLOP/s, a fraction of a
// second each. Skips without a device (and m16n8k4 on a device before sm_90).
#include <cstdint>
#include <string>

#include "bench_common.hpp"
#include "common.cuh"
#include "cuda_timer.hpp"

namespace ngd_bench {
namespace {

constexpr int kProbeIterations = 256;
constexpr int kChains = 4;  // independent accumulators per warp: enough to hide the MMA latency

// One warp per 32 threads, every warp kProbeIterations x kChains MMAs on register operands (no
// memory traffic in the loop); the sums go to out so the compiler keeps them.
template <bool kM16>
__global__ void dmma_probe_kernel(const double* __restrict__ seed, double* __restrict__ out) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    const double a0 = seed[threadIdx.x % 32], a1 = seed[32 + threadIdx.x % 32];
    const double b = seed[64 + threadIdx.x % 32];
    double acc[kChains][4] = {};
    for (int it = 0; it < kProbeIterations; ++it) {
#pragma unroll
        for (int c = 0; c < kChains; ++c) {
            if constexpr (kM16) {
#if __CUDA_ARCH__ >= 900
                asm volatile(
                    "mma.sync.aligned.m16n8k4.row.col.f64.f64.f64.f64 {%0, %1, %2, %3}, {%4, %5}, "
                    "{%6}, {%0, %1, %2, %3};\n"
                    : "+d"(acc[c][0]), "+d"(acc[c][1]), "+d"(acc[c][2]), "+d"(acc[c][3])
                    : "d"(a0), "d"(a1), "d"(b));
#endif
            } else {
                // Two m8n8k4 per step: the same 16 x 8 x 4 product an m16n8k4 makes.
                asm volatile(
                    "mma.sync.aligned.m8n8k4.row.col.f64.f64.f64.f64 {%0, %1}, {%2}, {%3}, "
                    "{%0, %1};\n"
                    : "+d"(acc[c][0]), "+d"(acc[c][1])
                    : "d"(a0), "d"(b));
                asm volatile(
                    "mma.sync.aligned.m8n8k4.row.col.f64.f64.f64.f64 {%0, %1}, {%2}, {%3}, "
                    "{%0, %1};\n"
                    : "+d"(acc[c][2]), "+d"(acc[c][3])
                    : "d"(a1), "d"(b));
            }
        }
    }
    double sum = 0;
#pragma unroll
    for (int c = 0; c < kChains; ++c) sum += acc[c][0] + acc[c][1] + acc[c][2] + acc[c][3];
    out[blockIdx.x * blockDim.x + threadIdx.x] = sum;
#else
    (void)seed, (void)out;
#endif
}

template <bool kM16>
void bm_dmma_probe(benchmark::State& state) {
    ngd::Context* ctx = cuda_or_skip(state);
    if (ctx == nullptr) return;
    guarded(state, [&] {
        ngd::detail::CudaState& cs = *ctx->cuda_state();
        if (cs.cc_major < (kM16 ? 9 : 8)) {
            state.SkipWithError(kM16 ? "m16n8k4 FP64 needs sm_90" : "FP64 mma needs sm_80");
            return;
        }
        int sms = 0;
        cuda_check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, cs.device),
                   "cudaDeviceGetAttribute");
        const unsigned int blocks = static_cast<unsigned int>(sms) * 4;
        constexpr int kThreadsPerBlock = 256;
        ngd::Matrix<double> seed(96, 1, ngd::MemorySpace::device);
        ngd::Matrix<double> out(std::int64_t(blocks) * kThreadsPerBlock, 1,
                                ngd::MemorySpace::device);
        cuda_check(cudaMemsetAsync(seed.data(), 0, 96 * sizeof(double), cs.stream), "memset");
        auto run = [&] {
            NGD_LAUNCH(dmma_probe_kernel<kM16>, blocks, kThreadsPerBlock, cs.stream,
                       static_cast<const double*>(seed.data()), out.data());
        };
        EventTimer timer(context_stream(*ctx));
        run();
        double total = 0;
        for (auto _ : state) record(state, timer.time(run), total);
        // Both variants do a 16 x 8 x 4 product per chain and step (one m16n8k4 or two m8n8k4).
        const double flops_per_mma = 2.0 * 16 * 8 * 4;
        const double warps = double(blocks) * kThreadsPerBlock / 32;
        set_rates(state, total, warps * kProbeIterations * kChains * flops_per_mma);
        state.counters["SMs"] = sms;
    });
}

const bool registered = [] {
    benchmark::RegisterBenchmark("cuda/probe/dmma_m8n8k4", bm_dmma_probe<false>)
        ->UseManualTime()
        ->MinTime(0.3)
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark("cuda/probe/dmma_m16n8k4", bm_dmma_probe<true>)
        ->UseManualTime()
        ->MinTime(0.3)
        ->Unit(benchmark::kMillisecond);
    return true;
}();

}  // namespace
}  // namespace ngd_bench
