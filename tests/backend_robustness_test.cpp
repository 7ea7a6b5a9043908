// The robustness machinery on every non-reference backend (cpu, CUDA) against the reference
// (double): Levenberg-Marquardt steps with rejections, the pseudo-inverse rung of the failure
// ladder (LAPACK syevd, cusolverDnXsyevd) and the step guard. Each instance skips without its
// backend.
#include <cmath>

#include "backend_fixture.hpp"

namespace {

using namespace ngd;
using ngd_test::BackendVsReference;

// Double only: the checks compare with the reference at 1e-8.
template <class C>
class BackendRobustness : public BackendVsReference<C> {};
TYPED_TEST_SUITE(BackendRobustness, ngd_test::DoubleCases, ngd_test::CaseNames);

// Narrow two-layer ReLU net on 4 unit-norm inputs (optionally each sample twice: rank-deficient
// Gram).
struct Narrow {
    Mlp model = two_layer_relu(3, 64);
    Matrix<double> theta, x, y;
    explicit Narrow(bool duplicated = false) : theta(model.init<double>(1)) {
        const int n = duplicated ? 8 : 4;
        x = Matrix<double>(3, n);
        y = Matrix<double>(1, n);
        for (int i = 0; i < n; ++i) {
            const double t = 0.7 * (i % 4);
            x(0, i) = std::cos(t) / std::sqrt(2.0);
            x(1, i) = std::sin(t) / std::sqrt(2.0);
            x(2, i) = 1 / std::sqrt(2.0);
            y(0, i) = i % 2 ? 1.0 : -1.0;
        }
    }
};

// Runs `steps` steps of opt on ctx; returns theta on the host and the reports.
std::vector<StepReport> run(Context& ctx, NaturalGradient<double> opt, const Narrow& p, int steps,
                            Matrix<double>& theta_out) {
    Matrix<double> theta = to_context(ctx, p.theta.const_view());
    Matrix<double> x = to_context(ctx, p.x.const_view()), y = to_context(ctx, p.y.const_view());
    const Batch<double> batch{x.const_view(), y.const_view(), {}};
    std::vector<StepReport> reports;
    for (int s = 0; s < steps; ++s) {
        reports.push_back(opt.step(ctx, p.model, theta.view(), batch, Loss::squared));
    }
    theta_out = to_host(ctx, theta.const_view());
    return reports;
}

TYPED_TEST(BackendRobustness, LevenbergMarquardtMatchesReference) {
    Narrow p;
    NaturalGradient<double>::Options o;
    o.policy = DampingPolicy::levenberg_marquardt;
    o.damping = 1e-6;
    Matrix<double> theta_dev, theta_ref;
    const auto rc = run(this->dev(), NaturalGradient<double>(o), p, 6, theta_dev);
    const auto rr = run(this->ref(), NaturalGradient<double>(o), p, 6, theta_ref);
    int rejections = 0;
    for (std::size_t s = 0; s < rc.size(); ++s) {
        EXPECT_EQ(rc[s].rejections, rr[s].rejections) << "step " << s;
        EXPECT_NEAR(rc[s].loss_after, rr[s].loss_after, 1e-9 * rr[s].loss_before) << "step " << s;
        rejections += rr[s].rejections;
    }
    EXPECT_GT(rejections, 0) << "the problem was chosen so that some tries are rejected";
    EXPECT_NEAR_NORMWISE(theta_dev.const_view(), theta_ref.const_view(), 1e-8);
}

TYPED_TEST(BackendRobustness, PseudoInverseFallbackMatchesReference) {
    Narrow p(/*duplicated=*/true);
    NaturalGradient<double>::Options o;
    o.damping = 0;
    o.damping_raises = 0;
    Matrix<double> theta_dev, theta_ref;
    const auto rc = run(this->dev(), NaturalGradient<double>(o), p, 1, theta_dev);
    const auto rr = run(this->ref(), NaturalGradient<double>(o), p, 1, theta_ref);
    EXPECT_TRUE(rc[0].fallback_used);
    EXPECT_EQ(rc[0].rung, Rung::pseudo_inverse);
    EXPECT_LT(rc[0].solve_residual, 1e-8);
    EXPECT_NEAR_NORMWISE(theta_dev.const_view(), theta_ref.const_view(), 1e-8);
}

TYPED_TEST(BackendRobustness, StepGuardMatchesReference) {
    Narrow p;
    NaturalGradient<double>::Options o;
    o.damping = 1e-8;
    o.max_output_change = 1e-2;
    Matrix<double> theta_dev, theta_ref;
    const auto rc = run(this->dev(), NaturalGradient<double>(o), p, 2, theta_dev);
    const auto rr = run(this->ref(), NaturalGradient<double>(o), p, 2, theta_ref);
    EXPECT_TRUE(rc[0].step_limited);
    EXPECT_NEAR(rc[0].output_change, 1e-2, 1e-12);
    EXPECT_NEAR(rc[1].learning_rate, rr[1].learning_rate, 1e-8);
    EXPECT_NEAR_NORMWISE(theta_dev.const_view(), theta_ref.const_view(), 1e-8);
}

}  // namespace
