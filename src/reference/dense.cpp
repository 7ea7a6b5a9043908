// Reference dense helpers used between the pipeline stages: the loss factor applied to explicit
// Jacobian rows, matrix-vector products, symmetrisation, scans for NaN/Inf and invalid labels, and
// vector/matrix copies. Sums are accumulated in double; views may have any leading dimension.
#include <cmath>
#include <cstdint>
#include <vector>

#include "stages.hpp"

namespace ngd::reference {

template <class T>
void apply_factor(Context& /*ctx*/, MatrixView<const T> factor, MatrixView<const T> j,
                  MatrixView<T> a) {
    // factor: k x kn (block i = M_i) or empty (M = I); j, a: N x p with N = n k.
    const std::int64_t n_rows = j.rows, n_cols = j.cols;
    if (factor.empty()) {
        // M = I: A = J.
        for (std::int64_t q = 0; q < n_cols; ++q) {
            for (std::int64_t r = 0; r < n_rows; ++r) a(r, q) = j(r, q);
        }
        return;
    }
    const std::int64_t k = factor.rows;
    const std::int64_t n = n_rows / k;
    for (std::int64_t q = 0; q < n_cols; ++q) {
        for (std::int64_t i = 0; i < n; ++i) {
            // A[(i, c), q] = sum_o M_i[o, c] J[(i, o), q], i.e. M_i^T times the block's column.
            for (std::int64_t c = 0; c < k; ++c) {
                double s = 0;
                for (std::int64_t o = 0; o < k; ++o) {
                    s += double(factor(o, i * k + c)) * double(j(i * k + o, q));
                }
                a(i * k + c, q) = T(s);
            }
        }
    }
}

template <class T>
void gemv(Context& /*ctx*/, bool transpose, MatrixView<const T> a, const T* x, T* y) {
    // a: m x n; y = a x (x: n, y: m) or y = a^T x (x: m, y: n).
    const std::int64_t m = a.rows, n = a.cols;
    if (transpose) {
        // y_c = a[:, c] . x, a contiguous dot per column.
        for (std::int64_t c = 0; c < n; ++c) {
            double s = 0;
            for (std::int64_t r = 0; r < m; ++r) s += double(a(r, c)) * double(x[r]);
            y[c] = T(s);
        }
        return;
    }
    // y = sum_c x_c a[:, c], column by column so the inner loop is contiguous.
    std::vector<double> acc(m, 0.0);
    for (std::int64_t c = 0; c < n; ++c) {
        const double xc = double(x[c]);
        for (std::int64_t r = 0; r < m; ++r) acc[r] += double(a(r, c)) * xc;
    }
    for (std::int64_t r = 0; r < m; ++r) y[r] = T(acc[r]);
}

template <class T>
void symv_lower(Context& /*ctx*/, MatrixView<const T> g, const T* x, T* y) {
    // g: N x N symmetric, lower triangle read; x, y: N.
    const std::int64_t n = g.rows;
    std::vector<double> acc(n, 0.0);
    for (std::int64_t j = 0; j < n; ++j) {
        const double xj = double(x[j]);
        // Diagonal, then each stored g[i, j] (i > j) once for y_i and once, mirrored, for y_j.
        double yj = double(g(j, j)) * xj;
        for (std::int64_t i = j + 1; i < n; ++i) {
            const double gij = double(g(i, j));
            acc[i] += gij * xj;
            yj += gij * double(x[i]);
        }
        acc[j] += yj;
    }
    for (std::int64_t i = 0; i < n; ++i) y[i] = T(acc[i]);
}

template <class T>
void symmetrize(Context& /*ctx*/, MatrixView<T> g) {
    // g: N x N; upper <- lower.
    for (std::int64_t j = 0; j < g.cols; ++j) {
        for (std::int64_t i = j + 1; i < g.rows; ++i) g(j, i) = g(i, j);
    }
}

template <class T>
NonFiniteCount count_nonfinite(Context& /*ctx*/, MatrixView<const T> a) {
    // a: m x n; the index reported is column-major over the view's shape (r + c m), not its ld.
    NonFiniteCount result;
    for (std::int64_t c = 0; c < a.cols; ++c) {
        for (std::int64_t r = 0; r < a.rows; ++r) {
            if (std::isfinite(a(r, c))) continue;
            if (result.count == 0) result.first = r + c * a.rows;
            ++result.count;
        }
    }
    return result;
}

template <class T>
std::int64_t first_invalid_index(Context& /*ctx*/, MatrixView<const T> v, std::int64_t limit) {
    // v: m x n; valid entries are integers in [0, limit) (NaN fails every comparison, so it is
    // invalid).
    for (std::int64_t c = 0; c < v.cols; ++c) {
        for (std::int64_t r = 0; r < v.rows; ++r) {
            const double value = double(v(r, c));
            const bool valid = value >= 0 && value < double(limit) && value == std::floor(value);
            if (!valid) return r + c * v.rows;
        }
    }
    return -1;
}

template <class T>
void axpby(Context& /*ctx*/, std::int64_t n, T alpha, const T* x, T beta, T* y) {
    // x, y: n. beta = 0 overwrites y without reading it (a NaN there must not leak through).
    for (std::int64_t i = 0; i < n; ++i) {
        const double old = beta == T(0) ? 0.0 : double(beta) * double(y[i]);
        y[i] = T(double(alpha) * double(x[i]) + old);
    }
}

template <class T>
double dot(Context& /*ctx*/, std::int64_t n, const T* x, const T* y) {
    // x, y: n.
    double s = 0;
    for (std::int64_t i = 0; i < n; ++i) s += double(x[i]) * double(y[i]);
    return s;
}

template <class T>
void copy_vector(Context& /*ctx*/, std::int64_t n, const T* x, T* y) {
    // x, y: n.
    for (std::int64_t i = 0; i < n; ++i) y[i] = x[i];
}

template <class T>
void copy_matrix(Context& /*ctx*/, MatrixView<const T> a, MatrixView<T> b) {
    // a, b: m x n, each with its own leading dimension.
    for (std::int64_t c = 0; c < a.cols; ++c) {
        for (std::int64_t r = 0; r < a.rows; ++r) b(r, c) = a(r, c);
    }
}

#define NGD_INSTANTIATE_DENSE(T)                                                               \
    template void apply_factor<T>(Context&, MatrixView<const T>, MatrixView<const T>,          \
                                  MatrixView<T>);                                              \
    template void gemv<T>(Context&, bool, MatrixView<const T>, const T*, T*);                  \
    template void symv_lower<T>(Context&, MatrixView<const T>, const T*, T*);                  \
    template void symmetrize<T>(Context&, MatrixView<T>);                                      \
    template NonFiniteCount count_nonfinite<T>(Context&, MatrixView<const T>);                 \
    template std::int64_t first_invalid_index<T>(Context&, MatrixView<const T>, std::int64_t); \
    template void axpby<T>(Context&, std::int64_t, T, const T*, T, T*);                        \
    template double dot<T>(Context&, std::int64_t, const T*, const T*);                        \
    template void copy_vector<T>(Context&, std::int64_t, const T*, T*);                        \
    template void copy_matrix<T>(Context&, MatrixView<const T>, MatrixView<T>);

NGD_INSTANTIATE_DENSE(float)
NGD_INSTANTIATE_DENSE(double)

#undef NGD_INSTANTIATE_DENSE

}  // namespace ngd::reference
