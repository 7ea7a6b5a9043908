// Reference Gram stages: the structured Gram sum_l (a_{l-1}^T a_{l-1} + bias) o (Delta_l^T
// Delta_l), which never forms J; explicit column blocks of A = M^T J; and the SYRK-like a a^T that
// turns those blocks into the Gram. Both Gram products are dots of contiguous columns, tiled so
// that a tile of columns stays in cache while the other operand streams past it once.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "reference/column_dot.hpp"
#include "stages.hpp"

namespace ngd::reference {
namespace {

// Columns per tile: kTile columns of a few thousand doubles stay in L2 while the rest stream by.
constexpr std::int64_t kTile = 16;

// What one trainable layer contributes: its n x n input Gram and its seeds (d_l x N, contiguous).
template <class T>
struct LayerTerm {
    std::vector<double> input_gram;  // n x n, column-major, full
    const T* seeds;
    std::int64_t width;
};

}  // namespace

template <class T>
void gram_structured(Context& /*ctx*/, const Mlp& model, MatrixView<const T> x,
                     const ForwardState<T>& state, const std::vector<Matrix<T>>& seeds,
                     MatrixView<T> g) {
    // x: d_0 x n; seeds[l]: d_l x N; g: N x N, lower triangle written.
    const std::int64_t n = x.cols;
    const std::int64_t k = model.n_outputs();
    const std::int64_t n_rows = n * k;

    // Per trainable layer, the input Gram w_l^2 a_{l-1,i} . a_{l-1,j} + b_mult^2 [bias] (n x n).
    std::vector<LayerTerm<T>> terms;
    for (std::int64_t l = 0; l < model.n_layers(); ++l) {
        const Layer& layer = model.layer(l);
        if (!layer.trainable) continue;
        const std::int64_t n_in = model.fan_in(l);
        const T* a_in = l == 0 ? x.data : state.act[l - 1].data();
        const std::int64_t ld_in = l == 0 ? x.ld : n_in;
        const double w2 = model.weight_multiplier(l) * model.weight_multiplier(l);
        const double b2 = layer.bias ? model.bias_multiplier(l) * model.bias_multiplier(l) : 0.0;
        LayerTerm<T> term{std::vector<double>(n * n), seeds[l].data(), layer.n_out};
        for (std::int64_t j = 0; j < n; ++j) {
            for (std::int64_t i = j; i < n; ++i) {
                const double v = w2 * column_dot(a_in + i * ld_in, a_in + j * ld_in, n_in) + b2;
                term.input_gram[i + j * n] = v;
                term.input_gram[j + i * n] = v;
            }
        }
        terms.push_back(std::move(term));
    }

    // G[a, b] = sum_l input_gram_l[a / k, b / k] (Delta_l[:, a] . Delta_l[:, b]) for a >= b,
    // with row a = i k + c of A; accumulated over layers in double, written once.
    for (std::int64_t b0 = 0; b0 < n_rows; b0 += kTile) {
        const std::int64_t b1 = std::min(b0 + kTile, n_rows);
        for (std::int64_t a = b0; a < n_rows; ++a) {
            for (std::int64_t b = b0; b < std::min(b1, a + 1); ++b) {
                double s = 0;
                for (const LayerTerm<T>& term : terms) {
                    const T* seed = term.seeds;
                    const double seed_dot =
                        column_dot(seed + a * term.width, seed + b * term.width, term.width);
                    s += term.input_gram[a / k + (b / k) * n] * seed_dot;
                }
                g(a, b) = T(s);
            }
        }
    }
}

template <class T>
void jacobian_block(Context& /*ctx*/, const Mlp& model, MatrixView<const T> x,
                    const ForwardState<T>& state, const std::vector<Matrix<T>>& seeds,
                    std::int64_t col_begin, MatrixView<T> block) {
    // x: d_0 x n; seeds[l]: d_l x N; block: N x width, column j is parameter col_begin + j.
    const std::int64_t n = x.cols;
    const std::int64_t k = model.n_outputs();
    const std::int64_t n_rows = n * k;
    for (std::int64_t j = 0; j < block.cols; ++j) {
        const std::int64_t q = col_begin + j;
        // The layer that holds parameter q: the last one whose weights start at or before q.
        std::int64_t l = 0;
        while (l + 1 < model.n_layers() && model.weight_offset(l + 1) <= q) ++l;
        const Layer& layer = model.layer(l);
        T* col = block.data + j * block.ld;
        if (!layer.trainable) {
            // Frozen layers have zero Jacobian columns.
            for (std::int64_t a = 0; a < n_rows; ++a) col[a] = T(0);
            continue;
        }
        const std::int64_t n_out = layer.n_out;
        const std::int64_t n_in = model.fan_in(l);
        const std::int64_t local = q - model.weight_offset(l);
        const Matrix<T>& seed = seeds[l];
        if (local < n_out * n_in) {
            // Weight W_l[r, c]: A[(i, cc), q] = Delta_l[r, (i, cc)] w_l a_{l-1}[c, i].
            const std::int64_t r = local % n_out;
            const std::int64_t c = local / n_out;
            const T* a_in = l == 0 ? x.data : state.act[l - 1].data();
            const std::int64_t ld_in = l == 0 ? x.ld : n_in;
            const double w_mult = model.weight_multiplier(l);
            for (std::int64_t i = 0; i < n; ++i) {
                const double s = w_mult * double(a_in[c + i * ld_in]);
                for (std::int64_t cc = 0; cc < k; ++cc) {
                    col[i * k + cc] = T(double(seed(r, i * k + cc)) * s);
                }
            }
        } else {
            // Bias b_l[r]: A[(i, cc), q] = b_mult Delta_l[r, (i, cc)].
            const std::int64_t r = local - n_out * n_in;
            const double b_mult = model.bias_multiplier(l);
            for (std::int64_t a = 0; a < n_rows; ++a) col[a] = T(b_mult * double(seed(r, a)));
        }
    }
}

template <class T>
void syrk_lower(Context& /*ctx*/, MatrixView<const T> a, T beta, MatrixView<T> g) {
    // a: N x w; g: N x N, lower triangle updated.
    const std::int64_t n_rows = a.rows, width = a.cols;
    // a^T (w x N, contiguous), so that each entry of a a^T is a dot of two contiguous columns; the
    // copy costs one more block of memory and runs twice as fast as axpy updates of a g tile here.
    std::vector<T> at(static_cast<std::size_t>(width * n_rows));
    for (std::int64_t t = 0; t < width; ++t) {
        for (std::int64_t i = 0; i < n_rows; ++i) at[t + i * width] = a(i, t);
    }
    // g[i, j] = beta g[i, j] + a[i, :] . a[j, :] for i >= j; beta = 0 ignores g's old value.
    for (std::int64_t j0 = 0; j0 < n_rows; j0 += kTile) {
        const std::int64_t j1 = std::min(j0 + kTile, n_rows);
        for (std::int64_t i = j0; i < n_rows; ++i) {
            for (std::int64_t j = j0; j < std::min(j1, i + 1); ++j) {
                const double s = column_dot(at.data() + i * width, at.data() + j * width, width);
                const double old = beta == T(0) ? 0.0 : double(beta) * double(g(i, j));
                g(i, j) = T(old + s);
            }
        }
    }
}

template void gram_structured<float>(Context&, const Mlp&, MatrixView<const float>,
                                     const ForwardState<float>&, const std::vector<Matrix<float>>&,
                                     MatrixView<float>);
template void gram_structured<double>(Context&, const Mlp&, MatrixView<const double>,
                                      const ForwardState<double>&,
                                      const std::vector<Matrix<double>>&, MatrixView<double>);
template void jacobian_block<float>(Context&, const Mlp&, MatrixView<const float>,
                                    const ForwardState<float>&, const std::vector<Matrix<float>>&,
                                    std::int64_t, MatrixView<float>);
template void jacobian_block<double>(Context&, const Mlp&, MatrixView<const double>,
                                     const ForwardState<double>&,
                                     const std::vector<Matrix<double>>&, std::int64_t,
                                     MatrixView<double>);
template void syrk_lower<float>(Context&, MatrixView<const float>, float, MatrixView<float>);
template void syrk_lower<double>(Context&, MatrixView<const double>, double, MatrixView<double>);

}  // namespace ngd::reference
