// CUDA deferred stages of the step that have no value-returning twin (mirror
// src/deferred_host.inc): the acceptance test's sums, and theta - eta d with the step guard's eta
// computed on the device from the dots in the status block. The other *_into stages live beside
// their twins (dense.cu, loss.cu, solve.cu, mixed_solve.cu). Nothing here synchronises.
#include <algorithm>
#include <cstdint>
#include <cub/block/block_reduce.cuh>

#include "common.cuh"
#include "stages.hpp"
#include "step_guard.hpp"

namespace ngd::cuda {
namespace {

namespace cub = CUB_NS_QUALIFIER;

constexpr std::int64_t kMaxSumBlocks = 1024;

// One thread per row i (grid-stride), D_i = g_ii + shift_i: per block the sums of r_i^2 / D_i and
// u_i^2 / D_i over the rows with D_i finite and > 0, and the count of the others, into
// partials[0..blocks), [blocks..2 blocks), [2 blocks..3 blocks).
template <class T>
__global__ void equilibrated_partials_kernel(const T* __restrict__ g, std::int64_t ldg,
                                             const T* __restrict__ shift, const T* __restrict__ r,
                                             const T* __restrict__ u, std::int64_t n,
                                             double* __restrict__ partials) {
    double rr = 0, uu = 0, bad = 0;
    for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
         i += std::int64_t(gridDim.x) * blockDim.x) {
        const double d = double(g[i + i * ldg]) + (shift != nullptr ? double(shift[i]) : 0.0);
        if (!(d > 0 && isfinite(d))) {
            bad += 1;
            continue;
        }
        rr += double(r[i]) * double(r[i]) / d;
        uu += double(u[i]) * double(u[i]) / d;
    }
    using Reduce = cub::BlockReduce<double, kThreads>;
    __shared__ typename Reduce::TempStorage storage;
    const double block_rr = Reduce(storage).Sum(rr);
    __syncthreads();  // the temp storage is reused
    const double block_uu = Reduce(storage).Sum(uu);
    __syncthreads();
    const double block_bad = Reduce(storage).Sum(bad);
    if (threadIdx.x == 0) {
        partials[blockIdx.x] = block_rr;
        partials[gridDim.x + blockIdx.x] = block_uu;
        partials[2 * gridDim.x + blockIdx.x] = block_bad;
    }
}

// One thread per entry (grid-stride): eta from the guard on |d| = sqrt(sums[0]) and d^T F d =
// sums[1] / n_samples (every thread computes the same eta; thread 0 stores it), then next = theta
// - eta d with the roundings of copy_vector + axpby(T(-eta), d, 1, next).
template <class T>
__global__ void guarded_step_kernel(std::int64_t p, const T* __restrict__ theta,
                                    const T* __restrict__ d, const double* __restrict__ sums,
                                    double n_samples, StepGuard guard, T* __restrict__ next,
                                    double* __restrict__ eta_word) {
    const double eta = detail::guard_step(guard, sqrt(sums[0]), sums[1] / n_samples).eta;
    const std::int64_t first = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x;
    if (first == 0) *eta_word = eta;
    const T alpha = T(-eta), beta = T(1);
    for (std::int64_t i = first; i < p; i += std::int64_t(gridDim.x) * blockDim.x) {
        const double old = double(beta) * double(theta[i]);  // as axpby_kernel writes it
        next[i] = T(double(alpha) * double(d[i]) + old);
    }
}

}  // namespace

template <class T>
void equilibrated_sums_into(Context& ctx, MatrixView<const T> g, MatrixView<const T> shift,
                            const T* r, const T* u, double* words) {
    // g: N x N (diagonal read); shift: N x 1 or empty; r, u: N; words: 3 doubles.
    Stage stage(ctx);
    const std::int64_t n = g.rows;
    if (n == 0) {
        NGD_CUDA_CHECK(cudaMemsetAsync(words, 0, 3 * sizeof(double), stage.stream()));
        return;
    }
    const std::int64_t blocks =
        std::min<std::int64_t>((n + kThreads - 1) / kThreads, kMaxSumBlocks);
    Scratch<double> partials(stage.state, 3 * blocks);
    NGD_LAUNCH(equilibrated_partials_kernel<T>, static_cast<unsigned int>(blocks), kThreads,
               stage.stream(), g.data, g.ld, shift.empty() ? nullptr : shift.data, r, u, n,
               partials.data());
    for (int q = 0; q < 3; ++q) {
        finish_sum_into(stage.state, partials.data() + q * blocks, blocks, words + q);
    }
}

template <class T>
void guarded_step_into(Context& ctx, std::int64_t p, const T* theta, const T* d, const double* sums,
                       double n_samples, StepGuard guard, T* next, double* eta_word) {
    // theta, d, next: p; sums: d.d and n d^T F d (device); eta_word: 1 double.
    Stage stage(ctx);
    NGD_LAUNCH(guarded_step_kernel<T>, grid_for(std::max<std::int64_t>(p, 1)), kThreads,
               stage.stream(), p, theta, d, sums, n_samples, guard, next, eta_word);
}

#define NGD_INSTANTIATE_DEFERRED(T)                                                               \
    template void equilibrated_sums_into<T>(Context&, MatrixView<const T>, MatrixView<const T>,   \
                                            const T*, const T*, double*);                         \
    template void guarded_step_into<T>(Context&, std::int64_t, const T*, const T*, const double*, \
                                       double, StepGuard, T*, double*);
NGD_INSTANTIATE_DEFERRED(float)
NGD_INSTANTIATE_DEFERRED(double)
#undef NGD_INSTANTIATE_DEFERRED

}  // namespace ngd::cuda
