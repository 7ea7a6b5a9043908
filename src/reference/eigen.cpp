// Reference backend: what the failure ladder's last rung needs (DESIGN.md section 4): the trace
// that scales the first damping raise, a cyclic Jacobi symmetric eigensolver (slow, simple,
// accurate) and the pseudo-inverse of the eigenvalues.
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include "stages.hpp"

namespace ngd::reference {

template <class T>
double trace(Context&, MatrixView<const T> g) {
    // g: N x N; sum of g(i, i).
    double sum = 0;
    for (std::int64_t i = 0; i < g.rows; ++i) sum += double(g(i, i));
    return sum;
}

template <class T>
std::int64_t symmetric_eigen(Context&, MatrixView<T> g, MatrixView<const T> shift, T* w) {
    // g: N x N (lower triangle read), shift: N or empty (0) -> eigenvectors of g + diag(shift) in
    // g's columns; w: N eigenvalues, ascending.
    const std::int64_t n = g.rows;
    // Work in double on a full symmetric copy a; v accumulates the rotations (a = V diag V^T).
    std::vector<double> a(n * n), v(n * n, 0.0);
    for (std::int64_t c = 0; c < n; ++c) {
        for (std::int64_t r = c; r < n; ++r) a[r + c * n] = a[c + r * n] = double(g(r, c));
        if (!shift.empty()) a[c + c * n] += double(shift.data[c]);
        v[c + c * n] = 1.0;
    }
    auto off_norm = [&] {
        double s = 0;
        for (std::int64_t c = 0; c < n; ++c)
            for (std::int64_t r = 0; r < n; ++r)
                if (r != c) s += a[r + c * n] * a[r + c * n];
        return std::sqrt(s);
    };
    double total = 0;
    for (double x : a) total += x * x;
    const double target = 1e-15 * std::sqrt(total);
    int sweep = 0;
    for (; sweep < 100 && off_norm() > target; ++sweep) {
        for (std::int64_t p = 0; p < n - 1; ++p) {
            for (std::int64_t q = p + 1; q < n; ++q) {
                const double apq = a[p + q * n];
                if (apq == 0) continue;
                // The rotation (c, s) that zeroes a(p, q) (Golub & Van Loan, Algorithm 8.5.1).
                const double tau = (a[q + q * n] - a[p + p * n]) / (2 * apq);
                const double t = (tau >= 0 ? 1 : -1) / (std::fabs(tau) + std::sqrt(1 + tau * tau));
                const double c = 1 / std::sqrt(1 + t * t), s = t * c;
                // a <- J^T a J on rows/columns p, q; v <- v J.
                for (std::int64_t k = 0; k < n; ++k) {
                    const double akp = a[k + p * n], akq = a[k + q * n];
                    a[k + p * n] = c * akp - s * akq;
                    a[k + q * n] = s * akp + c * akq;
                }
                for (std::int64_t k = 0; k < n; ++k) {
                    const double apk = a[p + k * n], aqk = a[q + k * n];
                    a[p + k * n] = c * apk - s * aqk;
                    a[q + k * n] = s * apk + c * aqk;
                }
                for (std::int64_t k = 0; k < n; ++k) {
                    const double vkp = v[k + p * n], vkq = v[k + q * n];
                    v[k + p * n] = c * vkp - s * vkq;
                    v[k + q * n] = s * vkp + c * vkq;
                }
            }
        }
    }
    if (off_norm() > target) return 1;
    // Sort eigenpairs ascending and write them out.
    std::vector<std::int64_t> order(n);
    for (std::int64_t i = 0; i < n; ++i) order[i] = i;
    for (std::int64_t i = 1; i < n; ++i) {
        for (std::int64_t j = i; j > 0 && a[order[j] * (n + 1)] < a[order[j - 1] * (n + 1)]; --j) {
            std::swap(order[j], order[j - 1]);
        }
    }
    for (std::int64_t c = 0; c < n; ++c) {
        w[c] = T(a[order[c] * (n + 1)]);
        for (std::int64_t r = 0; r < n; ++r) g(r, c) = T(v[r + order[c] * n]);
    }
    return 0;
}

template <class T>
void pseudo_inverse_scale(Context&, std::int64_t n, const T* w, T cutoff, T* x) {
    for (std::int64_t i = 0; i < n; ++i) x[i] = w[i] > cutoff ? x[i] / w[i] : T(0);
}

template double trace<float>(Context&, MatrixView<const float>);
template double trace<double>(Context&, MatrixView<const double>);
template std::int64_t symmetric_eigen<float>(Context&, MatrixView<float>, MatrixView<const float>,
                                             float*);
template std::int64_t symmetric_eigen<double>(Context&, MatrixView<double>,
                                              MatrixView<const double>, double*);
template void pseudo_inverse_scale<float>(Context&, std::int64_t, const float*, float, float*);
template void pseudo_inverse_scale<double>(Context&, std::int64_t, const double*, double, double*);

}  // namespace ngd::reference
