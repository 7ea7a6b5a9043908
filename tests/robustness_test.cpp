// Robustness of NaturalGradient (DESIGN.md section 4): Levenberg-Marquardt damping where fixed
// damping stalls or diverges, every rung of the Cholesky failure ladder on inputs that really
// trigger it, the step guard, overflow and allocation failures; after each failure theta is
// unchanged and the next call succeeds.
#include <cmath>
#include <limits>

#include "test_util.hpp"

namespace {

using namespace ngd;

struct Problem {
    Mlp model;
    Matrix<double> theta, x, y;
    Batch<double> batch() const { return {x.const_view(), y.const_view(), {}}; }
};

// Two-layer ReLU net, unit-norm inputs, +-1 targets. Narrow (m = 64) for n = 4: far from the linear
// regime, so full undamped NGD steps overshoot.
Problem narrow_relu(std::uint64_t seed, std::int64_t m = 64) {
    Problem p{two_layer_relu(3, m), {}, {}, {}};
    p.theta = p.model.init<double>(seed);
    p.x = Matrix<double>(3, 4);
    p.y = Matrix<double>(1, 4);
    for (int i = 0; i < 4; ++i) {
        const double t = 0.7 * i;
        p.x(0, i) = std::cos(t) / std::sqrt(2.0);
        p.x(1, i) = std::sin(t) / std::sqrt(2.0);
        p.x(2, i) = 1 / std::sqrt(2.0);
        p.y(0, i) = i % 2 ? 1.0 : -1.0;
    }
    return p;
}

// The same samples twice: J J^T has rank n/2, so lambda = 0 makes the system singular.
Problem duplicated_samples() {
    Problem base = narrow_relu(7, 256);
    Problem p{base.model, std::move(base.theta), Matrix<double>(3, 8), Matrix<double>(1, 8)};
    for (int i = 0; i < 8; ++i) {
        for (int r = 0; r < 3; ++r) p.x(r, i) = base.x(r, i % 4);
        p.y(0, i) = base.y(0, i % 4);
    }
    return p;
}

double run(NaturalGradient<double>& opt, Problem& p, int steps) {
    Context ctx = Context::reference();
    StepReport r;
    for (int s = 0; s < steps; ++s)
        r = opt.step(ctx, p.model, p.theta.view(), p.batch(), Loss::squared);
    return r.loss_after;
}

TEST(LevenbergMarquardt, ConvergesWhereUndampedFixedStepsDiverge) {
    Problem fixed = narrow_relu(1), adaptive = narrow_relu(1);
    NaturalGradient<double>::Options o;
    o.damping = 0;
    NaturalGradient<double> fixed_opt(o);
    const double fixed_loss = run(fixed_opt, fixed, 3);
    o.policy = DampingPolicy::levenberg_marquardt;
    o.damping = 1e-6;
    NaturalGradient<double> lm(o);
    Context ctx = Context::reference();
    double previous = std::numeric_limits<double>::infinity();
    for (int s = 0; s < 30; ++s) {
        const StepReport r =
            lm.step(ctx, adaptive.model, adaptive.theta.view(), adaptive.batch(), Loss::squared);
        ASSERT_TRUE(r.accepted);
        EXPECT_LE(r.loss_after, r.loss_before);  // LM never takes an uphill step
        EXPECT_LE(r.loss_after, previous);
        previous = r.loss_after;
    }
    // The narrow net has a poor local minimum near 0.387 that LM settles in; the point here is that
    // undamped fixed steps go uphill (to several times the start) while LM only goes down.
    const double start = 0.8703;  // loss at the initialisation (seed 1), see narrow_relu
    EXPECT_GT(fixed_loss, start) << "undamped fixed-step NGD was expected to overshoot here";
    EXPECT_LT(previous, 0.5 * start);
}

TEST(LevenbergMarquardt, ConvergesWhereLargeFixedDampingStalls) {
    for (DampingRule rule : {DampingRule::nielsen, DampingRule::martens}) {
        // lambda = 1000 is far too large: fixed damping barely moves (loss stays ~0.9), while LM
        // lowers lambda as long as the gain ratio is good.
        Problem fixed = narrow_relu(2, 1024), adaptive = narrow_relu(2, 1024);
        NaturalGradient<double>::Options o;
        o.damping = 1000;
        Context ctx = Context::reference();
        const double start =
            loss(ctx, fixed.model, fixed.theta.const_view(), fixed.batch(), Loss::squared);
        NaturalGradient<double> fixed_opt(o);
        const double fixed_loss = run(fixed_opt, fixed, 30);
        o.policy = DampingPolicy::levenberg_marquardt;
        o.rule = rule;
        NaturalGradient<double> lm(o);
        const double lm_loss = run(lm, adaptive, 30);
        EXPECT_GT(fixed_loss, 0.9 * start) << "rule " << int(rule);
        EXPECT_LT(lm_loss, 0.2 * fixed_loss) << "rule " << int(rule);
        EXPECT_LT(lm.damping(), 1.0) << "rule " << int(rule);
    }
}

TEST(LevenbergMarquardt, RejectedTriesLeaveThetaAndRaiseDamping) {
    Problem p = narrow_relu(1);
    NaturalGradient<double>::Options o;
    o.policy = DampingPolicy::levenberg_marquardt;
    o.damping = 1e-12;
    o.damping_min = 1e-12;
    NaturalGradient<double> lm(o);
    Context ctx = Context::reference();
    int rejections = 0;
    for (int s = 0; s < 10; ++s) {
        const StepReport r = lm.step(ctx, p.model, p.theta.view(), p.batch(), Loss::squared);
        rejections += r.rejections;
        EXPECT_TRUE(r.accepted);
        EXPECT_GT(r.gain_ratio, 0);
        if (r.rejections > 0) {
            EXPECT_GT(r.damping, 1e-12);
        }
    }
    EXPECT_GT(rejections, 0) << "the first full steps overshoot, so some tries must be rejected";
}

TEST(FailureLadder, SingularSystemRaisesDamping) {
    Problem p = duplicated_samples();
    NaturalGradient<double>::Options o;
    o.damping = 0;
    NaturalGradient<double> opt(o);
    Context ctx = Context::reference();
    const StepReport r = opt.step(ctx, p.model, p.theta.view(), p.batch(), Loss::squared);
    EXPECT_EQ(r.rung, Rung::raised_damping);
    EXPECT_GE(r.cholesky_tries, 2);
    EXPECT_NE(r.cholesky_info, 0);
    EXPECT_GT(r.damping, 0);
    EXPECT_FALSE(r.fallback_used);
    EXPECT_LT(r.loss_after, 0.5 * r.loss_before);
}

TEST(FailureLadder, PseudoInverseFallbackGivesMinimumNormStep) {
    // With lambda = 0 and consistent duplicated samples, the pseudo-inverse step is the
    // minimum-norm solution of J d = u: the same as the plain step on the de-duplicated batch.
    Problem dup = duplicated_samples();
    Problem single = duplicated_samples();
    single.x = Matrix<double>(3, 4);
    single.y = Matrix<double>(1, 4);
    for (int i = 0; i < 4; ++i) {
        for (int r = 0; r < 3; ++r) single.x(r, i) = dup.x(r, i);
        single.y(0, i) = dup.y(0, i);
    }
    Context ctx = Context::reference();
    NaturalGradient<double>::Options o;
    o.damping = 0;
    o.damping_raises = 0;
    NaturalGradient<double> opt(o);
    const StepReport r = opt.step(ctx, dup.model, dup.theta.view(), dup.batch(), Loss::squared);
    EXPECT_TRUE(r.fallback_used);
    EXPECT_EQ(r.rung, Rung::pseudo_inverse);
    EXPECT_LT(r.solve_residual, 1e-8);
    opt.step(ctx, single.model, single.theta.view(), single.batch(), Loss::squared);
    EXPECT_LT(ngd_test::normwise_error(dup.theta.const_view(), single.theta.const_view()), 1e-8);
}

TEST(FailureLadder, ExhaustedLadderThrowsAndLeavesTheta) {
    Problem p = duplicated_samples();
    const Matrix<double> before = ngd_test::host_copy<double>(p.theta);
    NaturalGradient<double>::Options o;
    o.damping = 0;
    o.damping_raises = 0;
    o.fallback = Fallback::none;
    NaturalGradient<double> opt(o);
    Context ctx = Context::reference();
    try {
        opt.step(ctx, p.model, p.theta.view(), p.batch(), Loss::squared);
        FAIL() << "expected NotPositiveDefinite";
    } catch (const NotPositiveDefinite& e) {
        EXPECT_GT(e.info, 0);
        EXPECT_EQ(e.order, 8);
        EXPECT_EQ(e.damping, 0);
    }
    EXPECT_TRUE(ngd_test::same_bits(before, p.theta));
    // The next call with damping succeeds.
    NaturalGradient<double> damped({1.0, 1e-3});
    const StepReport r = damped.step(ctx, p.model, p.theta.view(), p.batch(), Loss::squared);
    EXPECT_LT(r.loss_after, r.loss_before);
}

TEST(FailureLadder, NanInOneSampleIsNotDampedAway) {
    Problem p = narrow_relu(3);
    p.x(1, 2) = std::numeric_limits<double>::quiet_NaN();
    const Matrix<double> before = ngd_test::host_copy<double>(p.theta);
    NaturalGradient<double> opt;
    Context ctx = Context::reference();
    try {
        opt.step(ctx, p.model, p.theta.view(), p.batch(), Loss::squared);
        FAIL() << "expected NonFiniteInput";
    } catch (const NonFiniteInput& e) {
        EXPECT_EQ(e.count, 1);
        EXPECT_EQ(e.first_index, 1 + 2 * 3);
    }
    EXPECT_TRUE(ngd_test::same_bits(before, p.theta));
}

TEST(FailureLadder, OverflowInForwardPassIsReported) {
    // Entries near the float limit: finite inputs whose products overflow float.
    const Mlp model = deep_linear(3, 4, 2);
    Matrix<float> theta = model.init<float>(5);
    Matrix<float> x(3, 2), y(1, 2);
    for (int i = 0; i < 6; ++i) x[i] = 3e38f;
    const Matrix<float> before = ngd_test::host_copy<float>(theta);
    NaturalGradient<float> opt;
    Context ctx = Context::reference();
    EXPECT_THROW(
        opt.step(ctx, model, theta.view(), {x.const_view(), y.const_view(), {}}, Loss::squared),
        NonFiniteInput);
    EXPECT_TRUE(ngd_test::same_bits(before, theta));
}

TEST(StepGuard, BoundsStepNormAndOutputChange) {
    Context ctx = Context::reference();
    for (int which = 0; which < 2; ++which) {
        Problem p = narrow_relu(4, 1024);
        NaturalGradient<double>::Options o;
        o.damping = 1e-8;
        (which == 0 ? o.max_step_norm : o.max_output_change) = 1e-3;
        NaturalGradient<double> opt(o);
        const Matrix<double> before = ngd_test::host_copy<double>(p.theta);
        const StepReport r = opt.step(ctx, p.model, p.theta.view(), p.batch(), Loss::squared);
        EXPECT_TRUE(r.step_limited);
        EXPECT_LT(r.learning_rate, 1.0);
        double moved = 0;
        for (std::int64_t i = 0; i < before.size(); ++i) {
            moved += (p.theta[i] - before[i]) * (p.theta[i] - before[i]);
        }
        if (which == 0) {
            EXPECT_NEAR(std::sqrt(moved), 1e-3, 1e-12);
        } else {
            EXPECT_NEAR(r.output_change, 1e-3, 1e-12);
        }
        EXPECT_NEAR(r.step_norm, std::sqrt(moved), 1e-12);
        EXPECT_GT(r.actual_reduction, 0);
    }
    Problem p = narrow_relu(4, 1024);
    NaturalGradient<double> unguarded({1.0, 1e-8});
    EXPECT_FALSE(
        unguarded.step(ctx, p.model, p.theta.view(), p.batch(), Loss::squared).step_limited);
}

TEST(Options, InconsistentOptionsAreRejected) {
    auto make = [](auto edit) {
        NaturalGradient<double>::Options o;
        edit(o);
        return NaturalGradient<double>(o);
    };
    using O = NaturalGradient<double>::Options;
    EXPECT_THROW(make([](O& o) {
                     o.damping_min = 1;
                     o.damping_max = 0.5;
                 }),
                 InvalidArgument);
    EXPECT_THROW(make([](O& o) { o.raise_factor = 1; }), InvalidArgument);
    EXPECT_THROW(make([](O& o) { o.max_step_norm = 0; }), InvalidArgument);
    EXPECT_THROW(make([](O& o) { o.damping_raises = -1; }), InvalidArgument);
    EXPECT_THROW(make([](O& o) { o.damping = std::nan(""); }), InvalidArgument);
}

TEST(Memory, HostAllocationFailureIsOutOfMemory) {
    // 2^22 x 2^22 doubles = 128 TiB: no machine has it.
    try {
        Matrix<double> huge(std::int64_t(1) << 22, std::int64_t(1) << 22);
        FAIL() << "expected OutOfMemory";
    } catch (const OutOfMemory& e) {
        EXPECT_EQ(e.requested, (std::int64_t(1) << 44) * 8);
    }
    Matrix<double> small(4, 4);  // and allocation still works
    EXPECT_EQ(small.size(), 16);
}

}  // namespace

namespace {

// A linear model on two nearly equal inputs (distance 1e-7) with opposite targets: J J^T has
// condition ~1e14, Cholesky succeeds in double, but the solution's equilibrated residual (the
// acceptance test, docs/errors.md) is ~3e-2.
struct NearlySingular {
    Mlp model = deep_linear(3, 1, 1);
    Matrix<double> theta = model.init<double>(1);
    Matrix<double> x{3, 3}, y{1, 3};
    NearlySingular() {
        const double xs[9] = {1, 0.5, 0.2, 1, 0.5 + 1e-7, 0.2, 0.3, 0.1, 0.9};
        for (int i = 0; i < 9; ++i) x[i] = xs[i];
        y[0] = 1;
        y[1] = -1;
        y[2] = 0.5;
    }
    Batch<double> batch() const { return {x.const_view(), y.const_view(), {}}; }
};

TEST(FailureLadder, InaccurateSolveIsAFailedRung) {
    NearlySingular p;
    Context ctx = Context::reference();
    try {
        direction<double>(ctx, p.model, p.theta.const_view(), p.batch(), Loss::squared, 0.0);
        FAIL() << "expected NotPositiveDefinite";
    } catch (const NotPositiveDefinite& e) {
        EXPECT_EQ(e.info, -1);
        EXPECT_TRUE(ngd_test::contains(e.what(), "inaccurate"));
    }
    NaturalGradient<double> opt({1.0, 0.0});
    const StepReport r = opt.step(ctx, p.model, p.theta.view(), p.batch(), Loss::squared);
    EXPECT_EQ(r.rung, Rung::raised_damping);
    EXPECT_EQ(r.cholesky_info, -1);
    EXPECT_LT(r.solve_residual, 1e-6);
    // With the check off, the inaccurate solve is taken and reported as such.
    NaturalGradient<double>::Options o;
    o.damping = 0;
    o.max_solve_residual = std::numeric_limits<double>::infinity();
    NearlySingular q;
    const StepReport loose =
        NaturalGradient<double>(o).step(ctx, q.model, q.theta.view(), q.batch(), Loss::squared);
    EXPECT_EQ(loose.rung, Rung::cholesky);
    EXPECT_GT(loose.solve_residual, 1e-3);
}

}  // namespace
