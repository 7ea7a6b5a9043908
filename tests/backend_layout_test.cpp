// Every non-reference backend (cpu, CUDA) vs reference on what the other suites leave out: views
// whose leading dimension exceeds their rows (inputs, Gram, right-hand sides padded with NaN, so
// any read of the padding shows), passed straight to BLAS/LAPACK or cuBLAS/cuSOLVER as their lda;
// and, in double, the CUDA-core Gram tile kernel that the default FP64 tensor-core kernel replaces
// on sm_80+. Each instance skips without its backend.
#include <gtest/gtest.h>

#include <limits>
#include <string>

#include "backend_fixture.hpp"
#if defined(NGD_TESTS_WITH_CUDA)
#include "baselines.cuh"
#endif

namespace {

using namespace ngd_test;
using ngd::GramMode;

template <class C>
class BackendLayout : public BackendVsReference<C> {};
TYPED_TEST_SUITE(BackendLayout, Cases, CaseNames);

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

TYPED_TEST(BackendLayout, PaddedInputsGiveTheSameGram) {
    using T = typename TypeParam::Scalar;
    const Problem<T> p = make_problem<T>(
        "padded",
        ngd::Mlp(31, {layer(33, ngd::Activation::tanh), layer(3, ngd::Activation::identity)}),
        ngd::Loss::softmax_cross_entropy, 33, 41);
    const auto c = upload<T>(this->dev(), p);
    const Padded<T> x(this->dev(), p.inputs, 5);
    const ngd::Batch<T> batch{x.view, c.targets.const_view(), {}};
    const auto r = upload<double>(this->ref(), p);
    const Matrix<double> g_ref = ngd::gram(this->ref(), p.model, r.theta.const_view(), r.batch(),
                                           p.loss, GramMode::structured);
    for (GramMode mode : {GramMode::structured, GramMode::explicit_jacobian}) {
        const Matrix<T> g = host(this->dev(), ngd::gram(this->dev(), p.model, c.theta.const_view(),
                                                        batch, p.loss, mode));
        EXPECT_NEAR_NORMWISE(g, g_ref, tolerance<T>(double(p.p() + 2 * p.k() + 4)));
    }
}

TYPED_TEST(BackendLayout, PaddedGramAndRightHandSidesSolve) {
    using T = typename TypeParam::Scalar;
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
    const Padded<T> g_dev(this->dev(), g, 3), rhs_dev(this->dev(), rhs, 7);
    const Matrix<T> x =
        host(this->dev(), ngd::damped_solve(this->dev(), g_dev.view, 0.5, rhs_dev.view));
    const Matrix<double> g64 = host_copy<double>(g), rhs64 = host_copy<double>(rhs);
    const Matrix<double> x_ref =
        ngd::damped_solve(this->ref(), g64.const_view(), 0.5, rhs64.const_view());
    EXPECT_NEAR_NORMWISE(x, x_ref, tolerance<T>(double(n), 5.0));
}

#if defined(NGD_TESTS_WITH_CUDA)
TEST(CudaLayoutDouble, CudaCoreGramKernelMatchesReference) {
    const std::string why = cuda_unavailable_reason();
    if (!why.empty()) GTEST_SKIP() << why;
    ngd::Context cuda = ngd::Context::cuda();
    ngd::Context ref = ngd::Context::reference();
    ngd::cuda::baseline::set_double_tensor_cores(cuda, false);
    for (const auto& p : model_problems<double>()) {
        SCOPED_TRACE(p.name);
        const auto c = upload<double>(cuda, p);
        const auto r = upload<double>(ref, p);
        const Matrix<double> g_ref =
            ngd::gram(ref, p.model, r.theta.const_view(), r.batch(), p.loss, GramMode::structured);
        for (GramMode mode : {GramMode::structured, GramMode::explicit_jacobian}) {
            const Matrix<double> g =
                host(cuda, ngd::gram(cuda, p.model, c.theta.const_view(), c.batch(), p.loss, mode));
            EXPECT_NEAR_NORMWISE(
                g, g_ref, tolerance<double>(double(p.p() + 2 * p.k()) + chain_length(p.model)));
        }
    }
}
#endif

}  // namespace
