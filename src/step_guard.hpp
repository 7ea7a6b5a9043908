// NaturalGradient's step guard, the one place it is written: compiled for the host (the optimizer
// and the host backends' guarded_step_into) and for the device (the CUDA guarded_step_into), so
// that both give the same eta from the same two sums.
#pragma once

#include <cmath>

#include "stages.hpp"

#if defined(__CUDACC__)
#define NGD_HOST_DEVICE __host__ __device__
#else
#define NGD_HOST_DEVICE
#endif

namespace ngd::detail {

struct GuardedStep {
    double eta = 0;        ///< the step size taken
    bool limited = false;  ///< the guard shortened it
};

/// eta = guard.learning_rate, shortened so that eta |d| <= max_step_norm and eta sqrt(d^T F d) <=
/// max_output_change (a negative d^T F d, rounding of a tiny one, counts as 0).
NGD_HOST_DEVICE inline GuardedStep guard_step(const StepGuard& guard, double d_norm,
                                              double curvature) {
    const double change = sqrt(curvature > 0 ? curvature : 0.0);
    GuardedStep g;
    g.eta = guard.learning_rate;
    if (g.eta * d_norm > guard.max_step_norm) {
        g.eta = guard.max_step_norm / d_norm;
        g.limited = true;
    }
    if (g.eta * change > guard.max_output_change) {
        g.eta = guard.max_output_change / change;
        g.limited = true;
    }
    return g;
}

}  // namespace ngd::detail
