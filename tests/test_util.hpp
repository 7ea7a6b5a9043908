// Shared helpers for the ngd test suites (reference and CUDA): seeded random matrices, the normwise
// relative error, the one tolerance function every roundoff comparison uses, EXPECT_NEAR_NORMWISE
// (which prints the error, the tolerance and the worst element on failure), and long-double dense
// oracles (products, Cholesky solve, an independent forward pass) that trust no library code.
// Everything here works on host memory: copy device results with ngd::to_host first.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "ngd/ngd.hpp"

namespace ngd_test {

using ngd::Matrix;
using ngd::MatrixView;

/// Unit roundoff of T: half the machine epsilon (2^-53 for double, 2^-24 for float).
template <class T>
constexpr double unit_roundoff() {
    return static_cast<double>(std::numeric_limits<T>::epsilon()) / 2;
}

/// The tolerance of every roundoff comparison in the suites:
///     tolerance<T>(n, kappa) = 8 * u(T) * n * kappa,
/// n = the longest reduction (dot-product length) behind the compared result, kappa = the condition
/// of the problem (1 for products without cancellation; ||K|| ||K^-1|| for a solve). Derivation
/// (Higham, Accuracy and Stability of Numerical Algorithms, 2nd ed.): a length-n dot product in
/// precision T, in any summation order, errs by at most gamma_n |x|.|y| with gamma_n = nu/(1-nu)
/// <= 1.01 nu; Cholesky solves are backward stable with gamma_{3n+1} <= 4nu (Thm 10.4), and the
/// forward error is kappa times the backward error. That gives 4 for the solve, and a factor 2
/// because each comparison sets two computed results against each other (or a chain of two stages,
/// forward then product). Worst-case bounds exceed the typical sqrt(n) u error, so 8 never flags
/// honest roundoff, while any real bug (a wrong index, a missing multiplier) is an O(1) relative
/// error. The bound holds for float accumulation in any blocking order, so it covers the float
/// stages of both fast backends as they are: CUDA's kernels and cuBLAS, and the cpu backend's BLAS
/// (GEMM, SYRK, potrf run in float there; only the reference accumulates in double).
template <class T>
double tolerance(double reduction_length, double condition = 1.0) {
    return 8.0 * unit_roundoff<T>() * std::max(reduction_length, 1.0) * std::max(condition, 1.0);
}

// ---- views over the different matrix types the suites compare ----------------------------------

template <class T>
MatrixView<const T> as_view(const Matrix<T>& m) {
    return m.const_view();
}
template <class T>
MatrixView<const T> as_view(const MatrixView<T>& v) {
    return MatrixView<const T>(v.data, v.rows, v.cols, v.ld, v.space);
}

/// A dense long-double matrix: the oracles' working type (x86-64 long double: u = 2^-64).
struct Dense {
    std::int64_t rows = 0, cols = 0;
    std::vector<long double> a;
    Dense() = default;
    Dense(std::int64_t r, std::int64_t c) : rows(r), cols(c), a(static_cast<size_t>(r * c), 0.0L) {}
    long double& operator()(std::int64_t r, std::int64_t c) { return a[r + c * rows]; }
    long double operator()(std::int64_t r, std::int64_t c) const { return a[r + c * rows]; }
    MatrixView<const long double> view() const {
        return MatrixView<const long double>(a.data(), rows, cols);
    }
};
inline MatrixView<const long double> as_view(const Dense& d) { return d.view(); }

// ---- random data (fixed seeds; written out by hand so that every standard library draws the
// same numbers, which the <random> distributions do not promise) ---------------------------------

/// Uniform in [0, 1) from the top 53 bits of one mt19937_64 draw.
inline double uniform01(std::mt19937_64& gen) { return static_cast<double>(gen() >> 11) * 0x1p-53; }

/// rows x cols host matrix, entries uniform in [lo, hi).
template <class T>
Matrix<T> random_matrix(std::int64_t rows, std::int64_t cols, std::uint64_t seed, double lo = -1.0,
                        double hi = 1.0) {
    std::mt19937_64 gen(seed);
    Matrix<T> m(rows, cols);
    for (std::int64_t i = 0; i < m.size(); ++i)
        m[i] = static_cast<T>(lo + (hi - lo) * uniform01(gen));
    return m;
}

/// d x n inputs with unit-norm columns (Gaussian directions, Box-Muller).
template <class T>
Matrix<T> random_unit_columns(std::int64_t d, std::int64_t n, std::uint64_t seed) {
    std::mt19937_64 gen(seed);
    Matrix<T> m(d, n);
    for (std::int64_t c = 0; c < n; ++c) {
        std::vector<double> v(static_cast<size_t>(d));
        double s = 0;
        for (auto& x : v) {
            x = std::sqrt(-2 * std::log1p(-uniform01(gen))) *
                std::cos(6.283185307179586 * uniform01(gen));
            s += x * x;
        }
        for (std::int64_t r = 0; r < d; ++r) m(r, c) = static_cast<T>(v[r] / std::sqrt(s));
    }
    return m;
}

/// 1 x n integer labels in [0, classes) stored as T.
template <class T>
Matrix<T> random_labels(std::int64_t n, std::int64_t classes, std::uint64_t seed) {
    std::mt19937_64 gen(seed);
    Matrix<T> m(1, n);
    for (std::int64_t i = 0; i < n; ++i)
        m[i] = static_cast<T>(gen() % static_cast<std::uint64_t>(classes));
    return m;
}

/// A host copy of any host view, converted to T.
template <class T, class U>
Matrix<T> host_copy(MatrixView<const U> v) {
    Matrix<T> m(v.rows, v.cols);
    for (std::int64_t c = 0; c < v.cols; ++c)
        for (std::int64_t r = 0; r < v.rows; ++r) m(r, c) = static_cast<T>(v(r, c));
    return m;
}
template <class T, class U>
Matrix<T> host_copy(const Matrix<U>& m) {
    return host_copy<T>(m.const_view());
}
template <class U>
Dense to_dense(MatrixView<const U> v) {
    Dense d(v.rows, v.cols);
    for (std::int64_t c = 0; c < v.cols; ++c)
        for (std::int64_t r = 0; r < v.rows; ++r) d(r, c) = static_cast<long double>(v(r, c));
    return d;
}
template <class U>
Dense to_dense(const Matrix<U>& m) {
    return to_dense(m.const_view());
}
template <class T>
Matrix<T> from_dense(const Dense& d) {
    return host_copy<T>(d.view());
}
/// True when two host matrices hold bitwise the same entries (NaN compares equal to itself).
template <class T>
bool same_bits(const Matrix<T>& a, const Matrix<T>& b) {
    return a.rows() == b.rows() && a.cols() == b.cols() &&
           (a.size() == 0 || std::memcmp(a.data(), b.data(), sizeof(T) * a.size()) == 0);
}

// ---- errors and the normwise assertion ---------------------------------------------------------

/// ||a - b||_F / max(||b||_F, tiny), accumulated in long double.
template <class TA, class TB>
double normwise_error(MatrixView<const TA> a, MatrixView<const TB> b) {
    long double diff = 0, ref = 0;
    for (std::int64_t c = 0; c < b.cols; ++c)
        for (std::int64_t r = 0; r < b.rows; ++r) {
            const long double x = a(r, c), y = b(r, c);
            diff += (x - y) * (x - y);
            ref += y * y;
        }
    const long double tiny = std::numeric_limits<double>::min();
    return static_cast<double>(std::sqrt(diff) / std::max(std::sqrt(ref), tiny));
}

/// Relative difference of two scalars, |a - b| / max(|b|, tiny).
inline double relative_difference(long double a, long double b) {
    const long double tiny = std::numeric_limits<double>::min();
    return static_cast<double>(std::fabs(a - b) / std::max(std::fabs(b), tiny));
}

template <class TA, class TB>
::testing::AssertionResult near_normwise_views(const char* ea, const char* eb,
                                               MatrixView<const TA> a, MatrixView<const TB> b,
                                               double tol) {
    if (a.rows != b.rows || a.cols != b.cols) {
        return ::testing::AssertionFailure() << ea << " is " << a.rows << " x " << a.cols << " but "
                                             << eb << " is " << b.rows << " x " << b.cols;
    }
    const double err = normwise_error(a, b);
    if (err <= tol) return ::testing::AssertionSuccess();  // NaN fails here too
    std::int64_t wr = 0, wc = 0;
    long double worst = -1;
    for (std::int64_t c = 0; c < b.cols; ++c)
        for (std::int64_t r = 0; r < b.rows; ++r) {
            const long double d = std::fabs(static_cast<long double>(a(r, c)) - b(r, c));
            const bool nan_seen = std::isnan(static_cast<double>(worst));
            if (!nan_seen && !(d <= worst)) worst = d, wr = r, wc = c;  // the first NaN wins
        }
    std::ostringstream os;
    os.precision(17);
    os << "normwise relative error of " << ea << " against " << eb << " is " << err
       << ", tolerance " << tol << " (" << b.rows << " x " << b.cols << "); worst element (" << wr
       << ", " << wc << "): " << static_cast<long double>(a(wr, wc)) << " vs "
       << static_cast<long double>(b(wr, wc));
    return ::testing::AssertionFailure() << os.str();
}

template <class A, class B>
::testing::AssertionResult near_normwise(const char* ea, const char* eb, const char*, const A& a,
                                         const B& b, double tol) {
    return near_normwise_views(ea, eb, as_view(a), as_view(b), tol);
}

/// Checks ||actual - expected||_F / ||expected||_F <= tol for host matrices or views of any element
/// types; on failure prints the error, the tolerance and the worst element with both values.
#define EXPECT_NEAR_NORMWISE(actual, expected, tol) \
    EXPECT_PRED_FORMAT3(::ngd_test::near_normwise, actual, expected, tol)
#define ASSERT_NEAR_NORMWISE(actual, expected, tol) \
    ASSERT_PRED_FORMAT3(::ngd_test::near_normwise, actual, expected, tol)

/// Success when `what` contains `needle` (error-message checks without gmock).
inline ::testing::AssertionResult contains(const std::string& what, const std::string& needle) {
    if (what.find(needle) != std::string::npos) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure()
           << "\"" << what << "\" does not mention \"" << needle << "\"";
}

// ---- long-double dense oracles -----------------------------------------------------------------

/// op(a) op(b), op = transpose when the flag is set.
inline Dense matmul(const Dense& a, bool ta, const Dense& b, bool tb) {
    const std::int64_t m = ta ? a.cols : a.rows, kk = ta ? a.rows : a.cols;
    const std::int64_t n = tb ? b.rows : b.cols;
    if (kk != (tb ? b.cols : b.rows)) throw std::invalid_argument("matmul: inner sizes differ");
    Dense c(m, n);
    for (std::int64_t j = 0; j < n; ++j)
        for (std::int64_t i = 0; i < m; ++i) {
            long double s = 0;
            for (std::int64_t l = 0; l < kk; ++l)
                s += (ta ? a(l, i) : a(i, l)) * (tb ? b(j, l) : b(l, j));
            c(i, j) = s;
        }
    return c;
}

/// Solves k x = b for symmetric positive definite k (full storage) by Cholesky; throws
/// std::domain_error when a pivot is not positive.
inline Dense cholesky_solve(Dense k, Dense b) {
    const std::int64_t n = k.rows;
    for (std::int64_t j = 0; j < n; ++j) {
        long double s = k(j, j);
        for (std::int64_t l = 0; l < j; ++l) s -= k(j, l) * k(j, l);
        if (!(s > 0)) throw std::domain_error("cholesky_solve: not positive definite");
        k(j, j) = std::sqrt(s);
        for (std::int64_t i = j + 1; i < n; ++i) {
            long double t = k(i, j);
            for (std::int64_t l = 0; l < j; ++l) t -= k(i, l) * k(j, l);
            k(i, j) = t / k(j, j);
        }
    }
    for (std::int64_t c = 0; c < b.cols; ++c) {
        for (std::int64_t i = 0; i < n; ++i) {  // L y = b
            long double t = b(i, c);
            for (std::int64_t l = 0; l < i; ++l) t -= k(i, l) * b(l, c);
            b(i, c) = t / k(i, i);
        }
        for (std::int64_t i = n - 1; i >= 0; --i) {  // L^T x = y
            long double t = b(i, c);
            for (std::int64_t l = i + 1; l < n; ++l) t -= k(l, i) * b(l, c);
            b(i, c) = t / k(i, i);
        }
    }
    return b;
}

inline long double frobenius(const Dense& a) {
    long double s = 0;
    for (long double x : a.a) s += x * x;
    return std::sqrt(s);
}

/// ||k||_F ||k^-1||_F for SPD k: an upper bound on the 2-norm condition number (by at most a factor
/// n), used as the `condition` of tolerance() for solves.
inline double condition_spd(const Dense& k) {
    Dense eye(k.rows, k.rows);
    for (std::int64_t i = 0; i < k.rows; ++i) eye(i, i) = 1;
    return static_cast<double>(frobenius(k) * frobenius(cholesky_solve(k, eye)));
}

/// An activation and its value in long double, written from the textbook definitions
/// (gelu is the exact z Phi(z)).
inline long double activate(ngd::Activation act, long double z) {
    switch (act) {
        case ngd::Activation::identity:
            return z;
        case ngd::Activation::relu:
            return z > 0 ? z : 0;
        case ngd::Activation::tanh:
            return std::tanh(z);
        case ngd::Activation::softplus:
            return z > 0 ? z + std::log1p(std::exp(-z)) : std::log1p(std::exp(z));
        case ngd::Activation::gelu:
            return 0.5L * z * (1 + std::erf(z / std::sqrt(2.0L)));
    }
    return 0;
}

/// The per-sample loss l_i, its gradient e_i and Hessian H_i (k x k) in closed form, long double,
/// from DESIGN.md section 1 without any of the library's log-space rewriting.
struct ClosedForm {
    long double value = 0;
    std::vector<long double> e;
    Dense h;
};

/// f: the k outputs of one sample; y: its k targets (squared) or its label in y[0].
inline ClosedForm loss_closed_form(ngd::Loss loss, const std::vector<long double>& f,
                                   const std::vector<long double>& y) {
    const std::int64_t k = static_cast<std::int64_t>(f.size());
    ClosedForm c{0, std::vector<long double>(k, 0.0L), Dense(k, k)};
    if (loss == ngd::Loss::squared) {
        for (std::int64_t o = 0; o < k; ++o) {
            c.value += 0.5L * (f[o] - y[o]) * (f[o] - y[o]);
            c.e[o] = f[o] - y[o];
            c.h(o, o) = 1;
        }
    } else if (loss == ngd::Loss::logistic) {
        const long double s = 2 * y[0] - 1, m = s * f[0];
        const long double sig_m = 1 / (1 + std::exp(-m)), sig_neg = 1 / (1 + std::exp(m));
        c.value = std::log1p(std::exp(-m));
        c.e[0] = -s * sig_neg;
        c.h(0, 0) = sig_m * sig_neg;
    } else {
        long double mx = f[0], z = 0;
        for (long double v : f) mx = std::max(mx, v);
        std::vector<long double> p(k);
        for (std::int64_t o = 0; o < k; ++o) z += (p[o] = std::exp(f[o] - mx));
        for (auto& v : p) v /= z;
        const auto label = static_cast<std::int64_t>(y[0]);
        c.value = -std::log(p[label]);
        for (std::int64_t o = 0; o < k; ++o) {
            c.e[o] = p[o] - (o == label ? 1 : 0);
            for (std::int64_t q = 0; q < k; ++q) c.h(o, q) = (o == q ? p[o] : 0) - p[o] * p[q];
        }
    }
    return c;
}

/// loss_closed_form for every sample of outputs f (k x n) and targets y (k x n or 1 x n).
template <class T>
std::vector<ClosedForm> loss_closed_forms(ngd::Loss loss, MatrixView<const T> f,
                                          MatrixView<const T> y) {
    std::vector<ClosedForm> out;
    for (std::int64_t i = 0; i < f.cols; ++i) {
        std::vector<long double> fi(f.rows), yi(y.rows);
        for (std::int64_t o = 0; o < f.rows; ++o) fi[o] = f(o, i);
        for (std::int64_t o = 0; o < y.rows; ++o) yi[o] = y(o, i);
        out.push_back(loss_closed_form(loss, fi, yi));
    }
    return out;
}

/// The primal damped Gauss-Newton direction d = (J^T H J / n + lambda I)^-1 J^T e / n (p x 1) for
/// J (N x p, sample-major rows) and per-sample e_i, H_i, with condition_spd of the system matrix.
struct Primal {
    Dense d;
    double condition;
};
inline Primal primal_direction(const Dense& j, const std::vector<ClosedForm>& s,
                               long double lambda) {
    const auto n = static_cast<std::int64_t>(s.size());
    const std::int64_t k = j.rows / n, p = j.cols;
    Dense f(p, p), g(p, 1);
    for (std::int64_t i = 0; i < n; ++i)
        for (std::int64_t o = 0; o < k; ++o)
            for (std::int64_t q = 0; q < k; ++q) {
                const long double h = s[i].h(o, q) / n;
                if (h == 0) continue;
                for (std::int64_t b = 0; b < p; ++b)
                    for (std::int64_t a = 0; a < p; ++a)
                        f(a, b) += j(i * k + o, a) * h * j(i * k + q, b);
            }
    for (std::int64_t i = 0; i < n; ++i)
        for (std::int64_t o = 0; o < k; ++o)
            for (std::int64_t a = 0; a < p; ++a) g(a, 0) += j(i * k + o, a) * s[i].e[o] / n;
    for (std::int64_t a = 0; a < p; ++a) f(a, a) += lambda;
    return Primal{cholesky_solve(f, g), condition_spd(f)};
}

struct HostForward {
    Dense f;                                 ///< k x n outputs
    long double min_abs_relu_preactivation;  ///< distance of the nearest relu input to its kink
};

/// The model's forward pass in long double, from the spec's documented layout and formulas only
/// (model.hpp): the oracle that forward() and, through it, the finite-difference tests rest on.
template <class T>
HostForward host_forward(const ngd::Mlp& model, MatrixView<const T> theta, MatrixView<const T> x,
                         MatrixView<const T> rows = {}) {
    const std::int64_t n = x.cols;
    Dense a = to_dense(x);
    long double min_kink = std::numeric_limits<long double>::infinity();
    for (std::int64_t l = 0; l < model.n_layers(); ++l) {
        const ngd::Layer& layer = model.layer(l);
        const std::int64_t n_in = a.rows, n_out = layer.n_out;
        const long double w = model.weight_multiplier(l);
        const std::int64_t wo = model.weight_offset(l), bo = model.bias_offset(l);
        Dense z(n_out, n);
        for (std::int64_t i = 0; i < n; ++i)
            for (std::int64_t r = 0; r < n_out; ++r) {
                long double s = 0;
                for (std::int64_t c = 0; c < n_in; ++c)
                    s += static_cast<long double>(theta.data[wo + r + c * n_out]) * a(c, i);
                z(r, i) = w * s + (bo >= 0 ? static_cast<long double>(theta.data[bo + r]) : 0.0L);
                if (layer.activation == ngd::Activation::relu)
                    min_kink = std::min(min_kink, std::fabs(z(r, i)));
                z(r, i) = activate(layer.activation, z(r, i));
            }
        a = std::move(z);
    }
    HostForward out{Dense(model.n_outputs(), n), min_kink};
    for (std::int64_t i = 0; i < n; ++i)
        for (std::int64_t o = 0; o < model.n_outputs(); ++o) {
            const std::int64_t r =
                model.selects_output_row() ? static_cast<std::int64_t>(rows.data[i * rows.ld]) : o;
            out.f(o, i) = model.output_scale() * a(r, i);
        }
    return out;
}

}  // namespace ngd_test
