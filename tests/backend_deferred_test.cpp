// NaturalGradient's deferred checks (Options::deferred_checks, docs/performance.md "One host
// synchronisation") on every backend and precision: a steady-state step with fixed damping reads
// back once (Context::host_syncs()), and gives the step of the host-driven path, which reads each
// result as it is computed: the same theta, the same report, the same errors, also where the
// deferred step has to be redone on the host-driven path (bad input, a failed or rejected first
// Cholesky). The reference and cpu instances run here; the CUDA ones skip without a device.
#include <gtest/gtest.h>

#include <cmath>
#include <optional>
#include <string>
#include <type_traits>

#include "backend_fixture.hpp"

namespace {

using namespace ngd_test;
using ngd::Backend;

template <class C>
class BackendDeferred : public ::testing::Test {
  protected:
    using T = typename C::Scalar;
    void SetUp() override {
        std::string why;
        if (C::backend == Backend::cuda) why = cuda_unavailable_reason();
        if (C::backend == Backend::cpu) why = cpu_unavailable_reason();
        if (!why.empty()) GTEST_SKIP() << why;
        ctx_.emplace(C::backend == Backend::cuda  ? ngd::Context::cuda()
                     : C::backend == Backend::cpu ? ngd::Context::cpu()
                                                  : ngd::Context::reference());
    }
    ngd::Context& ctx() { return *ctx_; }

    // One step from p.theta with `options`, deferred checks on or off: theta after it, the report,
    // and the host synchronisations it made.
    struct Outcome {
        Matrix<T> theta;
        ngd::StepReport report;
        std::int64_t syncs = 0;
    };
    Outcome run(const Problem<T>& p, typename ngd::NaturalGradient<T>::Options options,
                bool deferred, int warm_up = 0) {
        options.deferred_checks = deferred;
        ngd::NaturalGradient<T> opt(options);
        auto c = upload<T>(ctx(), p);
        for (int i = 0; i < warm_up; ++i) {
            opt.step(ctx(), p.model, c.theta.view(), c.batch(), p.loss);
        }
        const std::int64_t before = ctx().host_syncs();
        Outcome out;
        out.report = opt.step(ctx(), p.model, c.theta.view(), c.batch(), p.loss);
        out.syncs = ctx().host_syncs() - before;
        out.theta = host(ctx(), c.theta);
        return out;
    }

  private:
    std::optional<ngd::Context> ctx_;
};

using AllCases = ::testing::Types<Case<Backend::reference, float>, Case<Backend::reference, double>,
                                  Case<Backend::cpu, float>, Case<Backend::cpu, double>,
                                  Case<Backend::cuda, float>, Case<Backend::cuda, double>>;
struct AllCaseNames {
    template <class C>
    static std::string GetName(int) {
        return (C::backend == Backend::reference
                    ? std::string("reference") +
                          (std::is_same_v<typename C::Scalar, float> ? "_float" : "_double")
                    : C::name());
    }
};
TYPED_TEST_SUITE(BackendDeferred, AllCases, AllCaseNames);

// The report fields that both paths fill: equal, but for the acceptance residual, which the
// deferred path sums plainly and the host-driven one with scaled norms (a few roundings apart), and
// the backward error, whose |K|_F the cpu backend sums with a dynamic OpenMP schedule (its order of
// partial sums varies from run to run).
void expect_same_report(const ngd::StepReport& got, const ngd::StepReport& want) {
    EXPECT_EQ(got.loss_before, want.loss_before);
    EXPECT_EQ(got.damping, want.damping);
    EXPECT_EQ(got.learning_rate, want.learning_rate);
    EXPECT_EQ(got.step_limited, want.step_limited);
    EXPECT_EQ(got.step_norm, want.step_norm);
    EXPECT_EQ(got.output_change, want.output_change);
    EXPECT_EQ(got.predicted_reduction, want.predicted_reduction);
    EXPECT_NEAR(got.backward_error, want.backward_error, 1e-12 * want.backward_error);
    EXPECT_EQ(got.cholesky_tries, want.cholesky_tries);
    EXPECT_EQ(got.cholesky_info, want.cholesky_info);
    EXPECT_EQ(got.rung, want.rung);
    EXPECT_EQ(got.form, want.form);
    EXPECT_EQ(got.precision, want.precision);
    EXPECT_EQ(got.accepted, want.accepted);
    EXPECT_NEAR(got.solve_residual, want.solve_residual, 1e-6 * want.solve_residual + 1e-300);
    if (std::isnan(want.loss_after)) {
        EXPECT_TRUE(std::isnan(got.loss_after));
    } else {
        EXPECT_EQ(got.loss_after, want.loss_after);
        EXPECT_EQ(got.gain_ratio, want.gain_ratio);
    }
}

TYPED_TEST(BackendDeferred, SteadyStepReadsBackOnce) {
    using T = typename TypeParam::Scalar;
    for (const Problem<T>& p : model_problems<T>()) {
        SCOPED_TRACE(p.name);
        for (bool evaluate_after : {true, false}) {
            for (ngd::GramMode mode :
                 {ngd::GramMode::structured, ngd::GramMode::explicit_jacobian}) {
                typename ngd::NaturalGradient<T>::Options options;
                options.learning_rate = 0.5;
                options.damping = 1e-1;
                options.evaluate_after = evaluate_after;
                options.gram_mode = mode;
                const auto fast = this->run(p, options, true, 2);
                const auto slow = this->run(p, options, false, 2);
                ASSERT_EQ(fast.report.rung, ngd::Rung::cholesky);
                EXPECT_EQ(fast.syncs, 1) << "evaluate_after " << evaluate_after;
                // The host-driven path reads its scalars one by one: the count the deferred
                // checks save.
                EXPECT_GT(slow.syncs, 8);
                EXPECT_TRUE(same_bits(fast.theta, slow.theta));
                expect_same_report(fast.report, slow.report);
            }
        }
    }
}

// The guard's eta is computed where d is (on the device for CUDA) by the same function as on the
// host-driven path.
TYPED_TEST(BackendDeferred, StepGuardGivesTheSameEta) {
    using T = typename TypeParam::Scalar;
    const std::vector<Problem<T>> problems = model_problems<T>();
    const Problem<T>& p = problems[0];
    for (int which = 0; which < 2; ++which) {
        typename ngd::NaturalGradient<T>::Options options;
        options.damping = 1e-1;
        (which == 0 ? options.max_step_norm : options.max_output_change) = 1e-3;
        const auto fast = this->run(p, options, true);
        const auto slow = this->run(p, options, false);
        EXPECT_TRUE(fast.report.step_limited);
        EXPECT_LT(fast.report.learning_rate, 1.0);
        EXPECT_EQ(fast.syncs, 1);
        EXPECT_TRUE(same_bits(fast.theta, slow.theta));
        expect_same_report(fast.report, slow.report);
    }
}

// n k > p without damping: the first Cholesky fails, so the deferred step is redone on the
// host-driven path (more reads), whose ladder raises the damping: the same step as without
// deferred checks. The next step starts on the host-driven path (no wasted deferred try).
TYPED_TEST(BackendDeferred, FailedFirstTryIsRedoneOnTheHostDrivenPath) {
    using T = typename TypeParam::Scalar;
    Problem<T> p =
        make_problem<T>("rank_one", ngd::deep_linear(2, 1, 1), ngd::Loss::squared, 31, 70);
    for (std::int64_t i = 0; i < p.n(); ++i) {
        p.inputs(0, i) = T(1);
        p.inputs(1, i) = T(0);
    }
    typename ngd::NaturalGradient<T>::Options options;
    options.damping = 0;
    options.learning_rate = 0.5;
    const auto fast = this->run(p, options, true);
    const auto slow = this->run(p, options, false);
    EXPECT_EQ(fast.report.rung, ngd::Rung::raised_damping);
    EXPECT_GT(fast.syncs, slow.syncs);  // the deferred try, then the host-driven step
    EXPECT_TRUE(same_bits(fast.theta, slow.theta));
    expect_same_report(fast.report, slow.report);
    // A second step of the same optimizer goes straight to the host-driven path.
    const auto second = this->run(p, options, true, 1);
    EXPECT_EQ(second.syncs, slow.syncs);
}

// A NaN in theta, the inputs or the targets, an invalid label or output row: the same error as
// without deferred checks, and theta untouched. The invalid indices (a class or row beyond the
// model's, NaN) must not be used before the check is read: the sanitized CI build (ASan) runs this
// on the host backends.
TYPED_TEST(BackendDeferred, BadInputThrowsTheSameError) {
    using T = typename TypeParam::Scalar;
    const T nan = std::numeric_limits<T>::quiet_NaN();
    for (int which = 0; which < 8; ++which) {
        std::vector<Problem<T>> problems = model_problems<T>();
        // 1: logistic labels, 3: softmax over 3 classes, 2: matrix factorization (output rows)
        const int index[] = {0, 0, 0, 1, 3, 3, 2, 2};
        Problem<T>& p = problems[index[which]];
        if (which == 0) p.theta[3] = nan;
        if (which == 1) p.inputs(1, 2) = std::numeric_limits<T>::infinity();
        if (which == 2) p.targets(0, 4) = nan;
        if (which == 3) p.targets[5] = T(2);   // not a 0/1 label
        if (which == 4) p.targets[5] = T(3);   // class 3 of 3
        if (which == 5) p.targets[0] = T(-1);  // a negative class
        if (which == 6) p.rows[7] = T(p.model.n_last() + 1000);
        if (which == 7) p.rows[0] = nan;
        std::string messages[2];
        for (int deferred = 0; deferred < 2; ++deferred) {
            typename ngd::NaturalGradient<T>::Options options;
            options.deferred_checks = deferred == 1;
            auto c = upload<T>(this->ctx(), p);
            try {
                ngd::NaturalGradient<T>(options).step(this->ctx(), p.model, c.theta.view(),
                                                      c.batch(), p.loss);
                ADD_FAILURE() << "case " << which << ": no error";
            } catch (const ngd::Error& e) {
                messages[deferred] = e.what();
            }
            EXPECT_TRUE(same_bits(host(this->ctx(), c.theta), p.theta));
        }
        EXPECT_EQ(messages[1], messages[0]);
        EXPECT_FALSE(messages[1].empty());
    }
}

// Levenberg-Marquardt reads back once per try, and takes the host-driven path's tries: a large
// learning rate makes the first tries overshoot (rejected, lambda grows) until one is accepted.
TYPED_TEST(BackendDeferred, LevenbergMarquardtReadsBackOncePerTry) {
    using T = typename TypeParam::Scalar;
    const std::vector<Problem<T>> problems = model_problems<T>();
    for (int which : {0, 1, 3}) {
        const Problem<T>& p = problems[which];
        SCOPED_TRACE(p.name);
        typename ngd::NaturalGradient<T>::Options options;
        options.policy = ngd::DampingPolicy::levenberg_marquardt;
        options.learning_rate = 8;
        options.damping = 1e-2;
        const auto fast = this->run(p, options, true);
        const auto slow = this->run(p, options, false);
        EXPECT_EQ(fast.syncs, fast.report.rejections + 1);
        EXPECT_GE(fast.report.rejections, 1);
        EXPECT_EQ(fast.report.rejections, slow.report.rejections);
        EXPECT_EQ(fast.report.next_damping, slow.report.next_damping);
        EXPECT_TRUE(same_bits(fast.theta, slow.theta));
        expect_same_report(fast.report, slow.report);
    }
}

// GradientDescent's deferred step: one read, the host-driven step's theta and report.
TYPED_TEST(BackendDeferred, GradientDescentReadsBackOnce) {
    using T = typename TypeParam::Scalar;
    for (const Problem<T>& p : model_problems<T>()) {
        SCOPED_TRACE(p.name);
        Matrix<T> thetas[2];
        ngd::StepReport reports[2];
        std::int64_t syncs[2] = {0, 0};
        for (int deferred = 0; deferred < 2; ++deferred) {
            typename ngd::GradientDescent<T>::Options options;
            options.learning_rate = 0.3;
            options.deferred_checks = deferred == 1;
            ngd::GradientDescent<T> opt(options);
            auto c = upload<T>(this->ctx(), p);
            const std::int64_t before = this->ctx().host_syncs();
            reports[deferred] = opt.step(this->ctx(), p.model, c.theta.view(), c.batch(), p.loss);
            syncs[deferred] = this->ctx().host_syncs() - before;
            thetas[deferred] = host(this->ctx(), c.theta);
        }
        EXPECT_EQ(syncs[1], 1);
        EXPECT_GT(syncs[0], 3);
        EXPECT_TRUE(same_bits(thetas[1], thetas[0]));
        EXPECT_EQ(reports[1].loss_before, reports[0].loss_before);
        EXPECT_EQ(reports[1].loss_after, reports[0].loss_after);
        EXPECT_EQ(reports[1].predicted_reduction, reports[0].predicted_reduction);
        EXPECT_EQ(reports[1].step_norm, reports[0].step_norm);
    }
}

}  // namespace
