// The NGD pipeline shared by ngd::direction and NaturalGradient::step: forward, loss factors, seeds,
// Gram, damped Cholesky solve, d = A^T alpha, and the bookkeeping a step report needs (solve residual,
// the Gauss-Newton model's linear and quadratic terms). Arguments are checked by the callers.
#pragma once

#include <cstdint>
#include <vector>

#include "ngd/context.hpp"
#include "ngd/loss.hpp"
#include "ngd/model.hpp"
#include "ngd/stages.hpp"
#include "stages.hpp"

namespace ngd::detail {

/// Lower triangle of A A^T (N x N) from the seeds, structured or through explicit column blocks of A
/// sized by ctx.memory_budget().
template <class T>
void build_gram(Context& ctx, const Mlp& model, MatrixView<const T> x, const ForwardState<T>& state,
                const std::vector<Matrix<T>>& seeds, GramMode mode, MatrixView<T> g);

template <class T>
struct DirectionResult {
    Matrix<T> d;           ///< p x 1, in the context's memory space
    double loss = 0;       ///< L(theta)
    SolveForm form = SolveForm::factor;
    int cholesky_tries = 0;
    double solve_residual = 0;  ///< |K alpha - rhs| / |rhs|
    double gradient_dot = 0;    ///< grad L . d
    double curvature = 0;       ///< d^T F d (undamped Gauss-Newton)
    double seconds_forward = 0, seconds_gram = 0, seconds_solve = 0, seconds_direction = 0;
};

/// The damped NGD direction at theta. Throws NotPositiveDefinite (info, N, n lambda) when the damped
/// system cannot be factored, InvalidArgument when `options.form` does not fit the loss.
template <class T>
DirectionResult<T> compute_direction(Context& ctx, const char* fn, const Mlp& model,
                                     MatrixView<const T> theta, const Batch<T>& batch, Loss loss,
                                     double damping, const DirectionOptions& options,
                                     bool time_stages);

/// Solves (g + diag(shift)) X = rhs by Cholesky, with g's lower triangle destroyed; throws
/// NotPositiveDefinite naming `fn`, the order and `damping_for_report` when it fails.
template <class T>
void solve_or_throw(Context& ctx, const char* fn, MatrixView<T> g, MatrixView<const T> shift,
                    MatrixView<T> rhs, double damping_for_report);

}  // namespace ngd::detail
