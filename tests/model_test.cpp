// Model specifications: shapes, parameter counts and offsets (the theta layout of model.hpp), the
// presets of the two seed papers, deterministic initialisation, rejected specs, and forward()
// against an independent long-double forward pass written from the documented formulas.
#include <cmath>
#include <set>
#include <vector>

#include "test_util.hpp"

namespace {

using namespace ngd;
using ngd_test::tolerance;

Mlp three_layer(Activation act, bool bias, Parameterization par, double scale = 1.0) {
    return Mlp(3, {{5, act, bias}, {4, act, bias}, {2, Activation::identity, bias}}, par, scale);
}

TEST(Model, ShapesCountsAndOffsets) {
    Layer frozen{2, Activation::identity, false, false};
    const Mlp m(3, {{4, Activation::relu, true}, frozen});
    EXPECT_EQ(m.n_inputs(), 3);
    EXPECT_EQ(m.n_layers(), 2);
    EXPECT_EQ(m.n_outputs(), 2);
    EXPECT_EQ(m.n_last(), 2);
    EXPECT_EQ(m.fan_in(0), 3);
    EXPECT_EQ(m.fan_in(1), 4);
    EXPECT_EQ(m.n_params(), 4 * 3 + 4 + 2 * 4);
    EXPECT_EQ(m.n_trainable_params(), 4 * 3 + 4);
    EXPECT_EQ(m.weight_offset(0), 0);
    EXPECT_EQ(m.bias_offset(0), 12);
    EXPECT_EQ(m.weight_offset(1), 16);
    EXPECT_EQ(m.bias_offset(1), -1);
    EXPECT_EQ(m.weight_multiplier(0), 1.0);
    EXPECT_EQ(m.bias_multiplier(1), 1.0);
    EXPECT_FALSE(m.selects_output_row());
    EXPECT_TRUE(ngd_test::contains(m.describe(), std::to_string(m.n_params())));
}

TEST(Model, NtkWeightMultiplierIsInverseSqrtFanIn) {
    const Mlp m = three_layer(Activation::tanh, true, Parameterization::ntk);
    EXPECT_DOUBLE_EQ(m.weight_multiplier(0), 1 / std::sqrt(3.0));
    EXPECT_DOUBLE_EQ(m.weight_multiplier(1), 1 / std::sqrt(5.0));
    EXPECT_DOUBLE_EQ(m.weight_multiplier(2), 1 / std::sqrt(4.0));
    EXPECT_EQ(m.n_params(), (15 + 5) + (20 + 4) + (8 + 2));
}

TEST(Model, TwoLayerReluPreset) {
    const std::int64_t d = 5, m = 64;
    const Mlp model = two_layer_relu(d, m, 2.0);
    ASSERT_EQ(model.n_layers(), 2);
    EXPECT_EQ(model.n_params(), m * d + m);
    EXPECT_EQ(model.n_trainable_params(), m * d);
    EXPECT_EQ(model.n_outputs(), 1);
    EXPECT_TRUE(model.layer(0).trainable);
    EXPECT_FALSE(model.layer(1).trainable);
    EXPECT_EQ(model.layer(0).activation, Activation::relu);
    EXPECT_DOUBLE_EQ(model.output_scale(), 1 / std::sqrt(double(m)));
    const Matrix<double> theta = model.init<double>(3);
    ASSERT_EQ(theta.rows(), m * d + m);
    // Second layer: a_r = +-1, both signs present; first layer: N(0, init_std^2).
    std::set<double> signs;
    for (std::int64_t r = 0; r < m; ++r) signs.insert(theta[model.weight_offset(1) + r]);
    EXPECT_EQ(signs, (std::set<double>{-1.0, 1.0}));
    double s2 = 0;
    for (std::int64_t i = 0; i < m * d; ++i) s2 += theta[i] * theta[i];
    EXPECT_NEAR(std::sqrt(s2 / (m * d)), 2.0, 0.25);  // 320 draws: std error of the std ~4%

    // f(x) = m^-1/2 sum_r a_r relu(w_r . x), written out directly from the paper's formula.
    const Matrix<double> x = ngd_test::random_unit_columns<double>(d, 3, 11);
    Context ctx = Context::reference();
    const Matrix<double> f = forward(ctx, model, theta.const_view(), x.const_view());
    ASSERT_EQ(f.rows(), 1);
    ASSERT_EQ(f.cols(), 3);
    for (std::int64_t i = 0; i < 3; ++i) {
        long double s = 0;
        for (std::int64_t r = 0; r < m; ++r) {
            long double z = 0;
            for (std::int64_t c = 0; c < d; ++c) z += theta[r + c * m] * (long double)x(c, i);
            s += theta[m * d + r] * std::max(z, 0.0L);
        }
        EXPECT_NEAR(f(0, i), s / std::sqrt((long double)m), 1e-13);
    }
}

TEST(Model, DeepLinearPreset) {
    const Mlp model = deep_linear(4, 6, 3, 2);
    ASSERT_EQ(model.n_layers(), 3);
    EXPECT_EQ(model.n_params(), 4 * 6 + 6 * 6 + 6 * 2);
    EXPECT_EQ(model.n_outputs(), 2);
    for (std::int64_t l = 0; l < 3; ++l) {
        EXPECT_EQ(model.layer(l).activation, Activation::identity);
        EXPECT_EQ(model.bias_offset(l), -1);
        EXPECT_TRUE(model.layer(l).trainable);
    }
    const Mlp linear = deep_linear(7, 10, 1);
    ASSERT_EQ(linear.n_layers(), 1);
    EXPECT_EQ(linear.n_params(), 7);
}

TEST(Model, MatrixFactorizationSelectsOutputRow) {
    const std::int64_t d = 5, depth = 3;
    const Mlp model = matrix_factorization(d, depth);
    EXPECT_TRUE(model.selects_output_row());
    EXPECT_EQ(model.n_outputs(), 1);
    EXPECT_EQ(model.n_last(), d);
    EXPECT_EQ(model.n_params(), depth * d * d);
    const Matrix<double> theta = model.init<double>(5);
    // Observed entries (i, j): input e_j, output row i; f must equal (W3 W2 W1)(i, j).
    const std::vector<std::pair<int, int>> entries = {{0, 0}, {4, 1}, {2, 3}, {3, 3}, {1, 4}};
    const std::int64_t n = static_cast<std::int64_t>(entries.size());
    Matrix<double> x(d, n), rows(1, n);
    for (std::int64_t s = 0; s < n; ++s) {
        x(entries[s].second, s) = 1;
        rows[s] = entries[s].first;
    }
    ngd_test::Dense w(d, d);
    for (std::int64_t i = 0; i < d; ++i) w(i, i) = 1;
    for (std::int64_t l = 0; l < depth; ++l) {
        ngd_test::Dense wl(d, d);
        for (std::int64_t i = 0; i < d * d; ++i) wl.a[i] = theta[model.weight_offset(l) + i];
        w = ngd_test::matmul(wl, false, w, false);
    }
    Context ctx = Context::reference();
    const Matrix<double> f =
        forward(ctx, model, theta.const_view(), x.const_view(), rows.const_view());
    ASSERT_EQ(f.rows(), 1);
    ASSERT_EQ(f.cols(), n);
    for (std::int64_t s = 0; s < n; ++s)
        EXPECT_NEAR(f[s], (double)w(entries[s].first, entries[s].second), 1e-15) << "sample " << s;
}

TEST(Model, InitIsDeterministic) {
    const Mlp model = three_layer(Activation::gelu, true, Parameterization::standard);
    const Matrix<double> a = model.init<double>(42), b = model.init<double>(42);
    const Matrix<double> c = model.init<double>(43);
    EXPECT_TRUE(ngd_test::same_bits(a, b));
    ASSERT_EQ(c.rows(), model.n_params());
    EXPECT_GT(ngd_test::normwise_error(a.const_view(), c.const_view()), 0.1);
    const Matrix<float> af = model.init<float>(42), bf = model.init<float>(42);
    EXPECT_TRUE(ngd_test::same_bits(af, bf));
    // Biases start at zero; weights do not.
    for (std::int64_t l = 0; l < model.n_layers(); ++l) {
        for (std::int64_t r = 0; r < model.layer(l).n_out; ++r)
            EXPECT_EQ(a[model.bias_offset(l) + r], 0.0);
        EXPECT_NE(a[model.weight_offset(l)], 0.0);
    }
}

TEST(Model, InitKindsAndScales) {
    Layer zero{3, Activation::relu, true, true, Init::zero};
    Layer sign{2, Activation::identity, false, true, Init::sign, 0.5};
    const Mlp model(4, {zero, sign});
    const Matrix<double> theta = model.init<double>(1);
    for (std::int64_t i = 0; i < 12; ++i) EXPECT_EQ(theta[i], 0.0);
    for (std::int64_t i = 0; i < 6; ++i)
        EXPECT_EQ(std::fabs(theta[model.weight_offset(1) + i]), 0.5);
    // Default Gaussian scale: 1/sqrt(n_in) (standard), 1 (NTK).
    for (auto par : {Parameterization::standard, Parameterization::ntk}) {
        const Mlp wide(400, {{200, Activation::relu, false}}, par);
        const Matrix<double> t = wide.init<double>(9);
        double s2 = 0;
        for (std::int64_t i = 0; i < t.size(); ++i) s2 += t[i] * t[i];
        const double expected = par == Parameterization::standard ? 1 / std::sqrt(400.0) : 1.0;
        EXPECT_NEAR(std::sqrt(s2 / t.size()), expected, 0.02 * expected);
    }
}

TEST(Model, BadSpecsThrowInvalidArgument) {
    const std::vector<Layer> ok = {{3, Activation::relu}};
    EXPECT_THROW(Mlp(0, ok), InvalidArgument);
    EXPECT_THROW(Mlp(-1, ok), InvalidArgument);
    EXPECT_THROW(Mlp(3, {}), InvalidArgument);
    EXPECT_THROW(Mlp(3, {{0, Activation::relu}}), InvalidArgument);
    EXPECT_THROW(Mlp(3, {{4, Activation::relu}, {-2, Activation::identity}}), InvalidArgument);
    EXPECT_THROW(Mlp(3, ok, Parameterization::standard, 0.0), InvalidArgument);
    EXPECT_THROW(Mlp(3, ok, Parameterization::standard, -1.0), InvalidArgument);
    EXPECT_THROW(Mlp(3, ok, Parameterization::standard, std::nan("")), InvalidArgument);
    EXPECT_THROW(Mlp(3, ok, Parameterization::standard, INFINITY), InvalidArgument);
    EXPECT_THROW(two_layer_relu(0, 4), InvalidArgument);
    EXPECT_THROW(two_layer_relu(3, 0), InvalidArgument);
    EXPECT_THROW(deep_linear(3, 4, 0), InvalidArgument);
    EXPECT_THROW(matrix_factorization(0, 2), InvalidArgument);
    EXPECT_NO_THROW(Mlp(3, ok));
}

// forward() against the long-double oracle for every activation, bias on/off, both
// parameterizations, an output scale and k = 2.
class ForwardTest
    : public ::testing::TestWithParam<std::tuple<Activation, bool, Parameterization>> {};

TEST_P(ForwardTest, MatchesIndependentForward) {
    const auto [act, bias, par] = GetParam();
    const Mlp model = three_layer(act, bias, par, 0.75);
    Matrix<double> theta = model.init<double>(17);
    if (bias) {  // init leaves biases at zero: give them values so that they are exercised
        const Matrix<double> b =
            ngd_test::random_matrix<double>(model.n_params(), 1, 18, -0.5, 0.5);
        for (std::int64_t l = 0; l < model.n_layers(); ++l)
            for (std::int64_t r = 0; r < model.layer(l).n_out; ++r)
                theta[model.bias_offset(l) + r] = b[model.bias_offset(l) + r];
    }
    const Matrix<double> x = ngd_test::random_matrix<double>(3, 7, 19, -2, 2);
    Context ctx = Context::reference();
    const Matrix<double> f = forward(ctx, model, theta.const_view(), x.const_view());
    const auto ref = ngd_test::host_forward(model, theta.const_view(), x.const_view());
    EXPECT_NEAR_NORMWISE(f, ref.f, tolerance<double>(5 * 3));
    // float: the same network in single precision, against the same oracle.
    const Matrix<float> tf = ngd_test::host_copy<float>(theta), xf = ngd_test::host_copy<float>(x);
    const Matrix<float> ff = forward(ctx, model, tf.const_view(), xf.const_view());
    const auto reff = ngd_test::host_forward(model, tf.const_view(), xf.const_view());
    EXPECT_NEAR_NORMWISE(ff, reff.f, tolerance<float>(5 * 3));
}

INSTANTIATE_TEST_SUITE_P(
    AllActivations, ForwardTest,
    ::testing::Combine(::testing::Values(Activation::identity, Activation::relu, Activation::tanh,
                                         Activation::softplus, Activation::gelu),
                       ::testing::Bool(),
                       ::testing::Values(Parameterization::standard, Parameterization::ntk)));

}  // namespace
