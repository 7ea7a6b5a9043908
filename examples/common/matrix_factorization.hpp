// Deep matrix completion (Kerekes, Meszaros & Huszar 2021, after Arora et al. 2019) on
// ngd::matrix_factorization: a low-rank d x d matrix observed on a subset of its entries, fitted by
// GD or NGD through W = W_depth ... W_1, and the measures of what was learnt off the observed
// entries: test error on the unobserved ones and the effective rank (Roy & Vetterli 2007) of W,
// from a small one-sided Jacobi SVD. Host code over the public ngd API, shared by
// examples/kerekes_matrix_factorization.cpp and tests/repro_mf_test.cpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <ngd/ngd.hpp>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "common/data.hpp"

namespace examples::mf {

using HostMatrix = ngd::Matrix<double>;

/// A completion problem, in host memory. Sample s is the observed entry (rows[s], j): input e_j,
/// target truth(rows[s], j).
struct Problem {
    std::int64_t d = 0, rank = 0;
    HostMatrix truth;            ///< d x d, rank `rank`, |truth|_F = 1
    std::vector<char> observed;  ///< d*d mask, entry (i, j) at i + j d
    HostMatrix inputs;           ///< d x n one-hot columns
    HostMatrix targets;          ///< 1 x n
    HostMatrix rows;             ///< 1 x n output rows (as doubles, as Batch::output_rows wants)
    std::int64_t n() const { return inputs.cols(); }
};

/// truth = U V^T (U, V d x rank Gaussian) scaled to unit Frobenius norm; n_observed entries drawn
/// uniformly without replacement (a seeded Fisher-Yates shuffle).
inline Problem make_problem(std::int64_t d, std::int64_t rank, std::int64_t n_observed,
                            std::uint64_t seed) {
    if (d < 1 || rank < 1 || rank > d || n_observed < 1 || n_observed > d * d) {
        throw std::invalid_argument("mf::make_problem: need 1 <= rank <= d, 1 <= n <= d^2");
    }
    Problem p;
    p.d = d;
    p.rank = rank;
    const HostMatrix u = gaussian_matrix<double>(d, rank, seed);
    const HostMatrix v = gaussian_matrix<double>(d, rank, seed + 1);
    p.truth = HostMatrix(d, d);
    double norm2 = 0;
    for (std::int64_t j = 0; j < d; ++j) {
        for (std::int64_t i = 0; i < d; ++i) {
            for (std::int64_t k = 0; k < rank; ++k) p.truth(i, j) += u(i, k) * v(j, k);
            norm2 += p.truth(i, j) * p.truth(i, j);
        }
    }
    for (std::int64_t e = 0; e < d * d; ++e) p.truth[e] /= std::sqrt(norm2);

    std::vector<std::int64_t> order(static_cast<std::size_t>(d * d));
    for (std::int64_t e = 0; e < d * d; ++e) order[e] = e;
    Rng rng(seed + 2);
    for (std::int64_t e = d * d - 1; e > 0; --e) std::swap(order[e], order[rng.below(e + 1)]);
    std::sort(order.begin(), order.begin() + n_observed);
    p.observed.assign(static_cast<std::size_t>(d * d), 0);
    p.inputs = HostMatrix(d, n_observed);
    p.targets = HostMatrix(1, n_observed);
    p.rows = HostMatrix(1, n_observed);
    for (std::int64_t s = 0; s < n_observed; ++s) {
        const std::int64_t i = order[s] % d, j = order[s] / d;
        p.observed[order[s]] = 1;
        p.inputs(j, s) = 1;
        p.targets[s] = p.truth(i, j);
        p.rows[s] = double(i);
    }
    return p;
}

/// Every entry as a sample: column e = i + j d has input e_j and output row i.
struct AllEntries {
    HostMatrix inputs, rows;
    explicit AllEntries(std::int64_t d) : inputs(d, d * d), rows(1, d * d) {
        for (std::int64_t e = 0; e < d * d; ++e) {
            inputs(e / d, e) = 1;
            rows[e] = double(e % d);
        }
    }
};

/// The end-to-end matrix W (d x d) read through the library's forward pass: one sample per entry.
inline HostMatrix end_to_end(ngd::Context& ctx, const ngd::Mlp& model, const HostMatrix& theta) {
    const std::int64_t d = model.n_inputs();
    const AllEntries all(d);
    const auto th = ngd::to_context(ctx, theta.const_view());
    const auto xc = ngd::to_context(ctx, all.inputs.const_view());
    const auto rc = ngd::to_context(ctx, all.rows.const_view());
    const auto f =
        ngd::forward<double>(ctx, model, th.const_view(), xc.const_view(), rc.const_view());
    const HostMatrix w = ngd::to_host(ctx, f.const_view());  // 1 x d^2, entry e = (e % d, e / d)
    HostMatrix out(d, d);
    for (std::int64_t e = 0; e < d * d; ++e) out[e] = w[e];
    return out;
}

/// One step of NGD with the Fisher over every entry of W (the input distribution is all d^2
/// entries; only the observed ones carry loss): d = J_W^T (J_W J_W^T + d^2 lambda I)^{-1} u with
/// J_W the d^2 x p Jacobian of W and u = W - M on observed entries, 0 elsewhere. When J_W has full
/// row rank, J_W d = u: to first order the unobserved entries do not move, at any depth.
inline void full_fisher_step(ngd::Context& ctx, const Problem& p, const ngd::Mlp& model,
                             ngd::Matrix<double>& theta, double lr, double damping) {
    const AllEntries all(p.d);
    const auto xc = ngd::to_context(ctx, all.inputs.const_view());
    const auto rc = ngd::to_context(ctx, all.rows.const_view());
    const auto j =
        ngd::jacobian<double>(ctx, model, theta.const_view(), xc.const_view(), rc.const_view());
    HostMatrix th = ngd::to_host(ctx, theta.const_view());
    HostMatrix u = end_to_end(ctx, model, th);
    for (std::int64_t e = 0; e < u.size(); ++e) u[e] = p.observed[e] ? u[e] - p.truth[e] : 0;
    const auto uc = ngd::to_context(ctx, ngd::MatrixView<const double>(u.data(), u.size(), 1));
    const auto dir =
        ngd::direction_from_jacobian<double>(ctx, j.const_view(), uc.const_view(), damping);
    const HostMatrix dh = ngd::to_host(ctx, dir.const_view());
    for (std::int64_t i = 0; i < th.size(); ++i) th[i] -= lr * dh[i];
    theta = ngd::to_context(ctx, th.const_view());
}

/// Singular values (descending) by one-sided Jacobi (Hestenes): rotate column pairs until all are
/// orthogonal; the column norms are then the singular values. Accurate for small matrices.
inline std::vector<double> singular_values(const HostMatrix& a_in) {
    const std::int64_t r = a_in.rows(), c = a_in.cols();
    HostMatrix a(r, c);
    for (std::int64_t e = 0; e < a.size(); ++e) a[e] = a_in[e];
    for (int sweep = 0; sweep < 60; ++sweep) {
        bool rotated = false;
        for (std::int64_t p = 0; p < c - 1; ++p) {
            for (std::int64_t q = p + 1; q < c; ++q) {
                double alpha = 0, beta = 0, gamma = 0;
                for (std::int64_t k = 0; k < r; ++k) {
                    alpha += a(k, p) * a(k, p);
                    beta += a(k, q) * a(k, q);
                    gamma += a(k, p) * a(k, q);
                }
                if (std::abs(gamma) <= 1e-15 * std::sqrt(alpha * beta) || gamma == 0) continue;
                rotated = true;
                const double zeta = (beta - alpha) / (2 * gamma);
                const double t =
                    (zeta >= 0 ? 1 : -1) / (std::abs(zeta) + std::sqrt(1 + zeta * zeta));
                const double cs = 1 / std::sqrt(1 + t * t), sn = cs * t;
                for (std::int64_t k = 0; k < r; ++k) {
                    const double x = a(k, p), y = a(k, q);
                    a(k, p) = cs * x - sn * y;
                    a(k, q) = sn * x + cs * y;
                }
            }
        }
        if (!rotated) break;
    }
    std::vector<double> s(static_cast<std::size_t>(c));
    for (std::int64_t j = 0; j < c; ++j) {
        double n2 = 0;
        for (std::int64_t k = 0; k < r; ++k) n2 += a(k, j) * a(k, j);
        s[j] = std::sqrt(n2);
    }
    std::sort(s.begin(), s.end(), std::greater<double>());
    return s;
}

/// Roy & Vetterli's effective rank exp(H(p)), p_k = s_k / sum s: 1 for rank one, d for s all equal.
inline double effective_rank(const std::vector<double>& s) {
    double total = 0, h = 0;
    for (double v : s) total += v;
    if (total == 0) return 0;
    for (double v : s) {
        const double pk = v / total;
        if (pk > 0) h -= pk * std::log(pk);
    }
    return std::exp(h);
}

/// |W - truth|_F / |truth|_F over the unobserved entries.
inline double test_rel_error(const Problem& p, const HostMatrix& w) {
    double num = 0, den = 0;
    for (std::int64_t e = 0; e < p.d * p.d; ++e) {
        if (p.observed[e]) continue;
        num += (w[e] - p.truth[e]) * (w[e] - p.truth[e]);
        den += p.truth[e] * p.truth[e];
    }
    return std::sqrt(num / den);
}

struct Record {
    std::int64_t step = 0;
    double loss = 0, test_rel_error = 0, effective_rank = 0;
    double unobserved_change = 0;  ///< max |W_ij(t) - W_ij(0)| over unobserved (i, j)
    /// NGD steps so far that needed the library's failure ladder (a raised damping after a failed
    /// Cholesky, or the pseudo-inverse fallback): these steps were not the undamped step asked for.
    std::int64_t ladder_steps = 0;
    /// Steps so far that raised the training loss (by more than 1e-9 relative), and the largest
    /// rise loss_after / loss_before among them (1 when none): a descent method should have
    /// none, so any is flagged.
    std::int64_t uphill_steps = 0;
    double max_rise = 1;
    std::int64_t max_rise_step = 0;  ///< the step with that rise (0: none)
};

struct RunOptions {
    std::string method = "gd";   ///< gd, ngd (Fisher over the observed entries) or ngd_full
    double lr = 1, damping = 0;  ///< damping: NGD only (parameter space; Gram side n lambda)
    /// ngd only: the library's step guard, |lr d| <= max_step_norm (lr is shortened when needed).
    double max_step_norm = std::numeric_limits<double>::infinity();
    std::int64_t steps = 100, log_every = 10;
};

/// Trains matrix_factorization(d, depth, init_scale) from init(seed) and calls `log` at step 0,
/// every log_every steps and at the end. A step that throws (e.g. NotPositiveDefinite) or a
/// non-finite loss ends the run; the error is returned ("" when it finished).
inline std::string train(ngd::Context& ctx, const Problem& p, std::int64_t depth, double init_scale,
                         std::uint64_t seed, const RunOptions& o,
                         const std::function<void(const Record&)>& log) {
    const ngd::Mlp model = ngd::matrix_factorization(p.d, depth, init_scale);
    const HostMatrix theta0 = model.init<double>(seed);
    auto theta = ngd::to_context(ctx, theta0.const_view());
    const auto x = ngd::to_context(ctx, p.inputs.const_view());
    const auto y = ngd::to_context(ctx, p.targets.const_view());
    const auto rows = ngd::to_context(ctx, p.rows.const_view());
    const ngd::Batch<double> batch{x.const_view(), y.const_view(), rows.const_view()};
    const HostMatrix w0 = end_to_end(ctx, model, theta0);
    typename ngd::NaturalGradient<double>::Options ngd_options;
    ngd_options.learning_rate = o.lr;
    ngd_options.damping = o.damping;
    ngd_options.max_step_norm = o.max_step_norm;
    ngd::NaturalGradient<double> ngd_opt(ngd_options);
    ngd::GradientDescent<double> gd_opt({o.lr});

    std::int64_t ladder_steps = 0, uphill_steps = 0, max_rise_step = 0;
    double max_rise = 1;
    auto training_loss = [&] {
        return ngd::loss<double>(ctx, model, theta.const_view(), batch, ngd::Loss::squared);
    };
    double loss_before = training_loss();
    auto record = [&](std::int64_t step) {
        const HostMatrix w = end_to_end(ctx, model, ngd::to_host(ctx, theta.const_view()));
        Record r;
        r.step = step;
        r.ladder_steps = ladder_steps;
        r.uphill_steps = uphill_steps;
        r.max_rise = max_rise;
        r.max_rise_step = max_rise_step;
        r.loss = training_loss();
        r.test_rel_error = test_rel_error(p, w);
        r.effective_rank = effective_rank(singular_values(w));
        for (std::int64_t e = 0; e < p.d * p.d; ++e) {
            if (!p.observed[e])
                r.unobserved_change = std::max(r.unobserved_change, std::abs(w[e] - w0[e]));
        }
        log(r);
        return r;
    };
    record(0);
    for (std::int64_t s = 1; s <= o.steps; ++s) {
        try {
            if (o.method == "ngd") {
                const ngd::StepReport rep =
                    ngd_opt.step(ctx, model, theta.view(), batch, ngd::Loss::squared);
                ladder_steps += rep.cholesky_tries > 1 || rep.fallback_used;
            } else if (o.method == "ngd_full") {
                full_fisher_step(ctx, p, model, theta, o.lr, o.damping);
            } else {
                gd_opt.step(ctx, model, theta.view(), batch, ngd::Loss::squared);
            }
            const double loss_after = training_loss();
            if (loss_after > loss_before * (1 + 1e-9)) {
                ++uphill_steps;
                if (loss_after / loss_before > max_rise) {
                    max_rise = loss_after / loss_before;
                    max_rise_step = s;
                }
            }
            loss_before = loss_after;
            if ((s % o.log_every == 0 || s == o.steps) && !std::isfinite(record(s).loss)) {
                return "step " + std::to_string(s) + ": the loss is no longer finite";
            }
        } catch (const ngd::Error& e) {  // NotPositiveDefinite, NonFiniteInput after overflow
            return "step " + std::to_string(s) + ": " + e.what();
        }
    }
    return "";
}

}  // namespace examples::mf
