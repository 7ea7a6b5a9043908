// cpu vs reference on what the other suites leave out: views whose leading dimension exceeds their
// rows (inputs, Gram, right-hand sides padded with NaN, so any read of the padding shows), passed
// straight to BLAS and LAPACK as their lda. Skips without the cpu backend.
#include <gtest/gtest.h>

#include <limits>
#include <string>

#include "cpu_fixture.hpp"

namespace {

using namespace ngd_test;
using ngd::GramMode;

template <class T>
class CpuLayout : public CpuVsReference<T> {};
TYPED_TEST_SUITE(CpuLayout, Precisions);

/// A copy in ctx's memory of host `m` with `pad` unused rows below each column, and the padded view
/// of it.
template <class T>
struct Padded {
    Matrix<T> storage;
    ngd::MatrixView<const T> view;
    Padded(ngd::Context& ctx, const Matrix<T>& m, std::int64_t pad) {
        Matrix<T> host_padded(m.rows() + pad, m.cols());
        for (std::int64_t c = 0; c < m.cols(); ++c) {
            for (std::int64_t r = 0; r < m.rows() + pad; ++r) {
                // Padding holds NaN: any read of it shows in the result.
                host_padded(r, c) = r < m.rows() ? m(r, c) : std::numeric_limits<T>::quiet_NaN();
            }
        }
        storage = ngd::to_context(ctx, host_padded.const_view());
        view = ngd::MatrixView<const T>(storage.data(), m.rows(), m.cols(), m.rows() + pad,
                                        storage.space());
    }
};

TYPED_TEST(CpuLayout, PaddedInputsGiveTheSameGram) {
    using T = TypeParam;
    const Problem<T> p = make_problem<T>(
        "padded",
        ngd::Mlp(31, {layer(33, ngd::Activation::tanh), layer(3, ngd::Activation::identity)}),
        ngd::Loss::softmax_cross_entropy, 33, 41);
    const auto c = upload<T>(this->cpu(), p);
    const Padded<T> x(this->cpu(), p.inputs, 5);
    const ngd::Batch<T> batch{x.view, c.targets.const_view(), {}};
    const auto r = upload<double>(this->ref(), p);
    const Matrix<double> g_ref = ngd::gram(this->ref(), p.model, r.theta.const_view(), r.batch(),
                                           p.loss, GramMode::structured);
    for (GramMode mode : {GramMode::structured, GramMode::explicit_jacobian}) {
        const Matrix<T> g = host(this->cpu(), ngd::gram(this->cpu(), p.model, c.theta.const_view(),
                                                        batch, p.loss, mode));
        EXPECT_NEAR_NORMWISE(g, g_ref, tolerance<T>(double(p.p() + 2 * p.k() + 4)));
    }
}

TYPED_TEST(CpuLayout, PaddedGramAndRightHandSidesSolve) {
    using T = TypeParam;
    const std::int64_t n = 33;
    // G = B B^T + n I: condition below 5 for B uniform in [-1, 1) of width n.
    const Matrix<T> b = random_matrix<T>(n, n, 42);
    Matrix<T> g(n, n);
    for (std::int64_t i = 0; i < n; ++i) {
        for (std::int64_t j = 0; j < n; ++j) {
            double s = i == j ? double(n) : 0.0;
            for (std::int64_t k = 0; k < n; ++k) s += double(b(i, k)) * double(b(j, k));
            g(i, j) = T(s);
        }
    }
    const Matrix<T> rhs = random_matrix<T>(n, 3, 43);
    const Padded<T> g_dev(this->cpu(), g, 3), rhs_dev(this->cpu(), rhs, 7);
    const Matrix<T> x =
        host(this->cpu(), ngd::damped_solve(this->cpu(), g_dev.view, 0.5, rhs_dev.view));
    const Matrix<double> g64 = host_copy<double>(g), rhs64 = host_copy<double>(rhs);
    const Matrix<double> x_ref =
        ngd::damped_solve(this->ref(), g64.const_view(), 0.5, rhs64.const_view());
    EXPECT_NEAR_NORMWISE(x, x_ref, tolerance<T>(double(n), 5.0));
}

}  // namespace
