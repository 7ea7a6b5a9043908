// CUDA vs reference for SolvePrecision::mixed (kernels/mixed_solve.cu: a float cusolverDnXpotrf
// refined with double cuBLAS residuals): damped_solve on K = Q diag(sigma) Q^T refines to the
// double solve's backward error for kappa 1e3 and 1e6 and agrees with the reference's mixed
// solve; kappa 1e10 falls back, reported, to the double factorization; direction() with
// DirectionOptions::precision = mixed agrees with the reference. SolvePrecision::mixed_tf32 (the
// blocked factor with cublasGemmEx TF32 trailing updates) against the reference's emulation: the
// same refinement outcome, the double solve's backward error, the reference's solution to
// roundoff, the fallback at kappa 1e8. Skips without a usable device.
#include <gtest/gtest.h>

#include <string>

#include "cuda_fixture.hpp"
#include "mixed_problems.hpp"

namespace {

using namespace ngd_test;
using ngd::SolvePrecision;
using ngd::SolveReport;

class CudaMixedSolve : public CudaVsReference<double> {};

TEST_F(CudaMixedSolve, RefinesLikeTheReferenceAndFallsBackBeyondFloat) {
    const std::int64_t n = 300;
    for (const double kappa : {1e3, 1e6, 1e10}) {
        SCOPED_TRACE("kappa=" + std::to_string(kappa));
        const Matrix<double> k = spd_with_condition(n, kappa, 31);
        const Matrix<double> rhs = random_matrix<double>(n, 2, 32);
        const Matrix<double> kd = put<double>(cuda(), k), rd = put<double>(cuda(), rhs);
        SolveReport cw, cm, rm;
        const Matrix<double> xw =
            host(cuda(), ngd::damped_solve<double>(cuda(), kd.const_view(), 0.0, rd.const_view(),
                                                   SolvePrecision::working, &cw));
        const Matrix<double> xm =
            host(cuda(), ngd::damped_solve<double>(cuda(), kd.const_view(), 0.0, rd.const_view(),
                                                   SolvePrecision::mixed, &cm));
        const Matrix<double> xr = ngd::damped_solve<double>(
            ref(), k.const_view(), 0.0, rhs.const_view(), SolvePrecision::mixed, &rm);
        EXPECT_EQ(cm.used, rm.used);
        EXPECT_EQ(cm.mixed_fallback, rm.mixed_fallback);
        if (kappa < 1e7) {
            EXPECT_EQ(cm.used, SolvePrecision::mixed);
            EXPECT_GE(cm.refinement_iterations, 1);
            EXPECT_LE(std::abs(cm.refinement_iterations - rm.refinement_iterations), 1);
            EXPECT_LE(cm.backward_error, 2 * cw.backward_error);
        } else {
            EXPECT_TRUE(cm.mixed_fallback);
            EXPECT_TRUE(same_bits(xm, xw));
        }
        EXPECT_NEAR_NORMWISE(xm, xr, tolerance<double>(double(n), kappa));
    }
}

TEST_F(CudaMixedSolve, Tf32FactorRefinesLikeTheReferenceEmulation) {
    // Dense K (N / 4 reflections; the TF32 rounding acts on its off-diagonal mass), N = 300:
    // 5 blocks of 64. The tensor cores' rounding of the operands (and the order of their float
    // sums) need not be the reference's round-to-nearest-even, so the step counts may differ by a
    // few and the solutions agree to roundoff, not bit for bit.
    const std::int64_t n = 300;
    for (const double kappa : {1e2, 1e4, 1e8}) {
        SCOPED_TRACE("kappa=" + std::to_string(kappa));
        const Matrix<double> k = spd_with_condition(n, kappa, 33, int(n / 4));
        const Matrix<double> rhs = random_matrix<double>(n, 1, 34);
        const Matrix<double> kd = put<double>(cuda(), k), rd = put<double>(cuda(), rhs);
        SolveReport cw, ct, rt;
        const Matrix<double> xw =
            host(cuda(), ngd::damped_solve<double>(cuda(), kd.const_view(), 0.0, rd.const_view(),
                                                   SolvePrecision::working, &cw));
        const Matrix<double> xt =
            host(cuda(), ngd::damped_solve<double>(cuda(), kd.const_view(), 0.0, rd.const_view(),
                                                   SolvePrecision::mixed_tf32, &ct));
        const Matrix<double> xr = ngd::damped_solve<double>(
            ref(), k.const_view(), 0.0, rhs.const_view(), SolvePrecision::mixed_tf32, &rt);
        EXPECT_EQ(ct.requested, SolvePrecision::mixed_tf32);
        EXPECT_EQ(ct.mixed_fallback, rt.mixed_fallback);
        if (kappa < 1e6) {
            // mixed below sm_80 (no TF32 tensor cores: the float32 factor, reported).
            EXPECT_TRUE(ct.used == SolvePrecision::mixed_tf32 || ct.used == SolvePrecision::mixed);
            EXPECT_EQ(rt.used, SolvePrecision::mixed_tf32);
            if (ct.used == SolvePrecision::mixed_tf32) {
                const int steps_c = ct.refinement_iterations + ct.cg_iterations;
                const int steps_r = rt.refinement_iterations + rt.cg_iterations;
                EXPECT_LE(std::abs(steps_c - steps_r), 4);
            }
            EXPECT_LE(ct.backward_error, 2 * cw.backward_error);
        } else {
            EXPECT_TRUE(ct.mixed_fallback);
            EXPECT_EQ(ct.used, SolvePrecision::working);
            EXPECT_TRUE(same_bits(xt, xw));
        }
        EXPECT_NEAR_NORMWISE(xt, xr, tolerance<double>(double(n), kappa));
    }
}

TEST_F(CudaMixedSolve, DirectionMatchesReference) {
    for (const auto& p : model_problems<double>()) {
        if (p.name != "n_257" && p.name != "mlp_every_activation") continue;
        SCOPED_TRACE(p.name);
        const auto r = upload<double>(ref(), p);
        const double lambda = well_conditioned_damping(
            ngd::gram(ref(), p.model, r.theta.const_view(), r.batch(), p.loss), p.n());
        ngd::DirectionOptions opt;
        for (const SolvePrecision precision : {SolvePrecision::mixed, SolvePrecision::mixed_tf32}) {
            SCOPED_TRACE(ngd::to_string(precision));
            opt.precision = precision;
            SolveReport cr;
            const auto c = upload<double>(cuda(), p);
            const Matrix<double> dc =
                host(cuda(), ngd::direction(cuda(), p.model, c.theta.const_view(), c.batch(),
                                            p.loss, lambda, opt, &cr));
            const Matrix<double> dr = ngd::direction(ref(), p.model, r.theta.const_view(),
                                                     r.batch(), p.loss, lambda, opt);
            EXPECT_NE(cr.used, SolvePrecision::working);
            EXPECT_NEAR_NORMWISE(dc, dr, 1e-9);
        }
    }
}

}  // namespace
