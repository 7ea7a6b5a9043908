// The public stage functions of ngd/stages.hpp and ngd/loss.hpp: check every argument, then run the
// stages on the context's backend. Results are allocated in the context's memory space.
#include "ngd/stages.hpp"

#include <string>
#include <vector>

#include "check.hpp"
#include "dispatch.hpp"
#include "ngd/error.hpp"
#include "pipeline.hpp"

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

template <class T>
Matrix<T> forward(Context& ctx, const Mlp& model, MatrixView<const T> theta,
                  MatrixView<const T> inputs, MatrixView<const T> output_rows) {
    const char* fn = "ngd::forward";
    detail::check_theta<T>(ctx, fn, model, theta);
    detail::check_inputs<T>(ctx, fn, model, inputs, output_rows);
    ForwardState<T> state;
    NGD_STAGE(ctx, forward<T>, ctx, model, theta.data, inputs, output_rows, state);
    return std::move(state.outputs);
}

template <class T>
double loss(Context& ctx, const Mlp& model, MatrixView<const T> theta, const Batch<T>& batch,
            Loss loss) {
    const char* fn = "ngd::loss";
    detail::check_theta<T>(ctx, fn, model, theta);
    detail::check_batch<T>(ctx, fn, model, batch, loss);
    ForwardState<T> state;
    return detail::evaluate<T>(ctx, model, theta.data, batch, loss, state).value;
}

template <class T>
Matrix<T> gradient(Context& ctx, const Mlp& model, MatrixView<const T> theta, const Batch<T>& batch,
                   Loss loss) {
    const char* fn = "ngd::gradient";
    detail::check_theta<T>(ctx, fn, model, theta);
    detail::check_batch<T>(ctx, fn, model, batch, loss);
    ForwardState<T> state;
    const LossFactors<T> lf = detail::evaluate<T>(ctx, model, theta.data, batch, loss, state);
    return detail::gradient_at<T>(ctx, model, theta.data, batch, state, lf);
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
    return j;
}

namespace {

// Full symmetric A A^T for the given factor (empty: J J^T).
template <class T>
Matrix<T> gram_with_factor(Context& ctx, const Mlp& model, MatrixView<const T> theta,
                           MatrixView<const T> inputs, MatrixView<const T> output_rows,
                           const ForwardState<T>& state, MatrixView<const T> factor,
                           GramMode mode) {
    std::vector<Matrix<T>> seeds;
    NGD_STAGE(ctx, backprop_seeds<T>, ctx, model, theta.data, state, factor, output_rows, seeds);
    const std::int64_t big_n = inputs.cols * model.n_outputs();
    Matrix<T> g(big_n, big_n, ctx.memory_space());
    detail::build_gram<T>(ctx, model, inputs, state, seeds, mode, g.view());
    NGD_STAGE(ctx, symmetrize<T>, ctx, g.view());
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
    return gram_with_factor<T>(ctx, model, theta, inputs, output_rows, state, {}, mode);
}

template <class T>
Matrix<T> gram(Context& ctx, const Mlp& model, MatrixView<const T> theta, const Batch<T>& batch,
               Loss loss, GramMode mode) {
    const char* fn = "ngd::gram";
    detail::check_theta<T>(ctx, fn, model, theta);
    detail::check_batch<T>(ctx, fn, model, batch, loss);
    ForwardState<T> state;
    const LossFactors<T> lf = detail::evaluate<T>(ctx, model, theta.data, batch, loss, state);
    const MatrixView<const T> factor =
        loss == Loss::squared ? MatrixView<const T>() : lf.factor.const_view();
    return gram_with_factor<T>(ctx, model, theta, batch.inputs, batch.output_rows, state, factor,
                               mode);
}

template <class T>
Matrix<T> damped_solve(Context& ctx, MatrixView<const T> gram, double shift,
                       MatrixView<const T> rhs) {
    const char* fn = "ngd::damped_solve";
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
    Matrix<T> chol(big_n, big_n, ctx.memory_space());
    NGD_STAGE(ctx, copy_matrix<T>, ctx, gram, chol.view());
    Matrix<T> shifts(big_n, 1, ctx.memory_space());
    NGD_STAGE(ctx, fill<T>, ctx, big_n, T(shift), shifts.data());
    Matrix<T> x(big_n, rhs.cols, ctx.memory_space());
    NGD_STAGE(ctx, copy_matrix<T>, ctx, rhs, x.view());
    detail::solve_or_throw<T>(ctx, fn, chol.view(), shifts.const_view(), x.view(), shift);
    return x;
}

template <class T>
Matrix<T> direction(Context& ctx, const Mlp& model, MatrixView<const T> theta,
                    const Batch<T>& batch, Loss loss, double damping, DirectionOptions options) {
    const char* fn = "ngd::direction";
    detail::check_nonnegative(fn, "damping", damping);
    detail::check_theta<T>(ctx, fn, model, theta);
    detail::check_batch<T>(ctx, fn, model, batch, loss);
    // No ladder here: a bare direction either solves the system asked for or says why not.
    detail::GramSystem<T> system(ctx, fn, model, theta, batch, loss, options, false);
    double seconds_solve = 0, seconds_direction = 0;
    return std::move(system.solve(damping, detail::Ladder{}, seconds_solve, seconds_direction).d);
}

template <class T>
Matrix<T> direction_from_jacobian(Context& ctx, MatrixView<const T> jacobian,
                                  MatrixView<const T> residual, double damping,
                                  MatrixView<const T> factor) {
    const char* fn = "ngd::direction_from_jacobian";
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
    const double shift = double(n) * damping;
    Matrix<T> shifts(big_n, 1, space);
    NGD_STAGE(ctx, fill<T>, ctx, big_n, T(shift), shifts.data());
    Matrix<T> alpha(big_n, 1, space);
    NGD_STAGE(ctx, copy_matrix<T>, ctx, residual, alpha.view());
    detail::solve_or_throw<T>(ctx, fn, g.view(), shifts.const_view(), alpha.view(), shift);
    Matrix<T> d(p, 1, space);
    NGD_STAGE(ctx, gemv<T>, ctx, true, a, alpha.data(), d.data());
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
                                               MatrixView<const T>);                               \
    template NGD_API Matrix<T> direction<T>(Context&, const Mlp&, MatrixView<const T>,             \
                                            const Batch<T>&, Loss, double, DirectionOptions);      \
    template NGD_API Matrix<T> direction_from_jacobian<T>(                                         \
        Context&, MatrixView<const T>, MatrixView<const T>, double, MatrixView<const T>);
NGD_INSTANTIATE_STAGES(float)
NGD_INSTANTIATE_STAGES(double)

}  // namespace ngd
