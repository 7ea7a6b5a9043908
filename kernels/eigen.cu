// CUDA side of the failure ladder's last rung (mirrors src/reference/eigen.cpp): the trace that
// scales the first damping raise, the symmetric eigendecomposition of the damped Gram by
// cusolverDnXsyevd, and the pseudo-inverse of its eigenvalues. A rare path: it may allocate.
#include <algorithm>
#include <cstdint>
#include <cub/block/block_reduce.cuh>
#include <string>

#include "common.cuh"
#include "ngd/error.hpp"
#include "stages.hpp"

namespace ngd::cuda {
namespace {

namespace cub = CUB_NS_QUALIFIER;

constexpr std::int64_t kMaxSumBlocks = 1024;

// One thread per diagonal entry (grid-stride); per block a CUB sum in double into partials[block].
template <class T>
__global__ void trace_partials_kernel(const T* __restrict__ g, std::int64_t ldg, std::int64_t n,
                                      double* __restrict__ partials) {
    double sum = 0;
    for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
         i += std::int64_t(gridDim.x) * blockDim.x) {
        sum += double(g[i + i * ldg]);
    }
    using Reduce = cub::BlockReduce<double, kThreads>;
    __shared__ typename Reduce::TempStorage storage;
    const double block_sum = Reduce(storage).Sum(sum);
    if (threadIdx.x == 0) partials[blockIdx.x] = block_sum;
}

// One thread per entry (grid-stride): x_i = x_i / w_i where w_i > cutoff, else 0.
template <class T>
__global__ void pseudo_inverse_scale_kernel(std::int64_t n, const T* __restrict__ w, T cutoff,
                                            T* __restrict__ x) {
    for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
         i += std::int64_t(gridDim.x) * blockDim.x) {
        x[i] = w[i] > cutoff ? x[i] / w[i] : T(0);
    }
}

}  // namespace

template <class T>
double trace(Context& ctx, MatrixView<const T> g) {
    if (g.rows == 0) return 0.0;
    Stage stage(ctx);
    const std::int64_t blocks =
        std::min<std::int64_t>((g.rows + kThreads - 1) / kThreads, kMaxSumBlocks);
    Scratch<double> partials(stage.state, blocks);
    NGD_LAUNCH(trace_partials_kernel<T>, static_cast<unsigned int>(blocks), kThreads,
               stage.stream(), g.data, g.ld, g.rows, partials.data());
    return finish_sum(stage.state, partials.data(), blocks);
}

template <class T>
std::int64_t symmetric_eigen(Context& ctx, MatrixView<T> g, MatrixView<const T> shift, T* w) {
    // g: N x N (lower read) -> eigenvectors of g + diag(shift) as columns; w: N, ascending.
    Stage stage(ctx);
    CudaState& state = stage.state;
    const std::int64_t n = g.rows;
    if (n == 0) return 0;
    if (!shift.empty()) add_to_diagonal(stage.stream(), g.data, g.ld, shift.data, n);
    std::size_t device_bytes = 0, host_bytes = 0;
    syevd_buffer_size<T>(state.solver(), state.solver_params(), n, g.data, g.ld, w, &device_bytes,
                         &host_bytes);
    Scratch<unsigned char> work(state, static_cast<std::int64_t>(device_bytes));
    if (host_bytes > state.host_work.size()) state.host_work.resize(host_bytes);
    int* info = static_cast<int*>(state.status_device);
    syevd<T>(state.solver(), state.solver_params(), n, g.data, g.ld, w, work.data(), device_bytes,
             state.host_work.empty() ? nullptr : state.host_work.data(), host_bytes, info);
    auto* host = static_cast<int*>(state.status_host);
    NGD_CUDA_CHECK(
        cudaMemcpyAsync(host, info, sizeof(int), cudaMemcpyDeviceToHost, stage.stream()));
    synchronize_stream(stage.stream());
    if (host[0] < 0) {
        throw CusolverError("ngd::cuda::symmetric_eigen: cusolverDnXsyevd rejected argument " +
                                std::to_string(-host[0]) + " (order " + std::to_string(n) +
                                ", ld " + std::to_string(g.ld) + ")",
                            static_cast<int>(CUSOLVER_STATUS_INVALID_VALUE));
    }
    return host[0];
}

template <class T>
void pseudo_inverse_scale(Context& ctx, std::int64_t n, const T* w, T cutoff, T* x) {
    Stage stage(ctx);
    NGD_LAUNCH(pseudo_inverse_scale_kernel<T>, grid_for(n), kThreads, stage.stream(), n, w, cutoff,
               x);
}

#define NGD_INSTANTIATE_EIGEN(T)                                                                \
    template double trace<T>(Context&, MatrixView<const T>);                                    \
    template std::int64_t symmetric_eigen<T>(Context&, MatrixView<T>, MatrixView<const T>, T*); \
    template void pseudo_inverse_scale<T>(Context&, std::int64_t, const T*, T, T*);
NGD_INSTANTIATE_EIGEN(float)
NGD_INSTANTIATE_EIGEN(double)
#undef NGD_INSTANTIATE_EIGEN

}  // namespace ngd::cuda
