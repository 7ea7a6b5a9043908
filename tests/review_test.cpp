// Review regressions for the public layer: the step report's Gauss-Newton quantities against an
// independent evaluation from jacobian() and loss_factors() in every loss and form; Levenberg-
// Marquardt growing lambda from 0; the automatic form leaving natural_residual where n lambda
// H^{-1} overflows; and loss_factors refusing softmax with one output.
#include <cmath>
#include <vector>

#include "test_util.hpp"

namespace {

using namespace ngd;

/// grad L . d and d^T F d = |A d|^2 / n from J, M (loss_factors) and gradient(), trusting neither
/// the Gram nor the solve.
struct Quadratic {
    double gradient_dot = 0, curvature = 0;
};
Quadratic independent_model(Context& ctx, const Mlp& model, const Matrix<double>& theta,
                            const Batch<double>& batch, Loss loss, const Matrix<double>& d) {
    const std::int64_t n = batch.size(), k = model.n_outputs(), p = model.n_params();
    const Matrix<double> j = jacobian(ctx, model, theta.const_view(), batch.inputs);
    const Matrix<double> f = forward(ctx, model, theta.const_view(), batch.inputs);
    const LossFactors<double> lf = loss_factors(ctx, loss, f.const_view(), batch.targets);
    const Matrix<double> g = gradient(ctx, model, theta.const_view(), batch, loss);
    Quadratic q;
    for (std::int64_t i = 0; i < p; ++i) q.gradient_dot += g[i] * d[i];
    for (std::int64_t i = 0; i < n; ++i) {
        std::vector<double> jd(k, 0.0);
        for (std::int64_t c = 0; c < k; ++c)
            for (std::int64_t t = 0; t < p; ++t) jd[c] += j(i * k + c, t) * d[t];
        for (std::int64_t c = 0; c < k; ++c) {
            double ad = 0;  // (M_i^T J_i d)_c
            for (std::int64_t c2 = 0; c2 < k; ++c2) ad += lf.factor(c2, i * k + c) * jd[c2];
            q.curvature += ad * ad;
        }
    }
    q.curvature /= double(n);
    return q;
}

TEST(ReviewReport, PredictedReductionAndOutputChangeMatchIndependentModel) {
    for (Loss loss : {Loss::squared, Loss::logistic, Loss::softmax_cross_entropy}) {
        const std::int64_t k = loss == Loss::logistic ? 1 : (loss == Loss::squared ? 2 : 3);
        const std::int64_t n = 5;
        const Mlp model(3, {{4, Activation::tanh, true}, {k, Activation::identity, true}});
        const Matrix<double> x = ngd_test::random_matrix<double>(3, n, 201);
        const Matrix<double> y =
            loss == Loss::squared
                ? ngd_test::random_matrix<double>(k, n, 202)
                : ngd_test::random_labels<double>(n, loss == Loss::logistic ? 2 : k, 202);
        const Batch<double> batch{x.const_view(), y.const_view(), {}};
        for (SolveForm form : {SolveForm::factor, SolveForm::natural_residual}) {
            if (form == SolveForm::natural_residual && loss == Loss::softmax_cross_entropy)
                continue;
            SCOPED_TRACE(std::string(to_string(loss)) + " " + to_string(form));
            Context ctx = Context::reference();
            const Matrix<double> theta0 = model.init<double>(203);
            const double lambda = 1e-2, eta = 1e-5;
            const Matrix<double> d = direction(ctx, model, theta0.const_view(), batch, loss, lambda,
                                               {GramMode::structured, form});
            const Quadratic q = independent_model(ctx, model, theta0, batch, loss, d);
            Matrix<double> theta = model.init<double>(203);
            NaturalGradient<double>::Options o;
            o.learning_rate = eta;
            o.damping = lambda;
            o.form = form;
            NaturalGradient<double> opt(o);
            const StepReport r = opt.step(ctx, model, theta.view(), batch, loss);
            EXPECT_LT(
                ngd_test::relative_difference(r.predicted_reduction,
                                              eta * q.gradient_dot - 0.5 * eta * eta * q.curvature),
                1e-10);
            EXPECT_LT(ngd_test::relative_difference(r.output_change, eta * std::sqrt(q.curvature)),
                      1e-10);
            // First order: the actual reduction of a tiny step is the predicted one.
            EXPECT_NEAR(r.gain_ratio, 1.0, 1e-3);
        }
    }
}

/// A linear logistic model whose margins are ~700 (double): H^{-1} ~ e^700 is finite, but
/// n lambda H^{-1} overflows for lambda = 1e4.
struct HugeMargins {
    Mlp model{2, {{1, Activation::identity, false}}};
    Matrix<double> x{2, 4}, y{1, 4}, theta{2, 1};
    HugeMargins() {
        for (int i = 0; i < 4; ++i) {
            x(0, i) = (i % 2 ? 1.0 : -1.0) * 700;
            x(1, i) = 0.01 * (0.37 * i + 0.1) * 700;
            y[i] = i % 2;
        }
        theta[0] = 1;
        theta[1] = 0.5;
    }
    Batch<double> batch() const { return {x.const_view(), y.const_view(), {}}; }
};

TEST(ReviewForm, AutomaticLeavesNaturalResidualWhenShiftOverflows) {
    HugeMargins h;
    Context ctx = Context::reference();
    const double lambda = 1e4;
    const Matrix<double> want =
        direction(ctx, h.model, h.theta.const_view(), h.batch(), Loss::logistic, lambda,
                  {GramMode::structured, SolveForm::factor});
    Matrix<double> got;
    ASSERT_NO_THROW(got = direction(ctx, h.model, h.theta.const_view(), h.batch(), Loss::logistic,
                                    lambda, {GramMode::structured, SolveForm::automatic}));
    EXPECT_LT(ngd_test::normwise_error(got.const_view(), want.const_view()), 1e-12);

    NaturalGradient<double>::Options o;
    o.damping = lambda;
    NaturalGradient<double> opt(o);
    Matrix<double> theta = ngd_test::host_copy<double>(h.theta);
    const StepReport r = opt.step(ctx, h.model, theta.view(), h.batch(), Loss::logistic);
    EXPECT_EQ(r.form, SolveForm::factor);
    EXPECT_EQ(r.rung, Rung::cholesky);
    EXPECT_FALSE(r.fallback_used);
    EXPECT_LT(r.solve_residual, 1e-12);
}

TEST(ReviewForm, ExplicitNaturalResidualWithOverflowingShiftThrowsAndKeepsTheta) {
    HugeMargins h;
    Context ctx = Context::reference();
    NaturalGradient<double>::Options o;
    o.damping = 1e4;
    o.form = SolveForm::natural_residual;
    NaturalGradient<double> opt(o);  // the pseudo-inverse fallback is on by default
    Matrix<double> theta = ngd_test::host_copy<double>(h.theta);
    EXPECT_THROW(opt.step(ctx, h.model, theta.view(), h.batch(), Loss::logistic),
                 NotPositiveDefinite);
    EXPECT_TRUE(ngd_test::same_bits(theta, h.theta));
}

TEST(ReviewLevenbergMarquardt, RejectionGrowsDampingFromZero) {
    const Mlp model(3, {{4, Activation::tanh, true}, {1, Activation::identity, true}});
    const Matrix<double> x = ngd_test::random_matrix<double>(3, 6, 211);
    const Matrix<double> y = ngd_test::random_matrix<double>(1, 6, 212);
    const Batch<double> batch{x.const_view(), y.const_view(), {}};
    Context ctx = Context::reference();
    NaturalGradient<double>::Options o;
    o.learning_rate = 1e4;  // every try overshoots until lambda shrinks d
    o.damping = 0;
    o.damping_min = 0;
    o.policy = DampingPolicy::levenberg_marquardt;
    o.max_rejections = 3;
    NaturalGradient<double> opt(o);
    const Matrix<double> theta0 = model.init<double>(213);
    Matrix<double> theta = model.init<double>(213);
    const StepReport r = opt.step(ctx, model, theta.view(), batch, Loss::squared);
    ASSERT_GT(r.rejections, 0);
    EXPECT_GT(r.damping, 0) << "rejected tries were re-solved at lambda = 0";
    EXPECT_GT(r.next_damping, r.damping);
    EXPECT_GT(opt.damping(), 0);
    if (!r.accepted) {
        EXPECT_TRUE(ngd_test::same_bits(theta, theta0));
    }
}

TEST(ReviewChecks, LossFactorsRefusesSoftmaxWithOneOutput) {
    Context ctx = Context::reference();
    const Matrix<double> f(1, 3), t(1, 3);
    try {
        loss_factors(ctx, Loss::softmax_cross_entropy, f.const_view(), t.const_view());
        FAIL() << "softmax with k = 1 was accepted";
    } catch (const InvalidArgument& e) {
        EXPECT_TRUE(ngd_test::contains(e.what(), "ngd::loss_factors"));
        EXPECT_TRUE(ngd_test::contains(e.what(), "outputs"));
        EXPECT_TRUE(ngd_test::contains(e.what(), "1 x 3"));
    }
}

}  // namespace

namespace {

TEST(ReviewContext, MovedFromContextIsAReferenceContext) {
    ngd::Context a = ngd::Context::reference();
    ngd::Context b = std::move(a);
    EXPECT_EQ(a.backend(), ngd::Backend::reference);  // NOLINT(bugprone-use-after-move)
    EXPECT_EQ(b.backend(), ngd::Backend::reference);
    a = std::move(b);
    EXPECT_EQ(b.backend(), ngd::Backend::reference);  // NOLINT(bugprone-use-after-move)
}

TEST(ReviewMatrix, NegativeSizeIsInvalidArgument) {
    EXPECT_THROW(ngd::Matrix<double>(-1, 3), ngd::InvalidArgument);
    EXPECT_THROW(ngd::Matrix<float>(2, -5), ngd::InvalidArgument);
    EXPECT_NO_THROW(ngd::Matrix<double>(0, 0));
}

TEST(ReviewCopy, BadLeadingDimensionOrNullIsInvalidArgument) {
    ngd::Context ctx = ngd::Context::reference();
    ngd::Matrix<double> a(3, 2), b(3, 2);
    const ngd::MatrixView<const double> bad_ld(a.data(), 3, 2, 2);
    EXPECT_THROW(ngd::copy<double>(ctx, bad_ld, b.view()), ngd::InvalidArgument);
    const ngd::MatrixView<const double> null_src(nullptr, 3, 2, 3);
    EXPECT_THROW(ngd::copy<double>(ctx, null_src, b.view()), ngd::InvalidArgument);
    EXPECT_NO_THROW(ngd::copy<double>(ctx, a.const_view(), b.view()));
}

}  // namespace
