// Every non-reference backend (cpu, CUDA) vs reference for the stages that evaluate the model:
// forward outputs, the loss value, the Jacobian and the gradient, on every model of
// model_problems() (presets, every activation, bias on/off, NTK, frozen layer, width 1, n = 1 and
// 257) in float and double. Each instance skips without its backend.
#include <gtest/gtest.h>

#include "backend_fixture.hpp"

namespace {

using namespace ngd_test;

template <class C>
class BackendForward : public BackendVsReference<C> {};
TYPED_TEST_SUITE(BackendForward, Cases, CaseNames);

TYPED_TEST(BackendForward, OutputsMatchReference) {
    using T = typename TypeParam::Scalar;
    for (const auto& p : model_problems<T>()) {
        SCOPED_TRACE(p.name);
        const auto c = upload<T>(this->dev(), p);
        const auto r = upload<double>(this->ref(), p);
        const Matrix<T> f = ngd::forward(this->dev(), p.model, c.theta.const_view(),
                                         c.inputs.const_view(), c.rows.const_view());
        const Matrix<double> f_ref = ngd::forward(this->ref(), p.model, r.theta.const_view(),
                                                  r.inputs.const_view(), r.rows.const_view());
        ASSERT_EQ(f.space(), TestFixture::space());
        EXPECT_NEAR_NORMWISE(host(this->dev(), f), f_ref, tolerance<T>(chain_length(p.model)));
    }
}

TYPED_TEST(BackendForward, LossMatchesReference) {
    using T = typename TypeParam::Scalar;
    for (const auto& p : model_problems<T>()) {
        SCOPED_TRACE(p.name);
        const auto c = upload<T>(this->dev(), p);
        const auto r = upload<double>(this->ref(), p);
        const double value =
            ngd::loss(this->dev(), p.model, c.theta.const_view(), c.batch(), p.loss);
        const double expected =
            ngd::loss(this->ref(), p.model, r.theta.const_view(), r.batch(), p.loss);
        // The loss sums n per-sample losses of k outputs each, after the forward chain.
        const double tol = tolerance<T>(chain_length(p.model) + static_cast<double>(p.big_n()));
        EXPECT_LE(relative_difference(value, expected), tol) << value << " vs " << expected;
    }
}

TYPED_TEST(BackendForward, JacobianMatchesReference) {
    using T = typename TypeParam::Scalar;
    for (const auto& p : model_problems<T>()) {
        SCOPED_TRACE(p.name);
        const auto c = upload<T>(this->dev(), p);
        const auto r = upload<double>(this->ref(), p);
        const Matrix<T> j = ngd::jacobian(this->dev(), p.model, c.theta.const_view(),
                                          c.inputs.const_view(), c.rows.const_view());
        const Matrix<double> j_ref = ngd::jacobian(this->ref(), p.model, r.theta.const_view(),
                                                   r.inputs.const_view(), r.rows.const_view());
        const Matrix<T> j_host = host(this->dev(), j);
        EXPECT_NEAR_NORMWISE(j_host, j_ref, tolerance<T>(chain_length(p.model)));
        // Frozen layers' columns are exactly zero, not merely small.
        for (std::int64_t l = 0; l < p.model.n_layers(); ++l) {
            if (p.model.layer(l).trainable) continue;
            const std::int64_t end =
                l + 1 < p.model.n_layers() ? p.model.weight_offset(l + 1) : p.model.n_params();
            for (std::int64_t col = p.model.weight_offset(l); col < end; ++col) {
                for (std::int64_t row = 0; row < j_host.rows(); ++row) {
                    ASSERT_EQ(j_host(row, col), T(0)) << "frozen layer " << l << ", column " << col;
                }
            }
        }
    }
}

TYPED_TEST(BackendForward, GradientMatchesReference) {
    using T = typename TypeParam::Scalar;
    for (const auto& p : model_problems<T>()) {
        SCOPED_TRACE(p.name);
        const auto c = upload<T>(this->dev(), p);
        const auto r = upload<double>(this->ref(), p);
        const Matrix<T> g =
            ngd::gradient(this->dev(), p.model, c.theta.const_view(), c.batch(), p.loss);
        const Matrix<double> g_ref =
            ngd::gradient(this->ref(), p.model, r.theta.const_view(), r.batch(), p.loss);
        ASSERT_EQ(g.rows(), p.p());
        ASSERT_EQ(g.cols(), 1);
        // J^T e / n sums over the N rows of J after the forward and backward chain.
        const double len = chain_length(p.model) + static_cast<double>(p.big_n());
        EXPECT_NEAR_NORMWISE(host(this->dev(), g), g_ref, tolerance<T>(len));
    }
}

}  // namespace
