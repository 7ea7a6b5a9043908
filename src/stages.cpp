// The public stage functions of ngd/stages.hpp and ngd/loss.hpp: check every argument, then run the
// stages on the context's backend. Results are allocated in the context's memory space.
#include "ngd/stages.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "check.hpp"
#include "dispatch.hpp"
#include "mixed_solve.hpp"
#include "ngd/error.hpp"
#include "pipeline.hpp"
#include "result_checks.hpp"

namespace ngd {

const char* to_string(Loss loss) {
    switch (loss) {
        case Loss::squared:
            return "squared";
        case Loss::logistic:
            return "logistic";
        case Loss::softmax_cross_entropy:
            return "softmax_cross_entropy";
    }
    return "unknown";
}

const char* to_string(GramMode mode) {
    return mode == GramMode::structured ? "structured" : "explicit_jacobian";
}

const char* to_string(SolveForm form) {
    switch (form) {
        case SolveForm::automatic:
            return "automatic";
        case SolveForm::factor:
            return "factor";
        case SolveForm::natural_residual:
            return "natural_residual";
    }
    return "unknown";
}

const char* to_string(SolvePrecision precision) {
    switch (precision) {
        case SolvePrecision::working:
            return "working";
        case SolvePrecision::mixed:
            return "mixed";
        case SolvePrecision::mixed_tf32:
            return "mixed_tf32";
    }
    return "unknown";
}

namespace {

// A SolvePrecision outside the enumeration (a cast integer) is refused rather than read as mixed.
void check_precision(const char* fn, SolvePrecision precision) {
    if (precision != SolvePrecision::working && precision != SolvePrecision::mixed &&
        precision != SolvePrecision::mixed_tf32) {
        throw InvalidArgument(
            detail::message(fn, "precision",
                            "must be working, mixed or mixed_tf32, got the value " +
                                std::to_string(static_cast<int>(precision))));
    }
}

}  // namespace

template <class T>
LossFactors<T> loss_factors(Context& ctx, Loss loss, MatrixView<const T> outputs,
                            MatrixView<const T> targets) {
    const char* fn = "ngd::loss_factors";
    if (outputs.rows < 1 || outputs.cols < 1) {
        throw InvalidArgument(detail::message(
            fn, "outputs",
            "must be k x n with k, n >= 1, got " + detail::shape(outputs.rows, outputs.cols)));
    }
    const std::int64_t k = outputs.rows, n = outputs.cols;
    if (loss == Loss::logistic && k != 1) {
        throw InvalidArgument(detail::message(
            fn, "outputs", "must be 1 x n for logistic loss, got " + detail::shape(k, n)));
    }
    if (loss == Loss::softmax_cross_entropy && k < 2) {
        throw InvalidArgument(detail::message(
            fn, "outputs",
            "must have k >= 2 rows for softmax cross-entropy, got " + detail::shape(k, n)));
    }
    detail::check_matrix<T>(ctx, fn, "outputs", outputs, k, n, "k x n");
    detail::check_finite<T>(ctx, fn, "outputs", outputs);
    detail::check_targets<T>(ctx, fn, loss, k, n, targets);
    LossFactors<T> out;
    NGD_STAGE(ctx, loss_factors<T>, ctx, loss, outputs, targets, out);
    return out;
}

namespace {

// The forward pass and loss factors of a public function: outputs that overflowed from finite
// input are reported here, naming them, rather than as NaN in whatever is computed from them.
template <class T>
LossFactors<T> evaluate_checked(Context& ctx, const char* fn, const Mlp& model,
                                MatrixView<const T> theta, const Batch<T>& batch, Loss loss,
                                ForwardState<T>& state) {
    NGD_STAGE(ctx, forward<T>, ctx, model, theta.data, batch.inputs, batch.output_rows, state);
    detail::check_overflow<T>(ctx, fn, "model's outputs", state.outputs.const_view(),
                              "rescale the inputs or the parameters");
    LossFactors<T> factors;
    NGD_STAGE(ctx, loss_factors<T>, ctx, loss, state.outputs.const_view(), batch.targets, factors);
    return factors;
}

}  // namespace

template <class T>
Matrix<T> forward(Context& ctx, const Mlp& model, MatrixView<const T> theta,
                  MatrixView<const T> inputs, MatrixView<const T> output_rows) {
    const char* fn = "ngd::forward";
    detail::check_theta<T>(ctx, fn, model, theta);
    detail::check_inputs<T>(ctx, fn, model, inputs, output_rows);
    ForwardState<T> state;
    NGD_STAGE(ctx, forward<T>, ctx, model, theta.data, inputs, output_rows, state);
    detail::check_overflow<T>(ctx, fn, "model's outputs", state.outputs.const_view(),
                              "rescale the inputs or the parameters");
    return std::move(state.outputs);
}

template <class T>
double loss(Context& ctx, const Mlp& model, MatrixView<const T> theta, const Batch<T>& batch,
            Loss loss) {
    const char* fn = "ngd::loss";
    detail::check_theta<T>(ctx, fn, model, theta);
    detail::check_batch<T>(ctx, fn, model, batch, loss);
    ForwardState<T> state;
    const LossFactors<T> lf = evaluate_checked<T>(ctx, fn, model, theta, batch, loss, state);
    if (!std::isfinite(lf.value)) {
        throw NonFiniteInput(std::string(fn) + ": the loss is " + detail::number(lf.value) +
                                 " although every input is finite: it overflows the range of "
                                 "double (residuals beyond ~1e154); rescale the inputs or "
                                 "targets",
                             1, 0);
    }
    return lf.value;
}

template <class T>
Matrix<T> gradient(Context& ctx, const Mlp& model, MatrixView<const T> theta, const Batch<T>& batch,
                   Loss loss) {
    const char* fn = "ngd::gradient";
    detail::check_theta<T>(ctx, fn, model, theta);
    detail::check_batch<T>(ctx, fn, model, batch, loss);
    ForwardState<T> state;
    const LossFactors<T> lf = evaluate_checked<T>(ctx, fn, model, theta, batch, loss, state);
    Matrix<T> g = detail::gradient_at<T>(ctx, model, theta.data, batch, state, lf);
    detail::check_overflow<T>(ctx, fn, "gradient J^T e / n", g.const_view(),
                              "rescale the inputs or the targets");
    return g;
}

template <class T>
Matrix<T> jacobian(Context& ctx, const Mlp& model, MatrixView<const T> theta,
                   MatrixView<const T> inputs, MatrixView<const T> output_rows) {
    const char* fn = "ngd::jacobian";
    detail::check_theta<T>(ctx, fn, model, theta);
    detail::check_inputs<T>(ctx, fn, model, inputs, output_rows);
    ForwardState<T> state;
    NGD_STAGE(ctx, forward<T>, ctx, model, theta.data, inputs, output_rows, state);
    std::vector<Matrix<T>> seeds;
    NGD_STAGE(ctx, backprop_seeds<T>, ctx, model, theta.data, state, MatrixView<const T>(),
              output_rows, seeds);
    Matrix<T> j(inputs.cols * model.n_outputs(), model.n_params(), ctx.memory_space());
    NGD_STAGE(ctx, jacobian_block<T>, ctx, model, inputs, state, seeds, 0, j.view());
    detail::check_overflow<T>(ctx, fn, "Jacobian", j.const_view(),
                              "rescale the inputs or the parameters");
    return j;
}

namespace {

// Full symmetric A A^T for the given factor (empty: J J^T).
// Overflow (|x|^2 beyond the type's range) is reported as NonFiniteInput naming the quantity,
// never returned as NaN/Inf.
template <class T>
Matrix<T> gram_with_factor(Context& ctx, const char* fn, const Mlp& model,
                           MatrixView<const T> theta, MatrixView<const T> inputs,
                           MatrixView<const T> output_rows, const ForwardState<T>& state,
                           MatrixView<const T> factor, GramMode mode) {
    std::vector<Matrix<T>> seeds;
    NGD_STAGE(ctx, backprop_seeds<T>, ctx, model, theta.data, state, factor, output_rows, seeds);
    const std::int64_t big_n = inputs.cols * model.n_outputs();
    Matrix<T> g(big_n, big_n, ctx.memory_space());
    detail::build_gram<T>(ctx, model, inputs, state, seeds, mode, g.view());
    detail::check_gram_overflow<T>(ctx, fn, model, inputs, state, mode,
                                   detail::diagonal<T>(ctx, g.const_view()));
    NGD_STAGE(ctx, symmetrize<T>, ctx, g.view());
    detail::check_overflow<T>(ctx, fn, "Gram matrix", g.const_view(),
                              "rescale the inputs or the parameters");
    return g;
}

}  // namespace

template <class T>
Matrix<T> gram(Context& ctx, const Mlp& model, MatrixView<const T> theta,
               MatrixView<const T> inputs, MatrixView<const T> output_rows, GramMode mode) {
    const char* fn = "ngd::gram";
    detail::check_theta<T>(ctx, fn, model, theta);
    detail::check_inputs<T>(ctx, fn, model, inputs, output_rows);
    ForwardState<T> state;
    NGD_STAGE(ctx, forward<T>, ctx, model, theta.data, inputs, output_rows, state);
    detail::check_overflow<T>(ctx, fn, "model's outputs", state.outputs.const_view(),
                              "rescale the inputs or the parameters");
    return gram_with_factor<T>(ctx, fn, model, theta, inputs, output_rows, state, {}, mode);
}

template <class T>
Matrix<T> gram(Context& ctx, const Mlp& model, MatrixView<const T> theta, const Batch<T>& batch,
               Loss loss, GramMode mode) {
    const char* fn = "ngd::gram";
    detail::check_theta<T>(ctx, fn, model, theta);
    detail::check_batch<T>(ctx, fn, model, batch, loss);
    ForwardState<T> state;
    const LossFactors<T> lf = evaluate_checked<T>(ctx, fn, model, theta, batch, loss, state);
    const MatrixView<const T> factor =
        loss == Loss::squared ? MatrixView<const T>() : lf.factor.const_view();
    return gram_with_factor<T>(ctx, fn, model, theta, batch.inputs, batch.output_rows, state,
                               factor, mode);
}

template <class T>
Matrix<T> damped_solve(Context& ctx, MatrixView<const T> gram, double shift,
                       MatrixView<const T> rhs, SolvePrecision precision, SolveReport* report) {
    const char* fn = "ngd::damped_solve";
    check_precision(fn, precision);
    if (gram.rows < 1) {
        throw InvalidArgument(detail::message(
            fn, "gram", "must be N x N with N >= 1, got " + detail::shape(gram.rows, gram.cols)));
    }
    const std::int64_t big_n = gram.rows;
    detail::check_matrix<T>(ctx, fn, "gram", gram, big_n, big_n, "N x N");
    detail::check_matrix<T>(ctx, fn, "rhs", rhs, big_n, rhs.cols, "N x r");
    detail::check_nonnegative(fn, "shift", shift);
    detail::check_finite<T>(ctx, fn, "gram", gram);
    detail::check_finite<T>(ctx, fn, "rhs", rhs);
    const MemorySpace space = ctx.memory_space();
    Matrix<T> shifts(big_n, 1, space);
    NGD_STAGE(ctx, fill<T>, ctx, big_n, T(shift), shifts.data());
    Matrix<T> x(big_n, rhs.cols, space);
    SolveReport rep;
    rep.requested = precision;
    // Mixed precision reads the caller's gram and leaves it intact; when it falls back, or for
    // the working precision, Cholesky runs on a copy: the gram stays intact for the acceptance
    // test below.
    const bool mixed = precision != SolvePrecision::working &&
                       detail::mixed_solve<T>(ctx, gram, shifts.const_view(), rhs, x.view(), rep);
    if (!mixed) rep.used = SolvePrecision::working;  // else mixed_solve said which factor
    if (!mixed) {
        Matrix<T> chol(big_n, big_n, space);
        NGD_STAGE(ctx, copy_matrix<T>, ctx, gram, chol.view());
        NGD_STAGE(ctx, copy_matrix<T>, ctx, rhs, x.view());
        const std::int64_t info =
            NGD_STAGE(ctx, cholesky_solve<T>, ctx, chol.view(), shifts.const_view(), x.view());
        if (info != 0) detail::throw_not_positive_definite(fn, info, big_n, shift);
    }

    // Acceptance (DESIGN.md section 4): the equilibrated residual of every column, with
    // r = G x + shift x - rhs and D = diag(G) + shift; and the normwise backward error reported.
    std::vector<double> d = detail::diagonal<T>(ctx, gram);
    for (double& v : d) v += double(T(shift));
    const double limit = detail::max_solve_residual<T>();
    const double norm_k = NGD_STAGE(ctx, frobenius_norm_lower<T>, ctx, gram, shifts.const_view());
    Matrix<T> r(big_n, 1, space), tmp(big_n, 1, space);
    rep.backward_error = 0;
    for (std::int64_t c = 0; c < rhs.cols; ++c) {
        const T* xc = x.data() + c * big_n;
        const T* rhs_c = rhs.data + c * rhs.ld;
        detail::shifted_residual<T>(ctx, gram, shifts.const_view(), xc, rhs_c, r.data(),
                                    tmp.data());
        const double residual = detail::equilibrated_residual<T>(ctx, big_n, r.data(), rhs_c, d);
        if (!(residual <= limit)) {
            detail::throw_not_positive_definite(fn, -1, big_n, shift, residual, limit);
        }
        rep.solve_residual = std::max(rep.solve_residual, residual);
        rep.backward_error = std::max(
            rep.backward_error, detail::backward_error<T>(ctx, big_n, r.data(), xc, rhs_c, norm_k));
    }
    if (report != nullptr) *report = rep;
    return x;
}

template <class T>
Matrix<T> direction(Context& ctx, const Mlp& model, MatrixView<const T> theta,
                    const Batch<T>& batch, Loss loss, double damping, DirectionOptions options,
                    SolveReport* report) {
    const char* fn = "ngd::direction";
    check_precision(fn, options.precision);
    detail::check_nonnegative(fn, "damping", damping);
    detail::check_theta<T>(ctx, fn, model, theta);
    detail::check_batch<T>(ctx, fn, model, batch, loss);
    // No ladder here: a bare direction either solves the system asked for or says why not.
    detail::GramSystem<T> system(ctx, fn, model, theta, batch, loss, options, false);
    double seconds_solve = 0, seconds_direction = 0;
    detail::Solution<T> s =
        system.solve(damping, detail::Ladder{}, seconds_solve, seconds_direction);
    if (report != nullptr) *report = s.report;
    return std::move(s.d);
}

template <class T>
Matrix<T> direction_from_jacobian(Context& ctx, MatrixView<const T> jacobian,
                                  MatrixView<const T> residual, double damping,
                                  MatrixView<const T> factor, SolvePrecision precision,
                                  SolveReport* report) {
    const char* fn = "ngd::direction_from_jacobian";
    check_precision(fn, precision);
    if (jacobian.rows < 1 || jacobian.cols < 1) {
        throw InvalidArgument(detail::message(
            fn, "jacobian",
            "must be N x p with N, p >= 1, got " + detail::shape(jacobian.rows, jacobian.cols)));
    }
    const std::int64_t big_n = jacobian.rows, p = jacobian.cols;
    const std::int64_t k = factor.empty() ? 1 : factor.rows;
    if (!factor.empty() && big_n % k != 0) {
        throw InvalidArgument(detail::message(fn, "factor",
                                              "has k = " + std::to_string(k) +
                                                  " rows, which does not divide the N = " +
                                                  std::to_string(big_n) + " rows of the jacobian"));
    }
    const std::int64_t n = big_n / k;
    detail::check_matrix<T>(ctx, fn, "jacobian", jacobian, big_n, p, "N x p");
    detail::check_matrix<T>(ctx, fn, "residual", residual, big_n, 1, "N x 1");
    if (!factor.empty()) {
        detail::check_matrix<T>(ctx, fn, "factor", factor, k, big_n, "k x (k n)");
    }
    detail::check_nonnegative(fn, "damping", damping);
    detail::check_finite<T>(ctx, fn, "jacobian", jacobian);
    detail::check_finite<T>(ctx, fn, "residual", residual);
    detail::check_finite<T>(ctx, fn, "factor", factor);

    // A = blockdiag(M)^T J, G = A A^T, (G + n lambda I) alpha = u, d = A^T alpha.
    const MemorySpace space = ctx.memory_space();
    Matrix<T> a_owned;
    MatrixView<const T> a = jacobian;
    if (!factor.empty()) {
        a_owned = Matrix<T>(big_n, p, space);
        NGD_STAGE(ctx, apply_factor<T>, ctx, factor, jacobian, a_owned.view());
        a = a_owned.const_view();
    }
    Matrix<T> g(big_n, big_n, space);
    NGD_STAGE(ctx, syrk_lower<T>, ctx, a, T(0), g.view());
    // D = diag(G) + n lambda for the acceptance test, read before Cholesky overwrites G; an
    // overflow of G shows on its diagonal.
    std::vector<double> diag = detail::diagonal<T>(ctx, g.const_view());
    for (std::int64_t i = 0; i < big_n; ++i) {
        if (std::isfinite(diag[i])) continue;
        throw NonFiniteInput(
            std::string(fn) + ": the Gram matrix A A^T (" + detail::shape(big_n, big_n) +
                ") has a NaN/Inf diagonal entry at row " + std::to_string(i) +
                " although every input is finite: the rows of A overflow the range of " +
                (sizeof(T) == sizeof(double) ? "double" : "float") +
                "; rescale the jacobian or the factor",
            1, i * (big_n + 1));
    }
    const double shift = double(n) * damping;
    for (double& v : diag) v += double(T(shift));
    Matrix<T> shifts(big_n, 1, space);
    NGD_STAGE(ctx, fill<T>, ctx, big_n, T(shift), shifts.data());
    Matrix<T> alpha(big_n, 1, space);
    SolveReport rep;
    rep.requested = precision;
    const double norm_k =
        NGD_STAGE(ctx, frobenius_norm_lower<T>, ctx, g.const_view(), shifts.const_view());
    // Mixed precision leaves G intact; the working Cholesky (or the fallback) factors it in place.
    const bool mixed = precision != SolvePrecision::working &&
                       detail::mixed_solve<T>(ctx, g.const_view(), shifts.const_view(), residual,
                                              alpha.view(), rep);
    if (!mixed) rep.used = SolvePrecision::working;  // else mixed_solve said which factor
    if (!mixed) {
        NGD_STAGE(ctx, copy_matrix<T>, ctx, residual, alpha.view());
        const std::int64_t info =
            NGD_STAGE(ctx, cholesky_solve<T>, ctx, g.view(), shifts.const_view(), alpha.view());
        if (info != 0) detail::throw_not_positive_definite(fn, info, big_n, shift);
    }
    Matrix<T> d(p, 1, space);
    NGD_STAGE(ctx, gemv<T>, ctx, true, a, alpha.data(), d.data());
    detail::check_overflow<T>(ctx, fn, "direction d = A^T alpha", d.const_view(),
                              "rescale the jacobian, or raise the damping");

    // Acceptance (DESIGN.md section 4) without keeping G: K alpha = A (A^T alpha) + n lambda alpha
    // = A d + n lambda alpha, so r costs one product with A, like d itself.
    Matrix<T> r(big_n, 1, space);
    NGD_STAGE(ctx, gemv<T>, ctx, false, a, d.data(), r.data());
    NGD_STAGE(ctx, axpby<T>, ctx, big_n, T(shift), alpha.data(), T(1), r.data());
    NGD_STAGE(ctx, axpby<T>, ctx, big_n, T(-1), residual.data, T(1), r.data());
    const double res = detail::equilibrated_residual<T>(ctx, big_n, r.data(), residual.data, diag);
    const double limit = detail::max_solve_residual<T>();
    if (!(res <= limit)) detail::throw_not_positive_definite(fn, -1, big_n, shift, res, limit);
    rep.solve_residual = res;
    rep.backward_error =
        detail::backward_error<T>(ctx, big_n, r.data(), alpha.data(), residual.data, norm_k);
    if (report != nullptr) *report = rep;
    return d;
}

#define NGD_INSTANTIATE_STAGES(T)                                                                  \
    template NGD_API LossFactors<T> loss_factors<T>(Context&, Loss, MatrixView<const T>,           \
                                                    MatrixView<const T>);                          \
    template NGD_API Matrix<T> forward<T>(Context&, const Mlp&, MatrixView<const T>,               \
                                          MatrixView<const T>, MatrixView<const T>);               \
    template NGD_API double loss<T>(Context&, const Mlp&, MatrixView<const T>, const Batch<T>&,    \
                                    Loss);                                                         \
    template NGD_API Matrix<T> gradient<T>(Context&, const Mlp&, MatrixView<const T>,              \
                                           const Batch<T>&, Loss);                                 \
    template NGD_API Matrix<T> jacobian<T>(Context&, const Mlp&, MatrixView<const T>,              \
                                           MatrixView<const T>, MatrixView<const T>);              \
    template NGD_API Matrix<T> gram<T>(Context&, const Mlp&, MatrixView<const T>,                  \
                                       MatrixView<const T>, MatrixView<const T>, GramMode);        \
    template NGD_API Matrix<T> gram<T>(Context&, const Mlp&, MatrixView<const T>, const Batch<T>&, \
                                       Loss, GramMode);                                            \
    template NGD_API Matrix<T> damped_solve<T>(Context&, MatrixView<const T>, double,              \
                                               MatrixView<const T>, SolvePrecision, SolveReport*); \
    template NGD_API Matrix<T> direction<T>(Context&, const Mlp&, MatrixView<const T>,             \
                                            const Batch<T>&, Loss, double, DirectionOptions,       \
                                            SolveReport*);                                         \
    template NGD_API Matrix<T> direction_from_jacobian<T>(                                         \
        Context&, MatrixView<const T>, MatrixView<const T>, double, MatrixView<const T>,           \
        SolvePrecision, SolveReport*);
NGD_INSTANTIATE_STAGES(float)
NGD_INSTANTIATE_STAGES(double)

}  // namespace ngd
