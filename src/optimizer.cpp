// NaturalGradient and GradientDescent steps. Both compute the whole update into scratch before they
// touch theta, so a step that throws leaves the caller's parameters as they were.
#include "ngd/optimizer.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <string>

#include "check.hpp"
#include "dispatch.hpp"
#include "ngd/error.hpp"
#include "pipeline.hpp"
#include "result_checks.hpp"

namespace ngd {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// L at theta_new (arguments already checked).
template <class T>
double loss_at(Context& ctx, const Mlp& model, const T* theta, const Batch<T>& batch, Loss loss) {
    ForwardState<T> state;
    return detail::evaluate<T>(ctx, model, theta, batch, loss, state).value;
}

// theta_new = theta - eta d (|d| = d_norm), the loss there (if asked), and the reductions of the
// report.
template <class T>
Matrix<T> take_step(Context& ctx, const Mlp& model, MatrixView<const T> theta,
                    const Batch<T>& batch, Loss loss, double eta, const Matrix<T>& d, double d_norm,
                    bool evaluate_after, StepReport& r) {
    const std::int64_t p = model.n_params();
    Matrix<T> next(p, 1, ctx.memory_space());
    NGD_STAGE(ctx, copy_vector<T>, ctx, p, theta.data, next.data());
    NGD_STAGE(ctx, axpby<T>, ctx, p, T(-eta), d.data(), T(1), next.data());
    r.step_norm = eta * d_norm;
    if (evaluate_after) {
        r.loss_after = loss_at<T>(ctx, model, next.data(), batch, loss);
        r.actual_reduction = r.loss_before - r.loss_after;
        r.gain_ratio = r.predicted_reduction != 0 ? r.actual_reduction / r.predicted_reduction
                                                  : std::numeric_limits<double>::quiet_NaN();
    } else {
        r.loss_after = r.actual_reduction = r.gain_ratio = std::numeric_limits<double>::quiet_NaN();
    }
    return next;
}

}  // namespace

const char* to_string(Rung rung) {
    switch (rung) {
        case Rung::cholesky:
            return "cholesky";
        case Rung::raised_damping:
            return "raised_damping";
        case Rung::pseudo_inverse:
            return "pseudo_inverse";
    }
    return "unknown";
}

template <class T>
NaturalGradient<T>::NaturalGradient(Options options)
    : options_(options), damping_(options.damping) {
    const char* fn = "ngd::NaturalGradient";
    detail::check_nonnegative(fn, "options.learning_rate", options.learning_rate);
    detail::check_nonnegative(fn, "options.damping", options.damping);
    detail::check_nonnegative(fn, "options.damping_min", options.damping_min);
    detail::check_nonnegative(fn, "options.damping_max", options.damping_max);
    if (options.damping_min > options.damping_max) {
        throw InvalidArgument(detail::message(fn, "options.damping_min",
                                              "must be <= damping_max, got " +
                                                  detail::number(options.damping_min) + " > " +
                                                  detail::number(options.damping_max)));
    }
    if (!(options.raise_factor > 1) || !std::isfinite(options.raise_factor)) {
        throw InvalidArgument(
            detail::message(fn, "options.raise_factor",
                            "must be finite and > 1, got " + detail::number(options.raise_factor)));
    }
    if (options.damping_raises < 0 || options.max_rejections < 0) {
        throw InvalidArgument(
            detail::message(fn, "options.damping_raises/max_rejections", "must be >= 0"));
    }
    if (!(options.max_step_norm > 0) || !(options.max_output_change > 0)) {
        throw InvalidArgument(detail::message(fn, "options.max_step_norm/max_output_change",
                                              "must be > 0 (infinity: no guard)"));
    }
    if (options.policy == DampingPolicy::levenberg_marquardt) {
        damping_ = std::clamp(damping_, options.damping_min, options.damping_max);
    }
}

template <class T>
StepReport NaturalGradient<T>::step(Context& ctx, const Mlp& model, MatrixView<T> theta,
                                    const Batch<T>& batch, Loss loss) {
    const char* fn = "ngd::NaturalGradient::step";
    const auto t0 = std::chrono::steady_clock::now();
    const MatrixView<const T> theta_in = theta;
    detail::check_theta<T>(ctx, fn, model, theta_in);
    detail::check_batch<T>(ctx, fn, model, batch, loss);

    // Everything that does not depend on lambda, once; every try below reuses the Gram matrix.
    const DirectionOptions dopt{options_.gram_mode, options_.form, options_.precision};
    detail::GramSystem<T> system(ctx, fn, model, theta_in, batch, loss, dopt, options_.time_stages);
    const detail::Ladder ladder{options_.damping_raises, options_.raise_factor,
                                options_.fallback == Fallback::pseudo_inverse,
                                options_.max_solve_residual};
    const bool adaptive = options_.policy == DampingPolicy::levenberg_marquardt;

    StepReport r;
    r.loss_before = system.loss();
    r.form = system.form();
    r.gram_mode = options_.gram_mode;
    r.seconds.forward = system.seconds_forward();
    r.seconds.gram = system.seconds_gram();
    double lambda = damping_;
    for (;;) {
        detail::Solution<T> s = system.solve(lambda, ladder, r.seconds.solve, r.seconds.direction);
        r.cholesky_tries += s.cholesky_tries;
        if (s.cholesky_info != 0) r.cholesky_info = s.cholesky_info;
        r.damping = s.damping;
        r.fallback_used = s.fallback_used;
        r.rung = s.fallback_used ? Rung::pseudo_inverse
                                 : (s.cholesky_tries > 1 ? Rung::raised_damping : Rung::cholesky);
        r.solve_residual = s.solve_residual;
        r.precision = s.report.used;
        r.mixed_fallback = s.report.mixed_fallback;
        r.refinement_iterations = s.report.refinement_iterations;
        r.cg_iterations = s.report.cg_iterations;
        r.backward_error = s.report.backward_error;
        r.form = system.form();  // automatic may have moved to the factor form in this solve

        // Step guard: shorten eta so that |eta d| and eta sqrt(d^T F d) stay within bounds.
        const std::int64_t p = model.n_params();
        const double d_norm = std::sqrt(NGD_STAGE(ctx, dot<T>, ctx, p, s.d.data(), s.d.data()));
        const double change = std::sqrt(std::max(s.curvature, 0.0));
        double eta = options_.learning_rate;
        r.step_limited = false;
        if (eta * d_norm > options_.max_step_norm) {
            eta = options_.max_step_norm / d_norm;
            r.step_limited = true;
        }
        if (eta * change > options_.max_output_change) {
            eta = options_.max_output_change / change;
            r.step_limited = true;
        }
        r.learning_rate = eta;
        r.output_change = eta * change;
        // Gauss-Newton model: L(theta - eta d) ~ L - eta g.d + eta^2/2 d^T F d.
        r.predicted_reduction = eta * s.gradient_dot - 0.5 * eta * eta * s.curvature;
        Matrix<T> next = take_step<T>(ctx, model, theta_in, batch, loss, eta, s.d, d_norm,
                                      adaptive || options_.evaluate_after, r);
        if (!adaptive) {
            NGD_STAGE(ctx, copy_vector<T>, ctx, p, next.data(), theta.data);
            break;
        }

        // Levenberg-Marquardt: judge the try by its gain ratio, adapt lambda from the one used.
        const double rho = r.gain_ratio;
        const bool good = std::isfinite(r.loss_after) && std::isfinite(r.step_norm) &&
                          r.predicted_reduction > 0 && std::isfinite(rho) && rho > 0;
        double next_lambda = s.damping;
        // A rejection must grow lambda, and no factor grows 0: start from the ladder's first raise.
        if (!good && next_lambda == 0) next_lambda = system.first_raise();
        if (options_.rule == DampingRule::nielsen) {
            if (good) {
                const double t = 2 * rho - 1;
                next_lambda *= std::max(1.0 / 3.0, 1 - t * t * t);
                nu_ = 2;
            } else {
                next_lambda *= nu_;
                nu_ *= 2;
            }
        } else if (!good || rho < 0.25) {
            next_lambda *= 1.5;
        } else if (rho > 0.75) {
            next_lambda *= 2.0 / 3.0;
        }
        damping_ = std::clamp(next_lambda, options_.damping_min, options_.damping_max);
        if (good) {
            NGD_STAGE(ctx, copy_vector<T>, ctx, p, next.data(), theta.data);
            break;
        }
        if (++r.rejections > options_.max_rejections) {
            r.accepted = false;  // theta stays as it was
            break;
        }
        lambda = damping_;
    }
    r.next_damping = damping_;
    ctx.synchronize();
    r.seconds.total = seconds_since(t0);
    return r;
}

template <class T>
GradientDescent<T>::GradientDescent(Options options) : options_(options) {
    detail::check_nonnegative("ngd::GradientDescent", "options.learning_rate",
                              options.learning_rate);
}

template <class T>
StepReport GradientDescent<T>::step(Context& ctx, const Mlp& model, MatrixView<T> theta,
                                    const Batch<T>& batch, Loss loss) {
    const char* fn = "ngd::GradientDescent::step";
    const auto t0 = std::chrono::steady_clock::now();
    const MatrixView<const T> theta_in = theta;
    detail::check_theta<T>(ctx, fn, model, theta_in);
    detail::check_batch<T>(ctx, fn, model, batch, loss);

    // grad L = J^T e / n by one backprop.
    ForwardState<T> state;
    const LossFactors<T> lf = detail::evaluate<T>(ctx, model, theta.data, batch, loss, state);
    const std::int64_t p = model.n_params();
    const Matrix<T> g = detail::gradient_at<T>(ctx, model, theta.data, batch, state, lf);
    // An overflowed gradient would write Inf into theta: say so instead (theta is untouched).
    detail::check_overflow<T>(ctx, fn, "gradient J^T e / n", g.const_view(),
                              "rescale the inputs or the targets");

    StepReport r;
    const double eta = options_.learning_rate;
    r.loss_before = lf.value;
    r.form = SolveForm::factor;
    // First-order model: L(theta - eta g) ~ L - eta |g|^2.
    const double g2 = NGD_STAGE(ctx, dot<T>, ctx, p, g.data(), g.data());
    r.predicted_reduction = eta * g2;
    r.learning_rate = eta;
    Matrix<T> next = take_step<T>(ctx, model, theta_in, batch, loss, eta, g, std::sqrt(g2),
                                  options_.evaluate_after, r);
    NGD_STAGE(ctx, copy_vector<T>, ctx, p, next.data(), theta.data);
    ctx.synchronize();
    r.seconds.total = seconds_since(t0);
    return r;
}

template class NaturalGradient<float>;
template class NaturalGradient<double>;
template class GradientDescent<float>;
template class GradientDescent<double>;

}  // namespace ngd
