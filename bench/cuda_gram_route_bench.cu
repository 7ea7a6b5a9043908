// Both sides of the structured Gram's per-layer rule (kernels/gram_route.cu): one layer's term
// G += (S expanded over k x k) .* (Delta^T Delta) on synthetic operands, timed with CUDA events for
// each route (the fused tile kernel, on FP64 tensor cores and on CUDA cores, and the cuBLAS route),
// beside its floors timed in the same loop: the GEMM-rate seed Gram alone (the same panels without
// the Hadamard pass: what the route costs at DGEMM's rate) and one cuBLAS syrk into a whole N x N
// temporary (DSYRK's rate, published as far below DGEMM's on Hopper). Sweeps the seed depth d_l
// across the rule's threshold at N = 4096 and 16384 (k = 1) and N = 8192 (k = 8). Counter
// "rule_picks_cublas" says which route the rule takes there. Flops: N^2 d multiply-adds count as
// N^2 d (the lower triangle, 2 flops each). Skips without a device.
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "common.cuh"  // private: the context's state, the per-layer routes, typed cuBLAS bindings
#include "cuda_timer.hpp"
#include "gram_route.cuh"

namespace ngd_bench {
namespace {

using ngd::Matrix;

enum class Side { fused_tensor, fused_cuda_core, cublas_route, gemm_floor, syrk_floor };

const char* side_name(Side s) {
    switch (s) {
        case Side::fused_tensor:
            return "fused_tc";
        case Side::fused_cuda_core:
            return "fused_cuda_core";
        case Side::cublas_route:
            return "cublas_route";
        case Side::gemm_floor:
            return "gemm_floor";
        case Side::syrk_floor:
            return "syrk_floor";
    }
    return "?";
}

// One thread per entry (grid-stride): a deterministic pseudo-random value in [-1, 1).
template <class T>
__global__ void fill_pattern_kernel(T* a, std::int64_t count, std::uint32_t seed) {
    for (std::int64_t e = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; e < count;
         e += std::int64_t(gridDim.x) * blockDim.x) {
        std::uint32_t h = static_cast<std::uint32_t>(e) * 2654435761u ^ seed;
        h ^= h >> 15;
        h *= 2246822519u;
        h ^= h >> 13;
        a[e] = T(double(h) / 2147483648.0 - 1.0);
    }
}

template <class T>
void fill_pattern(cudaStream_t stream, T* a, std::int64_t count, std::uint32_t seed) {
    NGD_LAUNCH(fill_pattern_kernel<T>, ngd::cuda::grid_for(count), ngd::cuda::kThreads, stream, a,
               count, seed);
}

template <class T>
void bm_gram_route(benchmark::State& state, Side side, std::int64_t big_n, std::int64_t depth,
                   std::int64_t k) {
    ngd::Context* ctx = cuda_or_skip(state);
    if (ctx == nullptr) return;
    guarded(state, [&] {
        ngd::detail::CudaState& cs = *ctx->cuda_state();
        const std::int64_t n = big_n / k;
        Matrix<T> seeds(depth, big_n, ngd::MemorySpace::device), s(n, n, ngd::MemorySpace::device);
        Matrix<T> g(big_n, big_n, ngd::MemorySpace::device);
        fill_pattern(cs.stream, seeds.data(), seeds.size(), 1u);
        fill_pattern(cs.stream, s.data(), s.size(), 2u);
        Matrix<T> whole;
        if (side == Side::syrk_floor) whole = Matrix<T>(big_n, big_n, ngd::MemorySpace::device);
        const bool tensor_cores = cs.double_tensor_cores;
        cs.double_tensor_cores = side != Side::fused_cuda_core;
        const std::int64_t width = ngd::cuda::gram_panel_width(cs, big_n, sizeof(T));
        Matrix<T> panel;
        if (side == Side::gemm_floor) panel = Matrix<T>(big_n, width, ngd::MemorySpace::device);
        cublasHandle_t h = cs.blas();
        auto run = [&] {
            switch (side) {
                case Side::fused_tensor:
                case Side::fused_cuda_core:
                    ngd::cuda::gram_layer_fused<T>(cs, seeds.data(), depth, big_n, s.data(), n,
                                                   T(1), k, T(1), g.data(), big_n);
                    return;
                case Side::cublas_route:
                    ngd::cuda::gram_layer_cublas<T>(cs, seeds.data(), depth, big_n, s.data(), n,
                                                    T(1), k, T(1), g.data(), big_n);
                    return;
                case Side::gemm_floor:
                    // The route's own cuBLAS calls, without the Hadamard pass.
                    for (std::int64_t c0 = 0; c0 < big_n; c0 += width) {
                        const std::int64_t w = std::min(width, big_n - c0), m = big_n - c0;
                        const T* left = seeds.data() + c0 * depth;
                        ngd::cuda::syrk(h, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_T, w, depth, T(1),
                                        left, depth, T(0), panel.data(), m);
                        if (m > w) {
                            ngd::cuda::gemm(h, CUBLAS_OP_T, CUBLAS_OP_N, m - w, w, depth, T(1),
                                            left + w * depth, depth, left, depth, T(0),
                                            panel.data() + w, m);
                        }
                    }
                    return;
                case Side::syrk_floor:
                    ngd::cuda::syrk(h, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_T, big_n, depth, T(1),
                                    seeds.data(), depth, T(0), whole.data(), big_n);
                    return;
            }
        };
        EventTimer timer(context_stream(*ctx));
        run();  // warm-up: handles, lazy module loading, the pool's first growth
        double total = 0;
        for (auto _ : state) record(state, timer.time(run), total);
        cs.double_tensor_cores = tensor_cores;
        const double flops = double(big_n) * double(big_n) * double(depth);
        // Bytes of the route's passes over G (read + write) and, for the cuBLAS route, the panel
        // (written by GEMM, read once).
        const double g_bytes = double(big_n) * double(big_n + 1) / 2 * sizeof(T) * 2;
        const double extra = side == Side::cublas_route ? g_bytes : 0.0;
        set_rates(state, total, flops,
                  side == Side::syrk_floor || side == Side::gemm_floor ? 0.0 : g_bytes + extra);
        state.counters["N"] = double(big_n);
        state.counters["d"] = double(depth);
        state.counters["k"] = double(k);
        state.counters["rule_picks_cublas"] =
            ngd::cuda::gram_layer_uses_cublas(cs, depth, big_n) ? 1 : 0;
    });
}

template <class T>
void register_routes() {
    struct Shape {
        std::int64_t big_n, k;
    };
    const Shape shapes[] = {{4096, 1}, {16384, 1}, {8192, 8}};
    const std::int64_t depths[] = {32, 64, 128, 256, 512, 1024, 2048};
    const Side sides[] = {Side::fused_tensor, Side::fused_cuda_core, Side::cublas_route,
                          Side::gemm_floor, Side::syrk_floor};
    for (const Shape& sh : shapes) {
        for (std::int64_t d : depths) {
            for (Side side : sides) {
                if (side == Side::fused_cuda_core && sizeof(T) == sizeof(float)) continue;
                const std::string name = "cuda/gram_route/" + std::string(side_name(side)) +
                                         "/N=" + std::to_string(sh.big_n) +
                                         "/d=" + std::to_string(d) + "/k=" + std::to_string(sh.k) +
                                         "/" + precision_name<T>();
                benchmark::RegisterBenchmark(
                    name.c_str(),
                    [=](benchmark::State& st) { bm_gram_route<T>(st, side, sh.big_n, d, sh.k); })
                    ->UseManualTime()
                    ->MinTime(0.1)
                    ->Unit(benchmark::kMillisecond);
            }
        }
    }
}

const bool registered = [] {
    register_routes<double>();
    register_routes<float>();
    return true;
}();

}  // namespace
}  // namespace ngd_bench
