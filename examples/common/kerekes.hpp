// Kerekes, Meszaros & Huszar (2021), "Depth Without the Magic": the experiments' core, shared by
// the example programs (kerekes_logistic, sparse_teacher) and tests/repro_kerekes_test.cpp:
// logistic loss on separable data (deep linear or two-layer tanh networks), where NGD's margins
// follow ln(1 + e^{m(t)}) = t + ln(1 + e^{m(0)}) whatever the architecture. The sparse teacher
// (claim 7) is in common/sparse_teacher.hpp.
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

/// Separable classification data from a linear teacher: labels s = sign(w*.x) with w* ~ N(0, I).
/// inputs "sphere": uniform on the unit sphere of R^d; "gaussian": x ~ N(0, I_d / d) (the same
/// scale on average, norms spread). margin_gap > 0 pushes every point away from the teacher's
/// decision boundary, x += margin_gap s w*/|w*|, so the SVM rests on few support vectors. Train and
/// test sets come from the same teacher and the same input law.
struct TeacherData {
    ngd::Matrix<double> x, labels;            ///< d x n inputs, 1 x n labels in {0, 1}
    ngd::Matrix<double> x_test, labels_test;  ///< d x n_test, 1 x n_test
    std::vector<double> s, s_test;            ///< the same labels as +-1
};

inline TeacherData make_teacher_data(std::int64_t d, std::int64_t n, std::int64_t n_test,
                                     std::uint64_t seed, const std::string& inputs = "sphere",
                                     double margin_gap = 0) {
    if (inputs != "sphere" && inputs != "gaussian") {
        throw std::invalid_argument("inputs must be sphere or gaussian: " + inputs);
    }
    TeacherData data;
    Rng rng(seed);
    std::vector<double> teacher(d);
    for (double& v : teacher) v = rng.normal();
    const double teacher_norm = norm2(teacher);
    auto draw = [&](std::int64_t count, std::uint64_t s) {
        return inputs == "sphere" ? unit_norm_inputs<double>(d, count, s)
                                  : gaussian_matrix<double>(d, count, s, 1 / std::sqrt(double(d)));
    };
    data.x = draw(n, seed + 1);
    data.x_test = draw(n_test, seed + 2);
    auto label = [&](ngd::Matrix<double>& x, ngd::Matrix<double>& labels, std::vector<double>& s) {
        const std::vector<double> f = linear_outputs(x, teacher);
        labels = ngd::Matrix<double>(1, x.cols());
        s.resize(x.cols());
        for (std::int64_t i = 0; i < x.cols(); ++i) {
            s[i] = f[i] >= 0 ? 1.0 : -1.0;
            labels[i] = f[i] >= 0 ? 1.0 : 0.0;
            for (std::int64_t r = 0; r < d; ++r)
                x(r, i) += margin_gap * s[i] * teacher[r] / teacher_norm;
        }
    };
    label(data.x, data.labels, data.s);
    label(data.x_test, data.labels_test, data.s_test);
    return data;
}

/// The two reference directions of claim 5: the hard-margin SVM and, for d >= n, the equal-margin
/// (minimum-norm) interpolant X^+ s, i.e. the w with s_i w.x_i = 1 for every i (empty for n > d,
/// where no w interpolates every margin). For n > d the SVM's dual ascent is slower: tolerance
/// 1e-9.
struct ReferenceDirections {
    SvmSolution svm;
    std::vector<double> min_norm;
};

inline ReferenceDirections reference_directions(const TeacherData& data) {
    if (data.x.rows() < data.x.cols()) return {hard_margin_svm(data.x, data.s, 1e-9), {}};
    return {hard_margin_svm(data.x, data.s), min_norm_interpolant(data.x, data.s)};
}

/// "deep_linear": ngd::deep_linear(d, width, depth); "tanh" and "relu": d -> width -> 1 with that
/// activation on the hidden layer, with biases.
inline ngd::Mlp make_model(const std::string& kind, std::int64_t d, std::int64_t depth,
                           std::int64_t width, double init_scale = -1.0) {
    if (kind == "deep_linear") return ngd::deep_linear(d, width, depth, 1, init_scale);
    if (kind != "tanh" && kind != "relu") {
        throw std::invalid_argument("model must be deep_linear, tanh or relu: " + kind);
    }
    ngd::Layer hidden, out;
    hidden.n_out = width;
    hidden.activation = kind == "tanh" ? ngd::Activation::tanh : ngd::Activation::relu;
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
    std::vector<double> w;           ///< the end-to-end weights (deep_linear only; not in the CSV)
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
                r.w = w;
                if (refs) {
                    r.cos_svm = cosine(w, refs->svm.w);
                    if (!refs->min_norm.empty()) r.cos_min_norm = cosine(w, refs->min_norm);
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

}  // namespace examples::kerekes
