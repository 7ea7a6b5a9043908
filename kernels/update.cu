// CUDA direction d = A^T c: one backprop with the cotangent M_i c_i per sample (not the Gram's
// seeds, so it costs one column per sample, not k), then per trainable layer one cuBLAS GEMM grad
// W_l = w_l v_l a_{l-1}^T and one GEMV for the bias (row sums of v_l). Frozen layers get zeros.
#include <algorithm>
#include <cstdint>

#include "common.cuh"
#include "stages.hpp"

namespace ngd::cuda {
namespace {

// One thread per entry (o, i) of the top cotangent v_L (k x n, grid-stride):
// v = output_scale act'(z_L)[o, i] (M_i c_i)_o, with M = I when factor is null.
template <class T>
__global__ void output_cotangent_kernel(const T* __restrict__ dact, const T* __restrict__ factor,
                                        std::int64_t ld_factor, const T* __restrict__ c,
                                        std::int64_t ldc, std::int64_t k, double scale,
                                        std::int64_t count, T* __restrict__ v) {
    for (std::int64_t e = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; e < count;
         e += std::int64_t(gridDim.x) * blockDim.x) {
        const std::int64_t o = e % k;
        const std::int64_t i = e / k;
        double g;
        if (factor == nullptr) {
            g = double(c[o + i * ldc]);
        } else {
            g = 0;
            for (std::int64_t cc = 0; cc < k; ++cc) {
                g += double(factor[o + (i * k + cc) * ld_factor]) * double(c[cc + i * ldc]);
            }
        }
        v[e] = T(scale * double(dact[e]) * g);
    }
}

// One thread per entry (o, i) of v_L (d_L x n, grid-stride), matrix-factorization mode (k = 1):
// v = output_scale act'(z_L)[o, i] M_i c_i on row o = rows_i, 0 elsewhere.
template <class T>
__global__ void selected_cotangent_kernel(const T* __restrict__ dact, std::int64_t d_last,
                                          const T* __restrict__ factor, std::int64_t ld_factor,
                                          const T* __restrict__ rows, std::int64_t ld_rows,
                                          const T* __restrict__ c, std::int64_t ldc, double scale,
                                          std::int64_t count, T* __restrict__ v) {
    for (std::int64_t e = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; e < count;
         e += std::int64_t(gridDim.x) * blockDim.x) {
        const std::int64_t o = e % d_last;
        const std::int64_t i = e / d_last;
        const auto row = static_cast<std::int64_t>(rows[i * ld_rows]);
        const double m = factor != nullptr ? double(factor[i * ld_factor]) : 1.0;
        v[e] = o == row ? T(scale * double(dact[e]) * m * double(c[i * ldc])) : T(0);
    }
}

// One thread per entry (grid-stride): y = 1.
template <class T>
__global__ void fill_ones_kernel(T* __restrict__ y, std::int64_t n) {
    for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
         i += std::int64_t(gridDim.x) * blockDim.x) {
        y[i] = T(1);
    }
}

}  // namespace

template <class T>
void transpose_product(Context& ctx, const Mlp& model, const T* theta, MatrixView<const T> x,
                       const ForwardState<T>& state, MatrixView<const T> factor,
                       MatrixView<const T> rows, MatrixView<const T> c, T* out) {
    // x: d_0 x n; c: k x n; factor: k x kn or empty; rows: 1 x n or empty; out: p entries.
    Stage stage(ctx);
    const cudaStream_t stream = stage.stream();
    const std::int64_t n_layers = model.n_layers();
    const std::int64_t k = model.n_outputs();
    const std::int64_t n = x.cols;
    const T* m = factor.empty() ? nullptr : factor.data;

    // Frozen layers, and everything when there are no samples, are zero.
    std::int64_t lowest_trainable = n_layers;
    for (std::int64_t l = n_layers - 1; l >= 0; --l) {
        const Layer& layer = model.layer(l);
        if (layer.trainable && n > 0) {
            lowest_trainable = l;
            continue;
        }
        const std::int64_t size = layer.n_out * model.fan_in(l) + (layer.bias ? layer.n_out : 0);
        NGD_CUDA_CHECK(cudaMemsetAsync(out + model.weight_offset(l), 0, sizeof(T) * size, stream));
    }
    if (lowest_trainable == n_layers) return;

    // Two d_max x n buffers for v_l and v_{l-1}, and a ones vector for the bias row sums.
    std::int64_t d_max = 0;
    for (std::int64_t l = lowest_trainable; l < n_layers; ++l) {
        d_max = std::max(d_max, model.layer(l).n_out);
    }
    Scratch<T> v(stage.state, d_max * n), v_below(stage.state, d_max * n), ones(stage.state, n);
    NGD_LAUNCH(fill_ones_kernel<T>, grid_for(n), kThreads, stream, ones.data(), n);

    const std::int64_t last = n_layers - 1;
    const std::int64_t d_last = model.n_last();
    if (model.selects_output_row()) {
        NGD_LAUNCH(selected_cotangent_kernel<T>, grid_for(d_last * n), kThreads, stream,
                   state.dact[last].data(), d_last, m, factor.ld, rows.data, rows.ld, c.data, c.ld,
                   model.output_scale(), d_last * n, v.data());
    } else {
        NGD_LAUNCH(output_cotangent_kernel<T>, grid_for(k * n), kThreads, stream,
                   state.dact[last].data(), m, factor.ld, c.data, c.ld, k, model.output_scale(),
                   k * n, v.data());
    }

    T* v_cur = v.data();
    T* v_next = v_below.data();
    for (std::int64_t l = last; l >= lowest_trainable; --l) {
        const Layer& layer = model.layer(l);
        const std::int64_t n_out = layer.n_out;
        const std::int64_t n_in = model.fan_in(l);
        const double w_mult = model.weight_multiplier(l);
        if (layer.trainable) {
            // grad W_l = w_l v_l a_{l-1}^T: (n_out x n)(n x n_in).
            const T* a_in = l == 0 ? x.data : state.act[l - 1].data();
            const std::int64_t ld_in = l == 0 ? x.ld : n_in;
            gemm(stage.state.blas(), CUBLAS_OP_N, CUBLAS_OP_T, n_out, n_in, n, T(w_mult), v_cur,
                 n_out, a_in, ld_in, T(0), out + model.weight_offset(l), n_out);
            if (layer.bias) {
                // grad b_l = b_mult v_l 1.
                gemv(stage.state.blas(), CUBLAS_OP_N, n_out, n, T(model.bias_multiplier(l)), v_cur,
                     n_out, ones.data(), T(0), out + model.bias_offset(l));
            }
        }
        if (l > lowest_trainable) {
            // v_{l-1} = act'(z_{l-1}) (.) (w_l W_l^T v_l): (n_in x n_out)(n_out x n).
            gemm(stage.state.blas(), CUBLAS_OP_T, CUBLAS_OP_N, n_in, n, n_out, T(w_mult),
                 theta + model.weight_offset(l), n_out, v_cur, n_out, T(0), v_next, n_in);
            multiply_by_dact(stream, v_next, n_in, n, state.dact[l - 1].data(), 1);
            std::swap(v_cur, v_next);
        }
    }
}

template void transpose_product<float>(Context&, const Mlp&, const float*, MatrixView<const float>,
                                       const ForwardState<float>&, MatrixView<const float>,
                                       MatrixView<const float>, MatrixView<const float>, float*);
template void transpose_product<double>(Context&, const Mlp&, const double*,
                                        MatrixView<const double>, const ForwardState<double>&,
                                        MatrixView<const double>, MatrixView<const double>,
                                        MatrixView<const double>, double*);

}  // namespace ngd::cuda
