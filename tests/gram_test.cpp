// The Gram matrices: gram(structured) == gram(explicit_jacobian) == J J^T from jacobian(), and the
// loss-weighted A A^T with A = M^T J built on the host from jacobian() and loss_factors().factor,
// for every loss, k = 1 and k > 1, bias on/off, frozen layers, matrix factorization; the explicit
// mode streaming J through several column blocks under a tiny memory budget; exact symmetry; float.
#include <functional>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace {

using namespace ngd;
using ngd_test::Dense;
using ngd_test::tolerance;

struct GramCase {
    std::string name;
    std::function<Mlp()> make;
    std::int64_t n;
};

std::ostream& operator<<(std::ostream& os, const GramCase& c) { return os << c.name; }

struct Data {
    Mlp model;
    Matrix<double> theta, x, rows;
    MatrixView<const double> rows_view() const {
        return rows.empty() ? MatrixView<const double>() : rows.const_view();
    }
};

Data make_data(const GramCase& c) {
    Data d{c.make(), {}, {}, {}};
    d.theta = d.model.init<double>(31);
    const Matrix<double> b = ngd_test::random_matrix<double>(d.model.n_params(), 1, 32, -0.5, 0.5);
    for (std::int64_t l = 0; l < d.model.n_layers(); ++l)  // non-zero biases
        for (std::int64_t r = 0; d.model.bias_offset(l) >= 0 && r < d.model.layer(l).n_out; ++r)
            d.theta[d.model.bias_offset(l) + r] = b[d.model.bias_offset(l) + r];
    const std::int64_t din = d.model.n_inputs();
    if (d.model.selects_output_row()) {  // observed entries (i, j): one-hot e_j, output row i
        d.x = Matrix<double>(din, c.n);
        d.rows = Matrix<double>(1, c.n);
        for (std::int64_t s = 0; s < c.n; ++s) {
            d.x((3 * s + 1) % din, s) = 1;
            d.rows[s] = static_cast<double>((5 * s + 2) % d.model.n_last());
        }
    } else {
        d.x = ngd_test::random_matrix<double>(din, c.n, 33);
    }
    return d;
}

Matrix<double> targets_for(Loss loss, std::int64_t k, std::int64_t n) {
    if (loss == Loss::squared) return ngd_test::random_matrix<double>(k, n, 34);
    return ngd_test::random_labels<double>(n, loss == Loss::logistic ? 2 : k, 35);
}

/// A = blockdiag(M)^T J: row i k + c of A is sum_o M_i(o, c) J(i k + o, :); empty factor = I.
Dense apply_factor(const Dense& j, const Matrix<double>& factor, std::int64_t k) {
    if (factor.empty()) return j;
    Dense a(j.rows, j.cols);
    for (std::int64_t i = 0; i < j.rows / k; ++i)
        for (std::int64_t c = 0; c < k; ++c)
            for (std::int64_t col = 0; col < j.cols; ++col) {
                long double s = 0;
                for (std::int64_t o = 0; o < k; ++o) s += factor(o, i * k + c) * j(i * k + o, col);
                a(i * k + c, col) = s;
            }
    return a;
}

::testing::AssertionResult exactly_symmetric(const Matrix<double>& g) {
    for (std::int64_t c = 0; c < g.cols(); ++c)
        for (std::int64_t r = c + 1; r < g.rows(); ++r)
            if (g(r, c) != g(c, r))
                return ::testing::AssertionFailure()
                       << "G(" << r << "," << c << ") = " << g(r, c) << " but G(" << c << "," << r
                       << ") = " << g(c, r);
    return ::testing::AssertionSuccess();
}

class GramTest : public ::testing::TestWithParam<GramCase> {};

TEST_P(GramTest, BothModesEqualJacobianProduct) {
    const Data d = make_data(GetParam());
    const std::int64_t p = d.model.n_params(), nk = d.model.n_outputs() * GetParam().n;
    Context ctx = Context::reference();
    const Dense j = ngd_test::to_dense(
        jacobian(ctx, d.model, d.theta.const_view(), d.x.const_view(), d.rows_view()));
    const Dense jjt = ngd_test::matmul(j, false, j, true);
    const double tol = tolerance<double>(p);
    for (GramMode mode : {GramMode::structured, GramMode::explicit_jacobian}) {
        SCOPED_TRACE(to_string(mode));
        const Matrix<double> g =
            gram(ctx, d.model, d.theta.const_view(), d.x.const_view(), d.rows_view(), mode);
        ASSERT_EQ(g.rows(), nk);
        ASSERT_EQ(g.cols(), nk);
        EXPECT_NEAR_NORMWISE(g, jjt, tol);
        EXPECT_TRUE(exactly_symmetric(g));
    }
    // Streaming: a budget of three columns of A forces ceil(p / 3) column blocks.
    Context small = Context::reference();
    small.set_memory_budget(static_cast<std::size_t>(nk) * sizeof(double) * 3);
    const Matrix<double> gs = gram(small, d.model, d.theta.const_view(), d.x.const_view(),
                                   d.rows_view(), GramMode::explicit_jacobian);
    EXPECT_NEAR_NORMWISE(gs, jjt, tol);
    EXPECT_TRUE(exactly_symmetric(gs));
}

TEST_P(GramTest, LossWeightedGramEqualsAAt) {
    const Data d = make_data(GetParam());
    const std::int64_t k = d.model.n_outputs(), n = GetParam().n, p = d.model.n_params();
    Context ctx = Context::reference();
    Context small = Context::reference();
    small.set_memory_budget(static_cast<std::size_t>(n * k) * sizeof(double) * 4);
    const Dense j = ngd_test::to_dense(
        jacobian(ctx, d.model, d.theta.const_view(), d.x.const_view(), d.rows_view()));
    const Matrix<double> f =
        forward(ctx, d.model, d.theta.const_view(), d.x.const_view(), d.rows_view());
    for (Loss loss : {Loss::squared, Loss::logistic, Loss::softmax_cross_entropy}) {
        if ((loss == Loss::logistic && k != 1) || (loss == Loss::softmax_cross_entropy && k == 1))
            continue;
        SCOPED_TRACE(to_string(loss));
        const Matrix<double> y = targets_for(loss, k, n);
        const Batch<double> batch{d.x.const_view(), y.const_view(), d.rows_view()};
        const auto lf = loss_factors(ctx, loss, f.const_view(), y.const_view());
        const Dense a = apply_factor(j, lf.factor, k);
        const Dense aat = ngd_test::matmul(a, false, a, true);
        for (GramMode mode : {GramMode::structured, GramMode::explicit_jacobian}) {
            SCOPED_TRACE(to_string(mode));
            const Matrix<double> g = gram(ctx, d.model, d.theta.const_view(), batch, loss, mode);
            EXPECT_NEAR_NORMWISE(g, aat, tolerance<double>(p));
            EXPECT_TRUE(exactly_symmetric(g));
        }
        const Matrix<double> gs =
            gram(small, d.model, d.theta.const_view(), batch, loss, GramMode::explicit_jacobian);
        EXPECT_NEAR_NORMWISE(gs, aat, tolerance<double>(p));
    }
}

TEST_P(GramTest, FloatMatchesDoubleAtRoundedInputs) {
    const Data d = make_data(GetParam());
    const std::int64_t p = d.model.n_params();
    Context ctx = Context::reference();
    const Matrix<float> tf = ngd_test::host_copy<float>(d.theta),
                        xf = ngd_test::host_copy<float>(d.x);
    const Matrix<float> rf = ngd_test::host_copy<float>(d.rows);
    const MatrixView<const float> rv = rf.empty() ? MatrixView<const float>() : rf.const_view();
    const Matrix<double> td = ngd_test::host_copy<double>(tf), xd = ngd_test::host_copy<double>(xf);
    const Dense j =
        ngd_test::to_dense(jacobian(ctx, d.model, td.const_view(), xd.const_view(), d.rows_view()));
    const Dense jjt = ngd_test::matmul(j, false, j, true);
    for (GramMode mode : {GramMode::structured, GramMode::explicit_jacobian}) {
        SCOPED_TRACE(to_string(mode));
        const Matrix<float> g = gram(ctx, d.model, tf.const_view(), xf.const_view(), rv, mode);
        EXPECT_NEAR_NORMWISE(g, jjt, tolerance<float>(p));
    }
}

Mlp mlp(std::int64_t din, std::vector<Layer> layers,
        Parameterization par = Parameterization::standard, double scale = 1.0) {
    return Mlp(din, std::move(layers), par, scale);
}

INSTANTIATE_TEST_SUITE_P(
    Models, GramTest,
    ::testing::Values(GramCase{"two_layer_relu", [] { return two_layer_relu(4, 16); }, 6},
                      GramCase{"bias_k3",
                               [] {
                                   return mlp(3, {{5, Activation::tanh, true},
                                                  {4, Activation::gelu, true},
                                                  {3, Activation::identity, true}});
                               },
                               5},
                      GramCase{"no_bias_ntk_k2",
                               [] {
                                   return mlp(4,
                                              {{6, Activation::softplus, false},
                                               {2, Activation::identity, false}},
                                              Parameterization::ntk, 0.5);
                               },
                               4},
                      GramCase{"frozen_middle_k1",
                               [] {
                                   return mlp(3, {{5, Activation::relu, true},
                                                  {4, Activation::tanh, true, false},
                                                  {1, Activation::identity, true}});
                               },
                               7},
                      GramCase{"deep_linear_k2", [] { return deep_linear(3, 4, 3, 2); }, 5},
                      GramCase{"matrix_factorization",
                               [] { return matrix_factorization(4, 3, 0.5); }, 6}),
    [](const ::testing::TestParamInfo<GramCase>& info) { return info.param.name; });

}  // namespace
