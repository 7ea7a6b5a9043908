// Reference directions for linear predictors on d x n data (one sample per column): the hard-margin
// SVM through the origin, solved by dual coordinate ascent, and the minimum-norm interpolant
// X (X^T X)^{-1} t. The Kerekes reproduction compares trained weights with both; they are small and
// written out here so that nothing but ngd is needed.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <ngd/context.hpp>
#include <ngd/matrix.hpp>
#include <ngd/stages.hpp>
#include <stdexcept>
#include <string>
#include <vector>

namespace examples::kerekes {

inline double dot(const std::vector<double>& a, const std::vector<double>& b) {
    double s = 0;
    for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
    return s;
}
inline double norm2(const std::vector<double>& a) { return std::sqrt(dot(a, a)); }
/// cos of the angle between a and b; NaN when either is zero.
inline double cosine(const std::vector<double>& a, const std::vector<double>& b) {
    const double na = norm2(a), nb = norm2(b);
    return na > 0 && nb > 0 ? dot(a, b) / (na * nb) : NAN;
}

/// Column i of x as a vector.
inline std::vector<double> column(const ngd::Matrix<double>& x, std::int64_t i) {
    return std::vector<double>(x.data() + i * x.rows(), x.data() + (i + 1) * x.rows());
}

/// w^T x_i for every column of x.
inline std::vector<double> linear_outputs(const ngd::Matrix<double>& x,
                                          const std::vector<double>& w) {
    std::vector<double> f(x.cols());
    for (std::int64_t i = 0; i < x.cols(); ++i) {
        double s = 0;
        for (std::int64_t r = 0; r < x.rows(); ++r) s += x(r, i) * w[r];
        f[i] = s;
    }
    return f;
}

struct SvmSolution {
    std::vector<double> w;      ///< the max-margin direction, scaled so that min_i s_i w.x_i = 1
    std::vector<double> alpha;  ///< dual variables; alpha_i > 0 marks a support vector
    int sweeps = 0;
    double kkt_violation = 0;  ///< largest violation of the KKT conditions at the end
    std::int64_t n_support = 0;
};

/// The hard-margin SVM without bias: min |w|^2 / 2 subject to s_i w.x_i >= 1 (s_i = +-1), through
/// its dual max sum(alpha) - |sum alpha_i s_i x_i|^2 / 2 over alpha >= 0. Without a bias the dual
/// has no equality constraint, so exact coordinate ascent is a clipped Newton step per coordinate
/// and converges linearly when the x_i are linearly independent (d >= n). Stops when every KKT
/// condition holds to `tol`; throws std::runtime_error when it does not within max_sweeps (the data
/// are then not separable, or nearly so).
inline SvmSolution hard_margin_svm(const ngd::Matrix<double>& x, const std::vector<double>& s,
                                   double tol = 1e-11, int max_sweeps = 200000) {
    const std::int64_t d = x.rows(), n = x.cols();
    if (std::int64_t(s.size()) != n) throw std::invalid_argument("hard_margin_svm: s is not n");
    SvmSolution sol;
    sol.w.assign(d, 0.0);
    sol.alpha.assign(n, 0.0);
    std::vector<double> sq(n);
    for (std::int64_t i = 0; i < n; ++i) sq[i] = dot(column(x, i), column(x, i));
    for (sol.sweeps = 1; sol.sweeps <= max_sweeps; ++sol.sweeps) {
        double worst = 0;
        for (std::int64_t i = 0; i < n; ++i) {
            double margin = 0;
            for (std::int64_t r = 0; r < d; ++r) margin += x(r, i) * sol.w[r];
            const double slack = 1.0 - s[i] * margin;  // the dual's partial derivative
            // KKT: alpha_i > 0 needs margin exactly 1; alpha_i = 0 needs margin >= 1.
            worst = std::max(worst, sol.alpha[i] > 0 ? std::abs(slack) : slack);
            const double next = std::max(0.0, sol.alpha[i] + slack / sq[i]);
            const double delta = (next - sol.alpha[i]) * s[i];
            for (std::int64_t r = 0; r < d; ++r) sol.w[r] += delta * x(r, i);
            sol.alpha[i] = next;
        }
        sol.kkt_violation = worst;
        if (worst < tol) break;
    }
    if (sol.kkt_violation >= tol) {
        throw std::runtime_error("hard_margin_svm: no convergence in " +
                                 std::to_string(max_sweeps) + " sweeps (KKT violation " +
                                 std::to_string(sol.kkt_violation) + "): data not separable?");
    }
    sol.n_support =
        std::count_if(sol.alpha.begin(), sol.alpha.end(), [](double a) { return a > 0; });
    return sol;
}

/// The minimum-norm solution of x_i^T w = t_i for all i: w = X (X^T X)^{-1} t. Needs linearly
/// independent columns (d >= n); the n x n solve goes through ngd::damped_solve with zero shift on
/// the reference backend, which throws ngd::NotPositiveDefinite otherwise.
inline std::vector<double> min_norm_interpolant(const ngd::Matrix<double>& x,
                                                const std::vector<double>& t) {
    const std::int64_t d = x.rows(), n = x.cols();
    ngd::Matrix<double> gram(n, n), rhs(n, 1);
    for (std::int64_t i = 0; i < n; ++i) {
        rhs[i] = t[i];
        for (std::int64_t j = 0; j < n; ++j) {
            double s = 0;
            for (std::int64_t r = 0; r < d; ++r) s += x(r, i) * x(r, j);
            gram(i, j) = s;
        }
    }
    ngd::Context ctx = ngd::Context::reference();
    const ngd::Matrix<double> c =
        ngd::damped_solve<double>(ctx, gram.const_view(), 0.0, rhs.const_view());
    std::vector<double> w(d, 0.0);
    for (std::int64_t i = 0; i < n; ++i) {
        for (std::int64_t r = 0; r < d; ++r) w[r] += x(r, i) * c[i];
    }
    return w;
}

}  // namespace examples::kerekes
