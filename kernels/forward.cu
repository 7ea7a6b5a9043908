// CUDA forward pass: per layer one cuBLAS GEMM z = w_l W_l a_{l-1}, then one fused elementwise
// kernel adding the bias and writing a_l = act(z) and act'(z) (kept for backprop and the Gram).
// Activations are evaluated in double in the same accurate forms as src/reference/forward.cpp
// (relu'(0) = 0, tanh' = sech^2, softplus via log1p, gelu's Phi via erfc), then rounded to T.
#include <cstdint>

#include "common.cuh"
#include "stages.hpp"

namespace ngd::cuda {
namespace {

constexpr double kInvSqrt2 = 0.70710678118654752440;
constexpr double kInvSqrt2Pi = 0.39894228040143267794;

// act(z) into *value and act'(z) into *derivative.
__device__ void evaluate_activation(Activation act, double z, double* value, double* derivative) {
    switch (act) {
        case Activation::identity:
            *value = z;
            *derivative = 1.0;
            return;
        case Activation::relu:
            *value = z > 0 ? z : 0.0;
            *derivative = z > 0 ? 1.0 : 0.0;
            return;
        case Activation::tanh: {
            const double sech = 1.0 / cosh(z);  // cosh overflows to Inf for |z| > 710: sech -> 0
            *value = tanh(z);
            *derivative = sech * sech;
            return;
        }
        case Activation::softplus: {
            const double e = exp(-fabs(z));
            *value = (z > 0 ? z : 0.0) + log1p(e);
            *derivative = z >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
            return;
        }
        case Activation::gelu: {
            const double cdf = 0.5 * erfc(-z * kInvSqrt2);
            const double pdf = kInvSqrt2Pi * exp(-0.5 * z * z);
            *value = z * cdf;
            *derivative = cdf + z * pdf;
            return;
        }
    }
    *value = z;
    *derivative = 1.0;
}

// One thread per entry of the rows x n pre-activation (grid-stride):
// z (+ b_mult bias[row]) -> act, act'.
template <class T>
__global__ void bias_activation_kernel(T* __restrict__ act, T* __restrict__ dact,
                                       const T* __restrict__ bias, double b_mult, std::int64_t rows,
                                       std::int64_t count, Activation activation) {
    for (std::int64_t e = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; e < count;
         e += std::int64_t(gridDim.x) * blockDim.x) {
        double z = double(act[e]);
        if (bias != nullptr) z += b_mult * double(bias[e % rows]);
        double value, derivative;
        evaluate_activation(activation, z, &value, &derivative);
        act[e] = T(value);
        dact[e] = T(derivative);
    }
}

// One thread per entry of f (k x n): f = output_scale a_L.
template <class T>
__global__ void scale_output_kernel(const T* __restrict__ last, double scale, std::int64_t count,
                                    T* __restrict__ out) {
    for (std::int64_t e = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; e < count;
         e += std::int64_t(gridDim.x) * blockDim.x) {
        out[e] = T(scale * double(last[e]));
    }
}

// One thread per sample i: f_i = output_scale a_L[rows_i, i] (matrix-factorization mode).
template <class T>
__global__ void select_output_kernel(const T* __restrict__ last, std::int64_t d_last,
                                     const T* __restrict__ rows, std::int64_t rows_ld, double scale,
                                     std::int64_t n, T* __restrict__ out) {
    for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
         i += std::int64_t(gridDim.x) * blockDim.x) {
        const auto row = static_cast<std::int64_t>(rows[i * rows_ld]);
        out[i] = T(scale * double(last[row + i * d_last]));
    }
}

}  // namespace

template <class T>
void forward(Context& ctx, const Mlp& model, const T* theta, MatrixView<const T> x,
             MatrixView<const T> rows, ForwardState<T>& state) {
    // x: d_0 x n. act[l], dact[l]: d_{l+1} x n (contiguous). outputs: k x n.
    Stage stage(ctx);
    const std::int64_t n = x.cols;
    const std::int64_t n_layers = model.n_layers();
    state.act.resize(static_cast<std::size_t>(n_layers));
    state.dact.resize(static_cast<std::size_t>(n_layers));
    for (std::int64_t l = 0; l < n_layers; ++l) {
        const Layer& layer = model.layer(l);
        const std::int64_t n_out = layer.n_out;
        const std::int64_t n_in = model.fan_in(l);
        Matrix<T>& act = state.act[l];
        Matrix<T>& dact = state.dact[l];
        ensure_shape(act, n_out, n);
        ensure_shape(dact, n_out, n);
        if (n == 0) continue;
        const T* a_in = l == 0 ? x.data : state.act[l - 1].data();
        const std::int64_t ld_in = l == 0 ? x.ld : n_in;
        // z = w_l W_l a_{l-1} + b_l bias: (n_out x n_in) (n_in x n), written into act.
        gemm(stage.state.blas(), CUBLAS_OP_N, CUBLAS_OP_N, n_out, n, n_in,
             T(model.weight_multiplier(l)), theta + model.weight_offset(l), n_out, a_in, ld_in,
             T(0), act.data(), n_out);
        const T* bias = layer.bias ? theta + model.bias_offset(l) : nullptr;
        NGD_LAUNCH(bias_activation_kernel<T>, grid_for(n_out * n), kThreads, stage.stream(),
                   act.data(), dact.data(), bias, model.bias_multiplier(l), n_out, n_out * n,
                   layer.activation);
    }

    const Matrix<T>& last = state.act.back();
    const double scale = model.output_scale();
    if (model.selects_output_row()) {
        ensure_shape(state.outputs, 1, n);
        NGD_LAUNCH(select_output_kernel<T>, grid_for(n), kThreads, stage.stream(), last.data(),
                   last.rows(), rows.data, rows.ld, scale, n, state.outputs.data());
    } else {
        ensure_shape(state.outputs, last.rows(), n);
        NGD_LAUNCH(scale_output_kernel<T>, grid_for(last.size()), kThreads, stage.stream(),
                   last.data(), scale, last.size(), state.outputs.data());
    }
}

template void forward<float>(Context&, const Mlp&, const float*, MatrixView<const float>,
                             MatrixView<const float>, ForwardState<float>&);
template void forward<double>(Context&, const Mlp&, const double*, MatrixView<const double>,
                              MatrixView<const double>, ForwardState<double>&);

}  // namespace ngd::cuda
