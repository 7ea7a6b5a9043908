// CUDA backend: the elementwise vector stages used by the pipeline's bookkeeping (the damping
// vector of the natural-residual form, the Gauss-Newton model of the predicted reduction); mirrors
// src/reference/elementwise.cpp. The pseudo-inverse scale lives in eigen.cu, as in the reference.
#include <cstdint>

#include "common.cuh"
#include "stages.hpp"

namespace ngd::cuda {
namespace {

// One thread per element, grid-stride: z = x .* y (z may alias x or y).
template <class T>
__global__ void multiply_kernel(std::int64_t n, const T* x, const T* y, T* z) {
    for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
         i += std::int64_t(gridDim.x) * blockDim.x) {
        z[i] = x[i] * y[i];
    }
}

// One thread per element, grid-stride: y = value.
template <class T>
__global__ void fill_kernel(std::int64_t n, T value, T* y) {
    for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
         i += std::int64_t(gridDim.x) * blockDim.x) {
        y[i] = value;
    }
}

}  // namespace

template <class T>
void multiply(Context& ctx, std::int64_t n, const T* x, const T* y, T* z) {
    Stage stage(ctx);
    NGD_LAUNCH(multiply_kernel<T>, grid_for(n), kThreads, stage.stream(), n, x, y, z);
}

template <class T>
void fill(Context& ctx, std::int64_t n, T value, T* y) {
    Stage stage(ctx);
    NGD_LAUNCH(fill_kernel<T>, grid_for(n), kThreads, stage.stream(), n, value, y);
}

template void multiply<float>(Context&, std::int64_t, const float*, const float*, float*);
template void multiply<double>(Context&, std::int64_t, const double*, const double*, double*);
template void fill<float>(Context&, std::int64_t, float, float*);
template void fill<double>(Context&, std::int64_t, double, double*);

}  // namespace ngd::cuda
