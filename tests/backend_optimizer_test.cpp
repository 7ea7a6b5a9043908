// Every non-reference backend (cpu, CUDA) vs reference for whole optimizer steps: NaturalGradient
// (both Gram modes, both forms where the loss allows them, fixed damping) and GradientDescent on
// every model of model_problems(); theta after the step and the step report are compared. The
// tolerance of theta is that of the direction scaled by |eta d| / |theta|, plus the rounding of the
// update itself. Each instance skips without its backend.
#include <gtest/gtest.h>

#include <string>

#include "backend_fixture.hpp"

namespace {

using namespace ngd_test;
using ngd::GramMode;
using ngd::SolveForm;

template <class C>
class BackendOptimizer : public BackendVsReference<C> {};
TYPED_TEST_SUITE(BackendOptimizer, Cases, CaseNames);

/// |a - b| / |b| over all entries, as a scale for how much of theta a step moved.
double relative_step(const Matrix<double>& before, const Matrix<double>& after) {
    double diff = 0;
    for (std::int64_t i = 0; i < before.size(); ++i)
        diff += (after[i] - before[i]) * (after[i] - before[i]);
    const double norm = vector_norm(after);
    return norm > 0 ? std::sqrt(diff) / norm : std::sqrt(diff);
}

template <class T>
void check_ngd_step(ngd::Context& dev, ngd::Context& ref, const Problem<T>& p, GramMode mode,
                    SolveForm form) {
    const auto r = upload<double>(ref, p);
    const double lambda = well_conditioned_damping(
        ngd::gram(ref, p.model, r.theta.const_view(), r.batch(), p.loss), p.n());
    const DirectionOracle oracle = direction_oracle(ref, p, lambda, form);
    const double tol_d = tolerance<T>(direction_length(p), oracle.sensitivity);

    typename ngd::NaturalGradient<T>::Options options;
    options.learning_rate = 0.5;
    options.damping = lambda;
    options.gram_mode = mode;
    options.form = form;
    ngd::NaturalGradient<double>::Options ref_options;
    ref_options.learning_rate = 0.5;
    ref_options.damping = lambda;
    ref_options.form = form;

    auto c = upload<T>(dev, p);
    Matrix<double> theta_ref = host_copy<double>(r.theta);
    const ngd::StepReport got =
        ngd::NaturalGradient<T>(options).step(dev, p.model, c.theta.view(), c.batch(), p.loss);
    const ngd::StepReport want = ngd::NaturalGradient<double>(ref_options)
                                     .step(ref, p.model, theta_ref.view(), r.batch(), p.loss);

    // theta_new = theta - eta d: the direction's error scaled by |eta d| / |theta_new|, plus the
    // rounding of the subtraction (2 u).
    const double moved = relative_step(r.theta, theta_ref);
    EXPECT_NEAR_NORMWISE(host(dev, c.theta), theta_ref, tolerance<T>(2) + tol_d * moved);

    const double tol_loss = tolerance<T>(chain_length(p.model) + static_cast<double>(p.big_n()));
    EXPECT_LE(relative_difference(got.loss_before, want.loss_before), tol_loss);
    EXPECT_LE(relative_difference(got.step_norm, want.step_norm), tol_d);
    // The loss after the step and the model's predicted reduction move with d to first order, by
    // about tol_d times the change the step makes (eta g.d - eta^2/2 d^T F d >= 3/8 eta g.d at
    // eta = 1/2, so the prediction cancels by less than a factor 3).
    const double change =
        std::fabs(want.loss_before - want.loss_after) + std::fabs(want.predicted_reduction);
    EXPECT_NEAR(got.loss_after, want.loss_after,
                tol_loss * std::fabs(want.loss_after) + 3 * tol_d * change);
    EXPECT_NEAR(got.predicted_reduction, want.predicted_reduction,
                tol_loss * std::fabs(want.loss_before) + 3 * tol_d * change);
    EXPECT_EQ(got.damping, want.damping);
    EXPECT_EQ(got.learning_rate, want.learning_rate);
    EXPECT_EQ(got.form, want.form);
    EXPECT_EQ(got.gram_mode, mode);
    EXPECT_EQ(got.rung, ngd::Rung::cholesky);
    EXPECT_EQ(got.cholesky_tries, 1);
    EXPECT_EQ(got.cholesky_info, 0);
    EXPECT_FALSE(got.fallback_used);
    EXPECT_TRUE(got.accepted);
    // Cholesky is backward stable: the damped system's residual is roundoff of order N u cond.
    EXPECT_LE(got.solve_residual, tolerance<T>(static_cast<double>(p.big_n()), oracle.condition));
}

TYPED_TEST(BackendOptimizer, NaturalGradientStepMatchesReference) {
    for (const auto& p : model_problems<typename TypeParam::Scalar>()) {
        for (const GramMode mode : {GramMode::structured, GramMode::explicit_jacobian}) {
            SCOPED_TRACE(p.name + " " + ngd::to_string(mode) + " factor");
            check_ngd_step(this->dev(), this->ref(), p, mode, SolveForm::factor);
        }
    }
}

TYPED_TEST(BackendOptimizer, NaturalGradientNaturalResidualStepMatchesReference) {
    for (const auto& p : model_problems<typename TypeParam::Scalar>()) {
        if (p.loss == ngd::Loss::softmax_cross_entropy) continue;
        for (const GramMode mode : {GramMode::structured, GramMode::explicit_jacobian}) {
            SCOPED_TRACE(p.name + " " + ngd::to_string(mode) + " natural_residual");
            check_ngd_step(this->dev(), this->ref(), p, mode, SolveForm::natural_residual);
        }
    }
}

TYPED_TEST(BackendOptimizer, GradientDescentStepMatchesReference) {
    using T = typename TypeParam::Scalar;
    for (const auto& p : model_problems<T>()) {
        SCOPED_TRACE(p.name);
        const auto r = upload<double>(this->ref(), p);
        auto c = upload<T>(this->dev(), p);
        Matrix<double> theta_ref = host_copy<double>(r.theta);
        typename ngd::GradientDescent<T>::Options options;
        options.learning_rate = 0.25;
        ngd::GradientDescent<double>::Options ref_options;
        ref_options.learning_rate = 0.25;
        const ngd::StepReport got = ngd::GradientDescent<T>(options).step(
            this->dev(), p.model, c.theta.view(), c.batch(), p.loss);
        const ngd::StepReport want =
            ngd::GradientDescent<double>(ref_options)
                .step(this->ref(), p.model, theta_ref.view(), r.batch(), p.loss);
        const double len = chain_length(p.model) + static_cast<double>(p.big_n());
        const double moved = relative_step(r.theta, theta_ref);
        EXPECT_NEAR_NORMWISE(host(this->dev(), c.theta), theta_ref,
                             tolerance<T>(2) + tolerance<T>(len) * moved);
        EXPECT_LE(relative_difference(got.loss_before, want.loss_before), tolerance<T>(len));
        EXPECT_LE(relative_difference(got.step_norm, want.step_norm), tolerance<T>(len));
    }
}

// Several steps in a row with one optimizer on one context: the workspace reused between steps must
// not carry anything from one step into the next. Each step is checked from the theta the backend
// holds, against a reference step from that same theta.
TYPED_TEST(BackendOptimizer, ConsecutiveStepsMatchReference) {
    using T = typename TypeParam::Scalar;
    const auto problems = model_problems<T>();
    const Problem<T>& p = problems[0];  // two-layer ReLU, squared loss
    const auto r = upload<double>(this->ref(), p);
    const double lambda = well_conditioned_damping(
        ngd::gram(this->ref(), p.model, r.theta.const_view(), r.batch(), p.loss), p.n());
    auto c = upload<T>(this->dev(), p);
    typename ngd::NaturalGradient<T>::Options options;
    options.learning_rate = 0.5;
    options.damping = lambda;
    ngd::NaturalGradient<double>::Options ref_options;
    ref_options.learning_rate = 0.5;
    ref_options.damping = lambda;
    ngd::NaturalGradient<T> step(options);
    for (int s = 0; s < 3; ++s) {
        SCOPED_TRACE("step " + std::to_string(s));
        const Problem<T> at{p.name,
                            p.model,
                            p.loss,
                            host(this->dev(), c.theta),
                            host_copy<T>(p.inputs),
                            host_copy<T>(p.targets),
                            Matrix<T>()};
        const DirectionOracle oracle = direction_oracle(this->ref(), at, lambda, SolveForm::factor);
        const Matrix<double> before = host_copy<double>(at.theta);
        Matrix<double> theta_ref = host_copy<double>(at.theta);
        step.step(this->dev(), p.model, c.theta.view(), c.batch(), p.loss);
        ngd::NaturalGradient<double>(ref_options)
            .step(this->ref(), p.model, theta_ref.view(), r.batch(), p.loss);
        const double tol = tolerance<T>(2) + tolerance<T>(direction_length(p), oracle.sensitivity) *
                                                 relative_step(before, theta_ref);
        EXPECT_NEAR_NORMWISE(host(this->dev(), c.theta), theta_ref, tol);
    }
}

}  // namespace
