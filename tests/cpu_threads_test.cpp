// The cpu backend's threads: contexts with different thread counts give the reference's results,
// and two contexts used at the same time from two std::threads (each running whole optimizer steps
// on its own problem) do not disturb each other. Skips without the cpu backend.
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "cpu_fixture.hpp"

namespace {

using namespace ngd_test;

/// theta after `steps` NaturalGradient steps (fixed damping) of problem p on ctx, in double.
Matrix<double> run_steps(ngd::Context& ctx, const Problem<double>& p, double lambda, int steps) {
    ngd::NaturalGradient<double>::Options options;
    options.learning_rate = 0.5;
    options.damping = lambda;
    auto c = upload<double>(ctx, p);
    ngd::NaturalGradient<double> opt(options);
    for (int s = 0; s < steps; ++s) opt.step(ctx, p.model, c.theta.view(), c.batch(), p.loss);
    return host_copy<double>(c.theta);
}

class CpuThreads : public CpuVsReference<double> {};

TEST_F(CpuThreads, ThreadCountsGiveTheReferenceResult) {
    const auto problems = model_problems<double>();
    const Problem<double>& p = problems[3];  // every activation, softmax
    const double lambda = 1e-2;
    const Matrix<double> want = run_steps(ref(), p, lambda, 2);
    for (int threads : {1, 2, 3}) {
        SCOPED_TRACE("n_threads " + std::to_string(threads));
        ngd::Context ctx = ngd::Context::cpu(threads);
        EXPECT_EQ(ctx.n_threads(), threads);
        EXPECT_NE(ctx.description().find(std::to_string(threads)), std::string::npos)
            << ctx.description();
        EXPECT_NEAR_NORMWISE(run_steps(ctx, p, lambda, 2), want, 1e-9);
    }
    EXPECT_THROW(ngd::Context::cpu(-1), ngd::InvalidArgument);
}

TEST_F(CpuThreads, TwoContextsInTwoThreadsMatchReference) {
    const auto problems = model_problems<double>();
    const Problem<double>& a = problems[0];  // two-layer ReLU
    const Problem<double>& b = problems[4];  // NTK, partial bias
    const double lambda = 1e-2;
    const Matrix<double> want_a = run_steps(ref(), a, lambda, 3);
    const Matrix<double> want_b = run_steps(ref(), b, lambda, 3);
    std::vector<Matrix<double>> got(4);
    {
        // One context per thread, with different thread counts, running at the same time.
        std::vector<std::thread> workers;
        workers.emplace_back([&] {
            ngd::Context ctx = ngd::Context::cpu(1);
            for (int r = 0; r < 2; ++r) got[r] = run_steps(ctx, a, lambda, 3);
        });
        workers.emplace_back([&] {
            ngd::Context ctx = ngd::Context::cpu(2);
            for (int r = 0; r < 2; ++r) got[2 + r] = run_steps(ctx, b, lambda, 3);
        });
        for (std::thread& w : workers) w.join();
    }
    for (int r = 0; r < 2; ++r) {
        EXPECT_NEAR_NORMWISE(got[r], want_a, 1e-9);
        EXPECT_NEAR_NORMWISE(got[2 + r], want_b, 1e-9);
    }
}

}  // namespace
