// What error messages say (docs/errors.md): a bad label names the sample and the value; numbers
// keep their magnitude (%.6g, never std::to_string's fixed six decimals, which printed a damping
// of -1e-9 as -0.000000); a preset's bad argument is named as the preset's, not as the Mlp
// constructor's.
#include <cmath>
#include <functional>
#include <limits>
#include <string>

#include "test_util.hpp"

namespace {

using namespace ngd;
using ngd_test::contains;

/// The message of the InvalidArgument (or other ngd::Error) that `call` throws; "" if none.
std::string message_of(const std::function<void()>& call) {
    try {
        call();
    } catch (const Error& e) {
        return e.what();
    }
    ADD_FAILURE() << "no ngd::Error thrown";
    return "";
}

struct Labels {
    Mlp binary{3, {{4, Activation::tanh, true}, {1, Activation::identity, true}}};
    Mlp three{3, {{4, Activation::tanh, true}, {3, Activation::identity, true}}};
    Matrix<double> x = ngd_test::random_matrix<double>(3, 4, 1);
    Context ctx = Context::reference();
};

TEST(Messages, BadLabelNamesSampleAndValue) {
    Labels s;
    Matrix<double> y(1, 4);
    y[0] = -1;  // sample 0 has label -1
    const Matrix<double> theta = s.binary.init<double>(2);
    const std::string m = message_of([&] {
        direction(s.ctx, s.binary, theta.const_view(), {s.x.const_view(), y.const_view(), {}},
                  Loss::logistic, 0.1);
    });
    EXPECT_TRUE(contains(m, "sample 0 has label -1,"));
    EXPECT_TRUE(contains(m, "[0, 2)"));
    EXPECT_FALSE(contains(m, "label 0 "));

    Matrix<double> z(1, 4);
    z[2] = 1.5;  // a fractional class index at sample 2
    const Matrix<double> theta3 = s.three.init<double>(3);
    const std::string m3 = message_of([&] {
        gradient(s.ctx, s.three, theta3.const_view(), {s.x.const_view(), z.const_view(), {}},
                 Loss::softmax_cross_entropy);
    });
    EXPECT_TRUE(contains(m3, "sample 2 has label 1.5,"));
    EXPECT_TRUE(contains(m3, "[0, 3)"));
}

TEST(Messages, BadOutputRowNamesSampleAndValue) {
    const Mlp mf = matrix_factorization(4, 2);
    const Matrix<double> theta = mf.init<double>(8);
    Matrix<double> x(4, 3), rows(1, 3);
    for (int s = 0; s < 3; ++s) x(s, s) = 1, rows[s] = s;
    rows[1] = 7;  // rows are 0..3
    Context ctx = Context::reference();
    const std::string m = message_of(
        [&] { forward(ctx, mf, theta.const_view(), x.const_view(), rows.const_view()); });
    EXPECT_TRUE(contains(m, "sample 1 has output row 7,"));
    EXPECT_TRUE(contains(m, "[0, 4)"));
}

TEST(Messages, NumbersKeepTheirMagnitude) {
    NaturalGradient<double>::Options o;
    o.damping = -1e-9;
    std::string m = message_of([&] { NaturalGradient<double> opt(o); });
    EXPECT_TRUE(contains(m, "got -1e-09"));
    o = {};
    o.damping_min = 3e-9;
    o.damping_max = 2e-9;
    m = message_of([&] { NaturalGradient<double> opt(o); });
    EXPECT_TRUE(contains(m, "3e-09 > 2e-09"));
    o = {};
    o.raise_factor = 0.25;
    EXPECT_TRUE(contains(message_of([&] { NaturalGradient<double> opt(o); }), "got 0.25"));
    EXPECT_TRUE(contains(message_of([] {
                             Mlp(2, {{1, Activation::identity}}, {}, -2.5e-7);
                         }),
                         "got -2.5e-07"));

    // The shift n lambda of a failed factorization: 4e-7 printed as "0.000000" before.
    Context ctx = Context::reference();
    const double a[9] = {1, 2, 3, 2, 4, 5, 3, 5, 12};
    Matrix<double> g(3, 3), rhs(3, 1);
    for (int i = 0; i < 9; ++i) g[i] = a[i];
    rhs[0] = 1;
    m = message_of([&] { damped_solve(ctx, g.const_view(), 4e-7, rhs.const_view()); });
    EXPECT_TRUE(contains(m, "n*lambda = 4e-07"));
    EXPECT_FALSE(contains(m, "0.000000"));
}

TEST(Messages, PresetsNameTheirOwnArguments) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    struct Case {
        std::function<void()> call;
        const char* fn;
        const char* arg;
    };
    const Case cases[] = {
        {[] { two_layer_relu(0, 4); }, "ngd::two_layer_relu", "'d' must be >= 1, got 0"},
        {[] { two_layer_relu(3, 0); }, "ngd::two_layer_relu", "'m' must be >= 1, got 0"},
        {[=] { two_layer_relu(3, 4, nan); }, "ngd::two_layer_relu", "'init_std'"},
        {[] { deep_linear(0, 4, 2); }, "ngd::deep_linear", "'d' must be >= 1, got 0"},
        {[] { deep_linear(3, 0, 2); }, "ngd::deep_linear", "'width' must be >= 1, got 0"},
        {[] { deep_linear(3, 4, 0); }, "ngd::deep_linear", "'depth' must be >= 1, got 0"},
        {[] { deep_linear(3, 4, 2, 0); }, "ngd::deep_linear", "'n_out' must be >= 1, got 0"},
        {[] { matrix_factorization(0, 2); }, "ngd::matrix_factorization", "'d' must be >= 1"},
        {[] { matrix_factorization(3, 0); }, "ngd::matrix_factorization", "'depth'"},
    };
    for (const Case& c : cases) {
        const std::string m = message_of(c.call);
        EXPECT_TRUE(contains(m, std::string(c.fn) + ": argument " + c.arg));
        EXPECT_FALSE(contains(m, "Mlp::Mlp"));
    }
    EXPECT_NO_THROW(deep_linear(3, 0, 1));  // depth 1 has no hidden layer: width is unused
}

}  // namespace
