// Every non-reference backend (cpu, CUDA) vs reference for damped_solve(): (G + shift I) X = R for
// N = 1 ... 1024 and 1 to 5 right-hand sides, plus the backward error of the backend's solution
// (which needs no reference), and the Cholesky failure path: LAPACK's info for [[1,2,3],[2,4,5],
// [3,5,12]] and for a minor of order 200 in a 257 x 257 matrix, NaN/Inf inputs, and a context still
// usable afterwards. Each instance skips without its backend.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "backend_fixture.hpp"

namespace {

using namespace ngd_test;

template <class C>
class BackendSolve : public BackendVsReference<C> {};
TYPED_TEST_SUITE(BackendSolve, Cases, CaseNames);

/// G = B B^T / m (N x N, rank min(N, m)) for random B, rounded to T: PSD, typically singular, so
/// the shift alone makes the system definite.
template <class T>
Matrix<T> random_gram(std::int64_t n, std::int64_t m, std::uint64_t seed) {
    const Matrix<double> b = random_matrix<double>(n, m, seed);
    Matrix<T> g(n, n);
    for (std::int64_t j = 0; j < n; ++j) {
        for (std::int64_t i = j; i < n; ++i) {
            double s = 0;
            for (std::int64_t l = 0; l < m; ++l) s += b(i, l) * b(j, l);
            g(i, j) = g(j, i) = static_cast<T>(s / static_cast<double>(m));
        }
    }
    return g;
}

/// ||(G + shift I) X - R||_F / (||G + shift I||_F ||X||_F), in double: Cholesky's backward error.
template <class T>
double backward_error(const Matrix<double>& g, double shift, const Matrix<T>& x,
                      const Matrix<double>& rhs) {
    const std::int64_t n = g.rows();
    double res = 0, norm_k = 0, norm_x = 0;
    for (std::int64_t c = 0; c < x.cols(); ++c) {
        for (std::int64_t i = 0; i < n; ++i) {
            double s = shift * double(x(i, c)) - rhs(i, c);
            for (std::int64_t j = 0; j < n; ++j) s += g(i, j) * double(x(j, c));
            res += s * s;
            norm_x += double(x(i, c)) * double(x(i, c));
        }
    }
    for (std::int64_t j = 0; j < n; ++j) {
        for (std::int64_t i = 0; i < n; ++i) {
            const double k = g(i, j) + (i == j ? shift : 0.0);
            norm_k += k * k;
        }
    }
    return std::sqrt(res) / (std::sqrt(norm_k) * std::sqrt(norm_x));
}

TYPED_TEST(BackendSolve, MatchesReference) {
    using T = typename TypeParam::Scalar;
    struct Size {
        std::int64_t n, rank, n_rhs;
    };
    // N = 1024 at three ranks and right-hand-side counts: LAPACK's blocked, threaded potrf and
    // cuSOLVER's blocked one.
    for (const Size s : {Size{1, 1, 1}, Size{31, 8, 1}, Size{33, 33, 3}, Size{257, 64, 5},
                         Size{1024, 64, 1}, Size{1024, 96, 2}, Size{1024, 200, 3}}) {
        SCOPED_TRACE("N=" + std::to_string(s.n) + " rhs=" + std::to_string(s.n_rhs));
        const Matrix<T> g = random_gram<T>(s.n, s.rank, 40 + s.n);
        const Matrix<T> rhs = random_matrix<T>(s.n, s.n_rhs, 50 + s.n);
        const Matrix<double> g_ref = host_copy<double>(g), rhs_ref = host_copy<double>(rhs);
        // shift = lambda_max / kConditionTarget bounds cond(G + shift I) (see damped_condition).
        const double shift = well_conditioned_damping(g_ref, 1);
        const double cond = damped_condition(g_ref, shift, shift);
        ASSERT_LE(cond, kConditionTarget + 2);

        const Matrix<T> g_dev = put<T>(this->dev(), g), rhs_dev = put<T>(this->dev(), rhs);
        const Matrix<T> x = host(this->dev(), ngd::damped_solve(this->dev(), g_dev.const_view(),
                                                                shift, rhs_dev.const_view()));
        const Matrix<double> x_ref =
            ngd::damped_solve(this->ref(), g_ref.const_view(), shift, rhs_ref.const_view());
        EXPECT_NEAR_NORMWISE(x, x_ref, tolerance<T>(static_cast<double>(s.n), cond));
        EXPECT_LE(backward_error(g_ref, shift, x, rhs_ref), tolerance<T>(static_cast<double>(s.n)));
        // The inputs are const: the backend's copies of G and R are as they were.
        EXPECT_TRUE(same_bits(host(this->dev(), g_dev), g));
        EXPECT_TRUE(same_bits(host(this->dev(), rhs_dev), rhs));
    }
}

// Only the lower triangle is read: garbage above the diagonal changes nothing.
TYPED_TEST(BackendSolve, ReadsOnlyTheLowerTriangle) {
    using T = typename TypeParam::Scalar;
    const std::int64_t n = 65;
    Matrix<T> g = random_gram<T>(n, 65, 3);
    const Matrix<T> rhs = random_matrix<T>(n, 2, 4);
    const Matrix<double> g_ref = host_copy<double>(g), rhs_ref = host_copy<double>(rhs);
    const double shift = well_conditioned_damping(g_ref, 1);
    for (std::int64_t j = 1; j < n; ++j) {
        for (std::int64_t i = 0; i < j; ++i) g(i, j) = T(1e3);
    }
    const Matrix<T> g_dev = put<T>(this->dev(), g), rhs_dev = put<T>(this->dev(), rhs);
    const Matrix<T> x = host(this->dev(), ngd::damped_solve(this->dev(), g_dev.const_view(), shift,
                                                            rhs_dev.const_view()));
    const Matrix<double> x_ref =
        ngd::damped_solve(this->ref(), g_ref.const_view(), shift, rhs_ref.const_view());
    EXPECT_NEAR_NORMWISE(
        x, x_ref, tolerance<T>(static_cast<double>(n), damped_condition(g_ref, shift, shift)));
}

/// Solves (g + shift I) X = R on the backend's context, expecting NotPositiveDefinite; returns it.
template <class T>
ngd::NotPositiveDefinite expect_not_positive_definite(ngd::Context& dev, const Matrix<T>& g,
                                                      double shift) {
    const Matrix<T> rhs = random_matrix<T>(g.rows(), 1, 9);
    const Matrix<T> g_dev = put<T>(dev, g), rhs_dev = put<T>(dev, rhs);
    try {
        ngd::damped_solve(dev, g_dev.const_view(), shift, rhs_dev.const_view());
    } catch (const ngd::NotPositiveDefinite& e) {
        EXPECT_TRUE(same_bits(host(dev, g_dev), g));
        EXPECT_TRUE(same_bits(host(dev, rhs_dev), rhs));
        return e;
    }
    ADD_FAILURE() << "damped_solve did not throw NotPositiveDefinite";
    return ngd::NotPositiveDefinite("none", 0, 0, 0);
}

// Pivots 1, then 4 - 2^2 = 0: the leading minor of order 2 is singular, so info = 2 exactly.
TYPED_TEST(BackendSolve, NotPositiveDefiniteReportsInfo2) {
    using T = typename TypeParam::Scalar;
    Matrix<T> g(3, 3);
    const T entries[9] = {1, 2, 3, 2, 4, 5, 3, 5, 12};
    for (int i = 0; i < 9; ++i) g[i] = entries[i];
    const ngd::NotPositiveDefinite e = expect_not_positive_definite(this->dev(), g, 0.0);
    EXPECT_EQ(e.info, 2);
    EXPECT_EQ(e.order, 3);
    EXPECT_EQ(e.damping, 0.0);
    // The context survives the failure: the same matrix with a large enough shift solves.
    const Matrix<T> rhs = random_matrix<T>(3, 1, 5);
    const Matrix<T> g_dev = put<T>(this->dev(), g), rhs_dev = put<T>(this->dev(), rhs);
    const Matrix<double> g_ref = host_copy<double>(g), rhs_ref = host_copy<double>(rhs);
    const Matrix<T> x = host(this->dev(), ngd::damped_solve(this->dev(), g_dev.const_view(), 10.0,
                                                            rhs_dev.const_view()));
    const Matrix<double> x_ref =
        ngd::damped_solve(this->ref(), g_ref.const_view(), 10.0, rhs_ref.const_view());
    EXPECT_NEAR_NORMWISE(x, x_ref, tolerance<T>(3, damped_condition(g_ref, 10.0, 10.0)));
}

// K = L D L^T with L unit lower triangular and close to I (well conditioned) and D = I except
// D(199) = -1: the pivots are D up to roundoff, so the first non-positive one is at order 200,
// past the blocks a blocked factorization finishes first.
TYPED_TEST(BackendSolve, NotPositiveDefiniteReportsDeepMinor) {
    using T = typename TypeParam::Scalar;
    const std::int64_t n = 257, bad = 199;
    Matrix<double> l = random_matrix<double>(n, n, 21, -1.0 / 256, 1.0 / 256);
    for (std::int64_t j = 0; j < n; ++j) {
        for (std::int64_t i = 0; i <= j; ++i) l(i, j) = i == j ? 1.0 : 0.0;
    }
    Matrix<T> g(n, n);
    for (std::int64_t j = 0; j < n; ++j) {
        for (std::int64_t i = 0; i < n; ++i) {
            double s = 0;
            for (std::int64_t c = 0; c <= std::min(i, j); ++c)
                s += l(i, c) * l(j, c) * (c == bad ? -1 : 1);
            g(i, j) = static_cast<T>(s);
        }
    }
    const ngd::NotPositiveDefinite e = expect_not_positive_definite(this->dev(), g, 0.0);
    EXPECT_EQ(e.info, bad + 1);
    EXPECT_EQ(e.order, n);
}

TYPED_TEST(BackendSolve, NonFiniteGramOrRhsIsRejected) {
    using T = typename TypeParam::Scalar;
    const std::int64_t n = 31;
    const Matrix<T> g = random_gram<T>(n, 31, 6);
    const Matrix<T> rhs = random_matrix<T>(n, 2, 7);
    {
        Matrix<T> bad = host_copy<T>(g);
        bad(5, 2) = bad(2, 5) = std::numeric_limits<T>::quiet_NaN();
        const Matrix<T> g_dev = put<T>(this->dev(), bad), rhs_dev = put<T>(this->dev(), rhs);
        try {
            ngd::damped_solve(this->dev(), g_dev.const_view(), 1.0, rhs_dev.const_view());
            ADD_FAILURE() << "NaN in the Gram matrix was not rejected";
        } catch (const ngd::NonFiniteInput& e) {
            EXPECT_EQ(e.first_index, 5 + 2 * n);  // (5, 2), column-major; (2, 5) comes later
            EXPECT_GE(e.count, 1);
        }
    }
    {
        Matrix<T> bad = host_copy<T>(rhs);
        bad(17, 1) = std::numeric_limits<T>::infinity();
        const Matrix<T> g_dev = put<T>(this->dev(), g), rhs_dev = put<T>(this->dev(), bad);
        try {
            ngd::damped_solve(this->dev(), g_dev.const_view(), 1.0, rhs_dev.const_view());
            ADD_FAILURE() << "Inf in the right-hand side was not rejected";
        } catch (const ngd::NonFiniteInput& e) {
            EXPECT_EQ(e.first_index, 17 + n);
            EXPECT_EQ(e.count, 1);
        }
    }
}

}  // namespace
