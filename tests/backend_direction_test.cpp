// Every non-reference backend (cpu, CUDA) vs reference for the damped natural-gradient direction:
// direction() in both forms (factor and natural residual, where the loss allows it) and both Gram
// modes on every model of model_problems(), and direction_from_jacobian() with and without a factor
// M, N < p and N > p. The damping makes the system's condition at most 11
// (well_conditioned_damping); the tolerance carries the sensitivity of d = A^T alpha to roundoff in
// the Gram matrix (DirectionOracle). Each instance skips without its backend.
#include <gtest/gtest.h>

#include <string>

#include "backend_fixture.hpp"

namespace {

using namespace ngd_test;
using ngd::GramMode;
using ngd::SolveForm;

template <class C>
class BackendDirection : public BackendVsReference<C> {};
TYPED_TEST_SUITE(BackendDirection, Cases, CaseNames);

/// A damping with cond(A A^T + n lambda I) <= kConditionTarget + 1, from the reference Gram.
template <class T>
double damping_for(ngd::Context& ref, const Problem<T>& p) {
    const auto r = upload<double>(ref, p);
    return well_conditioned_damping(
        ngd::gram(ref, p.model, r.theta.const_view(), r.batch(), p.loss), p.n());
}

template <class T>
void check_direction(ngd::Context& dev, ngd::Context& ref, const Problem<T>& p, SolveForm form) {
    const double lambda = damping_for(ref, p);
    const DirectionOracle oracle = direction_oracle(ref, p, lambda, form);
    const double tol = tolerance<T>(direction_length(p), oracle.sensitivity);
    // A tolerance near 1 would pass anything; the damping above keeps it far below.
    ASSERT_LT(tol, 0.25) << "condition " << oracle.condition << ", sensitivity "
                         << oracle.sensitivity;
    const auto c = upload<T>(dev, p);
    for (const GramMode mode : {GramMode::structured, GramMode::explicit_jacobian}) {
        SCOPED_TRACE(ngd::to_string(mode));
        const Matrix<T> d = ngd::direction(dev, p.model, c.theta.const_view(), c.batch(), p.loss,
                                           lambda, {mode, form});
        EXPECT_NEAR_NORMWISE(host(dev, d), oracle.d, tol);
    }
}

TYPED_TEST(BackendDirection, FactorFormMatchesReference) {
    for (const auto& p : model_problems<typename TypeParam::Scalar>()) {
        SCOPED_TRACE(p.name);
        check_direction(this->dev(), this->ref(), p, SolveForm::factor);
    }
}

// The natural-residual form needs an invertible output Hessian: squared and logistic losses.
TYPED_TEST(BackendDirection, NaturalResidualFormMatchesReference) {
    for (const auto& p : model_problems<typename TypeParam::Scalar>()) {
        if (p.loss == ngd::Loss::softmax_cross_entropy) continue;
        SCOPED_TRACE(p.name);
        check_direction(this->dev(), this->ref(), p, SolveForm::natural_residual);
    }
}

// automatic picks natural_residual for logistic and factor otherwise: the same numbers as the
// explicitly requested form on the reference.
TYPED_TEST(BackendDirection, AutomaticFormMatchesReference) {
    using T = typename TypeParam::Scalar;
    for (const auto& p : model_problems<T>()) {
        SCOPED_TRACE(p.name);
        const SolveForm form =
            p.loss == ngd::Loss::logistic ? SolveForm::natural_residual : SolveForm::factor;
        const double lambda = damping_for(this->ref(), p);
        const DirectionOracle oracle = direction_oracle(this->ref(), p, lambda, form);
        const auto c = upload<T>(this->dev(), p);
        const Matrix<T> d =
            ngd::direction(this->dev(), p.model, c.theta.const_view(), c.batch(), p.loss, lambda);
        EXPECT_NEAR_NORMWISE(host(this->dev(), d), oracle.d,
                             tolerance<T>(direction_length(p), oracle.sensitivity));
    }
}

/// A A^T on the host for A = blockdiag(M)^T J (M empty: A = J), in double.
Matrix<double> host_gram(const Matrix<double>& j, const Matrix<double>& m) {
    const std::int64_t big_n = j.rows(), p = j.cols(), k = m.empty() ? 1 : m.rows();
    Matrix<double> a = host_copy<double>(j);
    if (!m.empty()) {
        for (std::int64_t i = 0; i < big_n / k; ++i) {
            for (std::int64_t col = 0; col < p; ++col) {
                for (std::int64_t r = 0; r < k; ++r) {
                    double s = 0;  // (M_i^T J_i)(r, col) = sum_c M_i(c, r) J(i k + c, col)
                    for (std::int64_t cc = 0; cc < k; ++cc)
                        s += m(cc, i * k + r) * j(i * k + cc, col);
                    a(i * k + r, col) = s;
                }
            }
        }
    }
    Matrix<double> g(big_n, big_n);
    for (std::int64_t c = 0; c < big_n; ++c) {
        for (std::int64_t r = 0; r < big_n; ++r) {
            double s = 0;
            for (std::int64_t l = 0; l < p; ++l) s += a(r, l) * a(c, l);
            g(r, c) = s;
        }
    }
    return g;
}

/// Bring-your-own-Jacobian on J (N x p), u (N x 1) and optionally M (k x N), all in T.
template <class T>
void check_from_jacobian(ngd::Context& dev, ngd::Context& ref, const Matrix<T>& j,
                         const Matrix<T>& u, const Matrix<T>& m) {
    const std::int64_t big_n = j.rows(), k = m.empty() ? 1 : m.rows(), n = big_n / k;
    const Matrix<double> jd = host_copy<double>(j), ud = host_copy<double>(u);
    const Matrix<double> md = m.empty() ? Matrix<double>() : host_copy<double>(m);
    const Matrix<double> g0 = host_gram(jd, md);
    const double lambda = well_conditioned_damping(g0, n);
    const double shift = static_cast<double>(n) * lambda;
    const Matrix<double> d_ref = ngd::direction_from_jacobian(ref, jd.const_view(), ud.const_view(),
                                                              lambda, md.const_view());
    const Matrix<double> alpha = ngd::damped_solve(ref, g0.const_view(), shift, ud.const_view());
    const double bound = direction_sensitivity(largest_eigenvalue(g0) + shift, shift, alpha, d_ref);
    const double len = static_cast<double>(j.cols() + 2 * big_n + 2 * k);

    const Matrix<T> jc = put<T>(dev, j), uc = put<T>(dev, u), mc = put<T>(dev, m);
    const Matrix<T> d = ngd::direction_from_jacobian(dev, jc.const_view(), uc.const_view(), lambda,
                                                     mc.const_view());
    EXPECT_NEAR_NORMWISE(host(dev, d), d_ref, tolerance<T>(len, bound));
}

TYPED_TEST(BackendDirection, FromJacobianMatchesReference) {
    using T = typename TypeParam::Scalar;
    struct Shape {
        std::int64_t big_n, p;
    };
    // N < p (full row rank), N > p (rank p: the damping alone makes K definite), N = 1, N = 257.
    for (const Shape s : {Shape{33, 65}, Shape{65, 31}, Shape{1, 1}, Shape{257, 129}}) {
        SCOPED_TRACE("N=" + std::to_string(s.big_n) + " p=" + std::to_string(s.p));
        const Matrix<T> j = random_matrix<T>(s.big_n, s.p, 60 + s.big_n);
        const Matrix<T> u = random_matrix<T>(s.big_n, 1, 61 + s.big_n);
        check_from_jacobian(this->dev(), this->ref(), j, u, Matrix<T>());
    }
}

// With the softmax factor of a real batch: A = blockdiag(M)^T J, k = 3.
TYPED_TEST(BackendDirection, FromJacobianWithFactorMatchesReference) {
    using T = typename TypeParam::Scalar;
    const auto problems = model_problems<T>();
    const Problem<T>& p = problems[3];  // every activation, softmax, k = 3
    ASSERT_EQ(p.loss, ngd::Loss::softmax_cross_entropy);
    const auto r = upload<double>(this->ref(), p);
    const Matrix<double> j = ngd::jacobian(this->ref(), p.model, r.theta.const_view(),
                                           r.inputs.const_view(), r.rows.const_view());
    const Matrix<double> f = ngd::forward(this->ref(), p.model, r.theta.const_view(),
                                          r.inputs.const_view(), r.rows.const_view());
    const auto factors =
        ngd::loss_factors(this->ref(), p.loss, f.const_view(), r.targets.const_view());
    const MatrixView<const double> u(factors.residual.data(), p.big_n(), 1);
    check_from_jacobian(this->dev(), this->ref(), host_copy<T>(j), host_copy<T>(u),
                        host_copy<T>(factors.factor));
}

}  // namespace
