// CUDA backprop seeds: Delta_l (d_l x N), column i k + c = d (M_i^T f_i)_c / d z_l(x_i). The output
// seed is one elementwise kernel; each earlier layer is one cuBLAS GEMM w_l W_l^T Delta_l over all
// N columns at once, then an elementwise multiply by act'(z) broadcast over the k columns of a
// sample.
#include <cstdint>
#include <vector>

#include "common.cuh"
#include "stages.hpp"

namespace ngd::cuda {
namespace {

// One thread per entry (o, i k + c) of the output seed (d_L x N, grid-stride):
// seed = output_scale act'(z_L)[o, i] M_i[o, c] (M = I when factor is null).
template <class T>
__global__ void output_seed_kernel(const T* __restrict__ dact, const T* __restrict__ factor,
                                   std::int64_t ld_factor, std::int64_t k, double scale,
                                   std::int64_t count, T* __restrict__ seed) {
    for (std::int64_t e = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; e < count;
         e += std::int64_t(gridDim.x) * blockDim.x) {
        const std::int64_t o = e % k;
        const std::int64_t col = e / k;
        const std::int64_t i = col / k;
        const std::int64_t c = col % k;
        const double m =
            factor != nullptr ? double(factor[o + col * ld_factor]) : (o == c ? 1.0 : 0.0);
        seed[e] = T(scale * m * double(dact[o + i * k]));
    }
}

// One thread per entry (o, i) of the output seed (d_L x n, grid-stride), matrix-factorization mode
// (k = 1): only row rows_i of a_L reaches f_i, seed = output_scale M_i act'(z_L)[rows_i, i] there.
template <class T>
__global__ void selected_output_seed_kernel(const T* __restrict__ dact, std::int64_t d_last,
                                            const T* __restrict__ factor, std::int64_t ld_factor,
                                            const T* __restrict__ rows, std::int64_t ld_rows,
                                            double scale, std::int64_t count,
                                            T* __restrict__ seed) {
    for (std::int64_t e = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; e < count;
         e += std::int64_t(gridDim.x) * blockDim.x) {
        const std::int64_t o = e % d_last;
        const std::int64_t i = e / d_last;
        const auto row = static_cast<std::int64_t>(rows[i * ld_rows]);
        const double m = factor != nullptr ? double(factor[i * ld_factor]) : 1.0;
        seed[e] = o == row ? T(scale * m * double(dact[e])) : T(0);
    }
}

// One thread per entry (r, col) of a rows x cols matrix (grid-stride): x *= dact[r, col / per].
template <class T>
__global__ void multiply_by_dact_kernel(T* __restrict__ x, std::int64_t rows, std::int64_t count,
                                        const T* __restrict__ dact, std::int64_t cols_per_sample) {
    for (std::int64_t e = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; e < count;
         e += std::int64_t(gridDim.x) * blockDim.x) {
        const std::int64_t r = e % rows;
        const std::int64_t sample = e / rows / cols_per_sample;
        x[e] *= dact[r + sample * rows];
    }
}

}  // namespace

template <class T>
void multiply_by_dact(cudaStream_t stream, T* seeds, std::int64_t rows, std::int64_t cols,
                      const T* dact, std::int64_t cols_per_sample) {
    NGD_LAUNCH(multiply_by_dact_kernel<T>, grid_for(rows * cols), kThreads, stream, seeds, rows,
               rows * cols, dact, cols_per_sample);
}

template <class T>
void backprop_seeds(Context& ctx, const Mlp& model, const T* theta, const ForwardState<T>& state,
                    MatrixView<const T> factor, MatrixView<const T> rows,
                    std::vector<Matrix<T>>& seeds) {
    // seeds[l]: d_l x N (N = n k); dact[l]: d_l x n; factor: k x kn or empty; rows: 1 x n or empty.
    Stage stage(ctx);
    const std::int64_t n_layers = model.n_layers();
    const std::int64_t k = model.n_outputs();
    const std::int64_t n = state.outputs.cols();
    const std::int64_t n_cols = n * k;
    const double scale = model.output_scale();
    const T* m = factor.empty() ? nullptr : factor.data;
    seeds.resize(static_cast<std::size_t>(n_layers));
    for (std::int64_t l = 0; l < n_layers; ++l)
        ensure_shape(seeds[l], model.layer(l).n_out, n_cols);
    if (n_cols == 0) return;

    const std::int64_t last = n_layers - 1;
    const std::int64_t d_last = model.n_last();
    Matrix<T>& top = seeds[last];
    if (model.selects_output_row()) {
        NGD_LAUNCH(selected_output_seed_kernel<T>, grid_for(d_last * n), kThreads, stage.stream(),
                   state.dact[last].data(), d_last, m, factor.ld, rows.data, rows.ld, scale,
                   d_last * n, top.data());
    } else {
        NGD_LAUNCH(output_seed_kernel<T>, grid_for(k * n_cols), kThreads, stage.stream(),
                   state.dact[last].data(), m, factor.ld, k, scale, k * n_cols, top.data());
    }

    // Delta_{l-1} = act'(z_{l-1}) (.) (w_l W_l^T Delta_l): (n_in x n_out)(n_out x N), then the
    // multiply.
    for (std::int64_t l = last; l > 0; --l) {
        const std::int64_t n_out = model.layer(l).n_out;
        const std::int64_t n_in = model.fan_in(l);
        gemm(stage.state.blas(), CUBLAS_OP_T, CUBLAS_OP_N, n_in, n_cols, n_out,
             T(model.weight_multiplier(l)), theta + model.weight_offset(l), n_out, seeds[l].data(),
             n_out, T(0), seeds[l - 1].data(), n_in);
        multiply_by_dact(stage.stream(), seeds[l - 1].data(), n_in, n_cols,
                         state.dact[l - 1].data(), k);
    }
}

template void multiply_by_dact<float>(cudaStream_t, float*, std::int64_t, std::int64_t,
                                      const float*, std::int64_t);
template void multiply_by_dact<double>(cudaStream_t, double*, std::int64_t, std::int64_t,
                                       const double*, std::int64_t);
template void backprop_seeds<float>(Context&, const Mlp&, const float*, const ForwardState<float>&,
                                    MatrixView<const float>, MatrixView<const float>,
                                    std::vector<Matrix<float>>&);
template void backprop_seeds<double>(Context&, const Mlp&, const double*,
                                     const ForwardState<double>&, MatrixView<const double>,
                                     MatrixView<const double>, std::vector<Matrix<double>>&);

}  // namespace ngd::cuda
