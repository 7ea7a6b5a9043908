// Zhang, Martens & Grosse (2019) on ngd::two_layer_relu, the runs behind claim 2 and its theorem:
// how far the Jacobian moves during NGD training (Frobenius and spectral norms, flipped ReLU
// patterns), Condition 2 as the paper states it (|J(w) - J(w0)|_2 <= (C/3) sqrt(lambda_min(G0))
// with C < 1/2 on the ball |w - w0| <= 3 |y - u0| / sqrt(lambda_min(G0))), the limit kernel's
// lambda_0, and the lazy regime's predictor (NGD and GD reach the same interpolant as m grows).
// Shared by examples/zhang_properties.cpp and tests/repro_zhang_test.cpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <ngd/ngd.hpp>
#include <vector>

#include "common/data.hpp"
#include "common/zhang.hpp"

namespace examples::zhang {

/// One logged step of a stability run.
struct StabilityRecord {
    std::int64_t step = 0;
    double residual_sq = 0, jacobian_change = 0, flipped = 0;
    /// sqrt(flips / active patterns at theta0): equals jacobian_change for unit-norm inputs, since
    /// row i of J holds m^{-1/2} a_r 1[w_r . x_i > 0] x_i in unit r's block.
    double jacobian_change_from_patterns = 0;
    double jacobian_change_spectral = 0;  ///< |J_t - J_0|_2 (absolute, as Condition 2 states it)
    double distance = 0;                  ///< |theta_t - theta_0|_2
};

/// |a|_2 for an n x p host matrix with small n: sqrt(lambda_max(a a^T)).
inline double spectral_norm(const HostMatrix& a) {
    const std::int64_t n = a.rows(), p = a.cols();
    HostMatrix g(n, n);
    for (std::int64_t k = 0; k < p; ++k) {
        for (std::int64_t j = 0; j < n; ++j) {
            const double ajk = a(j, k);
            if (ajk == 0) continue;
            for (std::int64_t i = 0; i < n; ++i) g(i, j) += a(i, k) * ajk;
        }
    }
    return std::sqrt(std::max(0.0, symmetric_eigen(g.const_view()).values.back()));
}

inline HostMatrix difference(const HostMatrix& a, const HostMatrix& b) {
    HostMatrix c(a.rows(), a.cols());
    for (std::int64_t i = 0; i < a.size(); ++i) c[i] = a[i] - b[i];
    return c;
}

inline double distance(const HostMatrix& a, const HostMatrix& b) {
    double s = 0;
    for (std::int64_t i = 0; i < a.size(); ++i) s += (a[i] - b[i]) * (a[i] - b[i]);
    return std::sqrt(s);
}

/// NGD from theta0 for `steps` steps; after each, |J_t - J_0| in both norms (library Jacobians),
/// |theta_t - theta_0| and the flipped fraction of ReLU patterns. Record 0 is theta0 itself.
inline std::vector<StabilityRecord> jacobian_stability(ngd::Context& ctx, const Problem& p,
                                                       double lr, double damping,
                                                       std::int64_t steps) {
    Trainer t(ctx, p, Method::ngd, lr, damping);
    const HostMatrix j0 = jacobian_host(ctx, p, p.theta0);
    const auto pattern0 = activation_pattern(p, p.theta0);
    double active0 = 0;
    for (char c : pattern0) active0 += c;
    std::vector<StabilityRecord> out;
    for (std::int64_t s = 0; s <= steps; ++s) {
        if (s > 0) t.step();
        const HostMatrix th = t.theta_host();
        const HostMatrix j = jacobian_host(ctx, p, th);
        StabilityRecord r;
        r.step = s;
        r.residual_sq = squared_norm(t.residual());
        r.jacobian_change = relative_difference(j, j0);
        r.jacobian_change_spectral = s == 0 ? 0.0 : spectral_norm(difference(j, j0));
        r.distance = distance(th, p.theta0);
        r.flipped = flipped_fraction(activation_pattern(p, th), pattern0);
        r.jacobian_change_from_patterns = std::sqrt(r.flipped * double(pattern0.size()) / active0);
        out.push_back(r);
    }
    return out;
}

/// The infinite-width Gram matrix of two_layer_relu (w ~ N(0, I), a_r = +-1, only W trained):
/// G_inf(i, j) = x_i.x_j (pi - arccos(cos_ij)) / (2 pi), the expectation of G = J J^T at theta0.
inline HostMatrix limit_kernel(const HostMatrix& x) {
    const std::int64_t d = x.rows(), n = x.cols();
    HostMatrix g(n, n);
    const double pi = 3.141592653589793;
    for (std::int64_t i = 0; i < n; ++i) {
        for (std::int64_t j = 0; j < n; ++j) {
            double dot = 0, ni = 0, nj = 0;
            for (std::int64_t k = 0; k < d; ++k) {
                dot += x(k, i) * x(k, j);
                ni += x(k, i) * x(k, i);
                nj += x(k, j) * x(k, j);
            }
            const double c = std::clamp(dot / std::sqrt(ni * nj), -1.0, 1.0);
            g(i, j) = dot * (pi - std::acos(c)) / (2 * pi);
        }
    }
    return g;
}

/// Condition 2 of Zhang et al. at one width, as far as it can be measured. The theorem needs
/// |J(w) - J(w0)|_2 <= (C/3) sqrt(lambda_min(G0)) for every w with |w - w0| <= radius, for some
/// C < 1/2. A sup over a ball cannot be computed; what is measured are lower bounds on it: the
/// NGD trajectory (which stays inside the ball) and random points on the ball's surface. The
/// condition fails when either exceeds the bound; below it, the condition is only not refuted.
struct Condition2 {
    double lambda_min_g0 = 0;  ///< smallest eigenvalue of G0 = J0 J0^T
    double lambda_0 = 0;       ///< smallest eigenvalue of the limit kernel (closed form)
    double radius = 0;         ///< 3 |y - u0| / sqrt(lambda_min(G0))
    double bound = 0;          ///< (C/3) sqrt(lambda_min(G0)) at C = 1/2 (the largest allowed)
    double trajectory = 0;     ///< max_t |J_t - J_0|_2 along NGD training
    double max_distance = 0;   ///< max_t |theta_t - theta_0| (should be <= radius)
    double probe = 0;          ///< max |J(w) - J0|_2 over random w on the ball's surface
    /// The smallest C the measurements allow: 3 max(trajectory, probe) / sqrt(lambda_min(G0)).
    double c_needed() const { return 3 * std::max(trajectory, probe) / std::sqrt(lambda_min_g0); }
    bool refuted() const { return c_needed() >= 0.5; }
};

inline Condition2 condition2(ngd::Context& ctx, const Problem& p,
                             const std::vector<StabilityRecord>& recs, int n_probes,
                             std::uint64_t probe_seed) {
    Condition2 c;
    const HostMatrix g0 = gram_host(ctx, p, p.theta0);
    c.lambda_min_g0 = symmetric_eigen(g0.const_view()).values.front();
    c.lambda_0 = symmetric_eigen(limit_kernel(p.x).const_view()).values.front();
    c.radius = 3 * std::sqrt(recs.front().residual_sq) / std::sqrt(c.lambda_min_g0);
    c.bound = std::sqrt(c.lambda_min_g0) / 6;
    for (const StabilityRecord& r : recs) {
        c.trajectory = std::max(c.trajectory, r.jacobian_change_spectral);
        c.max_distance = std::max(c.max_distance, r.distance);
    }
    const HostMatrix j0 = jacobian_host(ctx, p, p.theta0);
    const std::int64_t n_w = p.m() * p.d();  // only W is trained; a stays fixed
    for (int k = 0; k < n_probes; ++k) {
        const HostMatrix xi = gaussian_matrix<double>(n_w, 1, probe_seed + std::uint64_t(k));
        double norm = 0;
        for (std::int64_t i = 0; i < n_w; ++i) norm += xi[i] * xi[i];
        HostMatrix w(p.theta0.rows(), p.theta0.cols());
        for (std::int64_t i = 0; i < w.size(); ++i) w[i] = p.theta0[i];
        for (std::int64_t i = 0; i < n_w; ++i) w[i] += c.radius * xi[i] / std::sqrt(norm);
        c.probe = std::max(c.probe, spectral_norm(difference(jacobian_host(ctx, p, w), j0)));
    }
    return c;
}

// ---- the lazy regime's predictor ------------------------------------------------------------

/// Outputs of two_layer_relu at theta on the columns of x (host).
inline std::vector<double> outputs(ngd::Context& ctx, const Problem& p, const HostMatrix& theta,
                                   const HostMatrix& x) {
    const auto th = ngd::to_context(ctx, theta.const_view());
    const auto xc = ngd::to_context(ctx, x.const_view());
    const auto f_ctx = ngd::forward<double>(ctx, p.model, th.const_view(), xc.const_view());
    const HostMatrix f = ngd::to_host(ctx, f_ctx.const_view());
    return std::vector<double>(f.data(), f.data() + f.size());
}

/// What training did to the predictions on fresh inputs, at one width.
struct LazyRecord {
    std::int64_t ngd_steps = 0, gd_steps = 0;
    double ngd_residual_sq = 0, gd_residual_sq = 0;  ///< |f - y|^2 on the training set at the end
    double test_change = 0;  ///< rms_x |f_ngd(x) - f_0(x)|: how far training moved them
    double ngd_vs_gd = 0;    ///< rms |f_ngd - f_gd| / test_change
    double ngd_vs_linear = 0, gd_vs_linear = 0;  ///< the same against the linearised predictor
    double theta_gap = 0;                        ///< |theta_ngd - theta_gd| / |theta_ngd - theta_0|
};

/// NGD (lr 1, `damping`, `ngd_steps` steps) and GD (lr = n / lambda_max(G0), until
/// |f - y|^2 <= tol |f0 - y|^2 or gd_max_steps) from the same theta0; their predictions on
/// x_test, next to the linearised (kernel) predictor f0(x) + J0(x) J0^T G0^{-1} (y - f0), which
/// both reach in the infinite-width limit. J0(x) delta is written out for this model:
/// m^{-1/2} sum_r a_r 1[w_r.x > 0] delta_r.x.
inline LazyRecord lazy_predictions(ngd::Context& ctx, const Problem& p, const HostMatrix& x_test,
                                   double damping, std::int64_t ngd_steps,
                                   std::int64_t gd_max_steps, double tol) {
    LazyRecord rec;
    const std::int64_t m = p.m(), d = p.d(), n = p.n();
    // The linearised predictor: delta = -(the undamped NGD direction at theta0).
    const auto th0 = ngd::to_context(ctx, p.theta0.const_view());
    const auto x = ngd::to_context(ctx, p.x.const_view());
    const auto y = ngd::to_context(ctx, p.y.const_view());
    const ngd::Batch<double> batch{x.const_view(), y.const_view(), {}};
    const auto dir_ctx =
        ngd::direction<double>(ctx, p.model, th0.const_view(), batch, ngd::Loss::squared, damping);
    const HostMatrix dir = ngd::to_host(ctx, dir_ctx.const_view());
    const std::vector<double> f0 = outputs(ctx, p, p.theta0, x_test);
    std::vector<double> lin = f0;
    const double* a = p.theta0.data() + m * d;
    for (std::int64_t i = 0; i < x_test.cols(); ++i) {
        for (std::int64_t r = 0; r < m; ++r) {
            double z = 0, dz = 0;
            for (std::int64_t c = 0; c < d; ++c) {
                z += p.theta0[r + c * m] * x_test(c, i);
                dz -= dir[r + c * m] * x_test(c, i);
            }
            if (z > 0) lin[i] += a[r] * dz / std::sqrt(double(m));
        }
    }
    Trainer ngd_t(ctx, p, Method::ngd, 1.0, damping);
    for (; rec.ngd_steps < ngd_steps; ++rec.ngd_steps) ngd_t.step();
    rec.ngd_residual_sq = squared_norm(ngd_t.residual());
    const HostMatrix g0 = gram_host(ctx, p, p.theta0);
    const double lr = double(n) / symmetric_eigen(g0.const_view()).values.back();
    Trainer gd_t(ctx, p, Method::gd, lr);
    const double r0 = squared_norm(gd_t.residual());
    for (rec.gd_residual_sq = r0; rec.gd_steps < gd_max_steps && rec.gd_residual_sq > tol * r0;) {
        gd_t.step();
        ++rec.gd_steps;
        rec.gd_residual_sq = squared_norm(gd_t.residual());
    }
    const HostMatrix th_ngd = ngd_t.theta_host(), th_gd = gd_t.theta_host();
    const std::vector<double> f_ngd = outputs(ctx, p, th_ngd, x_test);
    const std::vector<double> f_gd = outputs(ctx, p, th_gd, x_test);
    auto rms = [](const std::vector<double>& u, const std::vector<double>& v) {
        double s = 0;
        for (std::size_t i = 0; i < u.size(); ++i) s += (u[i] - v[i]) * (u[i] - v[i]);
        return std::sqrt(s / double(u.size()));
    };
    rec.test_change = rms(f_ngd, f0);
    rec.ngd_vs_gd = rms(f_ngd, f_gd) / rec.test_change;
    rec.ngd_vs_linear = rms(f_ngd, lin) / rec.test_change;
    rec.gd_vs_linear = rms(f_gd, lin) / rec.test_change;
    rec.theta_gap = distance(th_ngd, th_gd) / distance(th_ngd, p.theta0);
    return rec;
}

}  // namespace examples::zhang
