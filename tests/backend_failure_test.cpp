// The failure paths on every non-reference backend (cpu, CUDA): NaN/Inf in inputs, targets and
// theta found by the backend's scan (with count and position), theta unchanged after a failed step,
// an undamped step on a rank-deficient Jacobian walking the same failure ladder as the reference
// (NotPositiveDefinite with info 2, raised damping, pseudo-inverse); on CUDA only, host memory
// handed to the context and OutOfMemory for an absurd allocation. Skips without the backend.
#include <gtest/gtest.h>

#include <limits>
#include <string>

#include "backend_fixture.hpp"

namespace {

using namespace ngd_test;

template <class C>
class BackendFailure : public BackendVsReference<C> {};
TYPED_TEST_SUITE(BackendFailure, Cases, CaseNames);

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

TYPED_TEST(BackendFailure, NonFiniteInputsAreFound) {
    using T = typename TypeParam::Scalar;
    const auto problems = model_problems<T>();
    const Problem<T>& p = problems[4];  // NTK, squared loss, k = 2, 31 x 33 inputs
    const T nan = std::numeric_limits<T>::quiet_NaN(), inf = std::numeric_limits<T>::infinity();
    ngd::Context& dev = this->dev();
    {
        Matrix<T> x = host_copy<T>(p.inputs);
        x[37] = nan;
        x[500] = -inf;
        const auto c = upload<T>(dev, p);
        const Matrix<T> xc = put<T>(dev, x);
        expect_non_finite(
            [&] { ngd::forward(dev, p.model, c.theta.const_view(), xc.const_view()); }, 2, 37);
    }
    {
        Matrix<T> y = host_copy<T>(p.targets);
        y[5] = inf;
        const auto c = upload<T>(dev, p);
        const Matrix<T> yc = put<T>(dev, y);
        const ngd::Batch<T> batch{c.inputs.const_view(), yc.const_view(), {}};
        expect_non_finite([&] { ngd::gradient(dev, p.model, c.theta.const_view(), batch, p.loss); },
                          1, 5);
    }
    {
        Matrix<T> theta = host_copy<T>(p.theta);
        theta[100] = nan;
        theta[p.p() - 1] = nan;
        const auto c = upload<T>(dev, p);
        const Matrix<T> tc = put<T>(dev, theta);
        expect_non_finite([&] { ngd::gram(dev, p.model, tc.const_view(), c.batch(), p.loss); }, 2,
                          100);
    }
}

// A step that throws leaves theta bitwise as it was, for NaN in the targets and in the inputs.
TYPED_TEST(BackendFailure, FailedStepLeavesThetaUnchanged) {
    using T = typename TypeParam::Scalar;
    const auto problems = model_problems<T>();
    const Problem<T>& p = problems[0];
    ngd::Context& dev = this->dev();
    auto c = upload<T>(dev, p);
    Matrix<T> y = host_copy<T>(p.targets);
    y[3] = std::numeric_limits<T>::quiet_NaN();
    Matrix<T> x = host_copy<T>(p.inputs);
    x[7] = std::numeric_limits<T>::quiet_NaN();
    const Matrix<T> yc = put<T>(dev, y), xc = put<T>(dev, x);
    const ngd::Batch<T> bad_targets{c.inputs.const_view(), yc.const_view(), {}};
    const ngd::Batch<T> bad_inputs{xc.const_view(), c.targets.const_view(), {}};
    for (const ngd::Batch<T>* batch : {&bad_targets, &bad_inputs}) {
        EXPECT_THROW(ngd::NaturalGradient<T>().step(dev, p.model, c.theta.view(), *batch, p.loss),
                     ngd::NonFiniteInput);
        EXPECT_TRUE(same_bits(host(dev, c.theta), p.theta));
        EXPECT_THROW(ngd::GradientDescent<T>().step(dev, p.model, c.theta.view(), *batch, p.loss),
                     ngd::NonFiniteInput);
        EXPECT_TRUE(same_bits(host(dev, c.theta), p.theta));
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

TYPED_TEST(BackendFailure, UndampedRankDeficientStepFailsWithInfo2) {
    using T = typename TypeParam::Scalar;
    const Problem<T> p = rank_one_problem<T>();
    ngd::Context& dev = this->dev();
    auto c = upload<T>(dev, p);
    try {
        ngd::direction(dev, p.model, c.theta.const_view(), c.batch(), p.loss, 0.0);
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
        ngd::NaturalGradient<T>(options).step(dev, p.model, c.theta.view(), c.batch(), p.loss);
        ADD_FAILURE() << "no NotPositiveDefinite";
    } catch (const ngd::NotPositiveDefinite& e) {
        EXPECT_EQ(e.info, 2) << e.what();
    }
    EXPECT_TRUE(same_bits(host(dev, c.theta), p.theta));
}

// The failure ladder on the backend takes the same rungs as the reference in the same precision
// (the raised damping depends on T's epsilon): raised damping, then the pseudo-inverse.
TYPED_TEST(BackendFailure, FailureLadderMatchesReference) {
    using T = typename TypeParam::Scalar;
    const Problem<T> p = rank_one_problem<T>();
    for (const int raises : {3, 0}) {
        SCOPED_TRACE("damping_raises " + std::to_string(raises));
        typename ngd::NaturalGradient<T>::Options options;
        options.damping = 0;
        options.damping_raises = raises;
        options.fallback = ngd::Fallback::pseudo_inverse;
        auto c = upload<T>(this->dev(), p);
        auto r = upload<T>(this->ref(), p);
        const ngd::StepReport got = ngd::NaturalGradient<T>(options).step(
            this->dev(), p.model, c.theta.view(), c.batch(), p.loss);
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
            EXPECT_NEAR_NORMWISE(host(this->dev(), c.theta), host(this->ref(), r.theta), tol);
        }
    }
}

// What only a CUDA context has: a memory space of its own to check and to exhaust.
template <class T>
class CudaFailure : public CudaVsReference<T> {};
TYPED_TEST_SUITE(CudaFailure, Precisions);

TYPED_TEST(CudaFailure, HostMemoryOnACudaContextIsRejected) {
    using T = TypeParam;
    const auto problems = model_problems<T>();
    const Problem<T>& p = problems[0];
    EXPECT_THROW(ngd::forward(this->cuda(), p.model, p.theta.const_view(), p.inputs.const_view()),
                 ngd::InvalidArgument);
}

TYPED_TEST(CudaFailure, OutOfMemoryLeavesTheContextUsable) {
    using T = TypeParam;
    try {
        Matrix<double> huge(std::int64_t(1) << 20, std::int64_t(1) << 20, ngd::MemorySpace::device);
        ADD_FAILURE() << "8 TiB of device memory were allocated";
    } catch (const ngd::OutOfMemory& e) {
        EXPECT_EQ(e.requested, std::int64_t(8) << 40) << e.what();
        EXPECT_GT(e.free, 0) << e.what();
    }
    // The failed allocation left no sticky error: a whole forward pass still matches.
    const auto problems = model_problems<T>();
    const Problem<T>& p = problems[3];
    const auto c = upload<T>(this->cuda(), p);
    const auto r = upload<double>(this->ref(), p);
    const Matrix<T> f =
        ngd::forward(this->cuda(), p.model, c.theta.const_view(), c.inputs.const_view());
    const Matrix<double> f_ref =
        ngd::forward(this->ref(), p.model, r.theta.const_view(), r.inputs.const_view());
    EXPECT_NEAR_NORMWISE(host(this->cuda(), f), f_ref, tolerance<T>(chain_length(p.model)));
}

}  // namespace
