// Kerekes, Meszaros & Huszar (2021) at small size, on the reference backend: each test asserts the
// criterion stated for its claim in docs/reproduction.md (claim 5: NGD's margin law and
// direction on deep linear nets vs GD's turn towards the SVM; 7: the diagonal network on a sparse
// teacher; 8: the margin law on a two-layer tanh net), plus the helpers those criteria rely on.
#include <gtest/gtest.h>

#include <cmath>
#include <ngd/ngd.hpp>
#include <string>
#include <vector>

#include "common/kerekes.hpp"
#include "common/sparse_teacher.hpp"

namespace {

namespace kk = examples::kerekes;

kk::LogisticRecord last_record(const kk::LogisticResult& res) {
    EXPECT_TRUE(res.error.empty()) << res.error;
    return res.records.back();
}

// The helpers: the SVM meets its KKT conditions, the closed form inverts softplus, and the
// end-to-end map of a deep linear net equals its outputs on the identity.
TEST(ReproKerekes, HelpersSvmClosedFormEndToEnd) {
    const kk::TeacherData data = kk::make_teacher_data(30, 20, 10, 0);
    const kk::ReferenceDirections refs = kk::reference_directions(data);
    const std::vector<double> f = kk::linear_outputs(data.x, refs.svm.w);
    for (std::size_t i = 0; i < f.size(); ++i) {
        const double m = data.s[i] * f[i];
        EXPECT_GE(m, 1 - 1e-9) << "sample " << i;
        if (refs.svm.alpha[i] > 0) {
            EXPECT_NEAR(m, 1, 1e-9) << "support vector " << i;
        }
    }
    const std::vector<double> g = kk::linear_outputs(data.x, refs.min_norm);
    for (std::size_t i = 0; i < g.size(); ++i) EXPECT_NEAR(data.s[i] * g[i], 1, 1e-10);
    for (const double m0 : {-30.0, -1.0, 0.0, 2.5, 40.0}) {
        for (const double t : {0.0, 0.3, 7.0, 100.0}) {
            EXPECT_NEAR(kk::softplus(kk::closed_form_margin(m0, t)), t + kk::softplus(m0), 1e-9);
        }
    }
    ngd::Context ctx = ngd::Context::reference();
    const ngd::Mlp model = kk::make_model("deep_linear", 30, 3, 7);
    const ngd::Matrix<double> theta = model.init<double>(5);
    ngd::Matrix<double> eye(30, 30);
    for (int i = 0; i < 30; ++i) eye(i, i) = 1;
    const ngd::Matrix<double> w =
        ngd::forward<double>(ctx, model, theta.const_view(), eye.const_view());
    const std::vector<double> e2e = kk::end_to_end_weights(model, theta.data());
    for (int i = 0; i < 30; ++i) EXPECT_NEAR(e2e[i], w[i], 1e-13);
}

// Claim 5: for depths 1, 2, 3, NGD (eta = 0.02, damping 0, t = 20) keeps
// max_i |ln(1+e^{m_i}) - ln(1+e^{m_i(0)}) - t| below 0.1 (its O(eta) discretization error) and
// ends with cos(w, X^+ s) > 0.99; GD ends closer to the SVM than to X^+ s, by > 0.05 in cosine.
TEST(ReproKerekes, Claim5NgdMarginLawAndDirectionOnDeepLinearNets) {
    ngd::Context ctx = ngd::Context::reference();
    const kk::TeacherData data = kk::make_teacher_data(30, 20, 500, 1);
    const kk::ReferenceDirections refs = kk::reference_directions(data);
    const double cos_refs = kk::cosine(refs.svm.w, refs.min_norm);
    ASSERT_LT(cos_refs, 0.95) << "the two reference directions must differ for the test to bite";
    for (const std::int64_t depth : {1, 2, 3}) {
        kk::LogisticRun run;
        run.model = "deep_linear";
        run.depth = depth;
        run.width = 30;
        run.seed = 1;
        run.method = "ngd";
        run.lr = 0.02;
        run.steps = 1000;
        const kk::LogisticResult ngd_res = kk::run_logistic(ctx, data, &refs, run);
        double worst_law = 0;
        for (const auto& r : ngd_res.records) worst_law = std::max(worst_law, r.margin_law_error);
        const kk::LogisticRecord n_end = last_record(ngd_res);
        EXPECT_LT(worst_law, 0.1) << "depth " << depth;
        EXPECT_GT(n_end.min_margin, 19.0) << "depth " << depth;
        EXPECT_GT(n_end.cos_min_norm, 0.99) << "depth " << depth;
        EXPECT_EQ(n_end.ladder_steps, 0) << "depth " << depth;

        run.method = "gd";
        run.lr = kk::gd_auto_lr_for(ctx, data, run);
        run.steps = 3000;
        const kk::LogisticRecord g_end = last_record(kk::run_logistic(ctx, data, &refs, run));
        EXPECT_GT(g_end.cos_svm, g_end.cos_min_norm + 0.05) << "depth " << depth;
        EXPECT_GT(g_end.cos_svm, n_end.cos_svm) << "depth " << depth;
    }
}

// Claim 7: on a 3-sparse teacher (d = 100, n = 40), GD on the diagonal network from alpha = 1e-3
// reaches test relative error < 0.1, while one exact NGD step per unit time (eta = 1) lands on
// the min-norm interpolant X^+ y (to 1e-8) with test relative error > 0.5. The caveat we found:
// with eta = 0.01 (closer to the flow) NGD's error is less than half of X^+ y's.
TEST(ReproKerekes, Claim7SparseTeacherGdGeneralizesNgdDoesNot) {
    ngd::Context ctx = ngd::Context::reference();
    const kk::SparseData data = kk::make_sparse_data(100, 40, 1000, 3, 0);
    const std::vector<double> w_mn =
        kk::min_norm_interpolant(data.x, std::vector<double>(data.y.data(), data.y.data() + 40));
    const double mn_error = kk::regression_record(data, w_mn, w_mn).test_rel_error;

    kk::DiagonalRun run;
    run.method = "gd";
    run.lr = 0.02;
    run.steps = 5000;
    run.init_scale = 1e-3;
    const kk::DiagonalResult gd = kk::run_diagonal(ctx, data, w_mn, run);
    ASSERT_TRUE(gd.error.empty()) << gd.error;
    EXPECT_LT(gd.records.back().loss, 1e-3);
    EXPECT_LT(gd.records.back().test_rel_error, 0.1);

    run.method = "ngd";
    run.lr = 1.0;
    run.steps = 5;
    const kk::DiagonalResult ngd1 = kk::run_diagonal(ctx, data, w_mn, run);
    ASSERT_TRUE(ngd1.error.empty()) << ngd1.error;
    EXPECT_LT(ngd1.records.back().dist_min_norm, 1e-8);
    EXPECT_GT(ngd1.records.back().test_rel_error, 0.5);

    run.lr = 0.01;
    run.steps = 2000;
    const kk::DiagonalResult ngd_small = kk::run_diagonal(ctx, data, w_mn, run);
    ASSERT_TRUE(ngd_small.error.empty()) << ngd_small.error;
    EXPECT_LT(ngd_small.records.back().loss, 1e-10);
    EXPECT_LT(ngd_small.records.back().test_rel_error, 0.5 * mn_error);
}

// Claim 8: a two-layer tanh net of width 128 (p = 1537 parameters, n = 40, d = 10) under NGD
// (eta = 0.01, damping 0, t = 10) follows the closed form to 0.05; at width 2 (p = 25 < n, so
// J J^T is singular and the library's ladder must act) the law is off by more than 0.5.
TEST(ReproKerekes, Claim8MarginLawOnWideTanhNet) {
    ngd::Context ctx = ngd::Context::reference();
    const kk::TeacherData data = kk::make_teacher_data(10, 40, 500, 0);
    kk::LogisticRun run;
    run.model = "tanh";
    run.depth = 2;
    run.method = "ngd";
    run.lr = 0.01;
    run.steps = 1000;
    run.width = 128;
    const kk::LogisticResult wide = kk::run_logistic(ctx, data, nullptr, run);
    double worst = 0;
    for (const auto& r : wide.records) worst = std::max(worst, r.margin_law_error);
    EXPECT_LT(worst, 0.05);
    EXPECT_EQ(last_record(wide).ladder_steps, 0);
    EXPECT_GT(last_record(wide).min_margin, 9.0);

    run.width = 2;
    const kk::LogisticResult narrow = kk::run_logistic(ctx, data, nullptr, run);
    // With the default failure ladder the singular system is solved with raised damping or the
    // pseudo-inverse, and the margins leave the closed form; a library that refuses the system
    // instead (NotPositiveDefinite) shows the same thing more bluntly.
    if (narrow.error.empty()) {
        EXPECT_GT(narrow.records.back().margin_law_error, 0.5);
        EXPECT_GT(narrow.records.back().ladder_steps, 0);
    } else {
        EXPECT_NE(narrow.error.find("not positive definite"), std::string::npos) << narrow.error;
    }
}

}  // namespace
