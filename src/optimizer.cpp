// NaturalGradient and GradientDescent steps. Both compute the whole update into scratch before they
// touch theta, so a step that throws leaves the caller's parameters as they were.
#include "ngd/optimizer.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <type_traits>

#include "check.hpp"
#include "dispatch.hpp"
#include "ngd/error.hpp"
#include "pipeline.hpp"
#include "result_checks.hpp"
#include "status_block.hpp"
#include "step_guard.hpp"

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

// The deferred checks of a step's arguments (shapes throw at once, the data goes into `block`);
// the batch the step runs on, its index arrays the sanitized copies kept in `safe`.
template <class T>
Batch<T> check_deferred(Context& ctx, const char* fn, const Mlp& model, MatrixView<const T> theta,
                        const Batch<T>& batch, Loss loss, detail::StatusBlock& block,
                        detail::SafeIndices<T>& safe) {
    detail::check_theta<T>(ctx, fn, model, theta, &block);
    detail::check_batch<T>(ctx, fn, model, batch, loss, &block, &safe);
    return safe.apply(batch);
}

// L at theta into a new word of `block` (no synchronisation); returns the word.
template <class T>
int loss_into(Context& ctx, const Mlp& model, const T* theta, const Batch<T>& batch, Loss loss,
              detail::StatusBlock& block) {
    ForwardState<T> state;
    LossFactors<T> factors;
    NGD_STAGE(ctx, forward<T>, ctx, model, theta, batch.inputs, batch.output_rows, state);
    const int word = block.value();
    NGD_STAGE(ctx, loss_factors_into<T>, ctx, loss, state.outputs.const_view(), batch.targets,
              factors, block.at(word));
    return word;
}

// NaturalGradient's options as the step guard of step_guard.hpp.
template <class Options>
StepGuard guard_of(const Options& o) {
    return StepGuard{o.learning_rate, o.max_step_norm, o.max_output_change};
}

// The report's fields about the solve taken (cholesky_tries adds up over the tries).
template <class T>
void describe_solve(StepReport& r, const detail::Solution<T>& s, SolveForm form) {
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
    r.form = form;  // automatic may have moved to the factor form in this solve
}

// ... and about the step theta - eta d (|d| = d_norm) with the guard's eta.
template <class T>
void describe_step(StepReport& r, const detail::GuardedStep& g, double d_norm,
                   const detail::Solution<T>& s) {
    const double eta = g.eta, change = std::sqrt(std::max(s.curvature, 0.0));
    r.learning_rate = eta;
    r.step_limited = g.limited;
    r.output_change = eta * change;
    r.step_norm = eta * d_norm;
    // Gauss-Newton model: L(theta - eta d) ~ L - eta g.d + eta^2/2 d^T F d.
    r.predicted_reduction = eta * s.gradient_dot - 0.5 * eta * eta * s.curvature;
}

// ... and about the loss at the new theta.
void describe_evaluation(StepReport& r, double loss_after) {
    r.loss_after = loss_after;
    r.actual_reduction = r.loss_before - r.loss_after;
    r.gain_ratio = r.predicted_reduction != 0 ? r.actual_reduction / r.predicted_reduction
                                              : std::numeric_limits<double>::quiet_NaN();
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
    const auto t0 = std::chrono::steady_clock::now();
    const bool deferrable =
        options_.deferred_checks && !options_.time_stages &&
        (options_.precision == SolvePrecision::working || std::is_same_v<T, float>);
    StepReport r;
    if (deferrable && deferred_) {
        if (step_deferred(ctx, model, theta, batch, loss, r)) {
            r.seconds.total = seconds_since(t0);
            return r;
        }
        deferred_ = false;  // until a step on the host-driven path succeeds at its first try
    }
    r = step_host_driven(ctx, model, theta, batch, loss);
    if (r.cholesky_tries == 1 + r.rejections && r.rung == Rung::cholesky) deferred_ = true;
    r.seconds.total = seconds_since(t0);
    return r;
}

template <class T>
bool NaturalGradient<T>::step_deferred(Context& ctx, const Mlp& model, MatrixView<T> theta,
                                       const Batch<T>& batch, Loss loss, StepReport& r) {
    const char* fn = "ngd::NaturalGradient::step";
    const MatrixView<const T> theta_in = theta;
    detail::StatusBlock first(ctx);
    detail::SafeIndices<T> safe;
    const Batch<T> run = check_deferred<T>(ctx, fn, model, theta_in, batch, loss, first, safe);

    // Each try as if every check passed and its Cholesky is accepted, read back once; the
    // Levenberg-Marquardt policy reads once per try. A try that is not what the host-driven path
    // would have taken first sends the whole step there, with the state it started from.
    const DirectionOptions dopt{options_.gram_mode, options_.form, options_.precision};
    detail::GramSystem<T> system(ctx, fn, model, theta_in, run, loss, dopt, false, &first);
    const bool adaptive = options_.policy == DampingPolicy::levenberg_marquardt;
    const double damping_at_start = damping_, nu_at_start = nu_;
    std::optional<detail::StatusBlock> later;
    detail::StatusBlock* block = &first;
    const std::int64_t p = model.n_params();
    r = StepReport{};
    r.gram_mode = options_.gram_mode;
    double lambda = damping_;
    for (;;) {
        const detail::DeferredSolution<T> q = system.solve_deferred(lambda, *block);
        Matrix<T> next(p, 1, ctx.memory_space());
        const int eta_word = block->value();
        NGD_STAGE(ctx, guarded_step_into<T>, ctx, p, theta.data, q.d.data(), block->at(q.model),
                  double(run.size()), guard_of(options_), next.data(), block->at(eta_word));
        const int loss_after_word = adaptive || options_.evaluate_after
                                        ? loss_into<T>(ctx, model, next.data(), run, loss, *block)
                                        : -1;

        // The one synchronisation of the try; then either it stands, or nothing was written.
        block->read();
        detail::Solution<T> s;
        if (!system.finish_deferred(q, *block, options_.max_solve_residual, s)) {
            damping_ = damping_at_start;
            nu_ = nu_at_start;
            return false;
        }
        r.loss_before = system.loss();
        describe_solve(r, s, system.form());
        const double d_norm = std::sqrt((*block)[q.model]);
        describe_step(r, detail::guard_step(guard_of(options_), d_norm, s.curvature), d_norm, s);
        if (loss_after_word >= 0) {
            describe_evaluation(r, (*block)[loss_after_word]);
        } else {
            r.loss_after = r.actual_reduction = r.gain_ratio =
                std::numeric_limits<double>::quiet_NaN();
        }
        if (!adaptive || adapt(r, s.damping, system)) {
            NGD_STAGE(ctx, copy_vector<T>, ctx, p, next.data(), theta.data);
            break;
        }
        if (++r.rejections > options_.max_rejections) {
            r.accepted = false;  // theta stays as it was
            break;
        }
        lambda = damping_;
        later.emplace(ctx);
        block = &*later;
    }
    r.next_damping = damping_;
    return true;
}

template <class T>
bool NaturalGradient<T>::adapt(StepReport& r, double used, detail::GramSystem<T>& system) {
    // Levenberg-Marquardt: judge the try by its gain ratio, adapt lambda from the one used.
    const double rho = r.gain_ratio;
    const bool good = std::isfinite(r.loss_after) && std::isfinite(r.step_norm) &&
                      r.predicted_reduction > 0 && std::isfinite(rho) && rho > 0;
    double next_lambda = used;
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
    return good;
}

template <class T>
StepReport NaturalGradient<T>::step_host_driven(Context& ctx, const Mlp& model, MatrixView<T> theta,
                                                const Batch<T>& batch, Loss loss) {
    const char* fn = "ngd::NaturalGradient::step";
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
        describe_solve(r, s, system.form());

        // Step guard: shorten eta so that |eta d| and eta sqrt(d^T F d) stay within bounds.
        const std::int64_t p = model.n_params();
        const double d_norm = std::sqrt(NGD_STAGE(ctx, dot<T>, ctx, p, s.d.data(), s.d.data()));
        const detail::GuardedStep g = detail::guard_step(guard_of(options_), d_norm, s.curvature);
        describe_step(r, g, d_norm, s);
        Matrix<T> next(p, 1, ctx.memory_space());
        NGD_STAGE(ctx, copy_vector<T>, ctx, p, theta_in.data, next.data());
        NGD_STAGE(ctx, axpby<T>, ctx, p, T(-g.eta), s.d.data(), T(1), next.data());
        if (adaptive || options_.evaluate_after) {
            describe_evaluation(r, loss_at<T>(ctx, model, next.data(), batch, loss));
        } else {
            r.loss_after = r.actual_reduction = r.gain_ratio =
                std::numeric_limits<double>::quiet_NaN();
        }
        if (!adaptive || adapt(r, s.damping, system)) {
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
    const auto t0 = std::chrono::steady_clock::now();
    StepReport r;
    if (!options_.deferred_checks || !step_deferred(ctx, model, theta, batch, loss, r)) {
        r = step_host_driven(ctx, model, theta, batch, loss);
    }
    r.seconds.total = seconds_since(t0);
    return r;
}

template <class T>
bool GradientDescent<T>::step_deferred(Context& ctx, const Mlp& model, MatrixView<T> theta,
                                       const Batch<T>& batch, Loss loss, StepReport& r) {
    const char* fn = "ngd::GradientDescent::step";
    const MatrixView<const T> theta_in = theta;
    detail::StatusBlock block(ctx);
    detail::SafeIndices<T> safe;
    const Batch<T> run = check_deferred<T>(ctx, fn, model, theta_in, batch, loss, block, safe);

    // The host-driven step's stages, their scalars into the block.
    ForwardState<T> state;
    LossFactors<T> lf;
    NGD_STAGE(ctx, forward<T>, ctx, model, theta.data, run.inputs, run.output_rows, state);
    const int loss_word = block.value();
    NGD_STAGE(ctx, loss_factors_into<T>, ctx, loss, state.outputs.const_view(), run.targets, lf,
              block.at(loss_word));
    const std::int64_t p = model.n_params();
    const Matrix<T> g = detail::gradient_at<T>(ctx, model, theta.data, run, state, lf);
    NGD_STAGE(ctx, count_nonfinite_into<T>, ctx, g.const_view(), block.fault());
    const int g2_word = block.value();
    NGD_STAGE(ctx, dot_into<T>, ctx, p, g.data(), g.data(), block.at(g2_word));
    const double eta = options_.learning_rate;
    Matrix<T> next(p, 1, ctx.memory_space());
    NGD_STAGE(ctx, copy_vector<T>, ctx, p, theta_in.data, next.data());
    NGD_STAGE(ctx, axpby<T>, ctx, p, T(-eta), g.data(), T(1), next.data());
    const int loss_after_word =
        options_.evaluate_after ? loss_into<T>(ctx, model, next.data(), run, loss, block) : -1;

    block.read();
    if (!block.clean()) return false;
    r.loss_before = block[loss_word];
    r.form = SolveForm::factor;
    const double g2 = block[g2_word];
    r.predicted_reduction = eta * g2;
    r.learning_rate = eta;
    r.step_norm = eta * std::sqrt(g2);
    if (options_.evaluate_after) {
        describe_evaluation(r, block[loss_after_word]);
    } else {
        r.loss_after = r.actual_reduction = r.gain_ratio = std::numeric_limits<double>::quiet_NaN();
    }
    NGD_STAGE(ctx, copy_vector<T>, ctx, p, next.data(), theta.data);
    return true;
}

template <class T>
StepReport GradientDescent<T>::step_host_driven(Context& ctx, const Mlp& model, MatrixView<T> theta,
                                                const Batch<T>& batch, Loss loss) {
    const char* fn = "ngd::GradientDescent::step";
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
    r.step_norm = eta * std::sqrt(g2);
    Matrix<T> next(p, 1, ctx.memory_space());
    NGD_STAGE(ctx, copy_vector<T>, ctx, p, theta_in.data, next.data());
    NGD_STAGE(ctx, axpby<T>, ctx, p, T(-eta), g.data(), T(1), next.data());
    if (options_.evaluate_after) {
        describe_evaluation(r, loss_at<T>(ctx, model, next.data(), batch, loss));
    } else {
        r.loss_after = r.actual_reduction = r.gain_ratio = std::numeric_limits<double>::quiet_NaN();
    }
    NGD_STAGE(ctx, copy_vector<T>, ctx, p, next.data(), theta.data);
    ctx.synchronize();
    return r;
}

template class NaturalGradient<float>;
template class NaturalGradient<double>;
template class GradientDescent<float>;
template class GradientDescent<double>;

}  // namespace ngd
