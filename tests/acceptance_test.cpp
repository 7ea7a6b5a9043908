// The acceptance test of a solve (DESIGN.md section 4, docs/errors.md): a Cholesky solution is
// taken when the residual of the equilibrated system, |D^-1/2 (K alpha - u)| / |D^-1/2 u| with
// D = diag(K), is small. That test does not depend on the scaling of the rows, so lambda = 0 is
// accepted on systems whose Gram diagonal spans many orders of magnitude (logistic margins of +-50
// in the factor form, saturated softplus outputs), while a singular or inconsistent system, whose
// huge alpha leaves an O(1) residual, stays rejected. Every entry point applies it: direction,
// damped_solve, direction_from_jacobian and the optimizer.
#include <cmath>
#include <limits>

#include "test_util.hpp"

namespace {

using namespace ngd;
using ngd_test::Dense;

struct Problem {
    Mlp model;
    Matrix<double> theta, x, y;
    Batch<double> batch() const { return {x.const_view(), y.const_view(), {}}; }
};

/// Scales the last layer's weights so that the largest |output| is `target`.
void scale_outputs(Problem& pr, double target) {
    Context ctx = Context::reference();
    const Matrix<double> f = forward(ctx, pr.model, pr.theta.const_view(), pr.x.const_view());
    double fmax = 0;
    for (std::int64_t i = 0; i < f.size(); ++i) fmax = std::max(fmax, std::fabs(f[i]));
    const std::int64_t last = pr.model.n_layers() - 1;
    for (std::int64_t i = pr.model.weight_offset(last); i < pr.model.n_params(); ++i)
        pr.theta[i] *= target / fmax;
}

/// Logistic, n = 8 < p = 31, margins from -50 to +50 (every third sample labelled against its
/// prediction): in the factor form M = sqrt(sigma(m) sigma(-m)) spans e^-25, so diag(K) at
/// lambda = 0 runs from about 1e-22 to 1.
Problem margins50() {
    Problem pr{Mlp(3, {{6, Activation::tanh, true}, {1, Activation::identity, true}}), {}, {}, {}};
    pr.theta = pr.model.init<double>(51);
    pr.x = ngd_test::random_matrix<double>(3, 8, 53);
    pr.y = Matrix<double>(1, 8);
    scale_outputs(pr, 50);
    Context ctx = Context::reference();
    const Matrix<double> f = forward(ctx, pr.model, pr.theta.const_view(), pr.x.const_view());
    for (std::int64_t i = 0; i < f.size(); ++i) pr.y[i] = (f[i] > 0) == (i % 3 != 0) ? 1.0 : 0.0;
    return pr;
}

/// Squared loss with a softplus output unit whose pre-activations run from about -40 to +4: the
/// rows of J of the saturated samples carry sigma(z) ~ e^-40, so diag(J J^T) spans 30 orders.
Problem saturated_softplus() {
    Problem pr{Mlp(3, {{6, Activation::tanh, true}, {1, Activation::softplus, true}}), {}, {}, {}};
    pr.theta = pr.model.init<double>(61);
    pr.x = ngd_test::random_matrix<double>(3, 6, 63);
    scale_outputs(pr, 1);  // pre-activations of the output in [-1, 1] before the shift
    // Spread the pre-activations: a large weight scale and a bias that pushes most of them down.
    const std::int64_t last = pr.model.n_layers() - 1;
    for (std::int64_t i = pr.model.weight_offset(last); i < pr.model.bias_offset(last); ++i)
        pr.theta[i] *= 30;
    pr.theta[pr.model.bias_offset(last)] = -45;
    pr.y = ngd_test::random_matrix<double>(1, 6, 64);
    return pr;
}

template <class T>
Matrix<T> cast(const Matrix<double>& m) {
    return ngd_test::host_copy<T>(m.const_view());
}

/// d = J^T (J J^T)^-1 r in long double, from the library's J and a closed-form r (the minimum-norm
/// lambda = 0 step, Zhang et al.'s).
Dense minimum_norm_step(const Dense& j, const Dense& r) {
    const Dense g = ngd_test::matmul(j, false, j, true);
    return ngd_test::matmul(j, true, ngd_test::cholesky_solve(g, r), false);
}

/// The diagonal of J J^T really spans many orders: the point of the two problems above.
double diagonal_spread(const Dense& j, const std::vector<long double>& row_weight) {
    long double lo = std::numeric_limits<long double>::infinity(), hi = 0;
    for (std::int64_t i = 0; i < j.rows; ++i) {
        long double s = 0;
        for (std::int64_t c = 0; c < j.cols; ++c) s += j(i, c) * j(i, c);
        s *= row_weight[i] * row_weight[i];
        lo = std::min(lo, s);
        hi = std::max(hi, s);
    }
    return static_cast<double>(hi / lo);
}

TEST(Acceptance, ZeroDampingSaturatedSoftplusIsAccepted) {
    const Problem pr = saturated_softplus();
    Context ctx = Context::reference();
    const Dense j =
        ngd_test::to_dense(jacobian(ctx, pr.model, pr.theta.const_view(), pr.x.const_view()));
    ASSERT_GT(diagonal_spread(j, std::vector<long double>(j.rows, 1.0L)), 1e20);
    const Matrix<double> f = forward(ctx, pr.model, pr.theta.const_view(), pr.x.const_view());
    Dense r(f.size(), 1);
    for (std::int64_t i = 0; i < f.size(); ++i) r(i, 0) = (long double)f[i] - pr.y[i];
    const Dense expected = minimum_norm_step(j, r);
    for (GramMode mode : {GramMode::structured, GramMode::explicit_jacobian}) {
        SCOPED_TRACE(to_string(mode));
        Matrix<double> d;
        ASSERT_NO_THROW(d = direction(ctx, pr.model, pr.theta.const_view(), pr.batch(),
                                      Loss::squared, 0.0, {mode, SolveForm::factor}));
        EXPECT_NEAR_NORMWISE(d, expected, 1e-9);
    }
    // The optimizer takes the lambda = 0 step on the first rung and reports the residual.
    Problem q = saturated_softplus();
    NaturalGradient<double> opt({1.0, 0.0});
    const StepReport rep = opt.step(ctx, q.model, q.theta.view(), q.batch(), Loss::squared);
    EXPECT_EQ(rep.rung, Rung::cholesky);
    EXPECT_EQ(rep.cholesky_tries, 1);
    EXPECT_EQ(rep.damping, 0.0);
    EXPECT_LT(rep.solve_residual, 1e-10);
}

TEST(Acceptance, ZeroDampingFloatFactorFormAtMargins50IsAccepted) {
    const Problem pr = margins50();
    Context ctx = Context::reference();
    // The double natural-residual step at lambda = 0 is checked against the primal elsewhere
    // (direction_test); here it is the yardstick of the float factor-form step.
    const Matrix<double> want =
        direction(ctx, pr.model, pr.theta.const_view(), pr.batch(), Loss::logistic, 0.0,
                  {GramMode::structured, SolveForm::natural_residual});
    const Matrix<float> theta = cast<float>(pr.theta), x = cast<float>(pr.x), y = cast<float>(pr.y);
    const Batch<float> batch{x.const_view(), y.const_view(), {}};
    for (GramMode mode : {GramMode::structured, GramMode::explicit_jacobian}) {
        SCOPED_TRACE(to_string(mode));
        Matrix<float> d;
        ASSERT_NO_THROW(d = direction(ctx, pr.model, theta.const_view(), batch, Loss::logistic, 0.0,
                                      {mode, SolveForm::factor}));
        // Float data (theta, x rounded) and an equilibrated condition near 1e2-1e3: 1e-3 is far
        // above roundoff and far below any wrong answer.
        EXPECT_NEAR_NORMWISE(d, want, 1e-3);
    }
}

/// An exactly singular, inconsistent system: G = B B^T with B of rank N - 1 and a right-hand side
/// outside its range. Cholesky may pass with a tiny last pivot and a huge alpha; the residual of
/// that alpha is O(1) and must be rejected, in every scaling of the rows.
template <class T>
class SingularSystem : public ::testing::Test {};
using Precisions = ::testing::Types<float, double>;
TYPED_TEST_SUITE(SingularSystem, Precisions);

TYPED_TEST(SingularSystem, InconsistentRightHandSideIsRejected) {
    using T = TypeParam;
    Context ctx = Context::reference();
    const std::int64_t nn = 6;
    for (double row_scale : {1.0, 1e6}) {
        SCOPED_TRACE(::testing::Message() << "row scale " << row_scale);
        const Matrix<double> b = ngd_test::random_matrix<double>(nn, nn - 1, 71);
        Dense bd = ngd_test::to_dense(b);
        for (std::int64_t c = 0; c < nn - 1; ++c) bd(0, c) *= row_scale;  // D-scaling of row 0
        const Dense g = ngd_test::matmul(bd, false, bd, true);
        // rhs = a vector with a component orthogonal to range(B): inconsistent.
        const Matrix<T> gm = ngd_test::from_dense<T>(g);
        const Matrix<T> rhs = ngd_test::random_matrix<T>(nn, 1, 72);
        EXPECT_THROW(damped_solve(ctx, gm.const_view(), 0.0, rhs.const_view()),
                     NotPositiveDefinite);
        EXPECT_THROW(direction_from_jacobian(ctx, ngd_test::from_dense<T>(bd).const_view(),
                                             rhs.const_view(), 0.0),
                     NotPositiveDefinite);
    }
}

/// |D^-1/2 (K x - u)| / |D^-1/2 u| with D = diag(K), in long double: the acceptance test written
/// independently of the library.
double equilibrated_residual(const Dense& k, const Dense& x, const Dense& u) {
    long double r2 = 0, u2 = 0;
    for (std::int64_t i = 0; i < k.rows; ++i) {
        long double kx = 0;
        for (std::int64_t c = 0; c < k.cols; ++c) kx += k(i, c) * x(c, 0);
        r2 += (kx - u(i, 0)) * (kx - u(i, 0)) / k(i, i);
        u2 += u(i, 0) * u(i, 0) / k(i, i);
    }
    return static_cast<double>(std::sqrt(r2 / u2));
}

/// direction_from_jacobian and damped_solve in float on a nearly rank-deficient J (two rows
/// 1e-4 apart, opposite residuals): the float solve is useless. Each entry point must either say
/// so or return an answer that passes the acceptance test when checked in long double (for
/// lambda = 0, J d = u).
TEST(Acceptance, InaccurateFloatSolvesAreRejectedByEveryEntryPoint) {
    Context ctx = Context::reference();
    const std::int64_t nn = 4, p = 6;
    Matrix<float> j = ngd_test::random_matrix<float>(nn, p, 81);
    for (std::int64_t c = 0; c < p; ++c) j(1, c) = j(0, c) * (1 + 1e-4f * (c % 2 ? 1 : -1));
    Matrix<float> u = ngd_test::random_matrix<float>(nn, 1, 82);
    u[0] = 1;
    u[1] = -1;
    const Dense jd = ngd_test::to_dense(j), ud = ngd_test::to_dense(u);

    try {
        const Matrix<float> d = direction_from_jacobian(ctx, j.const_view(), u.const_view(), 0.0);
        // J d = J J^T alpha: the residual of the system through d.
        const Dense jdd = ngd_test::matmul(jd, false, ngd_test::to_dense(d), false);
        const Dense g = ngd_test::matmul(jd, false, jd, true);
        long double r2 = 0, u2 = 0;
        for (std::int64_t i = 0; i < nn; ++i) {
            r2 += (jdd(i, 0) - ud(i, 0)) * (jdd(i, 0) - ud(i, 0)) / g(i, i);
            u2 += ud(i, 0) * ud(i, 0) / g(i, i);
        }
        EXPECT_LT(static_cast<double>(std::sqrt(r2 / u2)), 1e-2)
            << "direction_from_jacobian accepted a float solve that fails the acceptance test";
    } catch (const NotPositiveDefinite& e) {
        EXPECT_TRUE(ngd_test::contains(e.what(), "ngd::direction_from_jacobian"));
    }
    const Matrix<float> g = ngd_test::from_dense<float>(ngd_test::matmul(jd, false, jd, true));
    try {
        const Matrix<float> x = damped_solve(ctx, g.const_view(), 0.0, u.const_view());
        EXPECT_LT(equilibrated_residual(ngd_test::to_dense(g), ngd_test::to_dense(x), ud), 1e-2)
            << "damped_solve accepted a float solve that fails the acceptance test";
    } catch (const NotPositiveDefinite& e) {
        EXPECT_TRUE(ngd_test::contains(e.what(), "ngd::damped_solve"));
    }
}

}  // namespace

namespace {

using namespace ngd;

/// lambda = 0 with N > p: A A^T (N x N) has rank <= p < N, so the Gram-side system is singular
/// even though F (p x p) is invertible. direction() refuses it by design; the documented
/// alternative, NaturalGradient with damping 0, no raises and the pseudo-inverse fallback, gives
/// A^T (A A^T)^+ u = F^{-1} grad L, the undamped step of the primal solve.
TEST(Acceptance, ZeroDampingWithMoreRowsThanParametersUsesThePseudoInverse) {
    const Mlp model(2, {{2, Activation::tanh, true}, {1, Activation::identity, true}});
    const std::int64_t n = 16;
    ASSERT_GT(n, model.n_params());
    const Matrix<double> theta0 = model.init<double>(91);
    const Matrix<double> x = ngd_test::random_matrix<double>(2, n, 92);
    const Matrix<double> y = ngd_test::random_matrix<double>(1, n, 93);
    const Batch<double> batch{x.const_view(), y.const_view(), {}};
    Context ctx = Context::reference();
    EXPECT_THROW(direction(ctx, model, theta0.const_view(), batch, Loss::squared, 0.0),
                 NotPositiveDefinite);

    const Matrix<double> f = forward(ctx, model, theta0.const_view(), x.const_view());
    const ngd_test::Primal primal = ngd_test::primal_direction(
        ngd_test::to_dense(jacobian(ctx, model, theta0.const_view(), x.const_view())),
        ngd_test::loss_closed_forms(Loss::squared, f.const_view(), y.const_view()), 0.0L);
    NaturalGradient<double>::Options o;
    o.damping = 0;
    o.damping_raises = 0;
    o.fallback = Fallback::pseudo_inverse;
    Matrix<double> theta = ngd_test::host_copy<double>(theta0);
    const StepReport r =
        NaturalGradient<double>(o).step(ctx, model, theta.view(), batch, Loss::squared);
    EXPECT_TRUE(r.fallback_used);
    EXPECT_EQ(r.damping, 0.0);
    Matrix<double> d(model.n_params(), 1);
    for (std::int64_t i = 0; i < d.size(); ++i) d[i] = theta0[i] - theta[i];
    EXPECT_NEAR_NORMWISE(d, primal.d, ngd_test::tolerance<double>(n, primal.condition));
}

}  // namespace

namespace {

using namespace ngd;
using ngd_test::Dense;

template <class T>
class WideDiagonal : public ::testing::Test {};
using WidePrecisions = ::testing::Types<float, double>;
TYPED_TEST_SUITE(WideDiagonal, WidePrecisions);

/// A well-conditioned J (N = 6 < p = 10) whose rows are scaled from 1 down to 1e-15 (double) or
/// 1e-9 (float): diag(J J^T) spans 30 (18) orders, the equilibrated system stays well
/// conditioned. damped_solve and direction_from_jacobian accept lambda = 0 and match the long
/// double solution; a plain |K alpha - u| / |u| would refuse them.
TYPED_TEST(WideDiagonal, ZeroDampingIsAcceptedByTheStageFunctions) {
    using T = TypeParam;
    const bool is_double = sizeof(T) == sizeof(double);
    const std::int64_t nn = 6, p = 10;
    const double smallest = is_double ? 1e-15 : 1e-9;
    Matrix<T> j = ngd_test::random_matrix<T>(nn, p, 101);
    for (std::int64_t i = 0; i < nn; ++i) {
        const double s = std::pow(smallest, double(i) / double(nn - 1));
        for (std::int64_t c = 0; c < p; ++c) j(i, c) = T(double(j(i, c)) * s);
    }
    const Matrix<T> u = ngd_test::random_matrix<T>(nn, 1, 102);
    const Dense jd = ngd_test::to_dense(j);
    const Dense g = ngd_test::matmul(jd, false, jd, true);
    const Dense alpha = ngd_test::cholesky_solve(g, ngd_test::to_dense(u));
    const Dense want_d = ngd_test::matmul(jd, true, alpha, false);
    const double tol = is_double ? 1e-9 : 1e-3;
    Context ctx = Context::reference();
    Matrix<T> d;
    ASSERT_NO_THROW(d = direction_from_jacobian(ctx, j.const_view(), u.const_view(), 0.0));
    EXPECT_NEAR_NORMWISE(d, want_d, tol);
    // damped_solve on the Gram rounded to T, against the long-double solve of that same matrix.
    const Matrix<T> gt = ngd_test::from_dense<T>(g);
    const Dense gtd = ngd_test::to_dense(gt);
    Matrix<T> x;
    ASSERT_NO_THROW(x = damped_solve(ctx, gt.const_view(), 0.0, u.const_view()));
    const Dense xs = ngd_test::cholesky_solve(gtd, ngd_test::to_dense(u));
    // Compare in the equilibrated scaling, where the solution is well determined.
    Matrix<double> xe(nn, 1), xse(nn, 1);
    for (std::int64_t i = 0; i < nn; ++i) {
        const double sd = std::sqrt(double(gtd(i, i)));
        xe[i] = double(x[i]) * sd;
        xse[i] = double(xs(i, 0)) * sd;
    }
    EXPECT_NEAR_NORMWISE(xe, xse, tol);
}

}  // namespace
