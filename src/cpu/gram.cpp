// cpu Gram stages (mirrors src/reference/gram.cpp). Structured: per trainable layer the input Gram
// Q_l = w_l^2 a^T a + b^2 (SYRK, n x n) and the seed Gram Delta_l^T Delta_l (SYRK straight into g
// for the first layer, then SYRK + GEMM on column panels for the others), multiplied entrywise by
// Q_l[i / k, j / k] in one OpenMP pass. J is never formed. syrk_lower is BLAS SYRK.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "cpu/blas.hpp"
#include "cpu/threads.hpp"
#include "stages.hpp"

namespace ngd::cpu {
namespace {

// Columns of g per panel for the layers after the first: a quarter of N, between 256 and 1024. A
// panel of seed-Gram columns (N x panel) is the only workspace; four panels keep the BLAS calls
// and OpenMP passes few (each costs a fork/join, which a shared machine makes expensive) while
// the workspace stays a fraction of K.
constexpr std::int64_t kMinPanel = 256;
constexpr std::int64_t kMaxPanel = 1024;

// g_col[a] = q_col[(a + offset) / k] * s_col[a] (Accumulate: +=; else g_col[a] *= q_col[...])
// for a in [a0, a1): offset is the global row of local row 0. k = 1 is the common case, kept free
// of the division so that it vectorises.
template <bool Accumulate, class T>
inline void hadamard_column(std::int64_t a0, std::int64_t a1, std::int64_t offset, std::int64_t k,
                            const T* q_col, const T* s_col, T* g_col) {
    if (k == 1) {
        const T* q = q_col + offset;
        for (std::int64_t a = a0; a < a1; ++a) {
            if constexpr (Accumulate) {
                g_col[a] += q[a] * s_col[a];
            } else {
                g_col[a] *= q[a];
            }
        }
        return;
    }
    for (std::int64_t a = a0; a < a1; ++a) {
        if constexpr (Accumulate) {
            g_col[a] += q_col[(a + offset) / k] * s_col[a];
        } else {
            g_col[a] *= q_col[(a + offset) / k];
        }
    }
}

// One trainable layer's factors: its input Gram (n x n, both triangles) and seeds (d_l x N).
template <class T>
struct LayerTerm {
    Matrix<T> input_gram;
    const T* seeds;
    std::int64_t width;
};

}  // namespace

template <class T>
void gram_structured(Context& ctx, const Mlp& model, MatrixView<const T> x,
                     const ForwardState<T>& state, const std::vector<Matrix<T>>& seeds,
                     MatrixView<T> g) {
    // x: d_0 x n; seeds[l]: d_l x N; g: N x N, lower triangle written.
    ThreadScope threads(ctx);
    const std::int64_t n = x.cols;
    const std::int64_t k = model.n_outputs();
    const std::int64_t n_rows = n * k;
    if (n_rows == 0) return;

    // Q_l = w_l^2 a_{l-1}^T a_{l-1} + b_mult^2 [bias] (n x n), mirrored to both triangles.
    std::vector<LayerTerm<T>> terms;
    for (std::int64_t l = 0; l < model.n_layers(); ++l) {
        const Layer& layer = model.layer(l);
        if (!layer.trainable) continue;
        const std::int64_t n_in = model.fan_in(l);
        const T* a_in = l == 0 ? x.data : state.act[l - 1].data();
        const std::int64_t ld_in = l == 0 ? x.ld : n_in;
        const double w2 = model.weight_multiplier(l) * model.weight_multiplier(l);
        const T b2 = T(layer.bias ? model.bias_multiplier(l) * model.bias_multiplier(l) : 0.0);
        Matrix<T> q(n, n);
        blas::syrk_lower(true, n, n_in, T(w2), a_in, ld_in, T(0), q.data(), n);
        T* qd = q.data();
#pragma omp parallel for schedule(static) if (n * n > kParallelMinEntries)
        for (std::int64_t j = 0; j < n; ++j) {
            for (std::int64_t i = j; i < n; ++i) {
                qd[i + j * n] += b2;
                qd[j + i * n] = qd[i + j * n];
            }
        }
        terms.push_back({std::move(q), seeds[l].data(), layer.n_out});
    }

    T* gd = g.data;
    const std::int64_t ldg = g.ld;
    if (terms.empty()) {
        // Every layer frozen: J = 0.
#pragma omp parallel for schedule(static) if (n_rows * n_rows > kParallelMinEntries)
        for (std::int64_t j = 0; j < n_rows; ++j) {
            for (std::int64_t i = j; i < n_rows; ++i) gd[i + j * ldg] = T(0);
        }
        return;
    }

    // First layer: g = Delta^T Delta by SYRK (lower), then g (.)= Q[a / k, b / k] in place.
    {
        const LayerTerm<T>& t = terms.front();
        blas::syrk_lower(true, n_rows, t.width, T(1), t.seeds, t.width, T(0), gd, ldg);
        const T* q = t.input_gram.data();
#pragma omp parallel for schedule(static) if (n_rows * n_rows > kParallelMinEntries)
        for (std::int64_t b = 0; b < n_rows; ++b) {
            hadamard_column<false>(b, n_rows, 0, k, q + (b / k) * n, gd, gd + b * ldg);
        }
    }

    // Further layers, one column panel [j0, j0 + jb) at a time: s = Delta[:, j0:]^T
    // Delta[:, j0:j0+jb] ((N - j0) x jb, lower part), then g[a, b] += Q[a / k, b / k] s[a - j0, b -
    // j0] for a >= b.
    if (terms.size() == 1) return;
    const std::int64_t panel = std::min(n_rows, std::clamp((n_rows + 3) / 4, kMinPanel, kMaxPanel));
    std::vector<T> s(static_cast<std::size_t>(n_rows * panel));
    for (std::int64_t j0 = 0; j0 < n_rows; j0 += panel) {
        const std::int64_t jb = std::min(panel, n_rows - j0);
        const std::int64_t m = n_rows - j0;
        for (std::size_t t = 1; t < terms.size(); ++t) {
            const LayerTerm<T>& term = terms[t];
            // Diagonal block by SYRK (its lower triangle), the rows below it by GEMM: the flops
            // of one SYRK over the whole triangle, with a panel as the only workspace.
            const T* panel_seeds = term.seeds + j0 * term.width;
            blas::syrk_lower(true, jb, term.width, T(1), panel_seeds, term.width, T(0), s.data(),
                             m);
            if (m > jb) {
                blas::gemm(true, false, m - jb, jb, term.width, T(1), panel_seeds + jb * term.width,
                           term.width, panel_seeds, term.width, T(0), s.data() + jb, m);
            }
            const T* q = term.input_gram.data();
            const T* sd = s.data();
#pragma omp parallel for schedule(static) if (jb * m > kParallelMinEntries)
            for (std::int64_t bb = 0; bb < jb; ++bb) {
                const std::int64_t b = j0 + bb;
                // Rows from j0 on: the column's entries a >= b sit at a - j0 in the panel.
                hadamard_column<true>(bb, m, j0, k, q + (b / k) * n, sd + bb * m,
                                      gd + b * ldg + j0);
            }
        }
    }
}

template <class T>
void syrk_lower(Context& ctx, MatrixView<const T> a, T beta, MatrixView<T> g) {
    // a: N x w; g: N x N, lower triangle <- beta g + a a^T (beta = 0 does not read g).
    if (a.rows == 0) return;
    ThreadScope threads(ctx);
    blas::syrk_lower(false, a.rows, a.cols, T(1), a.data, a.ld, beta, g.data, g.ld);
}

template void gram_structured<float>(Context&, const Mlp&, MatrixView<const float>,
                                     const ForwardState<float>&, const std::vector<Matrix<float>>&,
                                     MatrixView<float>);
template void gram_structured<double>(Context&, const Mlp&, MatrixView<const double>,
                                      const ForwardState<double>&,
                                      const std::vector<Matrix<double>>&, MatrixView<double>);
template void syrk_lower<float>(Context&, MatrixView<const float>, float, MatrixView<float>);
template void syrk_lower<double>(Context&, MatrixView<const double>, double, MatrixView<double>);

}  // namespace ngd::cpu
