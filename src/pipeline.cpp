// The NGD pipeline (DESIGN.md section 2) on either backend: every step is a stage call, so this file
// reads as the math. See pipeline.hpp.
#include "pipeline.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>

#include "check.hpp"
#include "dispatch.hpp"
#include "ngd/error.hpp"

namespace ngd::detail {

template <class T>
void build_gram(Context& ctx, const Mlp& model, MatrixView<const T> x, const ForwardState<T>& state,
                const std::vector<Matrix<T>>& seeds, GramMode mode, MatrixView<T> g) {
    if (mode == GramMode::structured) {
        NGD_STAGE(ctx, gram_structured<T>, ctx, model, x, state, seeds, g);
        return;
    }
    // Explicit: stream A through column blocks that fit the memory budget, G = sum_b A_b A_b^T.
    const std::int64_t n_rows = g.rows, p = model.n_params();
    const std::int64_t per_column = n_rows * std::int64_t(sizeof(T));
    const std::int64_t width =
        std::clamp<std::int64_t>(std::int64_t(ctx.memory_budget()) / per_column, 1, p);
    Matrix<T> block(n_rows, width, ctx.memory_space());
    for (std::int64_t c0 = 0; c0 < p; c0 += width) {
        const std::int64_t w = std::min(width, p - c0);
        MatrixView<T> b = block.view().col_block(0, w);
        NGD_STAGE(ctx, jacobian_block<T>, ctx, model, x, state, seeds, c0, b);
        NGD_STAGE(ctx, syrk_lower<T>, ctx, MatrixView<const T>(b), T(c0 == 0 ? 0 : 1), g);
    }
}

template <class T>
void solve_or_throw(Context& ctx, const char* fn, MatrixView<T> g, MatrixView<const T> shift,
                    MatrixView<T> rhs, double damping_for_report) {
    const std::int64_t info = NGD_STAGE(ctx, cholesky_solve<T>, ctx, g, shift, rhs);
    if (info == 0) return;
    const std::string order = std::to_string(g.rows);
    if (info > 0) {
        throw NotPositiveDefinite(std::string(fn) + ": the damped system (order " + order +
                                      ", diagonal shift " + std::to_string(damping_for_report) +
                                      ") is not positive definite: Cholesky failed at leading "
                                      "minor " + std::to_string(info),
                                  info, g.rows, damping_for_report);
    }
    throw NotPositiveDefinite(std::string(fn) + ": the damped system (order " + order +
                                  ", diagonal shift " + std::to_string(damping_for_report) +
                                  ") gave a non-finite Cholesky factor or solution (overflow or "
                                  "numerically indefinite)",
                              info, g.rows, damping_for_report);
}

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Picks the linear system (see SolveForm in stages.hpp).
SolveForm choose_form(const char* fn, Loss loss, SolveForm requested) {
    if (requested == SolveForm::natural_residual && loss == Loss::softmax_cross_entropy) {
        throw InvalidArgument(message(fn, "options.form",
                                      "natural_residual needs an invertible output Hessian; "
                                      "softmax cross-entropy's is singular (use factor)"));
    }
    if (requested != SolveForm::automatic) return requested;
    return loss == Loss::logistic ? SolveForm::natural_residual : SolveForm::factor;
}

}  // namespace

template <class T>
DirectionResult<T> compute_direction(Context& ctx, const char* fn, const Mlp& model,
                                     MatrixView<const T> theta, const Batch<T>& batch, Loss loss,
                                     double damping, const DirectionOptions& options,
                                     bool time_stages) {
    using clock = std::chrono::steady_clock;
    const MemorySpace space = ctx.memory_space();
    const std::int64_t n = batch.size(), k = model.n_outputs(), big_n = n * k;
    const std::int64_t p = model.n_params();
    const double shift_value = double(n) * damping;  // n lambda on the Gram side
    DirectionResult<T> r;
    auto mark = [&](double& slot, clock::time_point t0) {
        if (time_stages) {
            ctx.synchronize();
            slot = seconds_since(t0);
        }
    };

    // Forward pass and loss factors.
    auto t0 = clock::now();
    ForwardState<T> state;
    NGD_STAGE(ctx, forward<T>, ctx, model, theta.data, batch.inputs, batch.output_rows, state);
    LossFactors<T> lf;
    NGD_STAGE(ctx, loss_factors<T>, ctx, loss, state.outputs.const_view(), batch.targets, lf);
    r.loss = lf.value;

    // The system: factor form (M, u, n lambda I) or natural-residual form (I, rho, n lambda H^{-1}).
    r.form = choose_form(fn, loss, options.form);
    Matrix<T> shift(big_n, 1, space);
    bool shift_set = false;
    if (r.form == SolveForm::natural_residual && loss == Loss::logistic && damping > 0) {
        NGD_STAGE(ctx, axpby<T>, ctx, big_n, T(shift_value), lf.curvature_inverse.data(), T(0),
                  shift.data());
        // n lambda H^{-1} overflows for margins beyond the type's exponent range.
        if (NGD_STAGE(ctx, count_nonfinite<T>, ctx, shift.const_view()).count == 0) {
            shift_set = true;
        } else if (options.form == SolveForm::automatic) {
            r.form = SolveForm::factor;
        } else {
            throw InvalidArgument(message(fn, "options.form",
                                          "natural_residual: n lambda H^{-1} overflows for these "
                                          "margins in this precision; use factor or automatic"));
        }
    }
    if (!shift_set) NGD_STAGE(ctx, fill<T>, ctx, big_n, T(shift_value), shift.data());
    const bool natural = r.form == SolveForm::natural_residual;
    // Squared loss has M = I: both forms are the same system, with no factor to apply.
    const bool identity_factor = natural || loss == Loss::squared;
    const MatrixView<const T> factor =
        identity_factor ? MatrixView<const T>() : lf.factor.const_view();
    const Matrix<T>& rhs_source = natural ? lf.natural_residual : lf.residual;
    mark(r.seconds_forward, t0);

    // Seeds and the Gram matrix G = A A^T (lower triangle); a copy is kept for the report.
    t0 = clock::now();
    std::vector<Matrix<T>> seeds;
    NGD_STAGE(ctx, backprop_seeds<T>, ctx, model, theta.data, state, factor, batch.output_rows,
              seeds);
    Matrix<T> g(big_n, big_n, space);
    build_gram<T>(ctx, model, batch.inputs, state, seeds, options.gram_mode, g.view());
    seeds.clear();
    Matrix<T> chol(big_n, big_n, space);
    NGD_STAGE(ctx, copy_matrix<T>, ctx, g.const_view(), chol.view());
    mark(r.seconds_gram, t0);

    // Damped Cholesky solve K alpha = rhs.
    t0 = clock::now();
    Matrix<T> alpha(big_n, 1, space);
    NGD_STAGE(ctx, copy_vector<T>, ctx, big_n, rhs_source.data(), alpha.data());
    r.cholesky_tries = 1;
    solve_or_throw<T>(ctx, fn, chol.view(), shift.const_view(), alpha.view(), shift_value);
    mark(r.seconds_solve, t0);

    // d = A^T alpha: one backprop with cotangent alpha.
    t0 = clock::now();
    r.d = Matrix<T>(p, 1, space);
    const MatrixView<const T> coeff(alpha.data(), k, n, space);
    NGD_STAGE(ctx, transpose_product<T>, ctx, model, theta.data, batch.inputs, state, factor,
              batch.output_rows, coeff, r.d.data());
    mark(r.seconds_direction, t0);

    // Report: w = G alpha; residual |w + shift.alpha - rhs| / |rhs|; grad L . d = rhs_e . w / n
    // with rhs_e = u (factor form) or e (natural form); d^T F d = |M^T w|^2 / n in the natural form
    // (F = J^T H J / n) and |w|^2 / n in the factor form.
    Matrix<T> w(big_n, 1, space), tmp(big_n, 1, space);
    NGD_STAGE(ctx, symv_lower<T>, ctx, g.const_view(), alpha.data(), w.data());
    NGD_STAGE(ctx, multiply<T>, ctx, big_n, shift.data(), alpha.data(), tmp.data());
    NGD_STAGE(ctx, axpby<T>, ctx, big_n, T(1), w.data(), T(1), tmp.data());
    NGD_STAGE(ctx, axpby<T>, ctx, big_n, T(-1), rhs_source.data(), T(1), tmp.data());
    const double res2 = NGD_STAGE(ctx, dot<T>, ctx, big_n, tmp.data(), tmp.data());
    const double rhs2 = NGD_STAGE(ctx, dot<T>, ctx, big_n, rhs_source.data(), rhs_source.data());
    r.solve_residual = rhs2 > 0 ? std::sqrt(res2 / rhs2) : std::sqrt(res2);
    const Matrix<T>& lin = natural ? lf.gradient : lf.residual;
    r.gradient_dot = NGD_STAGE(ctx, dot<T>, ctx, big_n, lin.data(), w.data()) / double(n);
    if (natural && loss == Loss::logistic) {
        NGD_STAGE(ctx, multiply<T>, ctx, big_n, lf.factor.data(), w.data(), w.data());
    }
    r.curvature = NGD_STAGE(ctx, dot<T>, ctx, big_n, w.data(), w.data()) / double(n);
    return r;
}

#define NGD_INSTANTIATE_PIPELINE(T)                                                               \
    template void build_gram<T>(Context&, const Mlp&, MatrixView<const T>,                       \
                                const ForwardState<T>&, const std::vector<Matrix<T>>&, GramMode, \
                                MatrixView<T>);                                                  \
    template void solve_or_throw<T>(Context&, const char*, MatrixView<T>, MatrixView<const T>,   \
                                    MatrixView<T>, double);                                      \
    template DirectionResult<T> compute_direction<T>(Context&, const char*, const Mlp&,          \
                                                     MatrixView<const T>, const Batch<T>&, Loss, \
                                                     double, const DirectionOptions&, bool);
NGD_INSTANTIATE_PIPELINE(float)
NGD_INSTANTIATE_PIPELINE(double)

}  // namespace ngd::detail
