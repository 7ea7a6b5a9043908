// Reference damped solve: Cholesky of g + diag(shift) written out (right-looking, lower triangle,
// in a double copy of the matrix), then forward and back substitution for every right-hand side.
// Failure follows LAPACK's potrf: info = the first order whose pivot is <= 0 or NaN. A factor or
// solution that holds NaN/Inf gives -1, the check cuSOLVER needs and the reference mirrors.
#include <cmath>
#include <cstdint>
#include <vector>

#include "stages.hpp"

namespace ngd::reference {

template <class T>
std::int64_t cholesky_solve(Context& /*ctx*/, MatrixView<T> g, MatrixView<const T> shift,
                            MatrixView<T> rhs) {
    // g: N x N (lower read, overwritten by L); shift: N x 1 (empty means 0); rhs: N x r -> X.
    const std::int64_t n = g.rows;
    // L in double (N x N, column-major), starting from the lower triangle of g + diag(shift).
    std::vector<double> l(static_cast<std::size_t>(n * n), 0.0);
    for (std::int64_t j = 0; j < n; ++j) {
        for (std::int64_t i = j; i < n; ++i) l[i + j * n] = double(g(i, j));
        if (!shift.empty()) l[j + j * n] += double(shift.data[j]);
    }

    std::int64_t info = 0;
    for (std::int64_t j = 0; j < n; ++j) {
        // Pivot: what is left of a_jj after the updates from columns < j; not > 0 (or NaN) stops.
        const double pivot = l[j + j * n];
        if (!(pivot > 0.0)) {
            info = j + 1;
            break;
        }
        // L_jj = sqrt(pivot); L[j+1:, j] = a[j+1:, j] / L_jj.
        const double diag = std::sqrt(pivot);
        double* col_j = l.data() + j * n;
        col_j[j] = diag;
        for (std::int64_t i = j + 1; i < n; ++i) col_j[i] /= diag;
        // Trailing update a[c:, c] -= L[c, j] L[c:, j] for c > j (lower triangle, contiguous).
        for (std::int64_t c = j + 1; c < n; ++c) {
            const double l_cj = col_j[c];
            double* col_c = l.data() + c * n;
            for (std::int64_t i = c; i < n; ++i) col_c[i] -= l_cj * col_j[i];
        }
    }

    // g <- L (lower triangle; on failure the partial factor, as potrf leaves it).
    bool finite = true;
    for (std::int64_t j = 0; j < n; ++j) {
        for (std::int64_t i = j; i < n; ++i) {
            g(i, j) = T(l[i + j * n]);
            // Checked as stored: a float factor can overflow where the double one did not.
            finite = finite && std::isfinite(g(i, j));
        }
    }
    if (info > 0) return info;
    if (!finite) return -1;

    std::vector<double> x(n);
    for (std::int64_t col = 0; col < rhs.cols; ++col) {
        T* b = rhs.data + col * rhs.ld;
        for (std::int64_t i = 0; i < n; ++i) x[i] = double(b[i]);
        // Forward substitution L y = b, column-oriented: y_j = x_j / L_jj, x[j+1:] -= y_j L[j+1:,
        // j].
        for (std::int64_t j = 0; j < n; ++j) {
            const double* col_j = l.data() + j * n;
            x[j] /= col_j[j];
            for (std::int64_t i = j + 1; i < n; ++i) x[i] -= x[j] * col_j[i];
        }
        // Back substitution L^T x = y: x_j = (y_j - L[j+1:, j] . x[j+1:]) / L_jj.
        for (std::int64_t j = n - 1; j >= 0; --j) {
            const double* col_j = l.data() + j * n;
            double s = x[j];
            for (std::int64_t i = j + 1; i < n; ++i) s -= col_j[i] * x[i];
            x[j] = s / col_j[j];
        }
        for (std::int64_t i = 0; i < n; ++i) {
            b[i] = T(x[i]);
            finite = finite && std::isfinite(b[i]);
        }
    }
    return finite ? 0 : -1;
}

template std::int64_t cholesky_solve<float>(Context&, MatrixView<float>, MatrixView<const float>,
                                            MatrixView<float>);
template std::int64_t cholesky_solve<double>(Context&, MatrixView<double>, MatrixView<const double>,
                                             MatrixView<double>);

}  // namespace ngd::reference
