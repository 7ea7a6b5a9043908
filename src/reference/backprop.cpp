// Reference backward stages: the backprop seeds Delta_l (one column per row of A, the sensitivity
// of (M_i^T f_i)_c to z_l), which the Gram and explicit-Jacobian stages consume, and the product
// A^T c, computed by its own single backprop with cotangent M_i c_i so that it checks the seeds,
// not reuses them.
#include <cstdint>
#include <vector>

#include "reference/column_dot.hpp"
#include "stages.hpp"

namespace ngd::reference {
namespace {

// Entry (row, c) of M_i = block i of factor (k x kn); M = I when the factor is empty.
template <class T>
double factor_entry(MatrixView<const T> factor, std::int64_t i, std::int64_t row, std::int64_t c,
                    std::int64_t k) {
    if (factor.empty()) return row == c ? 1.0 : 0.0;
    return double(factor(row, i * k + c));
}

// dst = dact (.) (w W^T src) column by column: W is n_out x n_in, src n_out x cols, dst n_in x
// cols, dact n_in x (cols / cols_per_sample). Each entry is a dot of two contiguous columns (W and
// src).
template <class T>
void backprop_through_layer(const T* weights, double w_mult, std::int64_t n_out, std::int64_t n_in,
                            const T* src, const Matrix<T>& dact, std::int64_t cols,
                            std::int64_t cols_per_sample, T* dst) {
    for (std::int64_t col = 0; col < cols; ++col) {
        const T* s = src + col * n_out;
        const std::int64_t sample = col / cols_per_sample;
        for (std::int64_t c = 0; c < n_in; ++c) {
            const double v = w_mult * column_dot(weights + c * n_out, s, n_out);
            dst[c + col * n_in] = T(double(dact(c, sample)) * v);
        }
    }
}

}  // namespace

template <class T>
void backprop_seeds(Context& /*ctx*/, const Mlp& model, const T* theta,
                    const ForwardState<T>& state, MatrixView<const T> factor,
                    MatrixView<const T> rows, std::vector<Matrix<T>>& seeds) {
    // seeds[l]: d_l x N with N = n k; dact[l]: d_l x n; factor: k x kn or empty; rows: 1 x n or
    // empty.
    const std::int64_t n_layers = model.n_layers();
    const std::int64_t k = model.n_outputs();
    const std::int64_t n = state.outputs.cols();
    const std::int64_t n_cols = n * k;
    const double scale = model.output_scale();
    seeds.clear();
    seeds.resize(n_layers);

    // Last layer: d f_i / d z_L = output_scale diag(act'(z_L)) P, with P = I (k = d_L) or
    // P = e_{rows_i} (matrix factorization, k = 1); then column c of P M_i gives row (i, c) of A.
    const std::int64_t last = n_layers - 1;
    const std::int64_t d_last = model.n_last();
    const Matrix<T>& dact_last = state.dact[last];
    Matrix<T> top(d_last, n_cols);
    for (std::int64_t i = 0; i < n; ++i) {
        for (std::int64_t c = 0; c < k; ++c) {
            const std::int64_t col = i * k + c;
            if (model.selects_output_row()) {
                // Only the selected row of a_L reaches f: seed = s M_i act'(z_L)[row_i] e_{row_i}.
                const auto row = static_cast<std::int64_t>(rows.data[i * rows.ld]);
                const double m = factor_entry(factor, i, 0, 0, 1);
                top(row, col) = T(scale * m * double(dact_last(row, i)));
            } else {
                // seed = s act'(z_L) (.) M_i[:, c].
                for (std::int64_t o = 0; o < k; ++o) {
                    const double m = factor_entry(factor, i, o, c, k);
                    top(o, col) = T(scale * m * double(dact_last(o, i)));
                }
            }
        }
    }
    seeds[last] = std::move(top);

    // Earlier layers: Delta_{l-1} = act'(z_{l-1}) (.) (w_l W_l^T Delta_l), one column per row of A.
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
void transpose_product(Context& /*ctx*/, const Mlp& model, const T* theta, MatrixView<const T> x,
                       const ForwardState<T>& state, MatrixView<const T> factor,
                       MatrixView<const T> rows, MatrixView<const T> c, T* out) {
    // x: d_0 x n; c: k x n; factor: k x kn or empty; rows: 1 x n or empty; out: p entries.
    const std::int64_t n_layers = model.n_layers();
    const std::int64_t k = model.n_outputs();
    const std::int64_t n = x.cols;
    const double scale = model.output_scale();
    for (std::int64_t q = 0; q < model.n_params(); ++q) out[q] = T(0);

    // v_L = output_scale act'(z_L) (.) P g_i with the cotangent g_i = M_i c_i (d_L x n).
    const std::int64_t last = n_layers - 1;
    const std::int64_t d_last = model.n_last();
    Matrix<T> v(d_last, n);
    for (std::int64_t i = 0; i < n; ++i) {
        for (std::int64_t o = 0; o < k; ++o) {
            // g_{i,o} = sum_cc M_i[o, cc] c[cc, i].
            double g = 0;
            for (std::int64_t cc = 0; cc < k; ++cc) {
                g += factor_entry(factor, i, o, cc, k) * double(c(cc, i));
            }
            const std::int64_t row =
                model.selects_output_row() ? static_cast<std::int64_t>(rows.data[i * rows.ld]) : o;
            v(row, i) = T(scale * double(state.dact[last](row, i)) * g);
        }
    }

    std::vector<double> grad;
    for (std::int64_t l = last; l >= 0; --l) {
        const Layer& layer = model.layer(l);
        const std::int64_t n_out = layer.n_out;
        const std::int64_t n_in = model.fan_in(l);
        const double w_mult = model.weight_multiplier(l);
        const T* a_in = l == 0 ? x.data : state.act[l - 1].data();
        const std::int64_t ld_in = l == 0 ? x.ld : n_in;
        if (layer.trainable) {
            // grad W_l = w_l sum_i v_i a_{l-1,i}^T, accumulated column by column of W (contiguous).
            grad.assign(n_out * n_in, 0.0);
            for (std::int64_t i = 0; i < n; ++i) {
                const T* v_col = v.data() + i * n_out;
                for (std::int64_t cc = 0; cc < n_in; ++cc) {
                    const double a = a_in[cc + i * ld_in];
                    double* g_col = grad.data() + cc * n_out;
                    for (std::int64_t r = 0; r < n_out; ++r) g_col[r] += double(v_col[r]) * a;
                }
            }
            T* w_out = out + model.weight_offset(l);
            for (std::int64_t q = 0; q < n_out * n_in; ++q) w_out[q] = T(w_mult * grad[q]);
            if (layer.bias) {
                // grad b_l = b_mult sum_i v_i.
                T* b_out = out + model.bias_offset(l);
                for (std::int64_t r = 0; r < n_out; ++r) {
                    double s = 0;
                    for (std::int64_t i = 0; i < n; ++i) s += double(v(r, i));
                    b_out[r] = T(model.bias_multiplier(l) * s);
                }
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

}  // namespace ngd::reference
