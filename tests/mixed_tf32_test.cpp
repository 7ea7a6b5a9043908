// SolvePrecision::mixed_tf32 on the reference and cpu backends (the TF32 factor emulated: the
// trailing updates' operands rounded to TF32, float accumulation): the rounding helper on exact
// cases; the emulated factor is coarser than the float32 one (|L L^T - K| / |K| about 7e-5 in
// place of 1e-7 on a dense K) and identical to it when one block covers K; damped_solve refines it
// to the double solve's backward error for kappa <= 1e4 classically, conjugate gradients carry it
// to about 1e5, and beyond it falls back, reported (the factorization failing, or CG exhausting
// its 50 iterations); cpu agrees with the reference; float data solves as working; NaN/Inf and
// non-SPD input fail as in working precision; direction_from_jacobian() reports mixed_tf32
// (direction() and NaturalGradient: mixed_direction_test.cpp).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "mixed_fixture.hpp"
// The reference stage is hidden in the shared library: compiled into the test, as
// reference_eigen_test.cpp does (src/ is on the tests' include path).
#include "reference/mixed_solve.cpp"
#include "tf32.hpp"

namespace {

using namespace ngd_test;
using ngd::FactorArithmetic;
using ngd::SolvePrecision;
using ngd::SolveReport;
using ngd::detail::round_to_tf32;

TEST(RoundToTf32, RoundsToTenMantissaBitsTiesToEven) {
    const float ulp = std::ldexp(1.0f, -10);  // TF32's spacing in [1, 2)
    EXPECT_EQ(round_to_tf32(1.0f), 1.0f);
    EXPECT_EQ(round_to_tf32(1.0f + ulp), 1.0f + ulp);  // representable: unchanged
    // Below, above and at half an ulp; ties go to the even neighbour.
    EXPECT_EQ(round_to_tf32(1.0f + 0.49f * ulp), 1.0f);
    EXPECT_EQ(round_to_tf32(1.0f + 0.51f * ulp), 1.0f + ulp);
    EXPECT_EQ(round_to_tf32(1.0f + 0.5f * ulp), 1.0f);               // tie, 1 is even
    EXPECT_EQ(round_to_tf32(1.0f + 1.5f * ulp), 1.0f + 2 * ulp);     // tie, 1 + ulp is odd
    EXPECT_EQ(round_to_tf32(-(1.0f + 0.51f * ulp)), -(1.0f + ulp));  // sign kept
    EXPECT_EQ(round_to_tf32(2.0f - 0.25f * ulp), 2.0f);              // carry into exponent
    EXPECT_EQ(round_to_tf32(3.0f + 2.25f * ulp), 3.0f + 2 * ulp);    // spacing 2 ulp in [2, 4)
    // pi: float 0x40490fdb -> TF32 0x40490000 (the dropped bits 0xfdb are below half, 0x1000).
    EXPECT_EQ(round_to_tf32(3.14159265f), 3.140625f);
    EXPECT_EQ(round_to_tf32(std::numeric_limits<float>::infinity()),
              std::numeric_limits<float>::infinity());
    EXPECT_TRUE(std::isnan(round_to_tf32(std::numeric_limits<float>::quiet_NaN())));
    EXPECT_EQ(round_to_tf32(std::numeric_limits<float>::max()),
              std::numeric_limits<float>::infinity());
    const float tiny = std::numeric_limits<float>::denorm_min();
    EXPECT_EQ(round_to_tf32(tiny), 0.0f);  // 2^-149 lies below half of TF32's smallest step
    // Every rounded value has its 13 low mantissa bits clear, and lies within half an ulp.
    for (float x = 0.001f; x < 1000.0f; x *= 1.0137f) {
        const float r = round_to_tf32(x);
        std::uint32_t bits;
        std::memcpy(&bits, &r, sizeof bits);
        EXPECT_EQ(bits & 0x1fffu, 0u) << x;
        EXPECT_LE(std::abs(r - x), std::ldexp(std::abs(x), -11) * 1.0001f) << x;
    }
}

TEST(Tf32BlockWidth, IsTheGpuWidthCappedAtAnEighthOfN) {
    EXPECT_EQ(ngd::tf32_block_width(10), 32);
    EXPECT_EQ(ngd::tf32_block_width(160), 32);
    EXPECT_EQ(ngd::tf32_block_width(600), 96);
    EXPECT_EQ(ngd::tf32_block_width(1024), 128);
    EXPECT_EQ(ngd::tf32_block_width(4096), 512);
    EXPECT_EQ(ngd::tf32_block_width(40960), 512);
}

// |L L^T - K|_F / |K|_F of the reference's float factor of K (lower triangles), in long double.
double factor_error(const Matrix<double>& k, FactorArithmetic arithmetic, std::int64_t* info) {
    ngd::Context ctx = ngd::Context::reference();
    const std::int64_t n = k.rows();
    Matrix<float> l(n, n);
    double norm = 0;
    *info = ngd::reference::cholesky_factor_float(ctx, k.const_view(), {}, l.view(), &norm,
                                                  &arithmetic);
    long double err = 0, ref = 0;
    for (std::int64_t j = 0; j < n; ++j) {
        for (std::int64_t i = j; i < n; ++i) {
            long double s = 0;
            for (std::int64_t c = 0; c <= j; ++c) s += (long double)l(i, c) * l(j, c);
            err += (s - k(i, j)) * (s - k(i, j));
            ref += (long double)k(i, j) * k(i, j);
        }
    }
    return double(std::sqrt(err / ref));
}

TEST(ReferenceTf32Factor, IsCoarserThanFloat32AndEqualWithinOneBlock) {
    const Matrix<double> k = spd_with_condition(160, 1e2, 41, 40);  // dense; 5 blocks of 32
    std::int64_t info32 = 0, info_tf = 0;
    const double e32 = factor_error(k, FactorArithmetic::float32, &info32);
    const double etf = factor_error(k, FactorArithmetic::tf32, &info_tf);
    std::printf("[ tf32     ] N 160 kappa 1e2: |LL^T - K| / |K| float32 %.3g, tf32 %.3g\n", e32,
                etf);
    ASSERT_EQ(info32, 0);
    ASSERT_EQ(info_tf, 0);
    EXPECT_LT(e32, 1e-6);
    // TF32's unit roundoff is 2^-11 (4.9e-4) per operand; relative to |K|_F the trailing
    // updates' errors average down: measured 6.6e-5 here, 500 times float32's 1.3e-7.
    EXPECT_GT(etf, 1e-5);
    EXPECT_LT(etf, 1e-3);
    EXPECT_GT(etf, 100 * e32);
    // One block (N <= 32): no trailing update, so no TF32 rounding: the float32 factor, bit for
    // bit.
    const Matrix<double> small = spd_with_condition(32, 1e2, 42);
    ngd::Context ctx = ngd::Context::reference();
    Matrix<float> a(32, 32), b(32, 32);
    double norm = 0;
    FactorArithmetic f32 = FactorArithmetic::float32, tf = FactorArithmetic::tf32;
    ASSERT_EQ(
        ngd::reference::cholesky_factor_float(ctx, small.const_view(), {}, a.view(), &norm, &f32),
        0);
    ASSERT_EQ(
        ngd::reference::cholesky_factor_float(ctx, small.const_view(), {}, b.view(), &norm, &tf),
        0);
    EXPECT_EQ(tf, FactorArithmetic::tf32);
    for (std::int64_t j = 0; j < 32; ++j) {
        for (std::int64_t i = j; i < 32; ++i) EXPECT_EQ(a(i, j), b(i, j)) << i << "," << j;
    }
}

class MixedTf32 : public HostBackendTest {};

void print(const char* what, std::int64_t n, double kappa, const SolveReport& r, double eta64) {
    std::printf(
        "[ %-8s ] N %lld kappa %.0e: used %s, fallback %d (float info %lld), %d corrections, "
        "%d CG, backward error %.3g (double solve %.3g)\n",
        what, (long long)n, kappa, ngd::to_string(r.used), int(r.mixed_fallback),
        (long long)r.float_info, r.refinement_iterations, r.cg_iterations, r.backward_error, eta64);
}

// Dense test systems (spd_with_condition with N / 4 reflections): TF32's rounding acts on the
// off-diagonal mass, which the default nearly diagonal ones lack.
Matrix<double> dense_spd(std::int64_t n, double kappa, std::uint64_t seed) {
    return spd_with_condition(n, kappa, seed, int(n / 4));
}

TEST_P(MixedTf32, RefinesToDoubleAccuracyUpToKappa1e4) {
    // Measured (seeds 7, 8): classical refinement alone, 4-5 corrections at kappa 1e1-1e2, 7-8 at
    // 1e3, 12-14 at 1e4 (float32: 3-4 throughout).
    const std::int64_t n = order();
    for (const double kappa : {1e1, 1e2, 1e3, 1e4}) {
        for (const std::uint64_t seed : {7, 8}) {
            SCOPED_TRACE("kappa=" + std::to_string(kappa) + " seed=" + std::to_string(seed));
            const Matrix<double> k = dense_spd(n, kappa, seed);
            const Matrix<double> rhs = random_matrix<double>(n, 1, seed + 1);
            const Solved work = solve(ctx(), k, 0.0, rhs, SolvePrecision::working);
            const Solved f32 = solve(ctx(), k, 0.0, rhs, SolvePrecision::mixed);
            const Solved tf = solve(ctx(), k, 0.0, rhs, SolvePrecision::mixed_tf32);
            print("tf32", n, kappa, tf.report, work.report.backward_error);
            EXPECT_EQ(tf.report.requested, SolvePrecision::mixed_tf32);
            EXPECT_EQ(tf.report.used, SolvePrecision::mixed_tf32);
            EXPECT_FALSE(tf.report.mixed_fallback);
            EXPECT_EQ(tf.report.float_info, 0);
            EXPECT_LE(tf.report.backward_error, 2 * work.report.backward_error);
            EXPECT_NEAR_NORMWISE(tf.x, work.x, tolerance<double>(double(n), kappa));
            EXPECT_LE(tf.report.refinement_iterations + tf.report.cg_iterations, 20);
            if (kappa >= 1e2) {
                // Coarser than the float32 factor: more corrections to the same accuracy.
                EXPECT_GT(tf.report.refinement_iterations, f32.report.refinement_iterations + 1);
            }
            if (kappa <= 1e3) {
                EXPECT_EQ(tf.report.cg_iterations, 0);
            }
        }
    }
}

TEST_P(MixedTf32, ConjugateGradientsExtendTheRangeBeyondClassicalRefinement) {
    // kappa 3e4-1e5: classical refinement of the TF32 factor stagnates (or needs its 30
    // corrections) and conjugate gradients carry on, or the TF32 factorization fails (fallback).
    // Measured: reference N 160: 3e4 CG (3 + 11), classical (24); 1e5 CG (2 + 27), fallback.
    // cpu N 600: 3e4 classical (29), CG (30 + 3); 1e5 CG (2 + 50) twice.
    const std::int64_t n = order();
    int carried = 0;
    for (const double kappa : {3e4, 1e5}) {
        for (const std::uint64_t seed : {7, 8}) {
            SCOPED_TRACE("kappa=" + std::to_string(kappa) + " seed=" + std::to_string(seed));
            const Matrix<double> k = dense_spd(n, kappa, seed);
            const Matrix<double> rhs = random_matrix<double>(n, 1, seed + 1);
            const Solved work = solve(ctx(), k, 0.0, rhs, SolvePrecision::working);
            const Solved tf = solve(ctx(), k, 0.0, rhs, SolvePrecision::mixed_tf32);
            print("tf32", n, kappa, tf.report, work.report.backward_error);
            if (tf.report.mixed_fallback) {
                EXPECT_EQ(tf.report.used, SolvePrecision::working);
                EXPECT_GT(tf.report.float_info, 0);
                EXPECT_TRUE(same_bits(tf.x, work.x));
                continue;
            }
            EXPECT_EQ(tf.report.used, SolvePrecision::mixed_tf32);
            EXPECT_LE(tf.report.backward_error, 2 * work.report.backward_error);
            EXPECT_NEAR_NORMWISE(tf.x, work.x, tolerance<double>(double(n), kappa));
            EXPECT_LE(tf.report.cg_iterations, 50);
            if (tf.report.cg_iterations > 0) ++carried;
        }
    }
    EXPECT_GE(carried, 2);
}

TEST_P(MixedTf32, FallsBackWhenConjugateGradientsExhaustTheirBound) {
    // kappa 1e5 is the TF32 factor's edge: per system, refinement converges (CG within its 50
    // iterations), the TF32 factorization fails (float info > 0), or the factor succeeds and CG
    // runs its 50 iterations without reaching 2^-53: the fallback, reported with float info 0
    // and the iterations spent. Measured (seeds 20-25): reference N 160: CG converged in 23-39
    // five times, factorization failed once; cpu N 600: CG converged in 45-50 three times,
    // factorization failed once, CG exhausted twice (seeds 24, 25).
    const std::int64_t n = order();
    int exhausted = 0;
    for (const std::uint64_t seed : {20, 21, 22, 23, 24, 25}) {
        SCOPED_TRACE("seed=" + std::to_string(seed));
        const Matrix<double> k = dense_spd(n, 1e5, seed);
        const Matrix<double> rhs = random_matrix<double>(n, 1, seed + 1);
        const Solved work = solve(ctx(), k, 0.0, rhs, SolvePrecision::working);
        const Solved tf = solve(ctx(), k, 0.0, rhs, SolvePrecision::mixed_tf32);
        print("tf32", n, 1e5, tf.report, work.report.backward_error);
        if (!tf.report.mixed_fallback) {
            EXPECT_EQ(tf.report.used, SolvePrecision::mixed_tf32);
            EXPECT_LE(tf.report.backward_error, 2 * work.report.backward_error);
            EXPECT_LE(tf.report.cg_iterations, 50);
            continue;
        }
        EXPECT_EQ(tf.report.used, SolvePrecision::working);
        EXPECT_TRUE(same_bits(tf.x, work.x));
        if (tf.report.float_info == 0) {
            ++exhausted;
            EXPECT_EQ(tf.report.cg_iterations, 50);
            EXPECT_GE(tf.report.refinement_iterations, 2);
        } else {
            EXPECT_GT(tf.report.float_info, 0);
            EXPECT_EQ(tf.report.cg_iterations, 0);
        }
    }
    if (GetParam() == HostBackend::cpu) {
        EXPECT_GE(exhausted, 1);
    }
}

TEST_P(MixedTf32, FallsBackBeyondTf32RangeOfCondition) {
    const std::int64_t n = order();
    for (const double kappa : {1e6, 1e8, 1e10}) {
        SCOPED_TRACE("kappa=" + std::to_string(kappa));
        const Matrix<double> k = dense_spd(n, kappa, 45);
        const Matrix<double> rhs = random_matrix<double>(n, 1, 46);
        const Solved work = solve(ctx(), k, 0.0, rhs, SolvePrecision::working);
        const Solved tf = solve(ctx(), k, 0.0, rhs, SolvePrecision::mixed_tf32);
        print("tf32", n, kappa, tf.report, work.report.backward_error);
        EXPECT_TRUE(tf.report.mixed_fallback);
        EXPECT_EQ(tf.report.requested, SolvePrecision::mixed_tf32);
        EXPECT_EQ(tf.report.used, SolvePrecision::working);
        EXPECT_TRUE(same_bits(tf.x, work.x));
        EXPECT_NEAR(tf.report.backward_error, work.report.backward_error,
                    1e-6 * work.report.backward_error);
    }
}

TEST_P(MixedTf32, FloatDataSolvesAsWorking) {
    const std::int64_t n = 64;
    const Matrix<float> k = host_copy<float>(spd_with_condition(n, 1e2, 47));
    const Matrix<float> rhs = random_matrix<float>(n, 1, 48);
    SolveReport rw, rm;
    const Matrix<float> xw =
        ngd::damped_solve<float>(ctx(), k.const_view(), 0.0, rhs.const_view(), {}, &rw);
    const Matrix<float> xm = ngd::damped_solve<float>(ctx(), k.const_view(), 0.0, rhs.const_view(),
                                                      SolvePrecision::mixed_tf32, &rm);
    EXPECT_TRUE(same_bits(xw, xm));
    EXPECT_EQ(rm.requested, SolvePrecision::mixed_tf32);
    EXPECT_EQ(rm.used, SolvePrecision::working);
    EXPECT_FALSE(rm.mixed_fallback);
    EXPECT_EQ(rm.refinement_iterations + rm.cg_iterations, 0);
}

TEST_P(MixedTf32, NonFiniteAndNotPositiveDefiniteFailAsInWorkingPrecision) {
    for (const double bad :
         {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()}) {
        Matrix<double> k = spd_with_condition(8, 10, 49), rhs = random_matrix<double>(8, 1, 50);
        k(5, 2) = bad;
        const Matrix<double> k_before = host_copy<double>(k);
        EXPECT_THROW(solve(ctx(), k, 0.1, rhs, SolvePrecision::mixed_tf32), ngd::NonFiniteInput);
        EXPECT_TRUE(same_bits(k, k_before));
    }
    Matrix<double> k(3, 3);
    const double v[9] = {1, 2, 3, 2, 4, 5, 3, 5, 12};
    for (int i = 0; i < 9; ++i) k.data()[i] = v[i];
    try {
        solve(ctx(), k, 0.0, random_matrix<double>(3, 1, 51), SolvePrecision::mixed_tf32);
        FAIL() << "no exception";
    } catch (const ngd::NotPositiveDefinite& e) {
        EXPECT_EQ(e.info, 2) << e.what();
    }
}

TEST_P(MixedTf32, PrecisionOutsideTheEnumerationIsRejected) {
    const Matrix<double> k = spd_with_condition(4, 10, 56), rhs = random_matrix<double>(4, 1, 57);
    const auto bad = static_cast<SolvePrecision>(7);
    try {
        solve(ctx(), k, 0.1, rhs, bad);
        FAIL() << "no exception";
    } catch (const ngd::InvalidArgument& e) {
        EXPECT_TRUE(contains(e.what(), "ngd::damped_solve"));
        EXPECT_TRUE(contains(e.what(), "precision"));
        EXPECT_TRUE(contains(e.what(), "7"));
    }
    EXPECT_THROW(
        ngd::direction_from_jacobian<double>(ctx(), put<double>(ctx(), k).const_view(),
                                             put<double>(ctx(), rhs).const_view(), 0.1, {}, bad),
        ngd::InvalidArgument);
}

TEST_P(MixedTf32, DirectionReportsTheTf32Factor) {
    // A rank-deficient Gram made definite by the damping: kappa(K) ~ 1e2.
    const std::int64_t n = 40, p = 25;
    const Matrix<double> j = random_matrix<double>(n, p, 52), u = random_matrix<double>(n, 1, 53);
    SolveReport rw, rt;
    const double lambda = 0.5;
    const Matrix<double> dw =
        host(ctx(), ngd::direction_from_jacobian<double>(ctx(), put<double>(ctx(), j).const_view(),
                                                         put<double>(ctx(), u).const_view(), lambda,
                                                         {}, SolvePrecision::working, &rw));
    const Matrix<double> dt =
        host(ctx(), ngd::direction_from_jacobian<double>(ctx(), put<double>(ctx(), j).const_view(),
                                                         put<double>(ctx(), u).const_view(), lambda,
                                                         {}, SolvePrecision::mixed_tf32, &rt));
    EXPECT_EQ(rt.used, SolvePrecision::mixed_tf32);
    EXPECT_GE(rt.refinement_iterations, 1);
    EXPECT_NEAR_NORMWISE(dt, dw, tolerance<double>(double(n), 1e3));
}

INSTANTIATE_TEST_SUITE_P(Backends, MixedTf32,
                         ::testing::Values(HostBackend::reference, HostBackend::cpu),
                         host_backend_name);

// cpu against the reference: the same blocked algorithm (spotrf, strsm and ssyrk on the rounded
// panel against plain loops): they differ in the order of float sums only.
TEST(MixedTf32Cpu, MatchesReference) {
    if (!cpu_unavailable_reason().empty()) GTEST_SKIP() << cpu_unavailable_reason();
    ngd::Context cpu = ngd::Context::cpu(), ref = ngd::Context::reference();
    const std::int64_t n = 150;
    for (const double kappa : {1e2, 1e4}) {
        SCOPED_TRACE("kappa=" + std::to_string(kappa));
        const Matrix<double> k = dense_spd(n, kappa, 54);
        const Matrix<double> rhs = random_matrix<double>(n, 2, 55);
        const Solved c = solve(cpu, k, 0.0, rhs, SolvePrecision::mixed_tf32);
        const Solved r = solve(ref, k, 0.0, rhs, SolvePrecision::mixed_tf32);
        EXPECT_EQ(c.report.used, SolvePrecision::mixed_tf32);
        EXPECT_EQ(r.report.used, SolvePrecision::mixed_tf32);
        const int steps_c = c.report.refinement_iterations + c.report.cg_iterations;
        const int steps_r = r.report.refinement_iterations + r.report.cg_iterations;
        EXPECT_LE(std::abs(steps_c - steps_r), 3);
        EXPECT_NEAR_NORMWISE(c.x, r.x, tolerance<double>(double(n), kappa));
    }
}

}  // namespace
