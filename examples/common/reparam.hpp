// Kerekes, Meszaros & Huszar (2021): NGD's reparameterization invariance and what it costs, in
// logistic regression with more samples than dimensions (n > d). The same linear predictor
// f(x) = w.x is trained as a plain linear model (theta = w) and as a diagonal network
// (theta = [u; v], w = u*u - v*v). With n > d the Fisher of the linear model, X^T H X / n, is
// invertible, so NGD's flow moves w the same way for both; GD's does not, and only GD on the
// diagonal network is biased towards sparse w. Shared by examples/kerekes_reparam and
// tests/repro_kerekes_reparam_test.cpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <ngd/ngd.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/kerekes.hpp"
#include "common/sparse_teacher.hpp"

namespace examples::kerekes {

/// Classification by a sparse linear teacher: x ~ N(0, I_d), s = sign(w*.x), w* with n_nonzero
/// entries +-1 (make_sparse_data's teacher and inputs, labels as signs).
struct SparseLabels {
    SparseData regression;  ///< inputs, teacher, and the teacher's real outputs
    std::vector<double> s, s_test;
};

inline SparseLabels make_sparse_labels(std::int64_t d, std::int64_t n, std::int64_t n_test,
                                       std::int64_t n_nonzero, std::uint64_t seed) {
    SparseLabels data{make_sparse_data(d, n, n_test, n_nonzero, seed), {}, {}};
    for (std::int64_t i = 0; i < n; ++i) data.s.push_back(data.regression.y[i] >= 0 ? 1.0 : -1.0);
    for (std::int64_t i = 0; i < n_test; ++i) {
        data.s_test.push_back(data.regression.y_test[i] >= 0 ? 1.0 : -1.0);
    }
    return data;
}

/// theta -> w for "linear" (theta = w) and "diagonal" (theta = [u; v], w = u*u - v*v).
inline std::vector<double> end_weights(const std::string& model, const std::vector<double>& th) {
    return model == "linear" ? th : diagonal_weights(th);
}

/// The Jacobian of the training outputs, n x p: X^T (linear) or [2 x*u, -2 x*v] (diagonal).
inline ngd::Matrix<double> model_jacobian(const std::string& model, const ngd::Matrix<double>& x,
                                          const std::vector<double>& th) {
    if (model != "linear") return diagonal_jacobian(x, th);
    ngd::Matrix<double> j(x.cols(), x.rows());
    for (std::int64_t c = 0; c < x.rows(); ++c) {
        for (std::int64_t i = 0; i < x.cols(); ++i) j(i, c) = x(c, i);
    }
    return j;
}

/// One logged state of a run (the columns of kerekes_reparam's CSV).
struct ReparamRecord {
    std::string method, model;
    double lr = 0, damping = 0, init_scale = 0;
    std::uint64_t seed = 0;
    std::int64_t step = 0;
    double t = 0, loss = 0, min_margin = 0, test_accuracy = 0;
    double cos_teacher = 0;   ///< cos(w, w*)
    double support_mass = 0;  ///< |w_S|_1 / |w|_1, S the teacher's support (1: perfectly sparse)
    double cos_svm = NAN;     ///< cos(w, w_svm), the l2 max-margin direction
    double pair_cos = NAN;    ///< cos(w, w of the linear model's run it is paired with)
    double pair_pred_diff = NAN;    ///< |f - f_pair| / |f_pair| on the test inputs
    double pair_disagree = NAN;     ///< fraction of test points the two classify differently
    bool uphill = false;            ///< a step since the previous record raised the training loss
    std::int64_t ladder_steps = 0;  ///< ngd steps so far that needed lambda raised
    std::vector<double> w;          ///< not a CSV column
};

struct ReparamRun {
    std::string method = "ngd", model = "linear";
    double lr = 0.1, damping = 1e-12, init_scale = 1e-2;
    std::int64_t steps = 100;
    std::uint64_t seed = 0;
    double log_factor = 1.1;
};

struct ReparamResult {
    std::vector<ReparamRecord> records;
    std::string error;  ///< set when a step threw or overflowed; the run stops there
};

/// Training loss (1/n) sum softplus(-m_i) and the margins m_i = s_i w.x_i.
inline double logistic_loss(const ngd::Matrix<double>& x, const std::vector<double>& s,
                            const std::vector<double>& w, std::vector<double>* margins = nullptr) {
    const std::vector<double> f = linear_outputs(x, w);
    double loss = 0;
    for (std::size_t i = 0; i < f.size(); ++i) {
        loss += softplus(-s[i] * f[i]) / double(f.size());
        if (margins) margins->push_back(s[i] * f[i]);
    }
    return loss;
}

inline ReparamRecord reparam_record(const SparseLabels& data, const std::vector<double>& w_svm,
                                    const std::vector<double>& w) {
    ReparamRecord r;
    std::vector<double> m;
    r.loss = logistic_loss(data.regression.x, data.s, w, &m);
    r.min_margin = *std::min_element(m.begin(), m.end());
    const std::vector<double> ft = linear_outputs(data.regression.x_test, w);
    for (std::size_t i = 0; i < ft.size(); ++i) {
        r.test_accuracy += (data.s_test[i] * ft[i] > 0) / double(ft.size());
    }
    r.cos_teacher = cosine(w, data.regression.teacher);
    double on = 0, all = 0;
    for (std::size_t j = 0; j < w.size(); ++j) {
        all += std::abs(w[j]);
        if (data.regression.teacher[j] != 0) on += std::abs(w[j]);
    }
    r.support_mass = all > 0 ? on / all : NAN;
    if (!w_svm.empty()) r.cos_svm = cosine(w, w_svm);
    r.w = w;
    return r;
}

/// Fills the pair_* columns of r against the state w_pair of the run it is compared with.
inline void compare_pair(const SparseLabels& data, const std::vector<double>& w_pair,
                         ReparamRecord& r) {
    r.pair_cos = cosine(r.w, w_pair);
    const std::vector<double> f = linear_outputs(data.regression.x_test, r.w);
    const std::vector<double> g = linear_outputs(data.regression.x_test, w_pair);
    double diff = 0, ref = 0, disagree = 0;
    for (std::size_t i = 0; i < f.size(); ++i) {
        diff += (f[i] - g[i]) * (f[i] - g[i]);
        ref += g[i] * g[i];
        disagree += ((f[i] > 0) != (g[i] > 0)) / double(f.size());
    }
    r.pair_pred_diff = ref > 0 ? std::sqrt(diff / ref) : NAN;
    r.pair_disagree = disagree;
}

/// The logged state of `pairs` whose training loss is closest to `loss` in log scale; null when
/// `loss` lies outside the range the run covered (by more than 1 %).
inline const ReparamRecord* closest_loss(const std::vector<ReparamRecord>& pairs, double loss) {
    const ReparamRecord* best = nullptr;
    double lo = INFINITY, hi = 0;
    for (const ReparamRecord& p : pairs) {
        lo = std::min(lo, p.loss);
        hi = std::max(hi, p.loss);
        if (!best || std::abs(std::log(p.loss / loss)) < std::abs(std::log(best->loss / loss))) {
            best = &p;
        }
    }
    return loss < lo * 0.99 || loss > hi * 1.01 ? nullptr : best;
}

/// The damped NGD direction on the parameter side, (A^T A / n + lambda I)^{-1} A^T u / n with
/// A = diag(m) J (J n x p, m and u the 1 x n logistic factors), by a Cholesky factorization in
/// double: the same d as the sample-side A^T (A A^T + n lambda I)^{-1} u, for n > p. Empty when
/// the factorization fails (F + lambda I not positive definite in double). For the diagonal
/// network F has a p/2-dimensional null space (the directions that leave w = u*u - v*v fixed to
/// first order), where F + lambda I has eigenvalue lambda: the solve's rounding error lands there
/// (up to 9 % of |d| at d = 20, n = 60, eta = 0.1, against an exact solve) and leaves w's
/// trajectory unchanged to 3-4 digits (docs/reproduction.md, claim 7b).
inline std::vector<double> primal_direction(const ngd::Matrix<double>& jac,
                                            const ngd::Matrix<double>& m,
                                            const ngd::Matrix<double>& u, double lambda) {
    const std::int64_t n = jac.rows(), p = jac.cols();
    std::vector<double> f(p * p, 0.0), d(p, 0.0);
    for (std::int64_t a = 0; a < p; ++a) {
        for (std::int64_t i = 0; i < n; ++i) d[a] += m[i] * jac(i, a) * u[i] / double(n);
        for (std::int64_t b = 0; b <= a; ++b) {
            double s = 0;
            for (std::int64_t i = 0; i < n; ++i) s += m[i] * m[i] * jac(i, a) * jac(i, b);
            f[a + b * p] = s / double(n) + (a == b ? lambda : 0.0);
        }
    }
    // Cholesky F = L L^T in the lower triangle (column by column), then L y = g and L^T d = y.
    for (std::int64_t j = 0; j < p; ++j) {
        double djj = f[j + j * p];
        for (std::int64_t k = 0; k < j; ++k) djj -= f[j + k * p] * f[j + k * p];
        if (!(djj > 0)) return {};
        f[j + j * p] = std::sqrt(djj);
        for (std::int64_t i = j + 1; i < p; ++i) {
            double s = f[i + j * p];
            for (std::int64_t k = 0; k < j; ++k) s -= f[i + k * p] * f[j + k * p];
            f[i + j * p] = s / f[j + j * p];
        }
    }
    for (std::int64_t j = 0; j < p; ++j) {
        for (std::int64_t k = 0; k < j; ++k) d[j] -= f[j + k * p] * d[k];
        d[j] /= f[j + j * p];
    }
    for (std::int64_t j = p - 1; j >= 0; --j) {
        for (std::int64_t k = j + 1; k < p; ++k) d[j] -= f[k + j * p] * d[k];
        d[j] /= f[j + j * p];
    }
    return d;
}

/// Trains `run.model` on the logistic loss from w = 0 (linear: w = 0; diagonal: u = v =
/// init_scale). gd: theta -= lr J^T e / n with e_i = dl/df_i. ngd: theta -= lr d with
/// d = A^T (A A^T + n lambda I)^{-1} u, A = M J, M and u the library's logistic factors
/// (ngd::loss_factors), through ngd::direction_from_jacobian. With n > d, A A^T is singular, so
/// lambda must be > 0 (it is then the only damping, and small). `pairs`, when given, are the
/// logged states of the linear model's run with the same method (and lr for ngd): ngd records are
/// compared with the pair at the same step, gd records with the pair at the same training loss.
inline ReparamResult run_reparam(ngd::Context& ctx, const SparseLabels& data,
                                 const std::vector<double>& w_svm, const ReparamRun& run,
                                 const std::vector<ReparamRecord>* pairs = nullptr,
                                 const std::function<void(const ReparamRecord&)>& on_log = {}) {
    if (run.method != "ngd" && run.method != "gd") {
        throw std::invalid_argument("method must be ngd or gd: " + run.method);
    }
    if (run.model != "linear" && run.model != "diagonal") {
        throw std::invalid_argument("model must be linear or diagonal: " + run.model);
    }
    const ngd::Matrix<double>& x = data.regression.x;
    const std::int64_t d = x.rows(), n = x.cols();
    std::vector<double> theta(run.model == "linear" ? d : 2 * d,
                              run.model == "linear" ? 0.0 : run.init_scale);
    ngd::Matrix<double> labels(1, n);
    for (std::int64_t i = 0; i < n; ++i) labels[i] = data.s[i] > 0 ? 1.0 : 0.0;
    const ngd::Matrix<double> labels_ctx = ngd::to_context(ctx, labels.const_view());
    ReparamResult result;
    const std::vector<std::int64_t> logged = logged_steps(run.steps, run.log_factor);
    std::size_t next_log = 0;
    double previous_loss = INFINITY;
    bool uphill = false;
    std::int64_t ladder_steps = 0;
    for (std::int64_t step = 0;; ++step) {
        const std::vector<double> w = end_weights(run.model, theta);
        const std::vector<double> f = linear_outputs(x, w);
        const double loss = logistic_loss(x, data.s, w);
        uphill = uphill || loss > previous_loss * (1 + 1e-12);
        previous_loss = loss;
        if (next_log < logged.size() && logged[next_log] == step) {
            ++next_log;
            ReparamRecord r = reparam_record(data, w_svm, w);
            r.method = run.method;
            r.model = run.model;
            r.lr = run.lr;
            r.damping = run.method == "ngd" ? run.damping : 0.0;
            r.init_scale = run.model == "linear" ? 0.0 : run.init_scale;
            r.seed = run.seed;
            r.step = step;
            r.t = run.lr * double(step);
            r.uphill = uphill;
            r.ladder_steps = ladder_steps;
            uphill = false;
            if (pairs) {
                const ReparamRecord* p = nullptr;
                if (run.method == "gd") {
                    p = closest_loss(*pairs, r.loss);
                } else {
                    for (const ReparamRecord& q : *pairs) p = q.step == step ? &q : p;
                }
                if (p) compare_pair(data, p->w, r);
            }
            result.records.push_back(r);
            if (on_log) on_log(result.records.back());
        }
        if (step == run.steps) break;
        const ngd::Matrix<double> jac = model_jacobian(run.model, x, theta);
        const std::int64_t p = jac.cols();
        std::vector<double> dir(p, 0.0);
        try {
            ngd::Matrix<double> f_host(1, n);
            for (std::int64_t i = 0; i < n; ++i) f_host[i] = f[i];
            const ngd::Matrix<double> f_ctx = ngd::to_context(ctx, f_host.const_view());
            const ngd::LossFactors<double> lf = ngd::loss_factors<double>(
                ctx, ngd::Loss::logistic, f_ctx.const_view(), labels_ctx.const_view());
            if (run.method == "gd") {
                const ngd::Matrix<double> e = ngd::to_host(ctx, lf.gradient.const_view());
                for (std::int64_t c = 0; c < p; ++c) {
                    for (std::int64_t i = 0; i < n; ++i) dir[c] += jac(i, c) * e[i] / double(n);
                }
            } else {
                const ngd::Matrix<double> m = ngd::to_host(ctx, lf.factor.const_view());
                const ngd::Matrix<double> u = ngd::to_host(ctx, lf.residual.const_view());
                if (n > p) {
                    // With n > p the sample-side system A A^T + n lambda I has rank <= p < n:
                    // at lambda = 1e-12 it is singular to working precision once A grows, and the
                    // library's acceptance test rightly refuses its solution. The primal p x p
                    // system (A^T A / n + lambda I) d = A^T u / n is the well-posed side here.
                    // Raise lambda x100 (at most 4 times) when F + lambda I is not positive
                    // definite in double, as the library's optimizer would, and count the step.
                    for (double lambda = run.damping, tries = 0;; lambda *= 100, ++tries) {
                        dir = primal_direction(jac, m, u, lambda);
                        if (!dir.empty()) {
                            ladder_steps += tries > 0;
                            break;
                        }
                        if (tries == 4) {
                            throw std::runtime_error(
                                "F + lambda I is not positive definite up to lambda = " +
                                std::to_string(lambda));
                        }
                    }
                } else {
                    const ngd::Matrix<double> j_ctx = ngd::to_context(ctx, jac.const_view());
                    ngd::Matrix<double> u_col(n, 1);
                    for (std::int64_t i = 0; i < n; ++i) u_col[i] = u[i];
                    const ngd::Matrix<double> u_ctx = ngd::to_context(ctx, u_col.const_view());
                    // Raise lambda x100 (at most 4 times) when the Cholesky factorization fails,
                    // as the library's optimizer would, and count the step.
                    for (double lambda = run.damping, tries = 0;; lambda *= 100, ++tries) {
                        try {
                            const ngd::Matrix<double> d_ctx = ngd::direction_from_jacobian<double>(
                                ctx, j_ctx.const_view(), u_ctx.const_view(), lambda,
                                lf.factor.const_view());
                            const ngd::Matrix<double> d_host =
                                ngd::to_host(ctx, d_ctx.const_view());
                            dir.assign(d_host.data(), d_host.data() + p);
                            ladder_steps += tries > 0;
                            break;
                        } catch (const ngd::NotPositiveDefinite&) {
                            if (tries == 4) throw;
                        }
                    }
                }
            }
        } catch (const std::exception& e) {
            result.error = "step " + std::to_string(step + 1) + ": " + e.what();
            break;
        }
        for (std::int64_t c = 0; c < p; ++c) theta[c] -= run.lr * dir[c];
        if (!std::all_of(theta.begin(), theta.end(), [](double v) { return std::isfinite(v); })) {
            result.error = "step " + std::to_string(step + 1) + ": parameters overflowed";
            break;
        }
    }
    return result;
}

}  // namespace examples::kerekes
