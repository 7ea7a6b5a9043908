// The steady state of a CUDA NaturalGradient step with fixed damping, read from the backend's
// debug counters (kernels/baselines.cuh): after warm-up steps, a step makes no device allocation
// that reaches the driver (Matrix memory and scratch come from the pool, the potrf workspace and
// status words are cached) and synchronises with the host exactly once (the read of its status
// block: docs/performance.md, "One host synchronisation"), as the context's own count
// (Context::host_syncs(), checked on every backend in tests/backend_deferred_test.cpp) says. Also:
// the scratch of a stage goes back to the pool, so a second context on the same device can use
// it. Skips without a device.
#include <gtest/gtest.h>

#include <cstdint>
#include <iostream>
#include <string>

#include "cuda_fixture.hpp"
#if defined(NGD_TESTS_WITH_CUDA)
#include "baselines.cuh"
#endif

namespace {

using namespace ngd_test;

#if defined(NGD_TESTS_WITH_CUDA)
using ngd::cuda::baseline::debug_counters;
using ngd::cuda::baseline::DebugCounters;

DebugCounters difference(const DebugCounters& after, const DebugCounters& before) {
    DebugCounters d;
    d.host_syncs = after.host_syncs - before.host_syncs;
    d.device_allocations = after.device_allocations - before.device_allocations;
    d.memory_releases = after.memory_releases - before.memory_releases;
    d.gram_layers_fused = after.gram_layers_fused - before.gram_layers_fused;
    d.gram_layers_cublas = after.gram_layers_cublas - before.gram_layers_cublas;
    return d;
}

template <class T>
class CudaSteadyState : public CudaVsReference<T> {};
TYPED_TEST_SUITE(CudaSteadyState, Precisions);

TYPED_TEST(CudaSteadyState, FixedDampingStepAllocatesNothing) {
    using T = TypeParam;
    // Both Gram routes in one step: widths 64 (fused) and 512 (cuBLAS route) at N = 512.
    const Problem<T> p = make_problem<T>(
        "steady",
        ngd::Mlp(32, {layer(64, ngd::Activation::relu), layer(512, ngd::Activation::tanh),
                      layer(1, ngd::Activation::identity)}),
        ngd::Loss::squared, 512, 51);
    ngd::Context& cuda = this->cuda();
    auto c = upload<T>(cuda, p);
    typename ngd::NaturalGradient<T>::Options options;
    options.learning_rate = 0.1;
    options.damping = 1e-2;
    options.evaluate_after = true;
    ngd::NaturalGradient<T> opt(options);
    for (int warm = 0; warm < 3; ++warm) {
        opt.step(cuda, p.model, c.theta.view(), c.batch(), p.loss);
    }
    cuda.synchronize();
    const DebugCounters before = debug_counters();
    const std::int64_t context_before = cuda.host_syncs();
    const ngd::StepReport report = opt.step(cuda, p.model, c.theta.view(), c.batch(), p.loss);
    const DebugCounters d = difference(debug_counters(), before);
    const std::int64_t context_syncs = cuda.host_syncs() - context_before;
    std::cout << "[ steady state ] " << (sizeof(T) == 8 ? "double" : "float")
              << " NaturalGradient step (fixed damping, N = " << p.big_n()
              << "): host synchronisations " << d.host_syncs << " (context's count "
              << context_syncs << "), device allocations " << d.device_allocations
              << ", memory releases " << d.memory_releases << ", Gram layers fused "
              << d.gram_layers_fused << " / cuBLAS " << d.gram_layers_cublas << ", Cholesky tries "
              << report.cholesky_tries << "\n";
    EXPECT_EQ(d.device_allocations, 0);
    EXPECT_EQ(d.memory_releases, 0);
    EXPECT_EQ(d.host_syncs, 1);
    EXPECT_EQ(context_syncs, 1);
    EXPECT_EQ(report.rung, ngd::Rung::cholesky);
}

TEST(CudaScratch, StageScratchGoesBackToThePool) {
    const std::string why = cuda_unavailable_reason();
    if (!why.empty()) GTEST_SKIP() << why;
    // The cuBLAS route's panel is stage scratch: it goes back to the pool when the stage ends, so
    // a second, identical Gram runs without the pool growing.
    ngd::Context cuda = ngd::Context::cuda();
    ngd::cuda::baseline::set_gram_route(cuda, ngd::cuda::baseline::GramRouteSetting::cublas);
    const Problem<double> p = make_problem<double>(
        "scratch",
        ngd::Mlp(16, {layer(300, ngd::Activation::tanh), layer(1, ngd::Activation::identity)}),
        ngd::Loss::squared, 1024, 52);
    const auto c = upload<double>(cuda, p);
    // The first Gram grows the pool to its high-water mark; everything is freed at the brace.
    {
        const Matrix<double> g =
            ngd::gram(cuda, p.model, c.theta.const_view(), c.inputs.const_view());
    }
    cuda.synchronize();
    const DebugCounters before = debug_counters();
    // The same again: the panel scratch, S and G come back out of the pool.
    {
        const Matrix<double> g =
            ngd::gram(cuda, p.model, c.theta.const_view(), c.inputs.const_view());
    }
    cuda.synchronize();
    const DebugCounters d = difference(debug_counters(), before);
    std::cout << "[ scratch ] second Gram: device allocations " << d.device_allocations << "\n";
    EXPECT_EQ(d.device_allocations, 0);
}
#else
TEST(CudaSteadyState, FixedDampingStepAllocatesNothing) { GTEST_SKIP() << "CUDA not compiled in"; }
#endif

}  // namespace
