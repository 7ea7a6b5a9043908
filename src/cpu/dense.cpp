// cpu dense helpers (mirrors src/reference/dense.cpp): BLAS gemv and symv, and OpenMP loops for
// the symmetrisation, the NaN/Inf scan, the copies of K and the O(p) vector updates of every step.
// first_invalid_index (labels, O(n)) and apply_factor (explicit mode only) stay with the reference
// code (src/cpu/reused.cpp).
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "cpu/blas.hpp"
#include "cpu/threads.hpp"
#include "stages.hpp"

namespace ngd::cpu {

template <class T>
void gemv(Context& ctx, bool transpose, MatrixView<const T> a, const T* x, T* y) {
    // a: m x n; y = a x (x: n, y: m) or y = a^T x (x: m, y: n).
    const std::int64_t y_len = transpose ? a.cols : a.rows;
    if (a.rows == 0 || a.cols == 0) {
        // BLAS returns early on an empty a without touching y; the product is zero.
        std::fill(y, y + y_len, T(0));
        return;
    }
    ThreadScope threads(ctx);
    blas::gemv(transpose, a.rows, a.cols, T(1), a.data, a.ld, x, T(0), y);
}

template <class T>
void symv_lower(Context& ctx, MatrixView<const T> g, const T* x, T* y) {
    // g: N x N symmetric, lower triangle read; x, y: N.
    if (g.rows == 0) return;
    ThreadScope threads(ctx);
    blas::symv_lower(g.rows, T(1), g.data, g.ld, x, T(0), y);
}

template <class T>
void symmetrize(Context& ctx, MatrixView<T> g) {
    // g: N x N; upper <- lower, in 64 x 64 tiles so both the read and the write stay in cache.
    constexpr std::int64_t kTile = 64;
    const std::int64_t n = g.rows;
    const std::int64_t n_tiles = (n + kTile - 1) / kTile;
    ThreadScope threads(ctx);
#pragma omp parallel for schedule(dynamic) if (n * n > kParallelMinEntries)
    for (std::int64_t tj = 0; tj < n_tiles; ++tj) {
        const std::int64_t j0 = tj * kTile, j1 = std::min(j0 + kTile, n);
        for (std::int64_t i0 = j0; i0 < n; i0 += kTile) {
            const std::int64_t i1 = std::min(i0 + kTile, n);
            for (std::int64_t i = i0; i < i1; ++i) {
                for (std::int64_t j = j0; j < std::min(j1, i); ++j) g(j, i) = g(i, j);
            }
        }
    }
}

template <class T>
NonFiniteCount count_nonfinite(Context& ctx, MatrixView<const T> a) {
    // a: m x n; the index reported is column-major over the view's shape (r + c m), not its ld.
    std::int64_t count = 0;
    std::int64_t first = a.rows * a.cols;  // none yet
    ThreadScope threads(ctx);
#pragma omp parallel for schedule(static) reduction(+ : count) reduction(min : first) if (a.rows * a.cols > kParallelMinEntries)
    for (std::int64_t c = 0; c < a.cols; ++c) {
        for (std::int64_t r = 0; r < a.rows; ++r) {
            if (std::isfinite(a(r, c))) continue;
            first = std::min(first, r + c * a.rows);
            ++count;
        }
    }
    return NonFiniteCount{count, count == 0 ? -1 : first};
}

template <class T>
void axpby(Context& ctx, std::int64_t n, T alpha, const T* x, T beta, T* y) {
    // x, y: n. beta = 0 overwrites y without reading it (a NaN there must not leak through).
    ThreadScope threads(ctx);
    if (beta == T(0)) {
#pragma omp parallel for schedule(static) if (n > kParallelMinEntries)
        for (std::int64_t i = 0; i < n; ++i) y[i] = alpha * x[i];
    } else {
#pragma omp parallel for schedule(static) if (n > kParallelMinEntries)
        for (std::int64_t i = 0; i < n; ++i) y[i] = alpha * x[i] + beta * y[i];
    }
}

template <class T>
double dot(Context& ctx, std::int64_t n, const T* x, const T* y) {
    // x, y: n; accumulated in double.
    ThreadScope threads(ctx);
    double s = 0;
#pragma omp parallel for schedule(static) reduction(+ : s) if (n > kParallelMinEntries)
    for (std::int64_t i = 0; i < n; ++i) s += double(x[i]) * double(y[i]);
    return s;
}

template <class T>
void copy_vector(Context& ctx, std::int64_t n, const T* x, T* y) {
    ThreadScope threads(ctx);
#pragma omp parallel for schedule(static) if (n > kParallelMinEntries)
    for (std::int64_t i = 0; i < n; ++i) y[i] = x[i];
}

template <class T>
void copy_matrix(Context& ctx, MatrixView<const T> a, MatrixView<T> b) {
    // a, b: m x n, each with its own leading dimension.
    ThreadScope threads(ctx);
#pragma omp parallel for schedule(static) if (a.rows * a.cols > kParallelMinEntries)
    for (std::int64_t c = 0; c < a.cols; ++c) {
        std::copy(a.data + c * a.ld, a.data + c * a.ld + a.rows, b.data + c * b.ld);
    }
}

#define NGD_INSTANTIATE_DENSE(T)                                               \
    template void gemv<T>(Context&, bool, MatrixView<const T>, const T*, T*);  \
    template void symv_lower<T>(Context&, MatrixView<const T>, const T*, T*);  \
    template void symmetrize<T>(Context&, MatrixView<T>);                      \
    template NonFiniteCount count_nonfinite<T>(Context&, MatrixView<const T>); \
    template void axpby<T>(Context&, std::int64_t, T, const T*, T, T*);        \
    template double dot<T>(Context&, std::int64_t, const T*, const T*);        \
    template void copy_vector<T>(Context&, std::int64_t, const T*, T*);        \
    template void copy_matrix<T>(Context&, MatrixView<const T>, MatrixView<T>);

NGD_INSTANTIATE_DENSE(float)
NGD_INSTANTIATE_DENSE(double)

#undef NGD_INSTANTIATE_DENSE

}  // namespace ngd::cpu
