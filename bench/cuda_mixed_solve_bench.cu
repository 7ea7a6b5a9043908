// The mixed-precision solve on CUDA (SolvePrecision::mixed and mixed_tf32, docs/performance.md
// "Mixed-precision solve", issue target: >= 2x faster than cusolverDnXpotrf + Xpotrs in float64 at
// N >= 16384 with the same backward error) against that floor, timed with CUDA events on the
// context's stream in the same loop: cuda/mixed_solve/<precision>/N=.../kappa=... . K = B B^T / N
// + s I with B uniform in [-1, 1) (seeded, made on the host, the product by cuBLAS DSYRK on the
// device): its eigenvalues fill [0, ~4/3] (Marchenko-Pastur), so s = (4/3) / kappa gives a dense K
// with condition about kappa, dense enough that TF32 rounding shows (a nearly diagonal K would
// hide it). Counters: f64_ms (bare Xpotrf + Xpotrs on a copy of K, the copy not timed), mixed_ms
// (everything mixed_solve does, its host reads of the backward error included, and the float64
// factorization too when it falls back), speedup, iterations (corrections), cg_iterations,
// fallback, and both backward errors |K x - u| / (|K|_F |x| + |u|). Skips without a device.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "baselines.cuh"
#include "common.cuh"  // private: the context's state, typed syrk
#include "cuda_timer.hpp"
#include "mixed_solve.hpp"
#include "ngd/ngd.hpp"
#include "stages.hpp"

namespace ngd_bench {
namespace {

using ngd::Matrix;
using ngd::MemorySpace;

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t m = v.size() / 2;
    return v.size() % 2 == 1 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

// Lower triangle of K = B B^T / n + s I (n x n, device) for a seeded uniform B.
Matrix<double> dense_spd(ngd::Context& ctx, std::int64_t n, double kappa) {
    Matrix<double> b_host(n, n);
    std::mt19937_64 gen(2026);
    for (std::int64_t i = 0; i < n * n; ++i) {
        b_host[i] = double(gen() >> 11) * 0x1p-52 - 1.0;
    }
    const Matrix<double> b = ngd::to_context(ctx, b_host.const_view());
    Matrix<double> k(n, n, MemorySpace::device), shift(n, 1, MemorySpace::device);
    ngd::detail::CudaState& state = *ctx.cuda_state();
    ngd::cuda::syrk(state.blas(), CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_N, n, n, 1.0 / double(n),
                    b.data(), n, 0.0, k.data(), n);
    ngd::cuda::fill<double>(ctx, n, (4.0 / 3.0) / kappa, shift.data());
    ngd::cuda::add_to_diagonal<double>(state.stream, k.data(), n, shift.data(), n);
    ctx.synchronize();
    return k;
}

// |K x - u| / (|K|_F |x| + |u|) on the device (the SolveReport's formula).
double backward_error(ngd::Context& ctx, const Matrix<double>& k, const double* x,
                      const Matrix<double>& u) {
    const std::int64_t n = k.rows();
    Matrix<double> r(n, 1, MemorySpace::device), tmp(n, 1, MemorySpace::device);
    ngd::detail::shifted_residual<double>(ctx, k.const_view(), {}, x, u.data(), r.data(),
                                          tmp.data());
    const double norm_k = ngd::cuda::frobenius_norm_lower<double>(ctx, k.const_view(), {});
    return ngd::detail::backward_error<double>(ctx, n, r.data(), x, u.data(), norm_k);
}

void bm_cuda_mixed(benchmark::State& state, std::int64_t n, double kappa,
                   ngd::SolvePrecision precision) {
    ngd::Context* ctx = cuda_or_skip(state);
    if (ctx == nullptr) return;
    const Matrix<double> k = dense_spd(*ctx, n, kappa);
    Matrix<double> u_host(n, 1);
    for (std::int64_t i = 0; i < n; ++i) u_host[i] = double((i * 7919) % 1000) / 500.0 - 1.0;
    const Matrix<double> u = ngd::to_context(*ctx, u_host.const_view());
    Matrix<double> work(n, n, MemorySpace::device), x64(n, 1, MemorySpace::device),
        xm(n, 1, MemorySpace::device);
    Matrix<float> factor(n, n, MemorySpace::device);  // allocated once, as the float64 side's work
    EventTimer timer(context_stream(*ctx));
    std::vector<double> t64, tm;
    ngd::SolveReport report;
    bool converged = false;
    for (auto _ : state) {
        ngd::copy(*ctx, k.const_view(), work.view());
        ngd::copy(*ctx, u.const_view(), x64.view());
        const double a = timer.time([&] {
            ngd::cuda::baseline::cholesky_solve_bare<double>(*ctx, work.view(), x64.view());
        });
        const double b = timer.time([&] {
            report = ngd::SolveReport{};
            report.requested = precision;
            converged = ngd::detail::mixed_solve<double>(*ctx, k.const_view(), {}, u.const_view(),
                                                         xm.view(), report, factor.view());
            if (!converged) {
                ngd::cuda::copy_matrix<double>(*ctx, k.const_view(), work.view());
                ngd::cuda::copy_vector<double>(*ctx, n, u.data(), xm.data());
                ngd::cuda::baseline::cholesky_solve_bare<double>(*ctx, work.view(), xm.view());
            }
        });
        t64.push_back(a);
        tm.push_back(b);
        state.SetIterationTime(a + b);
    }
    const double f64 = median(t64), mixed = median(tm);
    state.counters["f64_ms"] = 1e3 * f64;
    state.counters["mixed_ms"] = 1e3 * mixed;
    state.counters["speedup"] = f64 / mixed;
    state.counters["iterations"] = double(report.refinement_iterations);
    state.counters["cg_iterations"] = double(report.cg_iterations);
    state.counters["fallback"] = converged ? 0.0 : 1.0;
    state.counters["float_info"] = double(report.float_info);
    state.counters["bwd_f64"] = backward_error(*ctx, k, x64.data(), u);
    state.counters["bwd_mixed"] = backward_error(*ctx, k, xm.data(), u);
    state.counters["f64_TFLOPs"] = (double(n) * n * n / 3 + 2.0 * n * n) / f64 / 1e12;
}

const bool registered = [] {
    for (const std::int64_t n : {4096, 16384, 40960}) {
        for (const auto precision : {ngd::SolvePrecision::mixed, ngd::SolvePrecision::mixed_tf32}) {
            for (const double kappa : {1e2, 1e4, 1e6}) {
                char name[96];
                std::snprintf(name, sizeof name, "cuda/mixed_solve/%s/N=%lld/kappa=%.0e",
                              ngd::to_string(precision), (long long)n, kappa);
                benchmark::RegisterBenchmark(name, bm_cuda_mixed, n, kappa, precision)
                    ->UseManualTime()
                    ->Unit(benchmark::kMillisecond)
                    ->Iterations(3);
            }
        }
    }
    return true;
}();

}  // namespace
}  // namespace ngd_bench
