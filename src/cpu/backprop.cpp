// cpu backward stages (mirrors src/reference/backprop.cpp): the seeds Delta_l, one GEMM
// w_l W_l^T Delta_l per layer followed by an OpenMP pass for act'(z); and A^T c by its own
// backprop with cotangent M_i c_i, whose weight gradients are one GEMM v a^T per layer.
#include <cstdint>
#include <vector>

#include "cpu/blas.hpp"
#include "cpu/threads.hpp"
#include "stages.hpp"

namespace ngd::cpu {
namespace {

// Entry (row, c) of M_i = block i of factor (k x kn); M = I when the factor is empty.
template <class T>
double factor_entry(MatrixView<const T> factor, std::int64_t i, std::int64_t row, std::int64_t c,
                    std::int64_t k) {
    if (factor.empty()) return row == c ? 1.0 : 0.0;
    return double(factor(row, i * k + c));
}

// dst (n_in x cols) = dact (.) (w W^T src): W n_out x n_in, src n_out x cols, dact n_in x
// (cols / cols_per_sample).
template <class T>
void backprop_through_layer(const T* weights, double w_mult, std::int64_t n_out, std::int64_t n_in,
                            const T* src, const Matrix<T>& dact, std::int64_t cols,
                            std::int64_t cols_per_sample, T* dst) {
    if (cols == 0 || n_in == 0) return;
    blas::gemm(true, false, n_in, cols, n_out, T(w_mult), weights, n_out, src, n_out, T(0), dst,
               n_in);
#pragma omp parallel for schedule(static) if (cols * n_in > kParallelMinEntries)
    for (std::int64_t col = 0; col < cols; ++col) {
        const T* da = dact.data() + (col / cols_per_sample) * n_in;
        T* d = dst + col * n_in;
        for (std::int64_t c = 0; c < n_in; ++c) d[c] *= da[c];
    }
}

}  // namespace

template <class T>
void backprop_seeds(Context& ctx, const Mlp& model, const T* theta, const ForwardState<T>& state,
                    MatrixView<const T> factor, MatrixView<const T> rows,
                    std::vector<Matrix<T>>& seeds) {
    // seeds[l]: d_l x N with N = n k; factor: k x kn or empty; rows: 1 x n or empty.
    ThreadScope threads(ctx);
    const std::int64_t n_layers = model.n_layers();
    const std::int64_t k = model.n_outputs();
    const std::int64_t n = state.outputs.cols();
    const std::int64_t n_cols = n * k;
    const double scale = model.output_scale();
    seeds.clear();
    seeds.resize(n_layers);

    // Last layer: seed (i, c) = s act'(z_L) (.) M_i[:, c], or s M_i act'(z_L)[row_i] e_{row_i}.
    const std::int64_t last = n_layers - 1;
    const Matrix<T>& dact_last = state.dact[last];
    Matrix<T> top(model.n_last(), n_cols);
    const bool select = model.selects_output_row();
#pragma omp parallel for schedule(static) if (n * k * model.n_last() > kParallelMinEntries)
    for (std::int64_t i = 0; i < n; ++i) {
        for (std::int64_t c = 0; c < k; ++c) {
            const std::int64_t col = i * k + c;
            if (select) {
                const auto row = static_cast<std::int64_t>(rows.data[i * rows.ld]);
                const double m = factor_entry(factor, i, 0, 0, 1);
                top(row, col) = T(scale * m * double(dact_last(row, i)));
            } else {
                for (std::int64_t o = 0; o < k; ++o) {
                    const double m = factor_entry(factor, i, o, c, k);
                    top(o, col) = T(scale * m * double(dact_last(o, i)));
                }
            }
        }
    }
    seeds[last] = std::move(top);

    // Delta_{l-1} = act'(z_{l-1}) (.) (w_l W_l^T Delta_l).
    for (std::int64_t l = last; l > 0; --l) {
        const std::int64_t n_out = model.layer(l).n_out;
        const std::int64_t n_in = model.fan_in(l);
        Matrix<T> below(n_in, n_cols);
        backprop_through_layer(theta + model.weight_offset(l), model.weight_multiplier(l), n_out,
                               n_in, seeds[l].data(), state.dact[l - 1], n_cols, k, below.data());
        seeds[l - 1] = std::move(below);
    }
}

template <class T>
void transpose_product(Context& ctx, const Mlp& model, const T* theta, MatrixView<const T> x,
                       const ForwardState<T>& state, MatrixView<const T> factor,
                       MatrixView<const T> rows, MatrixView<const T> c, T* out) {
    // x: d_0 x n; c: k x n; factor: k x kn or empty; rows: 1 x n or empty; out: p entries.
    ThreadScope threads(ctx);
    const std::int64_t n_layers = model.n_layers();
    const std::int64_t k = model.n_outputs();
    const std::int64_t n = x.cols;
    const double scale = model.output_scale();
    const std::int64_t n_params = model.n_params();
#pragma omp parallel for schedule(static) if (n_params > kParallelMinEntries)
    for (std::int64_t q = 0; q < n_params; ++q) out[q] = T(0);

    // v_L = s act'(z_L) (.) P (M_i c_i) (d_L x n).
    const std::int64_t last = n_layers - 1;
    Matrix<T> v(model.n_last(), n);
    for (std::int64_t i = 0; i < n; ++i) {
        for (std::int64_t o = 0; o < k; ++o) {
            double g = 0;
            for (std::int64_t cc = 0; cc < k; ++cc) {
                g += factor_entry(factor, i, o, cc, k) * double(c(cc, i));
            }
            const std::int64_t row =
                model.selects_output_row() ? static_cast<std::int64_t>(rows.data[i * rows.ld]) : o;
            v(row, i) = T(scale * double(state.dact[last](row, i)) * g);
        }
    }

    std::vector<T> ones(static_cast<std::size_t>(n), T(1));
    for (std::int64_t l = last; l >= 0; --l) {
        const Layer& layer = model.layer(l);
        const std::int64_t n_out = layer.n_out;
        const std::int64_t n_in = model.fan_in(l);
        const double w_mult = model.weight_multiplier(l);
        const T* a_in = l == 0 ? x.data : state.act[l - 1].data();
        const std::int64_t ld_in = l == 0 ? x.ld : n_in;
        if (layer.trainable && n > 0) {
            // grad W_l = w_l v a_{l-1}^T (n_out x n_in); grad b_l = b_mult v 1.
            blas::gemm(false, true, n_out, n_in, n, T(w_mult), v.data(), n_out, a_in, ld_in, T(0),
                       out + model.weight_offset(l), n_out);
            if (layer.bias) {
                blas::gemv(false, n_out, n, T(model.bias_multiplier(l)), v.data(), n_out,
                           ones.data(), T(0), out + model.bias_offset(l));
            }
        }
        if (l > 0) {
            // v_{l-1} = act'(z_{l-1}) (.) (w_l W_l^T v_l).
            Matrix<T> below(n_in, n);
            backprop_through_layer(theta + model.weight_offset(l), w_mult, n_out, n_in, v.data(),
                                   state.dact[l - 1], n, 1, below.data());
            v = std::move(below);
        }
    }
}

template void backprop_seeds<float>(Context&, const Mlp&, const float*, const ForwardState<float>&,
                                    MatrixView<const float>, MatrixView<const float>,
                                    std::vector<Matrix<float>>&);
template void backprop_seeds<double>(Context&, const Mlp&, const double*,
                                     const ForwardState<double>&, MatrixView<const double>,
                                     MatrixView<const double>, std::vector<Matrix<double>>&);
template void transpose_product<float>(Context&, const Mlp&, const float*, MatrixView<const float>,
                                       const ForwardState<float>&, MatrixView<const float>,
                                       MatrixView<const float>, MatrixView<const float>, float*);
template void transpose_product<double>(Context&, const Mlp&, const double*,
                                        MatrixView<const double>, const ForwardState<double>&,
                                        MatrixView<const double>, MatrixView<const double>,
                                        MatrixView<const double>, double*);

}  // namespace ngd::cpu
