// NaturalGradient and GradientDescent steps. Both compute the whole update into scratch before they
// touch theta, so a step that throws leaves the caller's parameters as they were.
#include "ngd/optimizer.hpp"

#include <chrono>
#include <cmath>
#include <limits>

#include "check.hpp"
#include "dispatch.hpp"
#include "pipeline.hpp"

namespace ngd {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// L at theta_new (arguments already checked).
template <class T>
double loss_at(Context& ctx, const Mlp& model, const T* theta, const Batch<T>& batch, Loss loss) {
    ForwardState<T> state;
    NGD_STAGE(ctx, forward<T>, ctx, model, theta, batch.inputs, batch.output_rows, state);
    LossFactors<T> lf;
    NGD_STAGE(ctx, loss_factors<T>, ctx, loss, state.outputs.const_view(), batch.targets, lf);
    return lf.value;
}

// theta_new = theta - eta d, the loss there (if asked), and the reductions of the report.
template <class T>
Matrix<T> take_step(Context& ctx, const Mlp& model, MatrixView<const T> theta,
                    const Batch<T>& batch, Loss loss, double eta, const Matrix<T>& d,
                    bool evaluate_after, StepReport& r) {
    const std::int64_t p = model.n_params();
    Matrix<T> next(p, 1, ctx.memory_space());
    NGD_STAGE(ctx, copy_vector<T>, ctx, p, theta.data, next.data());
    NGD_STAGE(ctx, axpby<T>, ctx, p, T(-eta), d.data(), T(1), next.data());
    r.step_norm = eta * std::sqrt(NGD_STAGE(ctx, dot<T>, ctx, p, d.data(), d.data()));
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

template <class T>
NaturalGradient<T>::NaturalGradient(Options options) : options_(options) {
    detail::check_nonnegative("ngd::NaturalGradient", "options.learning_rate",
                              options.learning_rate);
    detail::check_nonnegative("ngd::NaturalGradient", "options.damping", options.damping);
}

template <class T>
StepReport NaturalGradient<T>::step(Context& ctx, const Mlp& model, MatrixView<T> theta,
                                    const Batch<T>& batch, Loss loss) {
    const char* fn = "ngd::NaturalGradient::step";
    const auto t0 = std::chrono::steady_clock::now();
    const MatrixView<const T> theta_in = theta;
    detail::check_theta<T>(ctx, fn, model, theta_in);
    detail::check_batch<T>(ctx, fn, model, batch, loss);

    const DirectionOptions dopt{options_.gram_mode, options_.form};
    detail::DirectionResult<T> dir = detail::compute_direction<T>(
        ctx, fn, model, theta_in, batch, loss, options_.damping, dopt, options_.time_stages);

    StepReport r;
    const double eta = options_.learning_rate;
    r.loss_before = dir.loss;
    r.damping = options_.damping;
    r.cholesky_tries = dir.cholesky_tries;
    r.form = dir.form;
    r.gram_mode = options_.gram_mode;
    r.solve_residual = dir.solve_residual;
    // Gauss-Newton model: L(theta - eta d) ~ L - eta g.d + eta^2/2 d^T F d.
    r.predicted_reduction = eta * dir.gradient_dot - 0.5 * eta * eta * dir.curvature;
    Matrix<T> next =
        take_step<T>(ctx, model, theta_in, batch, loss, eta, dir.d, options_.evaluate_after, r);
    NGD_STAGE(ctx, copy_vector<T>, ctx, model.n_params(), next.data(), theta.data);
    ctx.synchronize();
    r.seconds = {dir.seconds_forward, dir.seconds_gram, dir.seconds_solve, dir.seconds_direction,
                 seconds_since(t0)};
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
    NGD_STAGE(ctx, forward<T>, ctx, model, theta.data, batch.inputs, batch.output_rows, state);
    LossFactors<T> lf;
    NGD_STAGE(ctx, loss_factors<T>, ctx, loss, state.outputs.const_view(), batch.targets, lf);
    const std::int64_t p = model.n_params();
    Matrix<T> g(p, 1, ctx.memory_space());
    NGD_STAGE(ctx, transpose_product<T>, ctx, model, theta.data, batch.inputs, state,
              MatrixView<const T>(), batch.output_rows, lf.gradient.const_view(), g.data());
    NGD_STAGE(ctx, axpby<T>, ctx, p, T(1.0 / double(batch.size())), g.data(), T(0), g.data());

    StepReport r;
    const double eta = options_.learning_rate;
    r.loss_before = lf.value;
    r.form = SolveForm::factor;
    // First-order model: L(theta - eta g) ~ L - eta |g|^2.
    r.predicted_reduction = eta * NGD_STAGE(ctx, dot<T>, ctx, p, g.data(), g.data());
    Matrix<T> next =
        take_step<T>(ctx, model, theta_in, batch, loss, eta, g, options_.evaluate_after, r);
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
