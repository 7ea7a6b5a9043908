// The failure paths on the cpu backend: NaN/Inf in inputs, targets and theta found by its OpenMP
// scan (with count and position), theta unchanged after a failed step, and an undamped step on a
// rank-deficient Jacobian walking the same failure ladder as the reference (NotPositiveDefinite
// with LAPACK's info 2, raised damping, the syevd pseudo-inverse). Skips without the cpu backend.
#include <gtest/gtest.h>

#include <limits>
#include <string>

#include "cpu_fixture.hpp"

namespace {

using namespace ngd_test;

template <class T>
class CpuFailure : public CpuVsReference<T> {};
TYPED_TEST_SUITE(CpuFailure, Precisions);

/// Runs fn, expecting NonFiniteInput with `count` bad entries, the first at `first`.
template <class F>
void expect_non_finite(F&& fn, std::int64_t count, std::int64_t first) {
    try {
        fn();
        ADD_FAILURE() << "no NonFiniteInput";
    } catch (const ngd::NonFiniteInput& e) {
        EXPECT_EQ(e.count, count) << e.what();
        EXPECT_EQ(e.first_index, first) << e.what();
    }
}

TYPED_TEST(CpuFailure, NonFiniteInputsAreFound) {
    using T = TypeParam;
    const auto problems = model_problems<T>();
    const Problem<T>& p = problems[4];  // NTK, squared loss, k = 2, 31 x 33 inputs
    const T nan = std::numeric_limits<T>::quiet_NaN(), inf = std::numeric_limits<T>::infinity();
    ngd::Context& cpu = this->cpu();
    {
        Matrix<T> x = host_copy<T>(p.inputs);
        x[37] = nan;
        x[500] = -inf;
        const auto c = upload<T>(cpu, p);
        const Matrix<T> xc = put<T>(cpu, x);
        expect_non_finite(
            [&] { ngd::forward(cpu, p.model, c.theta.const_view(), xc.const_view()); }, 2, 37);
    }
    {
        Matrix<T> y = host_copy<T>(p.targets);
        y[5] = inf;
        const auto c = upload<T>(cpu, p);
        const Matrix<T> yc = put<T>(cpu, y);
        const ngd::Batch<T> batch{c.inputs.const_view(), yc.const_view(), {}};
        expect_non_finite([&] { ngd::gradient(cpu, p.model, c.theta.const_view(), batch, p.loss); },
                          1, 5);
    }
    {
        Matrix<T> theta = host_copy<T>(p.theta);
        theta[100] = nan;
        theta[p.p() - 1] = nan;
        const auto c = upload<T>(cpu, p);
        const Matrix<T> tc = put<T>(cpu, theta);
        expect_non_finite([&] { ngd::gram(cpu, p.model, tc.const_view(), c.batch(), p.loss); }, 2,
                          100);
    }
}

// A step that throws leaves theta bitwise as it was, for NaN in the targets and in the inputs.
TYPED_TEST(CpuFailure, FailedStepLeavesThetaUnchanged) {
    using T = TypeParam;
    const auto problems = model_problems<T>();
    const Problem<T>& p = problems[0];
    ngd::Context& cpu = this->cpu();
    auto c = upload<T>(cpu, p);
    Matrix<T> y = host_copy<T>(p.targets);
    y[3] = std::numeric_limits<T>::quiet_NaN();
    Matrix<T> x = host_copy<T>(p.inputs);
    x[7] = std::numeric_limits<T>::quiet_NaN();
    const Matrix<T> yc = put<T>(cpu, y), xc = put<T>(cpu, x);
    const ngd::Batch<T> bad_targets{c.inputs.const_view(), yc.const_view(), {}};
    const ngd::Batch<T> bad_inputs{xc.const_view(), c.targets.const_view(), {}};
    for (const ngd::Batch<T>* batch : {&bad_targets, &bad_inputs}) {
        EXPECT_THROW(ngd::NaturalGradient<T>().step(cpu, p.model, c.theta.view(), *batch, p.loss),
                     ngd::NonFiniteInput);
        EXPECT_TRUE(same_bits(host(cpu, c.theta), p.theta));
        EXPECT_THROW(ngd::GradientDescent<T>().step(cpu, p.model, c.theta.view(), *batch, p.loss),
                     ngd::NonFiniteInput);
        EXPECT_TRUE(same_bits(host(cpu, c.theta), p.theta));
    }
}

/// A linear model f = w . x with every input e_1: J has identical rows (1, 0), so J J^T = 1 1^T
/// exactly, and undamped Cholesky meets the pivot 1 - 1 = 0 at order 2 in any precision.
template <class T>
Problem<T> rank_one_problem() {
    Problem<T> p =
        make_problem<T>("rank_one", ngd::deep_linear(2, 1, 1), ngd::Loss::squared, 31, 70);
    for (std::int64_t i = 0; i < p.n(); ++i) {
        p.inputs(0, i) = T(1);
        p.inputs(1, i) = T(0);
    }
    return p;
}

TYPED_TEST(CpuFailure, UndampedRankDeficientStepFailsWithInfo2) {
    using T = TypeParam;
    const Problem<T> p = rank_one_problem<T>();
    ngd::Context& cpu = this->cpu();
    auto c = upload<T>(cpu, p);
    try {
        ngd::direction(cpu, p.model, c.theta.const_view(), c.batch(), p.loss, 0.0);
        ADD_FAILURE() << "no NotPositiveDefinite";
    } catch (const ngd::NotPositiveDefinite& e) {
        EXPECT_EQ(e.info, 2) << e.what();
        EXPECT_EQ(e.order, p.big_n());
        EXPECT_EQ(e.damping, 0.0);
    }
    typename ngd::NaturalGradient<T>::Options options;
    options.damping = 0;
    options.damping_raises = 0;
    options.fallback = ngd::Fallback::none;
    try {
        ngd::NaturalGradient<T>(options).step(cpu, p.model, c.theta.view(), c.batch(), p.loss);
        ADD_FAILURE() << "no NotPositiveDefinite";
    } catch (const ngd::NotPositiveDefinite& e) {
        EXPECT_EQ(e.info, 2) << e.what();
    }
    EXPECT_TRUE(same_bits(host(cpu, c.theta), p.theta));
}

// The failure ladder on the cpu backend takes the same rungs as the reference in the same precision
// (the raised damping depends on T's epsilon): raised damping, then the pseudo-inverse.
TYPED_TEST(CpuFailure, FailureLadderMatchesReference) {
    using T = TypeParam;
    const Problem<T> p = rank_one_problem<T>();
    for (const int raises : {3, 0}) {
        SCOPED_TRACE("damping_raises " + std::to_string(raises));
        typename ngd::NaturalGradient<T>::Options options;
        options.damping = 0;
        options.damping_raises = raises;
        options.fallback = ngd::Fallback::pseudo_inverse;
        auto c = upload<T>(this->cpu(), p);
        auto r = upload<T>(this->ref(), p);
        const ngd::StepReport got = ngd::NaturalGradient<T>(options).step(
            this->cpu(), p.model, c.theta.view(), c.batch(), p.loss);
        const ngd::StepReport want = ngd::NaturalGradient<T>(options).step(
            this->ref(), p.model, r.theta.view(), r.batch(), p.loss);
        EXPECT_EQ(got.rung, want.rung);
        EXPECT_EQ(got.rung, raises > 0 ? ngd::Rung::raised_damping : ngd::Rung::pseudo_inverse);
        EXPECT_EQ(got.cholesky_tries, want.cholesky_tries);
        EXPECT_EQ(got.cholesky_info, 2);
        EXPECT_EQ(got.fallback_used, raises == 0);
        EXPECT_LE(relative_difference(got.damping, want.damping), tolerance<T>(p.big_n()));
        // K = 1 1^T + n lambda I has eigenvalues N + n lambda and n lambda, so cond = 1 + N / (n
        // lambda); the pseudo-inverse acts on the range of 1 1^T alone (cond 1). The raised lambda
        // is sqrt(eps) / n: in float the bound is vacuous and only the report is compared.
        const double cond = raises > 0 ? 1 + static_cast<double>(p.big_n()) /
                                                 (static_cast<double>(p.n()) * got.damping)
                                       : 1.0;
        const double tol = tolerance<T>(static_cast<double>(p.big_n() + p.p()), cond);
        if (tol < 0.1) {
            EXPECT_NEAR_NORMWISE(host(this->cpu(), c.theta), host(this->ref(), r.theta), tol);
        }
    }
}

}  // namespace
