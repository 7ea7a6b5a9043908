// Reference mixed-precision solve stages (the oracle of src/cpu/mixed_solve.cpp and
// kernels/mixed_solve.cu): the Cholesky factor of g + diag(shift) computed in float (or blocked,
// with TF32-rounded trailing updates) and written out as plain loops, the solve with that factor,
// and the Frobenius norm of the backward error. The refinement that uses them is one loop for every
// backend, in src/mixed_solve.cpp.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "stages.hpp"
#include "tf32.hpp"

namespace ngd::reference {

template <class T>
double frobenius_norm_lower(Context& /*ctx*/, MatrixView<const T> g, MatrixView<const T> shift) {
    // g: N x N (lower triangle read); shift: N x 1 or empty.
    const std::int64_t n = g.rows;
    double sum = 0;
    for (std::int64_t j = 0; j < n; ++j) {
        // The diagonal entry k_jj = g_jj + shift_j counts once ...
        const double d = double(g(j, j)) + (shift.empty() ? 0.0 : double(shift.data[j]));
        sum += d * d;
        // ... and each strictly lower entry twice (k_ij = k_ji).
        for (std::int64_t i = j + 1; i < n; ++i) sum += 2.0 * double(g(i, j)) * double(g(i, j));
    }
    return std::sqrt(sum);
}

namespace {

// Unblocked right-looking Cholesky in float of the diagonal block l[b0:b1, b0:b1] (lower), every
// entry stored in float. Returns 0, or the order (1-based, of the whole matrix) of the first pivot
// that is not > 0 (or NaN), as LAPACK's spotrf does.
std::int64_t factor_block_float(MatrixView<float> l, std::int64_t b0, std::int64_t b1) {
    for (std::int64_t j = b0; j < b1; ++j) {
        // Pivot: what is left of k_jj after the updates from columns < j.
        const float pivot = l(j, j);
        if (!(pivot > 0.0f)) return j + 1;
        // L_jj = sqrt(pivot); L[j+1:b1, j] = k[j+1:b1, j] / L_jj.
        const float diag = std::sqrt(pivot);
        l(j, j) = diag;
        for (std::int64_t i = j + 1; i < b1; ++i) l(i, j) /= diag;
        // Update within the block: k[c:b1, c] -= L[c, j] L[c:b1, j] for j < c < b1.
        for (std::int64_t c = j + 1; c < b1; ++c) {
            const float l_cj = l(c, j);
            for (std::int64_t i = c; i < b1; ++i) l(i, c) -= l_cj * l(i, j);
        }
    }
    return 0;
}

}  // namespace

std::int64_t cholesky_factor_float(Context& /*ctx*/, MatrixView<const double> g,
                                   MatrixView<const double> shift, MatrixView<float> l,
                                   double* norm, FactorArithmetic* arithmetic) {
    // g: N x N double (lower read); shift: N x 1; l: N x N float (lower written) -> L, K = L L^T.
    const std::int64_t n = g.rows;
    // l <- float(g + diag(shift)): the one rounding of K to float; and |K|_F^2 from the double
    // entries, the off-diagonal ones counted twice.
    double sum = 0;
    for (std::int64_t j = 0; j < n; ++j) {
        for (std::int64_t i = j; i < n; ++i) {
            const double k_ij = g(i, j) + (i == j && !shift.empty() ? shift.data[j] : 0.0);
            sum += (i == j ? 1.0 : 2.0) * k_ij * k_ij;
            l(i, j) = float(k_ij);
        }
    }
    *norm = std::sqrt(sum);
    if (*arithmetic == FactorArithmetic::float32) {
        // Right-looking Cholesky in float, the whole matrix as one block: every entry of L is
        // stored in float (inner products accumulated by the trailing updates, each rounded to
        // float as it is stored).
        const std::int64_t info = factor_block_float(l, 0, n);
        if (info != 0) return info;
    } else {
        // Blocked right-looking Cholesky with TF32 trailing updates, block width nb.
        const std::int64_t nb = tf32_block_width(n);
        std::vector<float> p;  // the panel rounded to TF32, (n - b1) x nb, column-major
        for (std::int64_t b0 = 0; b0 < n; b0 += nb) {
            const std::int64_t b1 = std::min(n, b0 + nb), w = b1 - b0, rest = n - b1;
            // Diagonal block: L11 L11^T = K11 in float.
            const std::int64_t info = factor_block_float(l, b0, b1);
            if (info != 0) return info;
            // Panel: L21 = K21 L11^{-T} in float, row by row (forward substitution on each row:
            // L21[i, j] = (K21[i, j] - sum_{c < j} L21[i, c] L11[j, c]) / L11[j, j]).
            for (std::int64_t i = b1; i < n; ++i) {
                for (std::int64_t j = b0; j < b1; ++j) {
                    float s = l(i, j);
                    for (std::int64_t c = b0; c < j; ++c) s -= l(i, c) * l(j, c);
                    l(i, j) = s / l(j, j);
                }
            }
            // Trailing update K22 <- K22 - P P^T with P = tf32(L21): the operands rounded to TF32,
            // each product exact in float, the sum over the block accumulated in float.
            p.assign(std::size_t(rest * w), 0.0f);
            for (std::int64_t c = 0; c < w; ++c) {
                for (std::int64_t i = 0; i < rest; ++i) {
                    p[std::size_t(i + c * rest)] = detail::round_to_tf32(l(b1 + i, b0 + c));
                }
            }
            for (std::int64_t j = 0; j < rest; ++j) {
                for (std::int64_t i = j; i < rest; ++i) {
                    float s = 0.0f;
                    for (std::int64_t c = 0; c < w; ++c) {
                        s += p[std::size_t(i + c * rest)] * p[std::size_t(j + c * rest)];
                    }
                    l(b1 + i, b1 + j) -= s;
                }
            }
        }
    }
    // A finite K can still give an infinite float factor (entries beyond float's range).
    for (std::int64_t j = 0; j < n; ++j) {
        for (std::int64_t i = j; i < n; ++i) {
            if (!std::isfinite(l(i, j))) return -1;
        }
    }
    return 0;
}

void cholesky_apply_float(Context& /*ctx*/, MatrixView<const float> l, double* x, float* work) {
    // l: N x N float lower factor; x: N double (in: b, out: (L L^T)^{-1} b); work: N float.
    const std::int64_t n = l.rows;
    // The right-hand side rounded to float: the correction solve runs in the factor's precision.
    float* y = work;
    for (std::int64_t i = 0; i < n; ++i) y[i] = float(x[i]);
    // Forward substitution L z = y, column-oriented: z_j = y_j / L_jj, y[j+1:] -= z_j L[j+1:, j].
    for (std::int64_t j = 0; j < n; ++j) {
        y[j] /= l(j, j);
        for (std::int64_t i = j + 1; i < n; ++i) y[i] -= y[j] * l(i, j);
    }
    // Back substitution L^T w = z: w_j = (z_j - L[j+1:, j] . w[j+1:]) / L_jj.
    for (std::int64_t j = n - 1; j >= 0; --j) {
        float s = y[j];
        for (std::int64_t i = j + 1; i < n; ++i) s -= l(i, j) * y[i];
        y[j] = s / l(j, j);
    }
    // Widened back to double, where the refinement adds it to the solution.
    for (std::int64_t i = 0; i < n; ++i) x[i] = double(y[i]);
}

template double frobenius_norm_lower<float>(Context&, MatrixView<const float>,
                                            MatrixView<const float>);
template double frobenius_norm_lower<double>(Context&, MatrixView<const double>,
                                             MatrixView<const double>);

}  // namespace ngd::reference
