// The NGD pipeline (DESIGN.md section 2) on either backend: every step is a stage call, so this
// file reads as the math. See pipeline.hpp.
#include "pipeline.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <string>
#include <type_traits>

#include "check.hpp"
#include "dispatch.hpp"
#include "mixed_solve.hpp"
#include "ngd/error.hpp"
#include "result_checks.hpp"
#include "status_block.hpp"

namespace ngd::detail {

template <class T>
LossFactors<T> evaluate(Context& ctx, const Mlp& model, const T* theta, const Batch<T>& batch,
                        Loss loss, ForwardState<T>& state) {
    NGD_STAGE(ctx, forward<T>, ctx, model, theta, batch.inputs, batch.output_rows, state);
    LossFactors<T> factors;
    NGD_STAGE(ctx, loss_factors<T>, ctx, loss, state.outputs.const_view(), batch.targets, factors);
    ctx.note_host_sync();  // the loss value came back to the host
    return factors;
}

template <class T>
Matrix<T> gradient_at(Context& ctx, const Mlp& model, const T* theta, const Batch<T>& batch,
                      const ForwardState<T>& state, const LossFactors<T>& factors) {
    const std::int64_t p = model.n_params();
    Matrix<T> g(p, 1, ctx.memory_space());
    NGD_STAGE(ctx, transpose_product<T>, ctx, model, theta, batch.inputs, state,
              MatrixView<const T>(), batch.output_rows, factors.gradient.const_view(), g.data());
    NGD_STAGE(ctx, axpby<T>, ctx, p, T(1.0 / double(batch.size())), g.data(), T(0), g.data());
    return g;
}

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

SolveForm choose_form(const char* fn, Loss loss, SolveForm requested) {
    if (requested == SolveForm::natural_residual && loss == Loss::softmax_cross_entropy) {
        throw InvalidArgument(message(fn, "options.form",
                                      "natural_residual needs an invertible output Hessian; "
                                      "softmax cross-entropy's is singular (use factor)"));
    }
    if (requested != SolveForm::automatic) return requested;
    return loss == Loss::logistic ? SolveForm::natural_residual : SolveForm::factor;
}

namespace {

double now_seconds() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

}  // namespace

template <class T>
GramSystem<T>::GramSystem(Context& ctx, const char* fn, const Mlp& model, MatrixView<const T> theta,
                          const Batch<T>& batch, Loss loss, const DirectionOptions& options,
                          bool time_stages, StatusBlock* defer)
    : ctx_(ctx),
      defer_(defer),
      fn_(fn),
      model_(model),
      theta_(theta),
      batch_(batch),
      loss_(loss),
      time_stages_(time_stages),
      gram_mode_(options.gram_mode),
      automatic_(options.form == SolveForm::automatic),
      precision_(options.precision) {
    n_ = batch.size();
    k_ = model.n_outputs();
    big_n_ = n_ * k_;

    // Forward pass and loss factors.
    double t0 = now_seconds();
    NGD_STAGE(ctx, forward<T>, ctx, model, theta.data, batch.inputs, batch.output_rows, state_);
    if (defer != nullptr) {
        construct_deferred(options);
        return;
    }
    // Finite theta and inputs can still overflow in the forward pass (entries near the type's
    // limits): say so here rather than let NaN reach the solver.
    const NonFiniteCount bad = NGD_STAGE(ctx, count_nonfinite<T>, ctx, state_.outputs.const_view());
    if (bad.count > 0) {
        throw NonFiniteInput(std::string(fn) + ": the model's outputs (" +
                                 shape(state_.outputs.rows(), state_.outputs.cols()) + ") hold " +
                                 std::to_string(bad.count) +
                                 " NaN/Inf entries: the forward pass overflowed for these "
                                 "parameters and inputs (first at linear index " +
                                 std::to_string(bad.first) + ")",
                             bad.count, bad.first);
    }
    NGD_STAGE(ctx, loss_factors<T>, ctx, loss, state_.outputs.const_view(), batch.targets,
              factors_);
    ctx.note_host_sync();  // the loss value came back to the host

    // The system: factor form (M, u, n lambda I) or natural-residual form (I, rho, n lambda
    // H^{-1}). Automatic falls back to the factor form where H^{-1} overflows the type (huge
    // margins).
    form_ = choose_form(fn, loss, options.form);
    if (form_ == SolveForm::natural_residual && loss == Loss::logistic &&
        NGD_STAGE(ctx, count_nonfinite<T>, ctx, factors_.curvature_inverse.const_view()).count >
            0) {
        if (options.form != SolveForm::automatic) {
            throw InvalidArgument(message(fn, "options.form",
                                          "natural_residual: H^{-1} overflows for these margins "
                                          "in this precision; use factor or automatic"));
        }
        form_ = SolveForm::factor;
    }
    natural_ = form_ == SolveForm::natural_residual;
    rhs_ = natural_ ? &factors_.natural_residual : &factors_.residual;
    // The residual itself overflows only for absurd margins (below about -700 in double for rho,
    // -1400 for u): report it rather than factor a system with an infinite right-hand side.
    const NonFiniteCount bad_rhs = NGD_STAGE(ctx, count_nonfinite<T>, ctx, rhs_->const_view());
    if (bad_rhs.count > 0) {
        throw NonFiniteInput(std::string(fn) + ": the " +
                                 (natural_ ? "natural residual H^{-1} e" : "residual u") +
                                 " holds " + std::to_string(bad_rhs.count) +
                                 " NaN/Inf entries (margins too extreme for this precision, first "
                                 "at linear index " +
                                 std::to_string(bad_rhs.first) + ")",
                             bad_rhs.count, bad_rhs.first);
    }
    // Squared loss has M = I: both forms are the same system, with no factor to apply.
    factor_ =
        natural_ || loss == Loss::squared ? MatrixView<const T>() : factors_.factor.const_view();
    mark(seconds_forward_, t0);

    // Seeds and the Gram matrix G = A A^T (lower triangle), kept for every damping tried.
    t0 = now_seconds();
    allocate_and_build();
    mark(seconds_gram_, t0);
}

template <class T>
void GramSystem<T>::allocate_and_build() {
    const MemorySpace space = ctx_.memory_space();
    gram_ = Matrix<T>(big_n_, big_n_, space);
    build_system();
    work_ = Matrix<T>(big_n_, big_n_, space);
    shift_ = Matrix<T>(big_n_, 1, space);
}

template <class T>
void GramSystem<T>::build_system() {
    std::vector<Matrix<T>> seeds;
    NGD_STAGE(ctx_, backprop_seeds<T>, ctx_, model_, theta_.data, state_, factor_,
              batch_.output_rows, seeds);
    build_gram<T>(ctx_, model_, batch_.inputs, state_, seeds, gram_mode_, gram_.view());
    mean_diagonal_ = 0;
    if (defer_ != nullptr) {
        // The overflow check below, as a count of NaN/Inf on the diagonal (a 1 x N view).
        const MatrixView<const T> diag(gram_.data(), 1, big_n_, big_n_ + 1, gram_.space());
        NGD_STAGE(ctx_, count_nonfinite_into<T>, ctx_, diag, defer_->fault());
        return;
    }
    // Read before any factorization overwrites a copy of it: the acceptance test's D, and the
    // place where an overflow of the Gram shows (a NaN from inf * 0 would otherwise reach
    // Cholesky and read as "not positive definite").
    gram_diagonal_ = diagonal<T>(ctx_, gram_.const_view());
    check_gram_overflow<T>(ctx_, fn_, model_, batch_.inputs, state_, gram_mode_, gram_diagonal_);
}

template <class T>
void GramSystem<T>::use_factor_form() {
    // Where n lambda H^{-1} overflows, u = M^{-1} e is still finite (|u| ~ sqrt|rho|).
    form_ = SolveForm::factor;
    natural_ = false;
    rhs_ = &factors_.residual;
    factor_ = factors_.factor.const_view();
    build_system();
}

template <class T>
double GramSystem<T>::first_raise() {
    if (mean_diagonal_ == 0) {
        mean_diagonal_ = NGD_STAGE(ctx_, trace<T>, ctx_, gram_.const_view()) / double(big_n_);
    }
    const double scale = mean_diagonal_ > 0 ? mean_diagonal_ : 1.0;
    return std::sqrt(std::numeric_limits<T>::epsilon()) * scale / double(n_);
}

template <class T>
void GramSystem<T>::mark(double& slot, double start) const {
    if (time_stages_) {
        ctx_.synchronize();
        slot += now_seconds() - start;
    }
}

template <class T>
void GramSystem<T>::set_shift(double damping) {
    const double s = double(n_) * damping;  // n lambda on the Gram side
    if (natural_ && loss_ == Loss::logistic) {
        NGD_STAGE(ctx_, axpby<T>, ctx_, big_n_, T(s), factors_.curvature_inverse.data(), T(0),
                  shift_.data());
    } else {
        NGD_STAGE(ctx_, fill<T>, ctx_, big_n_, T(s), shift_.data());
    }
}

template <class T>
std::int64_t GramSystem<T>::try_cholesky(double damping, Matrix<T>& alpha) {
    last_ = SolveReport{};
    last_.requested = precision_;
    set_shift(damping);
    // n lambda H^{-1} can overflow where H^{-1} did not: automatic moves to the factor form (the
    // same system, with a finite shift n lambda); an explicit natural_residual fails the rung like
    // a non-finite factor.
    if (damping > 0 && natural_ &&
        NGD_STAGE(ctx_, count_nonfinite<T>, ctx_, shift_.const_view()).count > 0) {
        if (!automatic_) return -1;
        use_factor_form();
        set_shift(damping);
    }
    // Mixed precision: the float factor of K refined against the intact Gram (mixed_solve.hpp);
    // when it fails, the working Cholesky below.
    // The float factor lives in work_'s storage (N x N of T holds at least the N x N floats it
    // needs), which only the fallback below overwrites, after the factor is done with.
    const MatrixView<const T> rhs(rhs_->data(), big_n_, 1, ctx_.memory_space());
    const MatrixView<float> factor(reinterpret_cast<float*>(work_.data()), big_n_, big_n_,
                                   ctx_.memory_space());
    if (precision_ != SolvePrecision::working &&
        mixed_solve<T>(ctx_, gram_.const_view(), shift_.const_view(), rhs, alpha.view(), last_,
                       factor)) {
        return 0;
    }
    copy_lower_to_work();
    NGD_STAGE(ctx_, copy_vector<T>, ctx_, big_n_, rhs_->data(), alpha.data());
    return NGD_STAGE(ctx_, cholesky_solve<T>, ctx_, work_.view(), shift_.const_view(),
                     alpha.view());
}

template <class T>
void GramSystem<T>::copy_lower_to_work() {
    // The factorization reads and overwrites only the lower triangle, so only that is copied, in
    // column panels (N - c0) x w: about half the traffic of the whole N x N (N = 40960 in double:
    // 13 GB, not 27), in at most 64 copies. gram_ itself stays intact for the residual and retries.
    const std::int64_t panel = std::max<std::int64_t>(256, (big_n_ + 63) / 64);
    for (std::int64_t c0 = 0; c0 < big_n_; c0 += panel) {
        const std::int64_t rows = big_n_ - c0, w = std::min(panel, rows);
        const MatrixView<const T> from(gram_.data() + c0 + c0 * big_n_, rows, w, big_n_,
                                       gram_.space());
        const MatrixView<T> to(work_.data() + c0 + c0 * big_n_, rows, w, big_n_, work_.space());
        NGD_STAGE(ctx_, copy_matrix<T>, ctx_, from, to);
    }
}

template <class T>
void GramSystem<T>::pseudo_inverse_solve(double damping, Matrix<T>& alpha) {
    // K = G + diag(shift) = Q diag(w) Q^T; alpha = Q diag(w)^+ Q^T rhs, dropping eigenvalues below
    // N eps max|w| (the numerical null space; negative ones are indefiniteness, dropped as well).
    set_shift(damping);
    if (natural_ && NGD_STAGE(ctx_, count_nonfinite<T>, ctx_, shift_.const_view()).count > 0) {
        throw NotPositiveDefinite(
            std::string(fn_) +
                ": natural_residual: n lambda H^{-1} overflows at the damping "
                "asked for, so the pseudo-inverse fallback has no finite "
                "system (use factor or automatic)",
            -1, big_n_, double(n_) * damping);
    }
    NGD_STAGE(ctx_, copy_matrix<T>, ctx_, gram_.const_view(), work_.view());
    Matrix<T> w(big_n_, 1, ctx_.memory_space()), y(big_n_, 1, ctx_.memory_space());
    const std::int64_t info =
        NGD_STAGE(ctx_, symmetric_eigen<T>, ctx_, work_.view(), shift_.const_view(), w.data());
    if (info != 0) {
        throw NotPositiveDefinite(
            std::string(fn_) + ": the eigendecomposition fallback did not converge (info " +
                std::to_string(info) + ", order " + std::to_string(big_n_) + ")",
            info, big_n_, double(n_) * damping);
    }
    const Matrix<T> w_host = to_host<T>(ctx_, w.const_view());
    const double largest =
        std::max(std::fabs(double(w_host[0])), std::fabs(double(w_host[big_n_ - 1])));
    const double cutoff = double(big_n_) * std::numeric_limits<T>::epsilon() * largest;
    NGD_STAGE(ctx_, gemv<T>, ctx_, true, work_.const_view(), rhs_->data(), y.data());
    NGD_STAGE(ctx_, pseudo_inverse_scale<T>, ctx_, big_n_, w.data(), T(cutoff), y.data());
    NGD_STAGE(ctx_, gemv<T>, ctx_, false, work_.const_view(), y.data(), alpha.data());
}

template <class T>
double GramSystem<T>::equilibrated_residual(const Matrix<T>& alpha, Matrix<T>& w,
                                            double* backward) {
    // r = G alpha + shift .* alpha - rhs with the shift of the last system solved, weighed by
    // D = diag(G) + shift (the acceptance test of result_checks.hpp).
    Matrix<T> r(big_n_, 1, ctx_.memory_space());
    residual(alpha, w, r);
    const Matrix<T> shift = to_host<T>(ctx_, shift_.const_view());
    std::vector<double> d = gram_diagonal_;
    for (std::int64_t i = 0; i < big_n_; ++i) d[i] += double(shift[i]);
    if (backward != nullptr) {
        const double norm_k =
            NGD_STAGE(ctx_, frobenius_norm_lower<T>, ctx_, gram_.const_view(), shift_.const_view());
        *backward = backward_error<T>(ctx_, big_n_, r.data(), alpha.data(), rhs_->data(), norm_k);
    }
    return detail::equilibrated_residual<T>(ctx_, big_n_, r.data(), rhs_->data(), d);
}

template <class T>
void GramSystem<T>::residual(const Matrix<T>& alpha, Matrix<T>& w, Matrix<T>& r) {
    NGD_STAGE(ctx_, symv_lower<T>, ctx_, gram_.const_view(), alpha.data(), w.data());
    NGD_STAGE(ctx_, multiply<T>, ctx_, big_n_, shift_.data(), alpha.data(), r.data());
    NGD_STAGE(ctx_, axpby<T>, ctx_, big_n_, T(1), w.data(), T(1), r.data());
    NGD_STAGE(ctx_, axpby<T>, ctx_, big_n_, T(-1), rhs_->data(), T(1), r.data());
}

template <class T>
Solution<T> GramSystem<T>::solve(double damping, const Ladder& ladder, double& seconds_solve,
                                 double& seconds_direction) {
    const MemorySpace space = ctx_.memory_space();
    const double max_residual =
        ladder.max_residual >= 0 ? ladder.max_residual : max_solve_residual<T>();
    Solution<T> s;
    double t0 = now_seconds();
    Matrix<T> alpha(big_n_, 1, space), w(big_n_, 1, space);

    // The ladder: Cholesky at lambda, accepted when it succeeds with a small equilibrated
    // residual (a system that is singular to working precision can pass the factorization with
    // a useless solution); on failure raise lambda; then the pseudo-inverse, or throw.
    double lambda = damping;
    for (int rung = 0;; ++rung) {
        ++s.cholesky_tries;
        std::int64_t info = try_cholesky(lambda, alpha);
        double residual = -1;
        s.report = last_;
        if (info == 0) {
            s.solve_residual = residual = equilibrated_residual(alpha, w, &s.report.backward_error);
            if (s.solve_residual <= max_residual) break;
            info = -1;
        }
        s.cholesky_info = info;
        if (rung >= ladder.raises) {
            if (!ladder.pseudo_inverse) {
                throw_not_positive_definite(fn_, info, big_n_, double(n_) * lambda, residual,
                                            max_residual);
            }
            pseudo_inverse_solve(damping, alpha);
            // No Cholesky gave this step: the working-precision eigendecomposition did.
            s.report.used = SolvePrecision::working;
            s.report.refinement_iterations = 0;
            s.report.cg_iterations = 0;
            s.solve_residual = equilibrated_residual(alpha, w, &s.report.backward_error);
            lambda = damping;
            s.fallback_used = true;
            break;
        }
        if (lambda > 0) {
            lambda *= ladder.factor;
        } else {
            lambda = first_raise();
        }
    }
    s.damping = lambda;
    s.report.solve_residual = s.solve_residual;
    mark(seconds_solve, t0);

    // d = A^T alpha: one backprop with cotangent alpha.
    t0 = now_seconds();
    s.d = Matrix<T>(model_.n_params(), 1, space);
    const MatrixView<const T> coeff(alpha.data(), k_, n_, space);
    NGD_STAGE(ctx_, transpose_product<T>, ctx_, model_, theta_.data, batch_.inputs, state_, factor_,
              batch_.output_rows, coeff, s.d.data());
    check_overflow<T>(ctx_, fn_, "direction d = A^T alpha", s.d.const_view(),
                      "rescale the inputs, or raise the damping");
    mark(seconds_direction, t0);

    // The Gauss-Newton model from w = G alpha: grad L . d = rhs_e . w / n with rhs_e = u (factor
    // form) or e (natural form); d^T F d = |M w|^2 / n in the natural form (F = J^T H J / n,
    // H = M^2 for logistic) and |w|^2 / n in the factor form.
    const Matrix<T>& lin = natural_ ? factors_.gradient : factors_.residual;
    s.gradient_dot = NGD_STAGE(ctx_, dot<T>, ctx_, big_n_, lin.data(), w.data()) / double(n_);
    if (natural_ && loss_ == Loss::logistic) {
        NGD_STAGE(ctx_, multiply<T>, ctx_, big_n_, factors_.factor.data(), w.data(), w.data());
    }
    s.curvature = NGD_STAGE(ctx_, dot<T>, ctx_, big_n_, w.data(), w.data()) / double(n_);
    return s;
}

#define NGD_INSTANTIATE_PIPELINE(T)                                                                \
    template LossFactors<T> evaluate<T>(Context&, const Mlp&, const T*, const Batch<T>&, Loss,     \
                                        ForwardState<T>&);                                         \
    template Matrix<T> gradient_at<T>(Context&, const Mlp&, const T*, const Batch<T>&,             \
                                      const ForwardState<T>&, const LossFactors<T>&);              \
    template void build_gram<T>(Context&, const Mlp&, MatrixView<const T>, const ForwardState<T>&, \
                                const std::vector<Matrix<T>>&, GramMode, MatrixView<T>);           \
    template class GramSystem<T>;
NGD_INSTANTIATE_PIPELINE(float)
NGD_INSTANTIATE_PIPELINE(double)

}  // namespace ngd::detail
