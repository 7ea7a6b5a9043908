// The optimizers: one NGD step on a wide two-layer ReLU network nearly interpolates (Zhang et al.'s
// claim at small size), a GD step is theta - eta grad L, the StepReport fields agree with
// independent evaluations, the gain ratio is 1 where the Gauss-Newton model is exact, frozen layers
// never move.
#include <cmath>

#include "test_util.hpp"

namespace {

using namespace ngd;
using ngd_test::Dense;
using ngd_test::tolerance;

double residual_norm(Context& ctx, const Mlp& model, const Matrix<double>& theta,
                     const Matrix<double>& x, const Matrix<double>& y) {
    const Matrix<double> f = forward(ctx, model, theta.const_view(), x.const_view());
    double s = 0;
    for (std::int64_t i = 0; i < f.size(); ++i) s += (f[i] - y[i]) * (f[i] - y[i]);
    return std::sqrt(s);
}

/// Width m = 4096 >> n = 8 with unit-norm inputs: the network is nearly linear in theta around its
/// initialisation, so the undamped NGD step with eta = 1 solves the linearised problem and the true
/// residual falls to the O(m^-1/2) linearisation error.
TEST(NaturalGradient, WideTwoLayerReluStepCutsResidual100x) {
    const std::int64_t d = 5, n = 8, m = 16384;
    const Mlp model = two_layer_relu(d, m);
    Matrix<double> theta = model.init<double>(101);
    const Matrix<double> theta0 = ngd_test::host_copy<double>(theta);
    const Matrix<double> x = ngd_test::random_unit_columns<double>(d, n, 102);
    const Matrix<double> y = ngd_test::random_matrix<double>(1, n, 103);
    const Batch<double> batch{x.const_view(), y.const_view(), {}};
    Context ctx = Context::reference();
    const double before = residual_norm(ctx, model, theta, x, y);
    NaturalGradient<double> opt({/*learning_rate=*/1.0, /*damping=*/1e-10});
    const StepReport r = opt.step(ctx, model, theta.view(), batch, Loss::squared);
    const double after = residual_norm(ctx, model, theta, x, y);
    EXPECT_LT(after, before / 100) << "residual " << before << " -> " << after;
    EXPECT_LT(ngd_test::relative_difference(r.loss_before, 0.5 * before * before / n), 1e-12);
    EXPECT_LT(ngd_test::relative_difference(r.loss_after, 0.5 * after * after / n), 1e-9);
    // The output layer a_r = +-1 is frozen: bitwise unchanged.
    for (std::int64_t i = model.weight_offset(1); i < model.n_params(); ++i)
        ASSERT_EQ(theta[i], theta0[i]) << "frozen parameter " << i << " moved";
}

TEST(GradientDescent, StepIsThetaMinusEtaGradient) {
    const Mlp model(3, {{6, Activation::tanh, true}, {2, Activation::identity, true}});
    for (Loss loss : {Loss::squared, Loss::softmax_cross_entropy}) {
        SCOPED_TRACE(to_string(loss));
        Matrix<double> theta = model.init<double>(111);
        const Matrix<double> theta0 = ngd_test::host_copy<double>(theta);
        const Matrix<double> x = ngd_test::random_matrix<double>(3, 5, 112);
        const Matrix<double> y = loss == Loss::squared ? ngd_test::random_matrix<double>(2, 5, 113)
                                                       : ngd_test::random_labels<double>(5, 2, 113);
        const Batch<double> batch{x.const_view(), y.const_view(), {}};
        Context ctx = Context::reference();
        const double eta = 0.3;
        const Matrix<double> g = gradient(ctx, model, theta.const_view(), batch, loss);
        const double loss0 = ngd::loss(ctx, model, theta.const_view(), batch, loss);
        GradientDescent<double> gd({eta, true});
        const StepReport r = gd.step(ctx, model, theta.view(), batch, loss);
        for (std::int64_t i = 0; i < theta.size(); ++i)
            EXPECT_NEAR(
                theta[i], theta0[i] - eta * g[i],
                tolerance<double>(x.cols()) * (std::fabs(theta0[i]) + eta * std::fabs(g[i])))
                << "parameter " << i;
        EXPECT_LT(ngd_test::relative_difference(r.loss_before, loss0), 1e-14);
        const double loss1 = ngd::loss(ctx, model, theta.const_view(), batch, loss);
        EXPECT_LT(ngd_test::relative_difference(r.loss_after, loss1), 1e-14);
        EXPECT_LT(r.loss_after, r.loss_before);
        double gnorm = 0;
        for (std::int64_t i = 0; i < g.size(); ++i) gnorm += g[i] * g[i];
        EXPECT_LT(ngd_test::relative_difference(r.step_norm, eta * std::sqrt(gnorm)), 1e-12);
    }
}

/// For a linear model and squared loss the Gauss-Newton model is the loss itself: the predicted
/// reduction eta g.d - eta^2/2 |J d|^2 / n is exact and the gain ratio is 1 for any step.
TEST(NaturalGradient, ReportAgreesWithIndependentEvaluation) {
    // N = 18 < p = 24: J J^T is well conditioned, so the tiny damping does not matter.
    const Mlp model = deep_linear(12, 4, 1, 2);
    Matrix<double> theta = model.init<double>(121);
    const Matrix<double> theta0 = ngd_test::host_copy<double>(theta);
    const Matrix<double> x = ngd_test::random_matrix<double>(12, 9, 122);
    const Matrix<double> y = ngd_test::random_matrix<double>(2, 9, 123);
    const Batch<double> batch{x.const_view(), y.const_view(), {}};
    Context ctx = Context::reference();
    const double eta = 0.5, lambda = 1e-10;
    NaturalGradient<double>::Options o;
    o.learning_rate = eta;
    o.damping = lambda;
    o.time_stages = true;
    const Matrix<double> g = gradient(ctx, model, theta.const_view(), batch, Loss::squared);
    const Matrix<double> j = jacobian(ctx, model, theta.const_view(), x.const_view());
    const double loss0 = ngd::loss(ctx, model, theta.const_view(), batch, Loss::squared);
    const StepReport r =
        NaturalGradient<double>(o).step(ctx, model, theta.view(), batch, Loss::squared);
    const double loss1 = ngd::loss(ctx, model, theta.const_view(), batch, Loss::squared);
    Dense step(theta.size(), 1);  // d = (theta0 - theta1) / eta
    long double gd = 0, sn = 0;
    for (std::int64_t i = 0; i < theta.size(); ++i) {
        step(i, 0) = (static_cast<long double>(theta0[i]) - theta[i]) / eta;
        gd += g[i] * step(i, 0);
        sn += eta * eta * step(i, 0) * step(i, 0);
    }
    const Dense jd = ngd_test::matmul(ngd_test::to_dense(j), false, step, false);
    const long double predicted =
        eta * gd - eta * eta / 2 * ngd_test::frobenius(jd) * ngd_test::frobenius(jd) / x.cols();
    EXPECT_LT(ngd_test::relative_difference(r.loss_before, loss0), 1e-14);
    EXPECT_LT(ngd_test::relative_difference(r.loss_after, loss1), 1e-14);
    EXPECT_LT(ngd_test::relative_difference(r.actual_reduction, loss0 - loss1), 1e-10);
    EXPECT_LT(ngd_test::relative_difference(r.predicted_reduction, predicted), 1e-8);
    EXPECT_GT(r.predicted_reduction, 0);
    EXPECT_NEAR(r.gain_ratio, 1.0, 1e-8);
    EXPECT_EQ(r.damping, lambda);
    EXPECT_GE(r.cholesky_tries, 1);
    EXPECT_EQ(r.cholesky_info, 0);
    EXPECT_FALSE(r.fallback_used);
    EXPECT_EQ(r.form, SolveForm::factor);  // automatic picks the factor form for squared loss
    EXPECT_EQ(r.gram_mode, GramMode::structured);
    EXPECT_LT(r.solve_residual, 1e-10);
    EXPECT_LT(ngd_test::relative_difference(r.step_norm, std::sqrt(sn)), 1e-12);
    EXPECT_GT(r.seconds.total, 0);
    EXPECT_GE(r.seconds.gram, 0);
    EXPECT_LE(r.seconds.gram + r.seconds.solve, r.seconds.total * 1.01);
}

/// A tiny step on a nonlinear network is in the linear regime: gain ratio close to 1.
TEST(NaturalGradient, TinyStepHasGainRatioNearOne) {
    const Mlp model(3, {{8, Activation::tanh, true}, {1, Activation::identity, true}});
    for (Loss loss : {Loss::squared, Loss::logistic}) {
        SCOPED_TRACE(to_string(loss));
        Matrix<double> theta = model.init<double>(131);
        const Matrix<double> x = ngd_test::random_matrix<double>(3, 6, 132);
        const Matrix<double> y = loss == Loss::squared ? ngd_test::random_matrix<double>(1, 6, 133)
                                                       : ngd_test::random_labels<double>(6, 2, 133);
        const Batch<double> batch{x.const_view(), y.const_view(), {}};
        Context ctx = Context::reference();
        NaturalGradient<double> opt({/*learning_rate=*/1e-3, /*damping=*/1e-2});
        const StepReport r = opt.step(ctx, model, theta.view(), batch, loss);
        EXPECT_GT(r.predicted_reduction, 0);
        EXPECT_GT(r.actual_reduction, 0);
        EXPECT_NEAR(r.gain_ratio, 1.0, 1e-2);
        EXPECT_EQ(r.form, loss == Loss::logistic ? SolveForm::natural_residual : SolveForm::factor);
        EXPECT_GT(r.step_norm, 0);
    }
}

TEST(NaturalGradient, WithoutEvaluateAfterLossAfterIsNaN) {
    const Mlp model = two_layer_relu(3, 32);
    Matrix<double> theta = model.init<double>(141);
    const Matrix<double> x = ngd_test::random_unit_columns<double>(3, 4, 142);
    const Matrix<double> y = ngd_test::random_matrix<double>(1, 4, 143);
    Context ctx = Context::reference();
    NaturalGradient<double>::Options o;
    o.evaluate_after = false;
    const StepReport r = NaturalGradient<double>(o).step(
        ctx, model, theta.view(), {x.const_view(), y.const_view(), {}}, Loss::squared);
    EXPECT_TRUE(std::isnan(r.loss_after));
    EXPECT_GT(r.loss_before, 0);
}

/// The float optimizer takes the same step as the double one, to float accuracy.
TEST(NaturalGradient, FloatStepMatchesDouble) {
    const Mlp model(3, {{8, Activation::softplus, true}, {2, Activation::identity, true}});
    Matrix<double> td = model.init<double>(151);
    Matrix<float> tf = ngd_test::host_copy<float>(td);
    td = ngd_test::host_copy<double>(tf);
    const Matrix<float> xf = ngd_test::random_matrix<float>(3, 5, 152),
                        yf = ngd_test::random_matrix<float>(2, 5, 153);
    const Matrix<double> xd = ngd_test::host_copy<double>(xf), yd = ngd_test::host_copy<double>(yf);
    Context ctx = Context::reference();
    const Matrix<double> start = ngd_test::host_copy<double>(td);
    NaturalGradient<double>({1.0, 0.1})
        .step(ctx, model, td.view(), {xd.const_view(), yd.const_view(), {}}, Loss::squared);
    NaturalGradient<float>({1.0, 0.1})
        .step(ctx, model, tf.view(), {xf.const_view(), yf.const_view(), {}}, Loss::squared);
    Matrix<double> dd(td.size(), 1), df(td.size(), 1);
    for (std::int64_t i = 0; i < td.size(); ++i) {
        dd[i] = td[i] - start[i];
        df[i] = tf[i] - start[i];
    }
    // The solve at lambda = 0.1 is well conditioned: a modest condition allowance suffices.
    EXPECT_NEAR_NORMWISE(df, dd, tolerance<float>(model.n_params(), 100));
}

}  // namespace
