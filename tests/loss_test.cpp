// Losses and their factors (loss.hpp, DESIGN.md section 1): e = M u, M M^T = H against closed forms
// and finite differences, softmax's M M^T = diag(p) - p p^T to roundoff, the gradient against
// finite differences of the loss, and logistic factors at margins of +-50 and +-500 against
// long-double closed forms (finite, no spurious 0 or Inf).
#include <cmath>
#include <vector>

#include "test_util.hpp"

namespace {

using namespace ngd;
using ngd_test::Dense;
using ngd_test::tolerance;

constexpr double kFdStep = 1e-6;
constexpr double kFdTolerance = 1e-7;  // as in jacobian_test: truncation ~h^2, roundoff ~u/h

struct Case {
    Loss loss;
    std::int64_t k;
};

Matrix<double> targets_for(Loss loss, std::int64_t k, std::int64_t n, std::uint64_t seed) {
    if (loss == Loss::squared) return ngd_test::random_matrix<double>(k, n, seed);
    return ngd_test::random_labels<double>(n, loss == Loss::logistic ? 2 : k, seed);
}

/// M_i as a Dense k x k, reading the identity when the factor is empty (allowed for M = I only).
Dense factor_block(const LossFactors<double>& lf, Loss loss, std::int64_t k, std::int64_t i) {
    Dense m(k, k);
    if (lf.factor.empty()) {
        EXPECT_EQ(loss, Loss::squared) << "only the squared loss may leave M = I implicit";
        for (std::int64_t o = 0; o < k; ++o) m(o, o) = 1;
        return m;
    }
    for (std::int64_t c = 0; c < k; ++c)
        for (std::int64_t r = 0; r < k; ++r) m(r, c) = lf.factor(r, i * k + c);
    return m;
}

class LossFactorsTest : public ::testing::TestWithParam<Case> {};

TEST_P(LossFactorsTest, FactorsMatchClosedFormsAndFiniteDifferences) {
    const auto [loss, k] = GetParam();
    const std::int64_t n = 6;
    const Matrix<double> f = ngd_test::random_matrix<double>(k, n, 21, -3, 3);
    const Matrix<double> y = targets_for(loss, k, n, 22);
    Context ctx = Context::reference();
    const LossFactors<double> lf = loss_factors(ctx, loss, f.const_view(), y.const_view());
    ASSERT_EQ(lf.gradient.rows(), k);
    ASSERT_EQ(lf.gradient.cols(), n);
    ASSERT_EQ(lf.residual.rows(), k);
    ASSERT_EQ(lf.residual.cols(), n);
    if (!lf.factor.empty()) {
        ASSERT_EQ(lf.factor.rows(), k);
        ASSERT_EQ(lf.factor.cols(), k * n);
    }
    long double value = 0;
    for (std::int64_t i = 0; i < n; ++i) {
        std::vector<long double> fi(k), yi(y.rows());
        for (std::int64_t o = 0; o < k; ++o) fi[o] = f(o, i);
        for (std::int64_t o = 0; o < y.rows(); ++o) yi[o] = y(o, i);
        const ngd_test::ClosedForm c = ngd_test::loss_closed_form(loss, fi, yi);
        value += c.value;
        const Dense m = factor_block(lf, loss, k, i);
        // e = M u and e against its closed form.
        for (std::int64_t o = 0; o < k; ++o) {
            long double mu = 0;
            for (std::int64_t q = 0; q < k; ++q) mu += m(o, q) * lf.residual(q, i);
            EXPECT_NEAR(lf.gradient(o, i), (double)c.e[o], tolerance<double>(k) * 4)
                << i << "," << o;
            EXPECT_NEAR((double)mu, (double)c.e[o], tolerance<double>(k) * 4) << i << "," << o;
        }
        // M M^T = H, to roundoff (softmax: diag(p) - p p^T exactly as DESIGN.md promises).
        EXPECT_NEAR_NORMWISE(ngd_test::matmul(m, false, m, true), c.h, tolerance<double>(k));
        // H by central differences of the library's own gradient: ties M to the e it reports.
        Dense hfd(k, k);
        for (std::int64_t q = 0; q < k; ++q) {
            Matrix<double> fp = ngd_test::host_copy<double>(f), fm = ngd_test::host_copy<double>(f);
            fp(q, i) += kFdStep;
            fm(q, i) -= kFdStep;
            const auto lp = loss_factors(ctx, loss, fp.const_view(), y.const_view());
            const auto lm = loss_factors(ctx, loss, fm.const_view(), y.const_view());
            for (std::int64_t o = 0; o < k; ++o)
                hfd(o, q) = (lp.gradient(o, i) - lm.gradient(o, i)) / (2 * kFdStep);
            // and e by central differences of the loss value (L is the mean: times n).
            EXPECT_NEAR(n * (lp.value - lm.value) / (2 * kFdStep), lf.gradient(q, i),
                        kFdTolerance * 10);
        }
        EXPECT_NEAR_NORMWISE(hfd, c.h, kFdTolerance);
        if (loss != Loss::softmax_cross_entropy) {  // rho = H^-1 e and diag(H^-1)
            ASSERT_EQ(lf.natural_residual.rows(), k);
            ASSERT_EQ(lf.curvature_inverse.rows(), k);
            for (std::int64_t o = 0; o < k; ++o) {
                EXPECT_LT(
                    ngd_test::relative_difference(lf.natural_residual(o, i), c.e[o] / c.h(o, o)),
                    tolerance<double>(8));
                EXPECT_LT(ngd_test::relative_difference(lf.curvature_inverse(o, i), 1 / c.h(o, o)),
                          tolerance<double>(8));
            }
        }
    }
    EXPECT_LT(ngd_test::relative_difference(lf.value, value / n), tolerance<double>(n * k));
}

INSTANTIATE_TEST_SUITE_P(AllLosses, LossFactorsTest,
                         ::testing::Values(Case{Loss::squared, 1}, Case{Loss::squared, 3},
                                           Case{Loss::logistic, 1},
                                           Case{Loss::softmax_cross_entropy, 2},
                                           Case{Loss::softmax_cross_entropy, 4}));

TEST(LossFactors, SoftmaxIsShiftInvariantForHugeLogits) {
    const std::int64_t k = 4, n = 5;
    const Matrix<double> f = ngd_test::random_matrix<double>(k, n, 23, -3, 3);
    Matrix<double> g = ngd_test::host_copy<double>(f);
    for (std::int64_t i = 0; i < g.size(); ++i) g[i] += 1000.0;  // exp overflows without the shift
    const Matrix<double> y = ngd_test::random_labels<double>(n, k, 24);
    Context ctx = Context::reference();
    const auto a = loss_factors(ctx, Loss::softmax_cross_entropy, f.const_view(), y.const_view());
    const auto b = loss_factors(ctx, Loss::softmax_cross_entropy, g.const_view(), y.const_view());
    // f + 1000 keeps about 13 significant digits of f: compare at that level.
    EXPECT_NEAR_NORMWISE(b.factor, a.factor, 1e-11);
    EXPECT_NEAR_NORMWISE(b.residual, a.residual, 1e-11);
    EXPECT_NEAR(b.value, a.value, 1e-11);
}

/// Logistic factors at extreme margins against long-double closed forms: with y = 1 the margin is
/// z, with y = 0 it is -z. Every quantity here is representable in double, so each must come out
/// finite, nonzero and to full relative accuracy.
TEST(LossFactors, LogisticAtExtremeMarginsMatchesLongDouble) {
    Context ctx = Context::reference();
    for (double margin : {50.0, -50.0, 500.0, -500.0}) {
        for (double label : {0.0, 1.0}) {
            const long double s = 2 * label - 1, m = margin;
            Matrix<double> f(1, 1), y(1, 1);
            f[0] = static_cast<double>(s * m);
            y[0] = label;
            const auto lf = loss_factors(ctx, Loss::logistic, f.const_view(), y.const_view());
            const long double sig_m = 1 / (1 + std::exp(-m)), sig_neg = 1 / (1 + std::exp(m));
            const long double expect_m = std::sqrt(sig_m * sig_neg);
            const long double expect_u = -s * std::sqrt(sig_neg / sig_m);
            const long double expect_rho = -s * (1 + std::exp(-m));
            const long double expect_e = -s * sig_neg;
            const long double expect_cinv = (1 + std::exp(std::fabs(m))) *
                                            (1 + std::exp(std::fabs(m))) / std::exp(std::fabs(m));
            const long double expect_value = std::log1p(std::exp(-m));
            SCOPED_TRACE(::testing::Message() << "margin " << margin << ", label " << label);
            const double tol = tolerance<double>(16);
            ASSERT_FALSE(lf.factor.empty());
            EXPECT_LT(ngd_test::relative_difference(lf.factor[0], expect_m), tol) << lf.factor[0];
            EXPECT_LT(ngd_test::relative_difference(lf.residual[0], expect_u), tol)
                << lf.residual[0];
            EXPECT_LT(ngd_test::relative_difference(lf.gradient[0], expect_e), tol)
                << lf.gradient[0];
            EXPECT_LT(ngd_test::relative_difference(lf.natural_residual[0], expect_rho), tol)
                << lf.natural_residual[0];
            EXPECT_LT(ngd_test::relative_difference(lf.curvature_inverse[0], expect_cinv), tol)
                << lf.curvature_inverse[0];
            EXPECT_LT(ngd_test::relative_difference(lf.value, expect_value), tol) << lf.value;
            EXPECT_TRUE(std::isfinite(lf.value) && lf.value > 0);
        }
    }
}

/// gradient() = J^T e / n against central differences of loss(), for every loss, and against
/// J^T e / n assembled from jacobian() and loss_factors().
TEST(LossGradient, MatchesFiniteDifferencesOfLoss) {
    const Mlp model(3, {{5, Activation::tanh, true}, {3, Activation::identity, true}});
    const Mlp binary(3, {{5, Activation::tanh, true}, {1, Activation::identity, true}});
    Context ctx = Context::reference();
    const Matrix<double> x = ngd_test::random_matrix<double>(3, 6, 25);
    for (Loss loss : {Loss::squared, Loss::logistic, Loss::softmax_cross_entropy}) {
        SCOPED_TRACE(to_string(loss));
        const Mlp& net = loss == Loss::logistic ? binary : model;
        const Matrix<double> theta = net.init<double>(26);
        const Matrix<double> y = targets_for(loss, net.n_outputs(), 6, 27);
        const Batch<double> batch{x.const_view(), y.const_view(), {}};
        const Matrix<double> g = gradient(ctx, net, theta.const_view(), batch, loss);
        ASSERT_EQ(g.rows(), net.n_params());
        ASSERT_EQ(g.cols(), 1);
        Matrix<double> fd(net.n_params(), 1);
        Matrix<double> t = ngd_test::host_copy<double>(theta);
        for (std::int64_t j = 0; j < net.n_params(); ++j) {
            const double saved = t[j];
            t[j] = saved + kFdStep;
            const double lp = ngd::loss(ctx, net, t.const_view(), batch, loss);
            t[j] = saved - kFdStep;
            const double lm = ngd::loss(ctx, net, t.const_view(), batch, loss);
            t[j] = saved;
            fd[j] = (lp - lm) / (2 * kFdStep);
        }
        EXPECT_NEAR_NORMWISE(g, fd, kFdTolerance);
        // J^T e / n from the separately checked jacobian() and loss_factors().
        const Matrix<double> f = forward(ctx, net, theta.const_view(), x.const_view());
        const auto lf = loss_factors(ctx, loss, f.const_view(), y.const_view());
        Dense e(f.size(), 1);
        for (std::int64_t r = 0; r < f.size(); ++r) e(r, 0) = lf.gradient[r] / 6.0L;
        const Dense j = ngd_test::to_dense(jacobian(ctx, net, theta.const_view(), x.const_view()));
        EXPECT_NEAR_NORMWISE(g, ngd_test::matmul(j, true, e, false), tolerance<double>(f.size()));
        EXPECT_LT(ngd_test::relative_difference(
                      ngd::loss(ctx, net, theta.const_view(), batch, loss), lf.value),
                  tolerance<double>(f.size()));
    }
}

}  // namespace
