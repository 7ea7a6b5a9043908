// The mixed-precision solve on the cpu backend (SolvePrecision::mixed and mixed_tf32,
// docs/performance.md "Mixed-precision solve") against its float64 floor, LAPACK dpotrf + dpotrs,
// on K = Q diag(sigma) Q^T with condition kappa (tests/mixed_problems.hpp). cpu/mixed_solve:
// float32 factor, K nearly diagonal (3 reflections), N = 1024, 2048, 4096, kappa 1e2, 1e4, 1e6
// (classical refinement), 3e8 and 1e9 (the edge where conjugate gradients take over) and 1e10
// (the fallback). cpu/mixed_dense: K dense (N / 4 reflections), N = 1024, 2048, float32 and TF32
// factors at kappa 1e2 ... 1e6 (TF32: classical to ~1e4, CG to ~1e5, fallback beyond). The two
// solves run interleaved in every round (a shared machine's load hits both alike) and the
// counters are medians over the rounds: f64_ms (dpotrf + dpotrs, the copy of K excluded),
// mixed_ms (float conversion, the float or emulated-TF32 factorization, refinement and CG with
// double residuals, and the float64 factorization too when it falls back; the float factor's
// storage allocated once, as the float64 side's copy of K), speedup = f64_ms / mixed_ms,
// iterations (classical corrections) and cg_iterations, and the backward errors
// |K x - u| / (|K|_F |x| + |u|). Flops: N^3 / 3 + 2 N^2 for the float64 solve. The TF32
// emulation is an oracle, not a speed path: its time says what checking costs, not what a GPU
// would do.
#if defined(NGD_WITH_CPU)

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "../tests/mixed_problems.hpp"
#include "cpu/blas.hpp"
#include "dispatch.hpp"
#include "mixed_solve.hpp"

namespace ngd_bench {
namespace {

double seconds_of(const std::function<void()>& f) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t m = v.size() / 2;
    return v.size() % 2 == 1 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

// |K x - u| / (|K|_F |x| + |u|) on the context (the formula of the SolveReport).
double backward_error(ngd::Context& ctx, const ngd::Matrix<double>& k, const double* x,
                      const ngd::Matrix<double>& u) {
    const std::int64_t n = k.rows();
    ngd::Matrix<double> r(n, 1), tmp(n, 1);
    ngd::detail::shifted_residual<double>(ctx, k.const_view(), {}, x, u.data(), r.data(),
                                          tmp.data());
    const double norm_k = NGD_STAGE(ctx, frobenius_norm_lower<double>, ctx, k.const_view(), {});
    return ngd::detail::backward_error<double>(ctx, n, r.data(), x, u.data(), norm_k);
}

void bm_mixed_vs_f64(benchmark::State& state, std::int64_t n, double kappa,
                     ngd::SolvePrecision precision, int reflections) {
    static ngd::Context ctx = ngd::Context::cpu();
    const ngd::Matrix<double> k = ngd_test::spd_with_condition(n, kappa, 2026, reflections);
    ngd::Matrix<double> u(n, 1);
    for (std::int64_t i = 0; i < n; ++i) u[i] = double((i * 7919) % 1000) / 500.0 - 1.0;
    ngd::Matrix<double> work(n, n), x64(n, 1), xm(n, 1);
    ngd::Matrix<float> factor(n, n);  // allocated once, as the float64 side's `work`
    const ngd::Matrix<double> no_shift;
    std::vector<double> t64, tm;
    ngd::SolveReport report;
    bool converged = false;
    for (auto _ : state) {
        // float64 floor: dpotrf + dpotrs on a fresh copy of K (the copy is not timed).
        std::copy(k.data(), k.data() + n * n, work.data());
        std::copy(u.data(), u.data() + n, x64.data());
        const double a = seconds_of([&] {
            ngd::cpu::blas::potrf_lower(n, work.data(), n);
            ngd::cpu::blas::potrs_lower(n, 1, work.data(), n, x64.data(), n);
        });
        // Mixed: K read in place, float factor, refinement (the fallback included when taken).
        const double b = seconds_of([&] {
            report = ngd::SolveReport{};
            report.requested = precision;  // mixed_solve picks the factor's arithmetic from it
            converged =
                ngd::detail::mixed_solve<double>(ctx, k.const_view(), no_shift.const_view(),
                                                 u.const_view(), xm.view(), report, factor.view());
            if (!converged) {
                std::copy(k.data(), k.data() + n * n, work.data());
                std::copy(u.data(), u.data() + n, xm.data());
                ngd::cpu::blas::potrf_lower(n, work.data(), n);
                ngd::cpu::blas::potrs_lower(n, 1, work.data(), n, xm.data(), n);
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
    state.counters["bwd_f64"] = backward_error(ctx, k, x64.data(), u);
    state.counters["bwd_mixed"] = backward_error(ctx, k, xm.data(), u);
    state.counters["f64_GFLOPs"] = (double(n) * n * n / 3 + 2.0 * n * n) / f64 / 1e9;
}

// Where the mixed solve's time goes, each part timed alone (median of the rounds): the float
// factor (rounding K and spotrf), the emulated TF32 factor (rounding K, spotrf/strsm per block,
// the TF32 rounding of each panel and ssyrk), ||K||_F, one double residual (dsymv and vector
// stages; a CG iteration costs one such product and one correction), one correction (two strsv
// with the float factor); and dpotrf, dpotrs alone.
void bm_mixed_parts(benchmark::State& state, std::int64_t n) {
    static ngd::Context ctx = ngd::Context::cpu();
    const ngd::Matrix<double> k = ngd_test::spd_with_condition(n, 1e4, 2026);
    ngd::Matrix<double> u(n, 1), x(n, 1), r(n, 1), tmp(n, 1), work(n, n);
    for (std::int64_t i = 0; i < n; ++i) u[i] = double((i * 7919) % 1000) / 500.0 - 1.0;
    ngd::Matrix<float> l(n, n), fwork(n, 1);
    const ngd::Matrix<double> no_shift;
    std::vector<double> factor, tf32, norm, residual, correction, potrf, potrs;
    const auto factor_with = [&](ngd::FactorArithmetic arithmetic) {
        double norm_k = 0;
        NGD_STAGE(ctx, cholesky_factor_float, ctx, k.const_view(), no_shift.const_view(), l.view(),
                  &norm_k, &arithmetic);
    };
    for (auto _ : state) {
        tf32.push_back(seconds_of([&] { factor_with(ngd::FactorArithmetic::tf32); }));
        factor.push_back(seconds_of([&] { factor_with(ngd::FactorArithmetic::float32); }));
        norm.push_back(seconds_of([&] {
            benchmark::DoNotOptimize(NGD_STAGE(ctx, frobenius_norm_lower<double>, ctx,
                                               k.const_view(), no_shift.const_view()));
        }));
        std::copy(u.data(), u.data() + n, x.data());
        correction.push_back(seconds_of([&] {
            NGD_STAGE(ctx, cholesky_apply_float, ctx, l.const_view(), x.data(), fwork.data());
        }));
        residual.push_back(seconds_of([&] {
            ngd::detail::shifted_residual<double>(ctx, k.const_view(), no_shift.const_view(),
                                                  x.data(), u.data(), r.data(), tmp.data());
        }));
        std::copy(k.data(), k.data() + n * n, work.data());
        potrf.push_back(seconds_of([&] { ngd::cpu::blas::potrf_lower(n, work.data(), n); }));
        std::copy(u.data(), u.data() + n, x.data());
        potrs.push_back(
            seconds_of([&] { ngd::cpu::blas::potrs_lower(n, 1, work.data(), n, x.data(), n); }));
        state.SetIterationTime(factor.back() + potrf.back());
    }
    state.counters["float_factor_ms"] = 1e3 * median(factor);
    state.counters["tf32_factor_ms"] = 1e3 * median(tf32);
    state.counters["norm_ms"] = 1e3 * median(norm);
    state.counters["residual_ms"] = 1e3 * median(residual);
    state.counters["correction_ms"] = 1e3 * median(correction);
    state.counters["dpotrf_ms"] = 1e3 * median(potrf);
    state.counters["dpotrs_ms"] = 1e3 * median(potrs);
}

void register_solve(const char* group, std::int64_t n, double kappa, ngd::SolvePrecision precision,
                    int reflections) {
    char name[96];
    std::snprintf(name, sizeof name, "cpu/%s/%s/N=%lld/kappa=%.0e", group,
                  ngd::to_string(precision), (long long)n, kappa);
    benchmark::RegisterBenchmark(name, bm_mixed_vs_f64, n, kappa, precision, reflections)
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond)
        ->Iterations(n >= 4096 ? 3 : 5);
}

const bool registered = [] {
    for (const std::int64_t n : {1024, 4096}) {
        benchmark::RegisterBenchmark(("cpu/mixed_parts/N=" + std::to_string(n)).c_str(),
                                     bm_mixed_parts, n)
            ->UseManualTime()
            ->Unit(benchmark::kMillisecond)
            ->Iterations(5);
    }
    for (const std::int64_t n : {1024, 2048, 4096}) {
        for (const double kappa : {1e2, 1e4, 1e6, 3e8, 1e9, 1e10}) {
            register_solve("mixed_solve", n, kappa, ngd::SolvePrecision::mixed, 3);
        }
    }
    for (const std::int64_t n : {1024, 2048}) {
        for (const double kappa : {1e2, 1e4}) {
            register_solve("mixed_dense", n, kappa, ngd::SolvePrecision::mixed, int(n / 4));
        }
        for (const double kappa : {1e2, 1e3, 1e4, 3e4, 1e5, 1e6}) {
            register_solve("mixed_dense", n, kappa, ngd::SolvePrecision::mixed_tf32, int(n / 4));
        }
    }
    return true;
}();

}  // namespace
}  // namespace ngd_bench

#endif  // NGD_WITH_CPU
