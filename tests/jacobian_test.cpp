// jacobian() against central finite differences of forward(), in double: every preset, every
// activation, bias on and off, both parameterizations, k > 1, frozen layers (exactly zero columns)
// and matrix factorization with output rows. Also float against double.
#include <cmath>
#include <tuple>

#include "test_util.hpp"

namespace {

using namespace ngd;
using ngd_test::Dense;

// Central differences with step h err by about h^2 |f'''| / 6 (~1e-13 here) plus the roundoff
// u |f| / h (~1e-10 relative for |f| ~ |J|). kFdTolerance leaves three orders of margin on the
// normwise relative error of the whole J; any real bug (a wrong column, a missing multiplier) is an
// O(1e-2) error or more.
constexpr double kFdStep = 1e-6;
constexpr double kFdTolerance = 1e-7;

/// N x p finite-difference Jacobian: column j = (f(theta + h e_j) - f(theta - h e_j)) / 2h, with
/// f's column-major entries (o + i k) as rows, which is the sample-major order of J.
Dense fd_jacobian(Context& ctx, const Mlp& model, const Matrix<double>& theta,
                  const Matrix<double>& x, MatrixView<const double> rows = {}) {
    const std::int64_t p = model.n_params(), nk = model.n_outputs() * x.cols();
    Dense j(nk, p);
    Matrix<double> t = ngd_test::host_copy<double>(theta);
    for (std::int64_t c = 0; c < p; ++c) {
        const double saved = t[c];
        t[c] = saved + kFdStep;
        const Matrix<double> fp = forward(ctx, model, t.const_view(), x.const_view(), rows);
        t[c] = saved - kFdStep;
        const Matrix<double> fm = forward(ctx, model, t.const_view(), x.const_view(), rows);
        t[c] = saved;
        for (std::int64_t r = 0; r < nk; ++r) j(r, c) = (fp[r] - fm[r]) / (2 * kFdStep);
    }
    return j;
}

/// Checks J against finite differences; frozen layers' columns must be exactly zero (finite
/// differences see them, the Jacobian with respect to the trained parameters does not).
void check_jacobian(const Mlp& model, const Matrix<double>& theta, const Matrix<double>& x,
                    const Matrix<double>* rows = nullptr) {
    Context ctx = Context::reference();
    const MatrixView<const double> rv = rows ? rows->const_view() : MatrixView<const double>();
    const auto host = ngd_test::host_forward(model, theta.const_view(), x.const_view(), rv);
    // A relu input within reach of the step would make the difference quotient straddle the kink.
    ASSERT_GT(host.min_abs_relu_preactivation, 1e-4) << "test data too close to a relu kink";
    const Matrix<double> j = jacobian(ctx, model, theta.const_view(), x.const_view(), rv);
    ASSERT_EQ(j.rows(), model.n_outputs() * x.cols());
    ASSERT_EQ(j.cols(), model.n_params());
    Dense fd = fd_jacobian(ctx, model, theta, x, rv);
    for (std::int64_t l = 0; l < model.n_layers(); ++l) {
        if (model.layer(l).trainable) continue;
        const std::int64_t begin = model.weight_offset(l);
        const std::int64_t end =
            l + 1 < model.n_layers() ? model.weight_offset(l + 1) : model.n_params();
        for (std::int64_t c = begin; c < end; ++c)
            for (std::int64_t r = 0; r < j.rows(); ++r) {
                ASSERT_EQ(j(r, c), 0.0) << "frozen layer " << l << ", column " << c;
                fd(r, c) = 0;
            }
    }
    EXPECT_NEAR_NORMWISE(j, fd, kFdTolerance);
}

/// theta from init, with biases set to random values (init leaves them at zero).
Matrix<double> theta_with_biases(const Mlp& model, std::uint64_t seed) {
    Matrix<double> theta = model.init<double>(seed);
    const Matrix<double> b =
        ngd_test::random_matrix<double>(model.n_params(), 1, seed + 1, -0.5, 0.5);
    for (std::int64_t l = 0; l < model.n_layers(); ++l) {
        if (model.bias_offset(l) < 0) continue;
        for (std::int64_t r = 0; r < model.layer(l).n_out; ++r)
            theta[model.bias_offset(l) + r] = b[model.bias_offset(l) + r];
    }
    return theta;
}

TEST(Jacobian, TwoLayerReluPresetHasZeroColumnsForFrozenSigns) {
    const Mlp model = two_layer_relu(4, 8);
    check_jacobian(model, model.init<double>(1), ngd_test::random_unit_columns<double>(4, 5, 2));
}

TEST(Jacobian, DeepLinearPresetWithSeveralOutputs) {
    const Mlp model = deep_linear(3, 5, 3, 2);
    check_jacobian(model, model.init<double>(3), ngd_test::random_matrix<double>(3, 4, 4));
}

TEST(Jacobian, MatrixFactorizationWithOutputRows) {
    const std::int64_t d = 4;
    const Mlp model = matrix_factorization(d, 3, 0.5);
    Matrix<double> x(d, 6), rows(1, 6);
    const int ij[6][2] = {{0, 1}, {3, 3}, {2, 0}, {1, 1}, {3, 2}, {0, 3}};
    for (int s = 0; s < 6; ++s) {
        rows[s] = ij[s][0];
        x(ij[s][1], s) = 1;
    }
    check_jacobian(model, model.init<double>(5), x, &rows);
}

TEST(Jacobian, FrozenMiddleLayerGivesZeroColumns) {
    Layer frozen{4, Activation::tanh, true, false};
    const Mlp model(3, {{5, Activation::softplus, true}, frozen, {2, Activation::identity, true}});
    check_jacobian(model, theta_with_biases(model, 6), ngd_test::random_matrix<double>(3, 4, 7));
}

TEST(Jacobian, FloatMatchesDouble) {
    const Mlp model(3, {{6, Activation::tanh, true}, {3, Activation::identity, true}},
                    Parameterization::ntk, 0.5);
    const Matrix<double> theta = theta_with_biases(model, 8);
    const Matrix<double> x = ngd_test::random_matrix<double>(3, 5, 9);
    Context ctx = Context::reference();
    const Matrix<double> jd = jacobian(ctx, model, theta.const_view(), x.const_view());
    const Matrix<float> tf = ngd_test::host_copy<float>(theta), xf = ngd_test::host_copy<float>(x);
    const Matrix<float> jf = jacobian(ctx, model, tf.const_view(), xf.const_view());
    // The float inputs are themselves rounded: compare with the double Jacobian at those inputs.
    const Matrix<double> td = ngd_test::host_copy<double>(tf), xd = ngd_test::host_copy<double>(xf);
    const Matrix<double> jr = jacobian(ctx, model, td.const_view(), xd.const_view());
    EXPECT_NEAR_NORMWISE(jf, jr, ngd_test::tolerance<float>(6 * 2));
    EXPECT_NEAR_NORMWISE(jd, jr, 1e-5);  // sanity: rounding the inputs moves J by ~1e-7
}

// Every activation x bias x parameterization, on a 3-5-4-2 network (k = 2) with output scale 0.75.
class JacobianFd : public ::testing::TestWithParam<std::tuple<Activation, bool, Parameterization>> {
};

TEST_P(JacobianFd, MatchesCentralDifferences) {
    const auto [act, bias, par] = GetParam();
    const Mlp model(3, {{5, act, bias}, {4, act, bias}, {2, Activation::identity, bias}}, par,
                    0.75);
    check_jacobian(model, theta_with_biases(model, 10),
                   ngd_test::random_matrix<double>(3, 4, 11, -2, 2));
}

INSTANTIATE_TEST_SUITE_P(
    AllActivations, JacobianFd,
    ::testing::Combine(::testing::Values(Activation::identity, Activation::relu, Activation::tanh,
                                         Activation::softplus, Activation::gelu),
                       ::testing::Bool(),
                       ::testing::Values(Parameterization::standard, Parameterization::ntk)));

}  // namespace
