// damped_solve against known solutions (random SPD systems of odd sizes, several right-hand sides,
// float and double), the exact non-SPD case [[1,2,3],[2,4,5],[3,5,12]] (info 2), and a
// rank-deficient J (duplicated samples) at lambda = 0 through direction(), which must throw, not
// return NaN.
#include <cmath>

#include "test_util.hpp"

namespace {

using namespace ngd;
using ngd_test::Dense;
using ngd_test::tolerance;

template <class T>
class DampedSolve : public ::testing::Test {};
using Precisions = ::testing::Types<float, double>;
TYPED_TEST_SUITE(DampedSolve, Precisions);

/// G = B B^T / N (B uniform in [-1, 1]: eigenvalues in [0, ~1.4]) plus `shift`, a known X and
/// rhs = (G + shift I) X rounded to T. The strict upper triangle of G holds a huge value: only the
/// lower triangle may be read.
TYPED_TEST(DampedSolve, RecoversKnownSolution) {
    using T = TypeParam;
    Context ctx = Context::reference();
    for (std::int64_t nn : {1, 31, 33, 257}) {
        for (std::int64_t r : {1, 3}) {
            SCOPED_TRACE(::testing::Message() << "N " << nn << ", rhs " << r);
            const double shift = 0.5;
            const Dense b = ngd_test::to_dense(ngd_test::random_matrix<T>(nn, nn, 80 + nn));
            Dense g = ngd_test::matmul(b, false, b, true);
            for (auto& v : g.a) v = static_cast<T>(v / nn);  // G exactly as the solver sees it
            Matrix<T> gm = ngd_test::from_dense<T>(g);
            for (std::int64_t c = 0; c < nn; ++c)
                for (std::int64_t i = 0; i < c; ++i) gm(i, c) = static_cast<T>(1e30);
            const Matrix<T> x = ngd_test::random_matrix<T>(nn, r, 90 + nn);
            Dense k = g;
            for (std::int64_t i = 0; i < nn; ++i) k(i, i) += static_cast<T>(shift);
            const Matrix<T> rhs =
                ngd_test::from_dense<T>(ngd_test::matmul(k, false, ngd_test::to_dense(x), false));
            // The exact solution of the rounded system is the reference (rhs rounding moves it).
            const Dense xr = ngd_test::cholesky_solve(k, ngd_test::to_dense(rhs));
            const Matrix<T> g_before = ngd_test::host_copy<T>(gm),
                            rhs_before = ngd_test::host_copy<T>(rhs);
            const Matrix<T> sol = damped_solve(ctx, gm.const_view(), shift, rhs.const_view());
            ASSERT_EQ(sol.rows(), nn);
            ASSERT_EQ(sol.cols(), r);
            EXPECT_NEAR_NORMWISE(sol, xr, tolerance<T>(nn, ngd_test::condition_spd(k)));
            EXPECT_TRUE(ngd_test::same_bits(gm, g_before)) << "damped_solve wrote to its input";
            EXPECT_TRUE(ngd_test::same_bits(rhs, rhs_before)) << "damped_solve wrote to its input";
        }
    }
}

TYPED_TEST(DampedSolve, ShiftIsAddedToTheDiagonal) {
    using T = TypeParam;
    Context ctx = Context::reference();
    Matrix<T> g(2, 2), rhs(2, 1);  // G = [[1, 1], [1, 1]] is singular; G + 1 I = [[2, 1], [1, 2]]
    g(0, 0) = g(1, 0) = g(0, 1) = g(1, 1) = 1;
    rhs[0] = 3;
    rhs[1] = 3;
    const Matrix<T> x = damped_solve(ctx, g.const_view(), 1.0, rhs.const_view());
    EXPECT_NEAR(x[0], 1.0, tolerance<T>(2, 3));
    EXPECT_NEAR(x[1], 1.0, tolerance<T>(2, 3));
}

/// The leading 2 x 2 minor 1*4 - 2*2 is exactly 0 in floating point: Cholesky must stop there.
TYPED_TEST(DampedSolve, NonSpdReportsLeadingMinor) {
    using T = TypeParam;
    Context ctx = Context::reference();
    const T a[9] = {1, 2, 3, 2, 4, 5, 3, 5, 12};
    Matrix<T> g(3, 3), rhs(3, 1);
    for (int i = 0; i < 9; ++i) g[i] = a[i];
    rhs[0] = 1;
    try {
        damped_solve(ctx, g.const_view(), 0.0, rhs.const_view());
        ADD_FAILURE() << "no NotPositiveDefinite";
    } catch (const NotPositiveDefinite& e) {
        EXPECT_EQ(e.info, 2);
        EXPECT_EQ(e.order, 3);
        EXPECT_EQ(e.damping, 0.0);
    }
}

/// Two identical samples make J J^T exactly singular: at lambda = 0 there is no direction, and the
/// library must say so rather than return NaN or a garbage step.
TEST(Direction, DuplicatedSamplesAtZeroDampingThrowNotPositiveDefinite) {
    const Mlp model = two_layer_relu(3, 16);
    const Matrix<double> theta = model.init<double>(5);
    Matrix<double> x = ngd_test::random_unit_columns<double>(3, 4, 6);
    for (std::int64_t r = 0; r < 3; ++r) x(r, 3) = x(r, 1);
    const Matrix<double> y = ngd_test::random_matrix<double>(1, 4, 7);
    const Batch<double> batch{x.const_view(), y.const_view(), {}};
    Context ctx = Context::reference();
    for (GramMode mode : {GramMode::structured, GramMode::explicit_jacobian}) {
        SCOPED_TRACE(to_string(mode));
        try {
            const Matrix<double> d = direction(ctx, model, theta.const_view(), batch, Loss::squared,
                                               0.0, {mode, SolveForm::factor});
            ADD_FAILURE() << "no NotPositiveDefinite; d[0] = " << d[0];
        } catch (const NotPositiveDefinite& e) {
            EXPECT_EQ(e.order, 4);
            EXPECT_GE(e.info, 1);
            EXPECT_LE(e.info, 4);
        }
        // A positive damping makes the same system solvable.
        const Matrix<double> d = direction(ctx, model, theta.const_view(), batch, Loss::squared,
                                           1e-3, {mode, SolveForm::factor});
        for (std::int64_t i = 0; i < d.size(); ++i) ASSERT_TRUE(std::isfinite(d[i]));
    }
}

}  // namespace
