// K-FAC for ngd::two_layer_relu, whose only trained layer gives one Kronecker block (the setting of
// Zhang et al. 2019, section on K-FAC): F ~ A (x) S with A = X X^T / n (d x d, inputs) and
// S = G G^T / n (m x m, backpropagated gradients g_i = m^{-1/2} a o relu'(W x_i)), update
// dW = S_g^{-1} grad_W L A_g^{-1}. S has rank <= n << m, so the m x m solve goes through the n x n
// matrix Q = G^T G (push-through identity); a dense m x m version is kept for the tests. Damping is
// Tikhonov on each factor, relative to its mean nonzero eigenvalue.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <ngd/ngd.hpp>
#include <vector>

#include "common/zhang.hpp"

namespace examples::kfac {

using zhang::HostMatrix;

/// gamma_a, gamma_s: A_g = A + gamma_a (tr A / d) I, S_g = S + gamma_s (tr S / min(n, m)) I.
/// gamma_s = 0 is the pseudo-inverse of S (needs m >= n and Q nonsingular).
struct Options {
    double damping_a = 1e-3;
    double damping_s = 1e-3;
};

/// G (m x n): column i is d f(x_i) / d z = m^{-1/2} a o 1[W x_i > 0] (z = W x_i).
inline HostMatrix backprop_matrix(const zhang::Problem& p, const HostMatrix& theta) {
    const std::int64_t m = p.m(), n = p.n();
    const auto on = zhang::activation_pattern(p, theta);
    const double scale = 1 / std::sqrt(double(m));
    const double* a = theta.data() + p.model.weight_offset(1);
    HostMatrix g(m, n);
    for (std::int64_t i = 0; i < n; ++i) {
        for (std::int64_t r = 0; r < m; ++r)
            g(r, i) = on[std::size_t(r + i * m)] ? scale * a[r] : 0;
    }
    return g;
}

/// b^T c for b (k x n1), c (k x n2): n1 x n2.
inline HostMatrix cross(const HostMatrix& b, const HostMatrix& c) {
    HostMatrix out(b.cols(), c.cols());
    for (std::int64_t j = 0; j < c.cols(); ++j) {
        for (std::int64_t i = 0; i < b.cols(); ++i) {
            double s = 0;
            for (std::int64_t k = 0; k < b.rows(); ++k) s += b(k, i) * c(k, j);
            out(i, j) = s;
        }
    }
    return out;
}

inline HostMatrix transpose(const HostMatrix& a) {
    HostMatrix t(a.cols(), a.rows());
    for (std::int64_t j = 0; j < a.cols(); ++j) {
        for (std::int64_t i = 0; i < a.rows(); ++i) t(j, i) = a(i, j);
    }
    return t;
}

inline double trace(const HostMatrix& a) {
    double s = 0;
    for (std::int64_t i = 0; i < a.rows(); ++i) s += a(i, i);
    return s;
}

/// (a + shift I)^{-1} rhs through the library's Cholesky solve, on the context's backend.
inline HostMatrix solve(ngd::Context& ctx, const HostMatrix& a, double shift,
                        const HostMatrix& rhs) {
    const auto ac = ngd::to_context(ctx, a.const_view());
    const auto bc = ngd::to_context(ctx, rhs.const_view());
    const auto xc = ngd::damped_solve<double>(ctx, ac.const_view(), shift, bc.const_view());
    return ngd::to_host(ctx, xc.const_view());
}

/// A = X X^T / n and its damping shift gamma_a tr(A) / d.
inline HostMatrix input_factor(const zhang::Problem& p, const Options& o, double& shift) {
    HostMatrix a = cross(transpose(p.x), transpose(p.x));
    for (std::int64_t i = 0; i < a.size(); ++i) a[i] /= double(p.n());
    shift = o.damping_a * trace(a) / double(p.d());
    return a;
}

/// The K-FAC update dW (m x d) for residual r = f - y, through n x n systems only:
///   S_g^{-1} G = n G (Q + c I)^{-1} with Q = G^T G, c = n gamma_s tr(S)/min(n,m) = gamma_s
///   tr(Q)/min(n,m), grad_W L = G diag(r) X^T / n, so dW = G [(Q + c I)^{-1} diag(r) X^T] A_g^{-1}.
inline HostMatrix update(ngd::Context& ctx, const zhang::Problem& p, const HostMatrix& theta,
                         const std::vector<double>& r, const Options& o) {
    const std::int64_t n = p.n(), d = p.d();
    const HostMatrix g = backprop_matrix(p, theta);
    const HostMatrix q = cross(g, g);
    const double c = o.damping_s * trace(q) / double(std::min(n, p.m()));
    HostMatrix b(n, d);  // diag(r) X^T
    for (std::int64_t k = 0; k < d; ++k) {
        for (std::int64_t i = 0; i < n; ++i) b(i, k) = r[i] * p.x(k, i);
    }
    const HostMatrix cq = solve(ctx, q, c, b);
    double shift_a = 0;
    const HostMatrix a = input_factor(p, o, shift_a);
    const HostMatrix z = solve(ctx, a, shift_a, transpose(cq));  // A_g^{-1} C^T, d x n
    return cross(transpose(g), transpose(z));                    // G (A_g^{-1} C^T)^T
}

/// The same update with the m x m factor formed and solved densely (tests; small m only).
inline HostMatrix update_dense(ngd::Context& ctx, const zhang::Problem& p, const HostMatrix& theta,
                               const std::vector<double>& r, const Options& o) {
    const std::int64_t n = p.n(), m = p.m(), d = p.d();
    const HostMatrix g = backprop_matrix(p, theta);
    HostMatrix s = cross(transpose(g), transpose(g));  // G G^T
    for (std::int64_t i = 0; i < s.size(); ++i) s[i] /= double(n);
    const double shift_s = o.damping_s * trace(s) / double(std::min(n, m));
    HostMatrix grad(m, d);  // grad_W L = G diag(r) X^T / n
    for (std::int64_t k = 0; k < d; ++k) {
        for (std::int64_t i = 0; i < n; ++i) {
            for (std::int64_t row = 0; row < m; ++row) grad(row, k) += g(row, i) * r[i] * p.x(k, i);
        }
    }
    for (std::int64_t i = 0; i < grad.size(); ++i) grad[i] /= double(n);
    const HostMatrix left = solve(ctx, s, shift_s, grad);  // S_g^{-1} grad, m x d
    double shift_a = 0;
    const HostMatrix a = input_factor(p, o, shift_a);
    return transpose(solve(ctx, a, shift_a, transpose(left)));  // (A_g^{-1} left^T)^T
}

/// The linearised sample-space map of one K-FAC step, f - y <- (I - lr K)(f - y), with
///   K = [Q (Q + c I)^{-1}] o [X^T A_g^{-1} X]   (Hadamard product, symmetric PSD).
/// For c -> 0 (Q nonsingular) the first factor is I and K = diag(x_i^T A_g^{-1} x_i), which for
/// gamma_a = 0 is n times the leverage scores of X^T: their spread is what cond(X X^T) controls.
inline HostMatrix sample_kernel(ngd::Context& ctx, const zhang::Problem& p, const HostMatrix& theta,
                                const Options& o) {
    const std::int64_t n = p.n();
    const HostMatrix g = backprop_matrix(p, theta);
    const HostMatrix q = cross(g, g);
    const double c = o.damping_s * trace(q) / double(std::min(n, p.m()));
    const HostMatrix qq = solve(ctx, q, c, q);  // (Q + cI)^{-1} Q = Q (Q + cI)^{-1}
    double shift_a = 0;
    const HostMatrix a = input_factor(p, o, shift_a);
    const HostMatrix xk = cross(p.x, solve(ctx, a, shift_a, p.x));  // X^T A_g^{-1} X
    HostMatrix k(n, n);
    for (std::int64_t i = 0; i < k.size(); ++i) k[i] = qq[i] * xk[i];
    return k;
}

/// K-FAC on the first layer: theta_W <- theta_W - lr dW, with lr = lr_fraction / lambda_max(K at
/// theta0), the same fraction of its largest non-overshooting step as NGD's lr is of 1.
class Trainer {
  public:
    Trainer(ngd::Context& ctx, const zhang::Problem& p, double lr_fraction, Options o)
        : ctx_(ctx), p_(p), o_(o), theta_(p.theta0.rows(), 1) {
        for (std::int64_t i = 0; i < theta_.size(); ++i) theta_[i] = p.theta0[i];
        kernel_ = sample_kernel(ctx, p, theta_, o);
        lr_ = lr_fraction / zhang::symmetric_eigen(kernel_.const_view()).values.back();
    }
    void step() {
        const HostMatrix dw = update(ctx_, p_, theta_, residual(), o_);
        for (std::int64_t i = 0; i < dw.size(); ++i) theta_[i] -= lr_ * dw[i];
    }
    std::vector<double> residual() const {
        const auto th = ngd::to_context(ctx_, theta_.const_view());
        const auto x = ngd::to_context(ctx_, p_.x.const_view());
        const auto f = ngd::forward<double>(ctx_, p_.model, th.const_view(), x.const_view());
        const HostMatrix fh = ngd::to_host(ctx_, f.const_view());
        std::vector<double> r(p_.n());
        for (std::int64_t i = 0; i < p_.n(); ++i) r[i] = fh[i] - p_.y[i];
        return r;
    }
    double lr() const { return lr_; }
    /// K at theta0 (see sample_kernel).
    const HostMatrix& kernel() const { return kernel_; }
    const HostMatrix& theta() const { return theta_; }

  private:
    ngd::Context& ctx_;
    const zhang::Problem& p_;
    Options o_;
    HostMatrix theta_, kernel_;
    double lr_ = 0;
};

}  // namespace examples::kfac
