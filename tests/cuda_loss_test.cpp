// CUDA vs reference for loss_factors(): value, gradient e, factor M, residual u, natural residual
// rho and diag(H^-1), for the three losses, k = 1 and k > 1, n = 1, 31, 257, in float and double;
// then entry by entry at extreme margins (logistic +-50, softmax logits spread over 80), where only
// log-space evaluation stays accurate. Skips without a device.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "cuda_fixture.hpp"

namespace {

using namespace ngd_test;
using ngd::Loss;

template <class T>
class CudaLoss : public CudaVsReference<T> {};
TYPED_TEST_SUITE(CudaLoss, Precisions);

struct LossCase {
    Loss loss;
    std::int64_t k;
};

const std::vector<LossCase> kLossCases = {{Loss::squared, 1},
                                          {Loss::squared, 3},
                                          {Loss::logistic, 1},
                                          {Loss::softmax_cross_entropy, 2},
                                          {Loss::softmax_cross_entropy, 5}};

/// Every member of the CUDA factors against the reference ones. Each entry is a few elementary
/// functions of one sample's k outputs (softmax adds a length-k sum); exp and log of outputs of
/// size |f| have relative condition about |f|, hence `cond`.
template <class T>
void expect_factors_near(ngd::Context& cuda, const ngd::LossFactors<T>& c,
                         const ngd::LossFactors<double>& r, std::int64_t k, std::int64_t n,
                         double cond) {
    const double tol = tolerance<T>(static_cast<double>(k) + 4, cond);
    EXPECT_LE(relative_difference(c.value, r.value),
              tolerance<T>(static_cast<double>(n * k) + 4, cond))
        << c.value << " vs " << r.value;
    EXPECT_NEAR_NORMWISE(host(cuda, c.gradient), r.gradient, tol);
    EXPECT_NEAR_NORMWISE(host(cuda, c.factor), r.factor, tol);
    EXPECT_NEAR_NORMWISE(host(cuda, c.residual), r.residual, tol);
    ASSERT_EQ(c.natural_residual.empty(), r.natural_residual.empty());
    ASSERT_EQ(c.curvature_inverse.empty(), r.curvature_inverse.empty());
    if (!r.natural_residual.empty()) {
        EXPECT_NEAR_NORMWISE(host(cuda, c.natural_residual), r.natural_residual, tol);
        EXPECT_NEAR_NORMWISE(host(cuda, c.curvature_inverse), r.curvature_inverse, tol);
    }
}

TYPED_TEST(CudaLoss, FactorsMatchReference) {
    using T = TypeParam;
    std::uint64_t seed = 100;
    for (const LossCase& lc : kLossCases) {
        for (const std::int64_t n : {1, 31, 257}) {
            SCOPED_TRACE(std::string(ngd::to_string(lc.loss)) + " k=" + std::to_string(lc.k) +
                         " n=" + std::to_string(n));
            ++seed;
            const Matrix<T> f = random_matrix<T>(lc.k, n, seed, -3.0, 3.0);
            const Matrix<T> y = random_targets<T>(lc.loss, lc.k, n, seed + 1000);
            const Matrix<T> f_dev = put<T>(this->cuda(), f), y_dev = put<T>(this->cuda(), y);
            const Matrix<double> f_ref = host_copy<double>(f), y_ref = host_copy<double>(y);
            const auto c =
                ngd::loss_factors(this->cuda(), lc.loss, f_dev.const_view(), y_dev.const_view());
            const auto r =
                ngd::loss_factors(this->ref(), lc.loss, f_ref.const_view(), y_ref.const_view());
            expect_factors_near(this->cuda(), c, r, lc.k, n, 4.0);  // |f| <= 3
        }
    }
}

// Margins m = s z from -50 to 50 for both labels: M spans e^-25, u and rho reach e^+-50, and every
// one of them keeps its relative accuracy (to the condition |m| of exp at m), entry by entry.
TYPED_TEST(CudaLoss, LogisticKeepsRelativeAccuracyAtExtremeMargins) {
    using T = TypeParam;
    const std::vector<double> margins = {-50, -30, -10, -1, 0, 1, 10, 30, 50};
    const auto n = static_cast<std::int64_t>(2 * margins.size());
    Matrix<T> f(1, n), y(1, n);
    for (std::size_t i = 0; i < margins.size(); ++i) {
        f[2 * i] = T(margins[i]);  // y = 1: s = +1, z = m
        y[2 * i] = T(1);
        f[2 * i + 1] = T(-margins[i]);  // y = 0: s = -1, z = -m
        y[2 * i + 1] = T(0);
    }
    const Matrix<T> f_dev = put<T>(this->cuda(), f), y_dev = put<T>(this->cuda(), y);
    const Matrix<double> f_ref = host_copy<double>(f), y_ref = host_copy<double>(y);
    const auto c =
        ngd::loss_factors(this->cuda(), Loss::logistic, f_dev.const_view(), y_dev.const_view());
    const auto r =
        ngd::loss_factors(this->ref(), Loss::logistic, f_ref.const_view(), y_ref.const_view());
    EXPECT_LE(relative_difference(c.value, r.value), tolerance<T>(static_cast<double>(n), 51));
    const Matrix<T> members[] = {host(this->cuda(), c.gradient), host(this->cuda(), c.factor),
                                 host(this->cuda(), c.residual),
                                 host(this->cuda(), c.natural_residual),
                                 host(this->cuda(), c.curvature_inverse)};
    const Matrix<double>* expected[] = {&r.gradient, &r.factor, &r.residual, &r.natural_residual,
                                        &r.curvature_inverse};
    const char* names[] = {"gradient", "factor", "residual", "natural_residual",
                           "curvature_inverse"};
    for (int m = 0; m < 5; ++m) {
        ASSERT_EQ(members[m].size(), n) << names[m];
        ASSERT_EQ(expected[m]->size(), n) << names[m];
        for (std::int64_t i = 0; i < n; ++i) {
            const double margin = std::fabs(static_cast<double>(f[i]));
            EXPECT_LE(relative_difference(members[m][i], (*expected[m])[i]),
                      tolerance<T>(4, 1 + margin))
                << names[m] << "[" << i << "] at margin " << margin << ": " << members[m][i]
                << " vs " << (*expected[m])[i];
        }
    }
}

// Softmax with logits spread over [-40, 40]: probabilities down to e^-80, sqrt(p) and
// u = (p - y) / sqrt(p) over 35 orders of magnitude. Compared sample by sample (one k x k block of
// M, one column of e and u each), so large samples cannot hide a wrong small one.
TYPED_TEST(CudaLoss, SoftmaxKeepsAccuracyWithSpreadLogits) {
    using T = TypeParam;
    const std::int64_t k = 5, n = 31;
    const Matrix<T> f = random_matrix<T>(k, n, 7, -40.0, 40.0);
    const Matrix<T> y = random_labels<T>(n, k, 8);
    const Matrix<T> f_dev = put<T>(this->cuda(), f), y_dev = put<T>(this->cuda(), y);
    const Matrix<double> f_ref = host_copy<double>(f), y_ref = host_copy<double>(y);
    const auto c = ngd::loss_factors(this->cuda(), Loss::softmax_cross_entropy, f_dev.const_view(),
                                     y_dev.const_view());
    const auto r = ngd::loss_factors(this->ref(), Loss::softmax_cross_entropy, f_ref.const_view(),
                                     y_ref.const_view());
    EXPECT_TRUE(c.natural_residual.empty());
    EXPECT_TRUE(c.curvature_inverse.empty());
    const double tol = tolerance<T>(static_cast<double>(k) + 4, 81);
    EXPECT_LE(relative_difference(c.value, r.value), tol);
    const Matrix<T> e = host(this->cuda(), c.gradient), m = host(this->cuda(), c.factor),
                    u = host(this->cuda(), c.residual);
    for (std::int64_t i = 0; i < n; ++i) {
        SCOPED_TRACE("sample " + std::to_string(i));
        EXPECT_NEAR_NORMWISE(e.const_view().col_block(i, 1),
                             r.gradient.const_view().col_block(i, 1), tol);
        EXPECT_NEAR_NORMWISE(u.const_view().col_block(i, 1),
                             r.residual.const_view().col_block(i, 1), tol);
        EXPECT_NEAR_NORMWISE(m.const_view().col_block(i * k, k),
                             r.factor.const_view().col_block(i * k, k), tol);
    }
}

}  // namespace
