// SolvePrecision::mixed through the pipeline, on the reference and cpu backends: direction()
// (DirectionOptions::precision), direction_from_jacobian() and NaturalGradient (Options::precision,
// StepReport) give the working-precision result, refined, where the damped system's condition
// allows (kappa ~1e4), and report the fallback to the double factorization where it does not
// (kappa ~1e11, a damping far below the Gram's spectrum on a singular Gram); the natural-residual
// form refines with its per-row shift; mixed_tf32 is reported through direction() and the step;
// float data steps as working.
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "mixed_fixture.hpp"

namespace {

using namespace ngd_test;
using ngd::SolvePrecision;
using ngd::SolveReport;

class MixedDirection : public HostBackendTest {};

// Softmax cross-entropy: A A^T is singular (M_i 1 = 0), so cond(A A^T + n lambda I) is
// (lambda_max + n lambda) / (n lambda) and the damping sets it.
Problem<double> softmax_problem() {
    std::vector<Problem<double>> all = model_problems<double>();
    for (auto& p : all) {
        if (p.name == "mlp_every_activation") return std::move(p);
    }
    throw std::logic_error("mlp_every_activation is missing from model_problems()");
}

double damping_for_condition(ngd::Context& ctx, const Problem<double>& p, double kappa) {
    const auto u = upload<double>(ctx, p);
    const Matrix<double> g =
        host(ctx, ngd::gram(ctx, p.model, u.theta.const_view(), u.batch(), p.loss));
    return largest_eigenvalue(g) / (kappa * double(p.n()));
}

TEST_P(MixedDirection, DirectionRefinesOrFallsBack) {
    const Problem<double> p = softmax_problem();
    const auto u = upload<double>(ctx(), p);
    for (const double kappa : {1e4, 1e11}) {
        SCOPED_TRACE("kappa=" + std::to_string(kappa));
        const double lambda = damping_for_condition(ctx(), p, kappa);
        ngd::DirectionOptions opt;
        opt.form = ngd::SolveForm::factor;
        SolveReport rw, rm;
        const Matrix<double> dw = host(ctx(), ngd::direction(ctx(), p.model, u.theta.const_view(),
                                                             u.batch(), p.loss, lambda, opt, &rw));
        opt.precision = SolvePrecision::mixed;
        const Matrix<double> dm = host(ctx(), ngd::direction(ctx(), p.model, u.theta.const_view(),
                                                             u.batch(), p.loss, lambda, opt, &rm));
        EXPECT_EQ(rw.used, SolvePrecision::working);
        EXPECT_EQ(rm.requested, SolvePrecision::mixed);
        if (kappa < 1e6) {
            EXPECT_EQ(rm.used, SolvePrecision::mixed);
            EXPECT_FALSE(rm.mixed_fallback);
            EXPECT_GE(rm.refinement_iterations, 1);
            EXPECT_LE(rm.backward_error, 2 * rw.backward_error);
            EXPECT_NEAR_NORMWISE(dm, dw, 1e-8);
        } else {
            EXPECT_EQ(rm.used, SolvePrecision::working);
            EXPECT_TRUE(rm.mixed_fallback);
            EXPECT_TRUE(same_bits(dm, dw));
        }
        EXPECT_LE(rm.solve_residual, 1e-3);
    }
}

TEST_P(MixedDirection, DirectionFromJacobianRefinesOrFallsBack) {
    // N = 120 > p = 30: G = J J^T has rank 30, cond(G + n lambda I) = (lambda_max + n lambda) /
    // (n lambda).
    const std::int64_t big_n = 120, p = 30;
    const Matrix<double> j = random_matrix<double>(big_n, p, 21);
    const Matrix<double> res = random_matrix<double>(big_n, 1, 22);
    Matrix<double> g(big_n, big_n);
    for (std::int64_t b = 0; b < big_n; ++b) {
        for (std::int64_t a = 0; a < big_n; ++a) {
            double s = 0;
            for (std::int64_t c = 0; c < p; ++c) s += j(a, c) * j(b, c);
            g(a, b) = s;
        }
    }
    const double top = largest_eigenvalue(g);
    const Matrix<double> jd = put<double>(ctx(), j), rd = put<double>(ctx(), res);
    for (const double kappa : {1e4, 1e11}) {
        SCOPED_TRACE("kappa=" + std::to_string(kappa));
        const double lambda = top / (kappa * double(big_n));
        SolveReport rw, rm;
        const Matrix<double> dw = host(
            ctx(), ngd::direction_from_jacobian<double>(ctx(), jd.const_view(), rd.const_view(),
                                                        lambda, {}, SolvePrecision::working, &rw));
        const Matrix<double> dm = host(
            ctx(), ngd::direction_from_jacobian<double>(ctx(), jd.const_view(), rd.const_view(),
                                                        lambda, {}, SolvePrecision::mixed, &rm));
        if (kappa < 1e6) {
            EXPECT_EQ(rm.used, SolvePrecision::mixed);
            EXPECT_GE(rm.refinement_iterations, 1);
            EXPECT_LE(rm.backward_error, 2 * rw.backward_error);
            EXPECT_NEAR_NORMWISE(dm, dw, 1e-8);
        } else {
            EXPECT_EQ(rm.used, SolvePrecision::working);
            EXPECT_TRUE(rm.mixed_fallback);
            EXPECT_TRUE(same_bits(dm, dw));
        }
    }
}

TEST_P(MixedDirection, NaturalGradientReportsThePrecisionOfTheStep) {
    const Problem<double> p = softmax_problem();
    for (const double kappa : {1e4, 1e11}) {
        SCOPED_TRACE("kappa=" + std::to_string(kappa));
        ngd::NaturalGradient<double>::Options o;
        o.damping = damping_for_condition(ctx(), p, kappa);
        o.form = ngd::SolveForm::factor;
        o.damping_raises = 0;
        o.fallback = ngd::Fallback::none;
        auto working = upload<double>(ctx(), p), mixed = upload<double>(ctx(), p);
        const ngd::StepReport rw = ngd::NaturalGradient<double>(o).step(
            ctx(), p.model, working.theta.view(), working.batch(), p.loss);
        o.precision = SolvePrecision::mixed;
        const ngd::StepReport rm = ngd::NaturalGradient<double>(o).step(
            ctx(), p.model, mixed.theta.view(), mixed.batch(), p.loss);
        EXPECT_EQ(rw.precision, SolvePrecision::working);
        EXPECT_EQ(rw.refinement_iterations, 0);
        EXPECT_GT(rw.backward_error, 0.0);
        if (kappa < 1e6) {
            EXPECT_EQ(rm.precision, SolvePrecision::mixed);
            EXPECT_FALSE(rm.mixed_fallback);
            EXPECT_GE(rm.refinement_iterations, 1);
            EXPECT_LE(rm.backward_error, 2 * rw.backward_error);
            EXPECT_NEAR_NORMWISE(host(ctx(), mixed.theta), host(ctx(), working.theta), 1e-10);
        } else {
            EXPECT_EQ(rm.precision, SolvePrecision::working);
            EXPECT_TRUE(rm.mixed_fallback);
            EXPECT_TRUE(same_bits(host(ctx(), mixed.theta), host(ctx(), working.theta)));
            EXPECT_NEAR(rm.backward_error, rw.backward_error, 1e-6 * rw.backward_error);
        }
        EXPECT_EQ(rm.solve_residual <= 1e-3, true);
    }
}

TEST_P(MixedDirection, NaturalResidualFormRefinesWithItsDiagonalShift) {
    // Logistic loss in the natural-residual form: the shift n lambda H^{-1} differs per row, and
    // the refinement's residual must use it.
    std::vector<Problem<double>> all = model_problems<double>();
    int checked = 0;
    for (auto& p : all) {
        if (p.loss != ngd::Loss::logistic || p.n() < 8) continue;
        ++checked;
        SCOPED_TRACE(p.name);
        const auto u = upload<double>(ctx(), p);
        const double lambda = damping_for_condition(ctx(), p, 1e3);
        ngd::DirectionOptions opt;
        opt.form = ngd::SolveForm::natural_residual;
        SolveReport rw, rm;
        const Matrix<double> dw = host(ctx(), ngd::direction(ctx(), p.model, u.theta.const_view(),
                                                             u.batch(), p.loss, lambda, opt, &rw));
        opt.precision = SolvePrecision::mixed;
        const Matrix<double> dm = host(ctx(), ngd::direction(ctx(), p.model, u.theta.const_view(),
                                                             u.batch(), p.loss, lambda, opt, &rm));
        EXPECT_EQ(rm.used, SolvePrecision::mixed);
        EXPECT_LE(rm.backward_error, 2 * rw.backward_error);
        EXPECT_NEAR_NORMWISE(dm, dw, 1e-8);
    }
    EXPECT_GT(checked, 0);
}

TEST_P(MixedDirection, Tf32ThroughDirectionAndNaturalGradient) {
    // mixed_tf32 through the pipeline: direction() and a NaturalGradient step report the TF32
    // factor and its refinement, and give the working result (kappa 1e2: classical refinement).
    const Problem<double> p = softmax_problem();
    const double lambda = damping_for_condition(ctx(), p, 1e2);
    const auto u = upload<double>(ctx(), p);
    ngd::DirectionOptions opt;
    opt.form = ngd::SolveForm::factor;
    SolveReport rw, rt;
    const Matrix<double> dw = host(ctx(), ngd::direction(ctx(), p.model, u.theta.const_view(),
                                                         u.batch(), p.loss, lambda, opt, &rw));
    opt.precision = SolvePrecision::mixed_tf32;
    const Matrix<double> dt = host(ctx(), ngd::direction(ctx(), p.model, u.theta.const_view(),
                                                         u.batch(), p.loss, lambda, opt, &rt));
    EXPECT_EQ(rt.requested, SolvePrecision::mixed_tf32);
    EXPECT_EQ(rt.used, SolvePrecision::mixed_tf32);
    EXPECT_GE(rt.refinement_iterations, 1);
    EXPECT_EQ(rt.cg_iterations, 0);
    EXPECT_LE(rt.backward_error, 2 * rw.backward_error);
    EXPECT_NEAR_NORMWISE(dt, dw, 1e-8);

    ngd::NaturalGradient<double>::Options o;
    o.damping = lambda;
    o.form = ngd::SolveForm::factor;
    o.precision = SolvePrecision::mixed_tf32;
    auto tf = upload<double>(ctx(), p);
    const ngd::StepReport r =
        ngd::NaturalGradient<double>(o).step(ctx(), p.model, tf.theta.view(), tf.batch(), p.loss);
    EXPECT_EQ(r.precision, SolvePrecision::mixed_tf32);
    EXPECT_FALSE(r.mixed_fallback);
    EXPECT_EQ(r.refinement_iterations, rt.refinement_iterations);
    EXPECT_EQ(r.cg_iterations, 0);
}

TEST_P(MixedDirection, FloatStepIsTheWorkingStep) {
    // float data: mixed has no lower precision to factor in, so the step is the working one.
    std::vector<Problem<float>> all = model_problems<float>();
    const Problem<float>& p = all.front();
    ngd::NaturalGradient<float>::Options o;
    o.damping = 1e-2;
    auto working = upload<float>(ctx(), p), mixed = upload<float>(ctx(), p);
    ngd::NaturalGradient<float>(o).step(ctx(), p.model, working.theta.view(), working.batch(),
                                        p.loss);
    o.precision = SolvePrecision::mixed;
    const ngd::StepReport rm = ngd::NaturalGradient<float>(o).step(
        ctx(), p.model, mixed.theta.view(), mixed.batch(), p.loss);
    EXPECT_EQ(rm.precision, SolvePrecision::working);
    EXPECT_FALSE(rm.mixed_fallback);
    EXPECT_EQ(rm.refinement_iterations, 0);
    EXPECT_TRUE(same_bits(host(ctx(), mixed.theta), host(ctx(), working.theta)));
}

INSTANTIATE_TEST_SUITE_P(Backends, MixedDirection,
                         ::testing::Values(HostBackend::reference, HostBackend::cpu),
                         host_backend_name);

}  // namespace
