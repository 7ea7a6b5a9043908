// Optimizers: damped natural gradient (exact, through the Gram matrix) with fixed or adaptive
// (Levenberg-Marquardt) damping, the Cholesky failure ladder and a step guard; and plain gradient
// descent. A step computes everything before it writes theta: when it throws, or when every try of
// an adaptive step is rejected, theta is unchanged.
#pragma once

#include <cstdint>
#include <limits>

#include "ngd/context.hpp"
#include "ngd/export.hpp"
#include "ngd/loss.hpp"
#include "ngd/matrix.hpp"
#include "ngd/model.hpp"
#include "ngd/stages.hpp"

namespace ngd {

/// fixed: lambda stays as given. levenberg_marquardt: lambda adapts to the gain ratio
/// rho = actual / predicted reduction, and a step with rho <= 0 (or a non-finite loss or step) is
/// rejected and re-solved with a larger lambda, reusing the Gram matrix.
enum class DampingPolicy { fixed, levenberg_marquardt };
/// nielsen: accept -> lambda *= max(1/3, 1 - (2 rho - 1)^3), nu = 2; reject -> lambda *= nu, nu
/// *= 2. martens: rho < 1/4 -> lambda *= 3/2; rho > 3/4 -> lambda *= 2/3 (and a rejection
/// multiplies by 3/2).
enum class DampingRule { nielsen, martens };
/// What the last rung of the Cholesky failure ladder does.
enum class Fallback { none, pseudo_inverse };

/// Which rung of the failure ladder gave the step.
enum class Rung { cholesky, raised_damping, pseudo_inverse };

NGD_API const char* to_string(Rung rung);

/// What one step did. Times are wall-clock seconds; per-stage times are filled only when
/// Options::time_stages is on (it synchronises after each stage).
struct StepReport {
    double loss_before = 0;
    double loss_after = 0;           ///< NaN when evaluate_after is off (fixed damping only)
    double predicted_reduction = 0;  ///< Gauss-Newton model: eta g.d - eta^2/2 d^T F d
    double actual_reduction = 0;     ///< loss_before - loss_after
    double gain_ratio = 0;           ///< actual / predicted
    double damping = 0;              ///< lambda of the step taken (after any raise by the ladder)
    double next_damping = 0;         ///< lambda the next step starts from (adaptive policy)
    /// false: every try was rejected and theta is unchanged; the fields about the step (loss_after,
    /// reductions, gain ratio, step norm, learning rate, damping) then describe the last rejected
    /// try, so a training curve should log loss_before of the next step, not this loss_after.
    bool accepted = true;
    int rejections = 0;              ///< rejected tries before the step taken (adaptive policy)
    int cholesky_tries = 0;          ///< factorizations attempted, over all tries
    std::int64_t cholesky_info = 0;  ///< info of the last failed factorization, 0 if none failed
    Rung rung = Rung::cholesky;
    bool fallback_used = false;          ///< the eigendecomposition pseudo-inverse gave the step
    SolveForm form = SolveForm::factor;  ///< the form actually used
    GramMode gram_mode = GramMode::structured;
    /// |D^-1/2 (K alpha - rhs)| / |D^-1/2 rhs|, D = diag(K): the residual of the equilibrated
    /// damped system (scale-invariant; the acceptance test of docs/errors.md)
    double solve_residual = 0;
    /// The precision whose factorization gave the step (SolvePrecision): mixed when the float
    /// factor, refined, did; working otherwise (asked for, float data, or mixed's fallback).
    SolvePrecision precision = SolvePrecision::working;
    bool mixed_fallback = false;    ///< mixed was asked and fell back to the double Cholesky
    int refinement_iterations = 0;  ///< refinement corrections of the mixed solve taken
    int cg_iterations = 0;          ///< its conjugate-gradient iterations (SolveReport)
    /// |K alpha - u|_2 / (|K|_F |alpha|_2 + |u|_2): the normwise backward error of the solve taken
    double backward_error = 0;
    double learning_rate = 0;   ///< eta actually used (smaller than asked when the guard acted)
    bool step_limited = false;  ///< the step guard shortened the step
    double step_norm = 0;       ///< |eta d|
    double output_change = 0;   ///< eta sqrt(d^T F d): RMS change of the outputs, loss metric
    struct Seconds {
        double forward = 0, gram = 0, solve = 0, direction = 0, total = 0;
    } seconds;
};

namespace detail {
template <class T>
class GramSystem;
}

template <class T>
class NGD_API NaturalGradient {
  public:
    struct Options {
        double learning_rate = 1.0;  ///< eta
        double damping = 1e-3;       ///< lambda >= 0 (parameter space; n lambda on the Gram side)
        GramMode gram_mode = GramMode::structured;
        SolveForm form = SolveForm::automatic;
        /// working (default), or mixed: a float Cholesky refined in double (see SolvePrecision)
        SolvePrecision precision = SolvePrecision::working;
        bool evaluate_after = true;  ///< evaluate the loss at the new theta (always on for LM)
        bool time_stages = false;    ///< per-stage times in the report (synchronises per stage)
        /// A step in working precision (without time_stages) queues every check and scalar it
        /// needs into one block that it reads back once: one host synchronisation on CUDA (one
        /// per try under Levenberg-Marquardt). When a check fails, or a try's Cholesky fails or is
        /// rejected, it redoes the step on the host-driven path, which reads each result as it is
        /// computed (and throws, or walks the ladder), and stays on that path until a step
        /// succeeds there without the ladder. false: the host-driven path always. The results
        /// are the same either way.
        bool deferred_checks = true;

        DampingPolicy policy = DampingPolicy::fixed;
        DampingRule rule = DampingRule::nielsen;
        double damping_min = 1e-12;  ///< adaptive lambda is clamped to [damping_min, damping_max]
        double damping_max = 1e10;
        int max_rejections = 10;  ///< tries after the first before a step gives up

        int damping_raises = 3;    ///< failure ladder: raises of lambda after a failed Cholesky
        double raise_factor = 10;  ///< ... each by this factor
        Fallback fallback = Fallback::pseudo_inverse;  ///< ... then this, or NotPositiveDefinite
        /// A Cholesky solve whose equilibrated residual |D^-1/2 (K alpha - u)| / |D^-1/2 u|
        /// (D = diag(K); docs/errors.md) exceeds this counts as a failed rung (a system singular
        /// to working precision can pass the factorization with a useless solution). Negative:
        /// the library's threshold, 1e-3 in double, 1e-2 in float.
        double max_solve_residual = -1;

        /// Step guard: eta is reduced so that |eta d| <= max_step_norm and the RMS change of the
        /// outputs in the loss metric, eta sqrt(d^T F d), stays <= max_output_change.
        double max_step_norm = std::numeric_limits<double>::infinity();
        double max_output_change = std::numeric_limits<double>::infinity();
    };
    NaturalGradient() : NaturalGradient(Options{}) {}
    /// Throws InvalidArgument for a negative, NaN or Inf learning rate or damping, or other
    /// inconsistent options (damping_min > damping_max, raise_factor <= 1, non-positive guards).
    explicit NaturalGradient(Options options);
    const Options& options() const { return options_; }
    /// The damping the next step starts from (changes under the adaptive policy).
    double damping() const { return damping_; }

    /// theta <- theta - eta d. theta: p x 1 in the context's memory space. Synchronises: once per
    /// try in the steady state (Options::deferred_checks), where on CUDA the update
    /// of theta is the last work queued on the context's stream when step returns (ngd's later
    /// calls and copies, and work on the legacy default stream, are ordered after it; elsewhere
    /// call ctx.synchronize() first).
    StepReport step(Context& ctx, const Mlp& model, MatrixView<T> theta, const Batch<T>& batch,
                    Loss loss);

  private:
    // The step with one read of a StatusBlock; false when it must be redone on the host-driven
    // path (nothing of the caller's written).
    bool step_deferred(Context& ctx, const Mlp& model, MatrixView<T> theta, const Batch<T>& batch,
                       Loss loss, StepReport& report);
    StepReport step_host_driven(Context& ctx, const Mlp& model, MatrixView<T> theta,
                                const Batch<T>& batch, Loss loss);
    // Levenberg-Marquardt: whether the try (damping `used`, report r) is accepted; adapts
    // damping_ and nu_.
    bool adapt(StepReport& r, double used, detail::GramSystem<T>& system);

    Options options_;
    double damping_;
    double nu_ = 2;         // Nielsen's growth factor for consecutive rejections
    bool deferred_ = true;  // the last step did not need the host-driven path
};

template <class T>
class NGD_API GradientDescent {
  public:
    struct Options {
        double learning_rate = 0.1;
        bool evaluate_after = true;
        /// As NaturalGradient's: the step reads its results back once, and is redone on the
        /// host-driven path (which throws) when a check fails.
        bool deferred_checks = true;
    };
    GradientDescent() : GradientDescent(Options{}) {}
    explicit GradientDescent(Options options);
    const Options& options() const { return options_; }

    /// theta <- theta - eta grad L. Synchronises (once, with deferred checks; see
    /// NaturalGradient::step for when theta's update is done).
    StepReport step(Context& ctx, const Mlp& model, MatrixView<T> theta, const Batch<T>& batch,
                    Loss loss);

  private:
    bool step_deferred(Context& ctx, const Mlp& model, MatrixView<T> theta, const Batch<T>& batch,
                       Loss loss, StepReport& report);
    StepReport step_host_driven(Context& ctx, const Mlp& model, MatrixView<T> theta,
                                const Batch<T>& batch, Loss loss);

    Options options_;
};

}  // namespace ngd
