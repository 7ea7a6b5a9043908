// Optimizers: damped natural gradient (exact, through the Gram matrix) and plain gradient descent.
// A step computes everything before it writes theta: when it throws, theta is unchanged.
#pragma once

#include <cstdint>

#include "ngd/context.hpp"
#include "ngd/export.hpp"
#include "ngd/loss.hpp"
#include "ngd/matrix.hpp"
#include "ngd/model.hpp"
#include "ngd/stages.hpp"

namespace ngd {

/// What one step did. Times are wall-clock seconds per stage (the CUDA backend synchronises once per
/// stage only when timing is on; otherwise the stage times are zero and only `total` is measured).
struct StepReport {
    double loss_before = 0;
    double loss_after = 0;           ///< NaN when NaturalGradient::Options::evaluate_after is off
    double predicted_reduction = 0;  ///< from the Gauss-Newton quadratic model at the step taken
    double actual_reduction = 0;     ///< loss_before - loss_after
    double gain_ratio = 0;           ///< actual / predicted
    double damping = 0;              ///< lambda used (parameter-space)
    int cholesky_tries = 0;
    std::int64_t cholesky_info = 0;  ///< 0 on success
    bool fallback_used = false;
    SolveForm form = SolveForm::factor;  ///< the form actually used
    GramMode gram_mode = GramMode::structured;
    double solve_residual = 0;  ///< |K alpha - rhs| / |rhs| of the damped system
    double step_norm = 0;       ///< |eta d|
    struct Seconds {
        double forward = 0, gram = 0, solve = 0, direction = 0, total = 0;
    } seconds;
};

template <class T>
class NGD_API NaturalGradient {
public:
    struct Options {
        double learning_rate = 1.0;  ///< eta
        double damping = 1e-3;       ///< lambda >= 0 (parameter space; n lambda on the Gram side)
        GramMode gram_mode = GramMode::structured;
        SolveForm form = SolveForm::automatic;
        bool evaluate_after = true;  ///< evaluate the loss at the new theta (for the report)
        bool time_stages = false;    ///< per-stage times in the report (synchronises per stage)
    };
    NaturalGradient() : NaturalGradient(Options{}) {}
    /// Throws InvalidArgument for a negative, NaN or Inf learning rate or damping.
    explicit NaturalGradient(Options options);
    const Options& options() const { return options_; }

    /// theta <- theta - eta d. theta: p x 1 in the context's memory space. Synchronises once.
    StepReport step(Context& ctx, const Mlp& model, MatrixView<T> theta, const Batch<T>& batch,
                    Loss loss);

private:
    Options options_;
};

template <class T>
class NGD_API GradientDescent {
public:
    struct Options {
        double learning_rate = 0.1;
        bool evaluate_after = true;
    };
    GradientDescent() : GradientDescent(Options{}) {}
    explicit GradientDescent(Options options);
    const Options& options() const { return options_; }

    /// theta <- theta - eta grad L. Synchronises once.
    StepReport step(Context& ctx, const Mlp& model, MatrixView<T> theta, const Batch<T>& batch,
                    Loss loss);

private:
    Options options_;
};

}  // namespace ngd
