// The NGD pipeline shared by ngd::direction and NaturalGradient::step. GramSystem does everything
// that does not depend on the damping (forward, loss factors, seeds, the Gram matrix) once; solve()
// then gives the direction for any damping with the Gram reused (only the factorization is redone),
// walking the failure ladder of DESIGN.md section 4 when asked. Arguments are checked by the
// callers.
#pragma once

#include <cstdint>
#include <vector>

#include "ngd/context.hpp"
#include "ngd/loss.hpp"
#include "ngd/model.hpp"
#include "ngd/stages.hpp"
#include "stages.hpp"

namespace ngd::detail {

class StatusBlock;

/// Forward pass into `state` and the loss factors at theta (arguments already checked).
template <class T>
LossFactors<T> evaluate(Context& ctx, const Mlp& model, const T* theta, const Batch<T>& batch,
                        Loss loss, ForwardState<T>& state);

/// grad L = J^T e / n (p x 1) by one backprop through an evaluated state.
template <class T>
Matrix<T> gradient_at(Context& ctx, const Mlp& model, const T* theta, const Batch<T>& batch,
                      const ForwardState<T>& state, const LossFactors<T>& factors);

/// Lower triangle of A A^T (N x N) from the seeds, structured or through explicit column blocks of
/// A sized by ctx.memory_budget().
template <class T>
void build_gram(Context& ctx, const Mlp& model, MatrixView<const T> x, const ForwardState<T>& state,
                const std::vector<Matrix<T>>& seeds, GramMode mode, MatrixView<T> g);

/// What to do when Cholesky fails: raise the damping `raises` times by `factor` (from 0, the first
/// raise is sqrt(eps) times the Gram's mean diagonal), then the eigendecomposition pseudo-inverse
/// if `pseudo_inverse`, else throw NotPositiveDefinite.
/// A Cholesky solve whose equilibrated residual |D^-1/2 (K alpha - rhs)| / |D^-1/2 rhs|
/// (D = diag(K), result_checks.hpp) exceeds `max_residual` counts as failed (negative: the
/// library's threshold, max_solve_residual<T>()).
struct Ladder {
    int raises = 0;
    double factor = 10;
    bool pseudo_inverse = false;
    double max_residual = -1;
};

template <class T>
struct Solution {
    Matrix<T> d;         ///< p x 1, in the context's memory space
    double damping = 0;  ///< lambda actually used (raised by the ladder)
    int cholesky_tries = 0;
    std::int64_t cholesky_info = 0;  ///< info of the last failed factorization, 0 if none failed
    bool fallback_used = false;
    double solve_residual = 0;  ///< |D^-1/2 (K alpha - rhs)| / |D^-1/2 rhs|, D = diag(K)
    SolveReport report;         ///< precision, refinement and backward error of the solve taken
    double gradient_dot = 0;    ///< grad L . d
    double curvature = 0;       ///< d^T F d (undamped Gauss-Newton)
};

/// The linear system for `loss` (see SolveForm in stages.hpp): `requested`, or for automatic the
/// natural-residual form for logistic loss and the factor form otherwise. Throws InvalidArgument
/// (naming fn) for natural_residual with softmax cross-entropy.
SolveForm choose_form(const char* fn, Loss loss, SolveForm requested);

/// What GramSystem::solve_deferred queued: d, and the words of the StatusBlock that will hold the
/// solve's scalars once the block is read.
template <class T>
struct DeferredSolution {
    Matrix<T> d;  ///< p x 1, in the context's memory space
    double damping = 0;
    int sums = -1;   ///< sum r^2/D, sum u^2/D, #bad D (equilibrated_sums_into)
    int norms = -1;  ///< |r|^2, |alpha|^2, |u|^2, |K|_F (the backward error)
    int model = -1;  ///< d.d, then |w|^2 (n d^T F d; guarded_step_into reads both), then rhs_e.w
};

template <class T>
class GramSystem {
  public:
    /// Forward pass, loss factors, choice of form, seeds and Gram at theta. Throws InvalidArgument
    /// when `options.form` does not fit the loss. With `defer`, the checks of what it computed
    /// (NaN/Inf outputs, right-hand side, Gram diagonal; H^{-1} in the natural form) and the loss
    /// value go into words of the block instead of being read: nothing synchronises, and only
    /// solve_deferred() may follow; a fault in the block means the step is redone without it,
    /// where the same checks throw.
    GramSystem(Context& ctx, const char* fn, const Mlp& model, MatrixView<const T> theta,
               const Batch<T>& batch, Loss loss, const DirectionOptions& options, bool time_stages,
               StatusBlock* defer = nullptr);

    /// The loss at theta (deferred: after the block is read).
    double loss() const;
    /// The form in use; automatic can move from natural_residual to factor in solve(), when
    /// n lambda H^{-1} overflows at the damping tried.
    SolveForm form() const { return form_; }
    /// A positive damping to start from where lambda = 0 must grow: sqrt(eps) mean diag(K - shift)
    /// / n (the ladder's first raise from 0).
    double first_raise();
    double seconds_forward() const { return seconds_forward_; }
    double seconds_gram() const { return seconds_gram_; }

    /// The direction for damping lambda (>= 0), with the ladder. Throws NotPositiveDefinite when
    /// the ladder is exhausted. Adds the solve and direction times to
    /// `seconds_solve`/`seconds_direction`.
    Solution<T> solve(double damping, const Ladder& ladder, double& seconds_solve,
                      double& seconds_direction);

    /// Deferred construction only: one Cholesky try at lambda = damping in working precision, its
    /// acceptance test, d = A^T alpha and the dots of the Gauss-Newton model, all into `block`
    /// (the constructor's for the first try, a new one for each later try; its faults: the
    /// factorization's info, a non-finite shift or d). No synchronisation.
    DeferredSolution<T> solve_deferred(double damping, StatusBlock& block);
    /// After `block` is read: the Solution of solve() from the words of `queued` when the try
    /// passed every check of the block, with the acceptance test's residual at most max_residual
    /// (negative: the library's threshold); false when the step must be redone on the host-driven
    /// path (a fault, a failed or rejected Cholesky, sums a plain double cannot hold).
    bool finish_deferred(const DeferredSolution<T>& queued, const StatusBlock& block,
                         double max_residual, Solution<T>& out) const;

  private:
    // (g + diag(shift(lambda))) alpha = rhs into alpha, in the precision asked for (mixed falls
    // back to the working Cholesky by itself); returns info (0 ok, > 0, or -1 non-finite) and
    // fills last_.
    std::int64_t try_cholesky(double damping, Matrix<T>& alpha);
    void pseudo_inverse_solve(double damping, Matrix<T>& alpha);
    void set_shift(double damping);
    // Seeds for factor_ and the Gram's lower triangle into gram_.
    void build_system();
    // gram_ (built), work_ and shift_.
    void allocate_and_build();
    // The rest of the deferred constructor, after the forward pass.
    void construct_deferred(const DirectionOptions& options);
    // Automatic form only: the factor form from here on (rebuilds the Gram with M).
    void use_factor_form();
    // w = G alpha and the equilibrated residual of the last system solved (Inf if not finite);
    // its normwise backward error into *backward when given.
    double equilibrated_residual(const Matrix<T>& alpha, Matrix<T>& w, double* backward = nullptr);
    // r = (G + diag(shift)) alpha - rhs, and w = G alpha on the way.
    void residual(const Matrix<T>& alpha, Matrix<T>& w, Matrix<T>& r);
    // The lower triangle of G into work_, for a factorization that overwrites it.
    void copy_lower_to_work();
    void mark(double& slot, double start) const;

    Context& ctx_;
    StatusBlock* defer_ = nullptr;
    int loss_word_ = -1;  // deferred: the loss value's word
    const char* fn_;
    const Mlp& model_;
    MatrixView<const T> theta_;
    Batch<T> batch_;
    Loss loss_;
    bool time_stages_;
    std::int64_t n_ = 0, k_ = 0, big_n_ = 0;
    GramMode gram_mode_ = GramMode::structured;
    SolveForm form_ = SolveForm::factor;
    bool automatic_ = false;
    bool natural_ = false;
    SolvePrecision precision_ = SolvePrecision::working;
    SolveReport last_;  // of the last try_cholesky
    ForwardState<T> state_;
    LossFactors<T> factors_;
    MatrixView<const T> factor_;  // M, or empty for M = I
    const Matrix<T>* rhs_ = nullptr;
    Matrix<T> gram_, work_, shift_;
    std::vector<double> gram_diagonal_;  // diag(G) on the host, for the acceptance test
    double mean_diagonal_ = 0;
    double seconds_forward_ = 0, seconds_gram_ = 0;
};

}  // namespace ngd::detail
