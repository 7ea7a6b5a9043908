// direction() against the primal solve (J^T H J / n + lambda I)^-1 grad L in long double, for every
// loss, both solve forms and both Gram modes; logistic at margins up to +-50 with lambda > 0, and
// at lambda = 0 (natural-residual form) against J^T (J J^T)^-1 rho; direction_from_jacobian against
// direction() and against the primal solve for random J and factors.
#include <functional>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace {

using namespace ngd;
using ngd_test::Dense;
using ngd_test::tolerance;

struct Problem {
    Mlp model;
    Matrix<double> theta, x, y;
    Loss loss;
    Batch<double> batch() const { return {x.const_view(), y.const_view(), {}}; }
};

Problem make_problem(Mlp model, Loss loss, std::int64_t n, std::uint64_t seed) {
    Problem pr{std::move(model), {}, {}, {}, loss};
    pr.theta = pr.model.init<double>(seed);
    const Matrix<double> b =
        ngd_test::random_matrix<double>(pr.model.n_params(), 1, seed + 1, -0.5, 0.5);
    for (std::int64_t l = 0; l < pr.model.n_layers(); ++l)
        for (std::int64_t r = 0; pr.model.bias_offset(l) >= 0 && r < pr.model.layer(l).n_out; ++r)
            pr.theta[pr.model.bias_offset(l) + r] = b[pr.model.bias_offset(l) + r];
    pr.x = ngd_test::random_matrix<double>(pr.model.n_inputs(), n, seed + 2);
    const std::int64_t k = pr.model.n_outputs();
    pr.y = loss == Loss::squared
               ? ngd_test::random_matrix<double>(k, n, seed + 3)
               : ngd_test::random_labels<double>(n, loss == Loss::logistic ? 2 : k, seed + 3);
    return pr;
}

/// The primal direction from jacobian() and closed-form e_i, H_i at forward()'s outputs.
ngd_test::Primal primal(Context& ctx, const Problem& pr, double lambda) {
    const Matrix<double> f = forward(ctx, pr.model, pr.theta.const_view(), pr.x.const_view());
    const Dense j =
        ngd_test::to_dense(jacobian(ctx, pr.model, pr.theta.const_view(), pr.x.const_view()));
    return ngd_test::primal_direction(
        j, ngd_test::loss_closed_forms(pr.loss, f.const_view(), pr.y.const_view()), lambda);
}

/// Checks every applicable form and Gram mode against the primal solve; tolerance<double>(p, kappa)
/// with kappa the condition of the primal system, which must leave the check meaningful (< 1e-9).
void check_all_forms(const Problem& pr, double lambda) {
    Context ctx = Context::reference();
    const ngd_test::Primal ref = primal(ctx, pr, lambda);
    const double tol = tolerance<double>(pr.model.n_params(), ref.condition);
    ASSERT_LT(tol, 1e-9) << "primal system too ill-conditioned for a sharp check: "
                         << ref.condition;
    std::vector<SolveForm> forms = {SolveForm::automatic, SolveForm::factor};
    if (pr.loss != Loss::softmax_cross_entropy) forms.push_back(SolveForm::natural_residual);
    for (GramMode mode : {GramMode::structured, GramMode::explicit_jacobian})
        for (SolveForm form : forms) {
            SCOPED_TRACE(::testing::Message()
                         << to_string(mode) << ", " << to_string(form) << ", lambda " << lambda);
            const Matrix<double> d = direction(ctx, pr.model, pr.theta.const_view(), pr.batch(),
                                               pr.loss, lambda, DirectionOptions{mode, form});
            ASSERT_EQ(d.rows(), pr.model.n_params());
            ASSERT_EQ(d.cols(), 1);
            EXPECT_NEAR_NORMWISE(d, ref.d, tol);
        }
}

struct DirCase {
    std::string name;
    std::function<Mlp()> make;
    Loss loss;
    std::int64_t n;
};
std::ostream& operator<<(std::ostream& os, const DirCase& c) { return os << c.name; }

class DirectionTest : public ::testing::TestWithParam<DirCase> {};

TEST_P(DirectionTest, EqualsPrimalSolve) {
    const DirCase& c = GetParam();
    const Problem pr = make_problem(c.make(), c.loss, c.n, 41);
    for (double lambda : {1e-1, 1.0}) check_all_forms(pr, lambda);
}

INSTANTIATE_TEST_SUITE_P(
    Losses, DirectionTest,
    ::testing::Values(
        DirCase{"squared_two_layer_relu", [] { return two_layer_relu(3, 12); }, Loss::squared, 6},
        DirCase{"squared_k2",
                [] {
                    return Mlp(3, {{5, Activation::tanh, true}, {2, Activation::identity, true}});
                },
                Loss::squared, 5},
        DirCase{"squared_frozen_middle",
                [] {
                    return Mlp(3, {{4, Activation::softplus, true},
                                   {4, Activation::tanh, false, false},
                                   {1, Activation::identity, true}});
                },
                Loss::squared, 7},
        DirCase{
            "logistic",
            [] {
                return Mlp(3, {{6, Activation::softplus, true}, {1, Activation::identity, true}});
            },
            Loss::logistic, 8},
        DirCase{"softmax_k3",
                [] {
                    return Mlp(3, {{5, Activation::gelu, true}, {3, Activation::identity, true}},
                               Parameterization::ntk);
                },
                Loss::softmax_cross_entropy, 6}),
    [](const ::testing::TestParamInfo<DirCase>& info) { return info.param.name; });

/// A logistic problem whose last layer is scaled so that the largest |margin| is 50; every third
/// sample is labelled against its prediction, so margins run from -50 to +50.
Problem confident_logistic() {
    Problem pr =
        make_problem(Mlp(3, {{6, Activation::tanh, true}, {1, Activation::identity, true}}),
                     Loss::logistic, 8, 51);
    Context ctx = Context::reference();
    const Matrix<double> f0 = forward(ctx, pr.model, pr.theta.const_view(), pr.x.const_view());
    double fmax = 0;
    for (std::int64_t i = 0; i < f0.size(); ++i) fmax = std::max(fmax, std::fabs(f0[i]));
    for (std::int64_t i = pr.model.weight_offset(1); i < pr.model.n_params(); ++i)
        pr.theta[i] *= 50 / fmax;
    const Matrix<double> f = forward(ctx, pr.model, pr.theta.const_view(), pr.x.const_view());
    for (std::int64_t i = 0; i < f.size(); ++i) pr.y[i] = (f[i] > 0) == (i % 3 != 0) ? 1.0 : 0.0;
    return pr;
}

TEST(Direction, LogisticAtMargins50BothFormsMatchPrimal) {
    const Problem pr = confident_logistic();
    for (double lambda : {1e-2, 1.0}) check_all_forms(pr, lambda);
}

/// lambda = 0, n < p (J full row rank): d = J^T (J J^T)^-1 rho, Zhang et al.'s step, with rho the
/// natural residual in closed form (logistic: -s (1 + e^-m), up to e^50 here; squared: f - y).
TEST(Direction, ZeroDampingNaturalResidualMatchesMinimumNormSolution) {
    for (Loss loss : {Loss::logistic, Loss::squared}) {
        SCOPED_TRACE(to_string(loss));
        Problem pr = confident_logistic();
        Context ctx = Context::reference();
        const Matrix<double> f = forward(ctx, pr.model, pr.theta.const_view(), pr.x.const_view());
        if (loss == Loss::squared)
            pr.y = ngd_test::random_matrix<double>(1, pr.x.cols(), 52, -50, 50);
        pr.loss = loss;
        const Dense j =
            ngd_test::to_dense(jacobian(ctx, pr.model, pr.theta.const_view(), pr.x.const_view()));
        Dense rho(f.size(), 1);
        for (std::int64_t i = 0; i < f.size(); ++i) {
            const long double s = 2.0L * pr.y[i] - 1, m = s * f[i];
            rho(i, 0) =
                loss == Loss::logistic ? -s * (1 + std::exp(-m)) : f[i] - (long double)pr.y[i];
        }
        const Dense g = ngd_test::matmul(j, false, j, true);
        const Dense expected = ngd_test::matmul(j, true, ngd_test::cholesky_solve(g, rho), false);
        const double tol = tolerance<double>(pr.model.n_params(), ngd_test::condition_spd(g));
        ASSERT_LT(tol, 1e-8) << "J J^T too ill-conditioned for a sharp check";
        for (GramMode mode : {GramMode::structured, GramMode::explicit_jacobian}) {
            SCOPED_TRACE(to_string(mode));
            const Matrix<double> d =
                direction(ctx, pr.model, pr.theta.const_view(), pr.batch(), loss, 0.0,
                          DirectionOptions{mode, SolveForm::natural_residual});
            EXPECT_NEAR_NORMWISE(d, expected, tol);
            const Matrix<double> a =
                direction(ctx, pr.model, pr.theta.const_view(), pr.batch(), loss, 0.0,
                          DirectionOptions{mode, SolveForm::automatic});
            EXPECT_NEAR_NORMWISE(a, expected, tol);
        }
    }
}

TEST(DirectionFromJacobian, EqualsDirectionWithLibraryFactors) {
    const std::vector<Problem> problems = [] {
        std::vector<Problem> v;
        v.push_back(
            make_problem(Mlp(3, {{5, Activation::tanh, true}, {2, Activation::identity, true}}),
                         Loss::squared, 5, 61));
        v.push_back(
            make_problem(Mlp(3, {{5, Activation::relu, true}, {1, Activation::identity, true}}),
                         Loss::logistic, 6, 62));
        v.push_back(
            make_problem(Mlp(3, {{5, Activation::gelu, true}, {3, Activation::identity, true}}),
                         Loss::softmax_cross_entropy, 5, 63));
        return v;
    }();
    Context ctx = Context::reference();
    const double lambda = 0.1;
    for (const Problem& pr : problems) {
        SCOPED_TRACE(to_string(pr.loss));
        const Matrix<double> j = jacobian(ctx, pr.model, pr.theta.const_view(), pr.x.const_view());
        const Matrix<double> f = forward(ctx, pr.model, pr.theta.const_view(), pr.x.const_view());
        const auto lf = loss_factors(ctx, pr.loss, f.const_view(), pr.y.const_view());
        const MatrixView<const double> u(lf.residual.data(), lf.residual.size(), 1);
        const Matrix<double> d_byo =
            direction_from_jacobian(ctx, j.const_view(), u, lambda, lf.factor.const_view());
        const Matrix<double> d =
            direction(ctx, pr.model, pr.theta.const_view(), pr.batch(), pr.loss, lambda,
                      DirectionOptions{GramMode::structured, SolveForm::factor});
        const double cond = primal(ctx, pr, lambda).condition;
        EXPECT_NEAR_NORMWISE(d_byo, d, tolerance<double>(pr.model.n_params(), cond));
    }
}

/// Random J (N x p), random M_i and u: d = (J^T B J / n + lambda I)^-1 J^T blockdiag(M) u / n with
/// B = blockdiag(M_i M_i^T). Covers N > p and N < p, k = 1 with M = I (empty factor) and k = 2.
TEST(DirectionFromJacobian, EqualsPrimalSolveForRandomJacobian) {
    struct Shape {
        std::int64_t n, k, p;
        bool with_factor;
    };
    Context ctx = Context::reference();
    for (const Shape s : {Shape{7, 1, 10, false}, Shape{6, 2, 9, true}, Shape{6, 2, 20, true},
                          Shape{5, 1, 3, true}}) {
        SCOPED_TRACE(::testing::Message() << "n " << s.n << " k " << s.k << " p " << s.p);
        const std::int64_t nk = s.n * s.k;
        const Matrix<double> j = ngd_test::random_matrix<double>(nk, s.p, 71 + s.p);
        const Matrix<double> u = ngd_test::random_matrix<double>(nk, 1, 72 + s.p);
        Matrix<double> m =
            s.with_factor ? ngd_test::random_matrix<double>(s.k, nk, 73 + s.p) : Matrix<double>();
        std::vector<ngd_test::ClosedForm> c(s.n);
        for (std::int64_t i = 0; i < s.n; ++i) {
            Dense mi(s.k, s.k);
            for (std::int64_t r = 0; r < s.k; ++r)
                for (std::int64_t q = 0; q < s.k; ++q)
                    mi(r, q) = s.with_factor ? m(r, i * s.k + q) : (r == q);
            Dense ui(s.k, 1);
            for (std::int64_t q = 0; q < s.k; ++q) ui(q, 0) = u[i * s.k + q];
            const Dense e = ngd_test::matmul(mi, false, ui, false);
            c[i].h = ngd_test::matmul(mi, false, mi, true);
            c[i].e.assign(e.a.begin(), e.a.end());
        }
        for (double lambda : {1e-2, 1.0}) {
            const ngd_test::Primal ref =
                ngd_test::primal_direction(ngd_test::to_dense(j), c, lambda);
            const Matrix<double> d = direction_from_jacobian(ctx, j.const_view(), u.const_view(),
                                                             lambda, m.const_view());
            EXPECT_NEAR_NORMWISE(d, ref.d, tolerance<double>(std::max(s.p, nk), ref.condition));
        }
    }
}

}  // namespace
