// Kerekes, Meszaros & Huszar (2021), "Depth Without the Magic": the experiments' core, shared by
// the example programs (kerekes_logistic, sparse_teacher) and tests/repro_kerekes_test.cpp:
// logistic loss on separable data (deep linear or two-layer tanh networks), where NGD's margins
// follow ln(1 + e^{m(t)}) = t + ln(1 + e^{m(0)}) whatever the architecture; and a sparse regression
// teacher fitted by a diagonal network w = u*u - v*v, a model ngd does not know (own Jacobian).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <ngd/ngd.hpp>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "common/data.hpp"
#include "common/linalg.hpp"
#include "common/svm.hpp"

namespace examples::kerekes {

/// ln(1 + e^m) without overflow for any m.
inline double softplus(double m) {
    return m > 0 ? m + std::log1p(std::exp(-m)) : std::log1p(std::exp(m));
}

/// The closed form of claim 5: the margin m(t) with ln(1 + e^{m(t)}) = t + ln(1 + e^{m(0)}).
inline double closed_form_margin(double m0, double t) {
    const double a = t + softplus(m0);  // = ln(1 + e^m) > 0
    return a > 30 ? a + std::log(-std::expm1(-a)) : std::log(std::expm1(a));
}

/// Steps at which a run logs: 0, 1, then a geometric grid with ratio `factor`, and the last step.
inline std::vector<std::int64_t> logged_steps(std::int64_t steps, double factor) {
    std::vector<std::int64_t> out{0};
    for (std::int64_t s = 1; s < steps;) {
        out.push_back(s);
        s = std::max(s + 1, static_cast<std::int64_t>(std::ceil(double(s) * factor)));
    }
    if (steps > 0) out.push_back(steps);
    return out;
}

/// Separable classification data from a linear teacher: inputs uniform on the unit sphere of R^d,
/// labels s = sign(w*.x) with w* ~ N(0, I). Train and test sets come from the same teacher.
struct TeacherData {
    ngd::Matrix<double> x, labels;            ///< d x n inputs, 1 x n labels in {0, 1}
    ngd::Matrix<double> x_test, labels_test;  ///< d x n_test, 1 x n_test
    std::vector<double> s, s_test;            ///< the same labels as +-1
};

inline TeacherData make_teacher_data(std::int64_t d, std::int64_t n, std::int64_t n_test,
                                     std::uint64_t seed) {
    TeacherData data;
    Rng rng(seed);
    std::vector<double> teacher(d);
    for (double& v : teacher) v = rng.normal();
    data.x = unit_norm_inputs<double>(d, n, seed + 1);
    data.x_test = unit_norm_inputs<double>(d, n_test, seed + 2);
    auto label = [&](const ngd::Matrix<double>& x, ngd::Matrix<double>& labels,
                     std::vector<double>& s) {
        const std::vector<double> f = linear_outputs(x, teacher);
        labels = ngd::Matrix<double>(1, x.cols());
        s.resize(x.cols());
        for (std::int64_t i = 0; i < x.cols(); ++i) {
            s[i] = f[i] >= 0 ? 1.0 : -1.0;
            labels[i] = f[i] >= 0 ? 1.0 : 0.0;
        }
    };
    label(data.x, data.labels, data.s);
    label(data.x_test, data.labels_test, data.s_test);
    return data;
}

/// The two reference directions of claim 5 for d >= n: the hard-margin SVM and the equal-margin
/// (minimum-norm) interpolant X^+ s, i.e. the w with s_i w.x_i = 1 for every i.
struct ReferenceDirections {
    SvmSolution svm;
    std::vector<double> min_norm;
};

inline ReferenceDirections reference_directions(const TeacherData& data) {
    return {hard_margin_svm(data.x, data.s), min_norm_interpolant(data.x, data.s)};
}

/// "deep_linear": ngd::deep_linear(d, width, depth); "tanh": d -> width (tanh) -> 1, with biases.
inline ngd::Mlp make_model(const std::string& kind, std::int64_t d, std::int64_t depth,
                           std::int64_t width, double init_scale = -1.0) {
    if (kind == "deep_linear") return ngd::deep_linear(d, width, depth, 1, init_scale);
    if (kind != "tanh") throw std::invalid_argument("model must be deep_linear or tanh: " + kind);
    ngd::Layer hidden, out;
    hidden.n_out = width;
    hidden.activation = ngd::Activation::tanh;
    hidden.init_scale = init_scale;
    out.n_out = 1;
    out.activation = ngd::Activation::identity;
    out.init_scale = init_scale;
    return ngd::Mlp(d, {hidden, out});
}

/// The end-to-end linear map of a bias-free linear network: w^T = scale * W_L ... W_1 (each W_l
/// with its weight multiplier), from theta in host memory.
inline std::vector<double> end_to_end_weights(const ngd::Mlp& model, const double* theta) {
    std::vector<double> row{model.output_scale()};  // 1 x n_out of the current layer
    for (std::int64_t l = model.n_layers() - 1; l >= 0; --l) {
        const ngd::Layer& layer = model.layer(l);
        if (layer.bias || layer.activation != ngd::Activation::identity) {
            throw std::invalid_argument("end_to_end_weights: layers must be linear, bias-free");
        }
        const std::int64_t rows = layer.n_out, cols = model.fan_in(l);
        const double* w = theta + model.weight_offset(l);
        std::vector<double> next(cols, 0.0);
        for (std::int64_t c = 0; c < cols; ++c) {
            for (std::int64_t r = 0; r < rows; ++r) next[c] += row[r] * w[r + c * rows];
            next[c] *= model.weight_multiplier(l);
        }
        row.swap(next);
    }
    return row;
}

/// One logged state of a logistic-loss run (the columns of kerekes_logistic's CSV).
struct LogisticRecord {
    std::string method, model;
    std::int64_t depth = 0, width = 0;
    std::uint64_t seed = 0;
    double lr = 0, damping = 0;
    std::int64_t step = 0;
    double t = 0;           ///< lr * step: the flow time NGD's closed form is written in
    double loss = 0;        ///< training loss
    double min_margin = 0;  ///< min_i s_i f(x_i)
    double predicted_min_margin = NAN;  ///< min_i of the closed form's m_i(t) (ngd only)
    double normalized_margin = NAN;     ///< min_margin / |w| (linear models only)
    double margin_law_error = NAN;      ///< max_i |ln(1+e^{m_i}) - ln(1+e^{m_i(0)}) - t| (ngd only)
    double cos_svm = NAN, cos_min_norm = NAN;  ///< cos(w, w_svm), cos(w, X^+ s) (linear only)
    double test_accuracy = 0;
    std::int64_t ladder_steps = 0;   ///< ngd steps so far that needed raised damping or pinv
    std::int64_t guarded_steps = 0;  ///< ngd steps so far shortened by the step guard
};

struct LogisticRun {
    std::string method = "ngd";  ///< ngd or gd
    std::string model = "deep_linear";
    std::int64_t depth = 1, width = 1;
    double init_scale = -1.0;
    std::uint64_t seed = 0;
    double lr = 0.05, damping = 0.0;
    double max_step_norm = INFINITY;  ///< ngd step guard: |eta d| <= this (inf: off)
    std::int64_t steps = 100;
    double log_factor = 1.2;
};

struct LogisticResult {
    std::vector<LogisticRecord> records;
    std::string error;  ///< set when a step threw; the run stops there
};

/// Gradient descent's step size: c * n / lambda_max(J J^T) at theta. The logistic loss has
/// curvature <= 1/4, so for a linear model c < 8 is stable; c = 2 leaves room for the
/// sharpness of deeper networks to grow early in training (c = 4 diverges at depth 3).
inline double gd_auto_lr(ngd::Context& ctx, const ngd::Mlp& model,
                         ngd::MatrixView<const double> theta, ngd::MatrixView<const double> x,
                         double c = 2.0) {
    const ngd::Matrix<double> g = ngd::gram<double>(ctx, model, theta, x);
    const ngd::Matrix<double> g_host = ngd::to_host(ctx, g.const_view());
    return c * double(x.cols) / largest_eigenvalue(g_host.const_view());
}

/// gd_auto_lr for the model and theta0 that run_logistic(run) starts from.
inline double gd_auto_lr_for(ngd::Context& ctx, const TeacherData& data, const LogisticRun& run,
                             double c = 2.0) {
    const ngd::Mlp model =
        make_model(run.model, data.x.rows(), run.depth, run.width, run.init_scale);
    const ngd::Matrix<double> theta0 = model.init<double>(run.seed + 3);
    const ngd::Matrix<double> th = ngd::to_context(ctx, theta0.const_view());
    const ngd::Matrix<double> x = ngd::to_context(ctx, data.x.const_view());
    return gd_auto_lr(ctx, model, th.const_view(), x.const_view(), c);
}

/// Margins s_i f(x_i) of the model at theta (context memory) on inputs x (context memory).
inline std::vector<double> margins(ngd::Context& ctx, const ngd::Mlp& model,
                                   ngd::MatrixView<const double> theta,
                                   ngd::MatrixView<const double> x, const std::vector<double>& s) {
    const ngd::Matrix<double> f = ngd::forward<double>(ctx, model, theta, x);
    const ngd::Matrix<double> f_host = ngd::to_host(ctx, f.const_view());
    std::vector<double> m(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) m[i] = s[i] * f_host[std::int64_t(i)];
    return m;
}

/// Trains one model from its seeded initialisation with NGD or GD on the logistic loss, logging on
/// the grid of logged_steps; on_log (may be empty) sees each record as it is made. `refs` may be
/// null (nonlinear models, or d < n): the cosine columns stay NaN then.
inline LogisticResult run_logistic(ngd::Context& ctx, const TeacherData& data,
                                   const ReferenceDirections* refs, const LogisticRun& run,
                                   const std::function<void(const LogisticRecord&)>& on_log = {}) {
    const std::int64_t d = data.x.rows();
    const ngd::Mlp model = make_model(run.model, d, run.depth, run.width, run.init_scale);
    const bool linear = run.model == "deep_linear";
    const ngd::Matrix<double> x = ngd::to_context(ctx, data.x.const_view());
    const ngd::Matrix<double> y = ngd::to_context(ctx, data.labels.const_view());
    const ngd::Matrix<double> x_test = ngd::to_context(ctx, data.x_test.const_view());
    const ngd::Batch<double> batch{x.const_view(), y.const_view(), {}};
    const ngd::Matrix<double> theta0 = model.init<double>(run.seed + 3);
    ngd::Matrix<double> theta = ngd::to_context(ctx, theta0.const_view());

    ngd::NaturalGradient<double>::Options nopt;
    nopt.learning_rate = run.lr;
    nopt.damping = run.damping;
    nopt.form = ngd::SolveForm::automatic;  // natural-residual form for the logistic loss
    nopt.evaluate_after = false;
    nopt.max_step_norm = run.max_step_norm;
    ngd::NaturalGradient<double> ngd_opt(nopt);
    ngd::GradientDescent<double>::Options gopt;
    gopt.learning_rate = run.lr;
    gopt.evaluate_after = false;
    ngd::GradientDescent<double> gd_opt(gopt);
    if (run.method != "ngd" && run.method != "gd") {
        throw std::invalid_argument("method must be ngd or gd: " + run.method);
    }

    LogisticRecord base;  // the columns that name the run
    base.method = run.method;
    base.model = run.model;
    base.depth = run.depth;
    base.width = run.width;
    base.seed = run.seed;
    base.lr = run.lr;
    base.damping = run.method == "ngd" ? run.damping : 0.0;
    LogisticResult result;
    std::vector<double> m0;
    const std::vector<std::int64_t> logged = logged_steps(run.steps, run.log_factor);
    std::size_t next_log = 0;
    std::int64_t ladder_steps = 0, guarded_steps = 0;
    for (std::int64_t step = 0; step <= run.steps; ++step) {
        if (next_log < logged.size() && logged[next_log] == step) {
            ++next_log;
            LogisticRecord r = base;
            r.step = step;
            r.t = run.lr * double(step);
            const std::vector<double> m =
                margins(ctx, model, theta.const_view(), x.const_view(), data.s);
            if (step == 0) m0 = m;
            r.loss = 0;
            r.min_margin = m[0];
            double law = 0;
            for (std::size_t i = 0; i < m.size(); ++i) {
                r.loss += softplus(-m[i]) / double(m.size());
                r.min_margin = std::min(r.min_margin, m[i]);
                law = std::max(law, std::abs(softplus(m[i]) - softplus(m0[i]) - r.t));
            }
            if (run.method == "ngd") {
                r.margin_law_error = law;
                r.predicted_min_margin = INFINITY;
                for (double v : m0) {
                    r.predicted_min_margin =
                        std::min(r.predicted_min_margin, closed_form_margin(v, r.t));
                }
            }
            if (linear) {
                const ngd::Matrix<double> th = ngd::to_host(ctx, theta.const_view());
                const std::vector<double> w = end_to_end_weights(model, th.data());
                r.normalized_margin = r.min_margin / norm2(w);
                if (refs) {
                    r.cos_svm = cosine(w, refs->svm.w);
                    r.cos_min_norm = cosine(w, refs->min_norm);
                }
            }
            const std::vector<double> mt =
                margins(ctx, model, theta.const_view(), x_test.const_view(), data.s_test);
            r.ladder_steps = ladder_steps;
            r.guarded_steps = guarded_steps;
            r.test_accuracy =
                double(std::count_if(mt.begin(), mt.end(), [](double v) { return v > 0; })) /
                double(mt.size());
            result.records.push_back(r);
            if (on_log) on_log(r);
        }
        if (step == run.steps) break;
        try {
            if (run.method == "ngd") {
                const ngd::StepReport rep =
                    ngd_opt.step(ctx, model, theta.view(), batch, ngd::Loss::logistic);
                ladder_steps += rep.rung != ngd::Rung::cholesky;
                guarded_steps += rep.step_limited;
                // A step that went non-finite is a failure even when the library let it through.
                if (!std::isfinite(rep.step_norm)) {
                    throw std::runtime_error("non-finite step (rung " +
                                             std::string(ngd::to_string(rep.rung)) + ")");
                }
            } else {
                gd_opt.step(ctx, model, theta.view(), batch, ngd::Loss::logistic);
            }
        } catch (const std::exception& e) {
            result.error = "step " + std::to_string(step + 1) + ": " + e.what();
            break;
        }
    }
    return result;
}

// ---- Claim 7: a sparse linear teacher and the diagonal network w = u*u - v*v.

/// Regression data y = w*.x with x ~ N(0, I_d) and w* holding n_nonzero entries +-1.
struct SparseData {
    ngd::Matrix<double> x, y, x_test, y_test;  ///< d x n, 1 x n, d x n_test, 1 x n_test
    std::vector<double> teacher;               ///< w*
};

inline SparseData make_sparse_data(std::int64_t d, std::int64_t n, std::int64_t n_test,
                                   std::int64_t n_nonzero, std::uint64_t seed) {
    if (n_nonzero < 1 || n_nonzero > d) throw std::invalid_argument("need 1 <= nonzeros <= d");
    SparseData data;
    data.teacher.assign(d, 0.0);
    Rng rng(seed);
    for (std::int64_t placed = 0; placed < n_nonzero;) {
        const std::int64_t j = rng.below(d);
        if (data.teacher[j] != 0) continue;
        data.teacher[j] = rng.sign();
        ++placed;
    }
    data.x = gaussian_matrix<double>(d, n, seed + 1);
    data.x_test = gaussian_matrix<double>(d, n_test, seed + 2);
    for (auto [x, y] : {std::pair{&data.x, &data.y}, std::pair{&data.x_test, &data.y_test}}) {
        const std::vector<double> f = linear_outputs(*x, data.teacher);
        *y = ngd::Matrix<double>(1, x->cols());
        for (std::int64_t i = 0; i < x->cols(); ++i) (*y)[i] = f[i];
    }
    return data;
}

/// The diagonal network's end-to-end weights: theta = [u; v] (2d), w = u*u - v*v, f(x) = w.x.
inline std::vector<double> diagonal_weights(const std::vector<double>& theta) {
    const std::size_t d = theta.size() / 2;
    std::vector<double> w(d);
    for (std::size_t j = 0; j < d; ++j) w[j] = theta[j] * theta[j] - theta[d + j] * theta[d + j];
    return w;
}

/// Its Jacobian J (n x 2d), row i = [df/du, df/dv] = [2 x_i*u, -2 x_i*v]: all a user has to write
/// to train their own model with ngd::direction_from_jacobian.
inline ngd::Matrix<double> diagonal_jacobian(const ngd::Matrix<double>& x,
                                             const std::vector<double>& theta) {
    const std::int64_t d = x.rows(), n = x.cols();
    ngd::Matrix<double> j(n, 2 * d);
    for (std::int64_t c = 0; c < d; ++c) {
        for (std::int64_t i = 0; i < n; ++i) {
            j(i, c) = 2 * x(c, i) * theta[c];
            j(i, d + c) = -2 * x(c, i) * theta[d + c];
        }
    }
    return j;
}

/// One logged state of a diagonal-network run (the columns of sparse_teacher's CSV).
struct RegressionRecord {
    std::string method;
    double lr = 0, init_scale = 0;
    std::uint64_t seed = 0;
    std::int64_t step = 0;
    double t = 0, loss = 0;
    double test_rel_error = 0;  ///< |f(X_test) - y_test| / |y_test|
    double test_r2 = 0;         ///< 1 - |f - y|^2 / |y - mean(y)|^2 on the test set
    double test_accuracy = 0;   ///< fraction of test points with sign(f) = sign(y)
    double dist_min_norm = 0;   ///< |w - X^+ y| / |X^+ y|
    double dist_teacher = 0;    ///< |w - w*| / |w*|
    double l1_norm = 0;         ///< |w|_1 (the teacher's is its number of nonzeros)
};

struct DiagonalRun {
    std::string method = "gd";  ///< gd or ngd
    double lr = 0.02, init_scale = 1e-3, damping = 0;
    std::int64_t steps = 1000;
    std::uint64_t seed = 0;
    double log_factor = 1.2;
};

struct DiagonalResult {
    std::vector<RegressionRecord> records;
    std::vector<double> w;  ///< the end-to-end weights at the end
    std::string error;      ///< set when an NGD step threw; the run stops there
};

/// The regression figures of weights w on the data.
inline RegressionRecord regression_record(const SparseData& data,
                                          const std::vector<double>& w_min_norm,
                                          const std::vector<double>& w) {
    RegressionRecord r;
    const std::vector<double> f = linear_outputs(data.x, w), ft = linear_outputs(data.x_test, w);
    for (std::size_t i = 0; i < f.size(); ++i) {
        r.loss += (f[i] - data.y[i]) * (f[i] - data.y[i]) / (2.0 * double(f.size()));
    }
    double err2 = 0, y2 = 0, mean = 0, var = 0;
    for (std::size_t i = 0; i < ft.size(); ++i) mean += data.y_test[i] / double(ft.size());
    for (std::size_t i = 0; i < ft.size(); ++i) {
        err2 += (ft[i] - data.y_test[i]) * (ft[i] - data.y_test[i]);
        y2 += data.y_test[i] * data.y_test[i];
        var += (data.y_test[i] - mean) * (data.y_test[i] - mean);
    }
    r.test_rel_error = std::sqrt(err2 / y2);
    r.test_r2 = 1 - err2 / var;
    for (std::size_t i = 0; i < ft.size(); ++i) {
        r.test_accuracy += ((ft[i] > 0) == (data.y_test[i] > 0)) / double(ft.size());
    }
    std::vector<double> diff(w.size());
    for (std::size_t j = 0; j < w.size(); ++j) diff[j] = w[j] - w_min_norm[j];
    r.dist_min_norm = norm2(diff) / norm2(w_min_norm);
    for (std::size_t j = 0; j < w.size(); ++j) diff[j] = w[j] - data.teacher[j];
    r.dist_teacher = norm2(diff) / norm2(data.teacher);
    for (double v : w) r.l1_norm += std::abs(v);
    return r;
}

/// Trains the diagonal network on the squared loss from the balanced start u = v = init_scale
/// (w = 0). gd: theta -= lr J^T (f - y) / n. ngd: theta -= lr d with
/// d = J^T (J J^T + n lambda I)^{-1} (f - y) from ngd::direction_from_jacobian on ctx.
inline DiagonalResult run_diagonal(
    ngd::Context& ctx, const SparseData& data, const std::vector<double>& w_min_norm,
    const DiagonalRun& run, const std::function<void(const RegressionRecord&)>& on_log = {}) {
    if (run.method != "ngd" && run.method != "gd") {
        throw std::invalid_argument("method must be ngd or gd: " + run.method);
    }
    const std::int64_t d = data.x.rows(), n = data.x.cols(), p = 2 * d;
    std::vector<double> theta(p, run.init_scale);
    DiagonalResult result;
    const std::vector<std::int64_t> logged = logged_steps(run.steps, run.log_factor);
    std::size_t next_log = 0;
    for (std::int64_t step = 0;; ++step) {
        result.w = diagonal_weights(theta);
        if (next_log < logged.size() && logged[next_log] == step) {
            ++next_log;
            RegressionRecord r = regression_record(data, w_min_norm, result.w);
            r.method = run.method;
            r.lr = run.lr;
            r.init_scale = run.init_scale;
            r.seed = run.seed;
            r.step = step;
            r.t = run.lr * double(step);
            result.records.push_back(r);
            if (on_log) on_log(r);
        }
        if (step == run.steps) break;
        const std::vector<double> f = linear_outputs(data.x, result.w);
        ngd::Matrix<double> residual(n, 1);
        for (std::int64_t i = 0; i < n; ++i) residual[i] = f[i] - data.y[i];
        const ngd::Matrix<double> jac = diagonal_jacobian(data.x, theta);
        std::vector<double> dir(p, 0.0);
        if (run.method == "gd") {
            for (std::int64_t c = 0; c < p; ++c) {
                for (std::int64_t i = 0; i < n; ++i) dir[c] += jac(i, c) * residual[i] / double(n);
            }
        } else {
            try {
                const ngd::Matrix<double> j_ctx = ngd::to_context(ctx, jac.const_view());
                const ngd::Matrix<double> r_ctx = ngd::to_context(ctx, residual.const_view());
                const ngd::Matrix<double> d_ctx = ngd::direction_from_jacobian<double>(
                    ctx, j_ctx.const_view(), r_ctx.const_view(), run.damping);
                const ngd::Matrix<double> d_host = ngd::to_host(ctx, d_ctx.const_view());
                dir.assign(d_host.data(), d_host.data() + p);
            } catch (const ngd::Error& e) {
                result.error = "step " + std::to_string(step + 1) + ": " + e.what();
                break;
            }
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
