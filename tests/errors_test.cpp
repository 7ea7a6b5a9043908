// The error model (error.hpp): every bad input gets its typed error before any work, and an
// optimizer step that throws leaves theta bitwise unchanged. Shapes, empty batches, NaN/Inf (with
// count and first index), labels, scalars, zero-width layers, memory spaces, and the CUDA entry
// points of a machine without a usable device. Messages name the function and the argument.
#include <cmath>
#include <functional>
#include <limits>

#include "test_util.hpp"

namespace {

using namespace ngd;
using ngd_test::contains;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

/// A small valid problem; each test breaks one thing.
struct Fixture {
    Mlp model = Mlp(3, {{4, Activation::tanh, true}, {2, Activation::identity, true}});
    Matrix<double> theta = model.init<double>(1);
    Matrix<double> x = ngd_test::random_matrix<double>(3, 5, 2);
    Matrix<double> y = ngd_test::random_matrix<double>(2, 5, 3);
    Matrix<double> labels = ngd_test::random_labels<double>(5, 2, 4);
    Context ctx = Context::reference();
};

/// Runs an NGD and a GD step on (x, y) and expects E from both, with theta unchanged.
template <class E>
void expect_steps_throw(Fixture& fx, const Mlp& model, Matrix<double>& theta,
                        const Batch<double>& batch, Loss loss) {
    const Matrix<double> before = ngd_test::host_copy<double>(theta);
    NaturalGradient<double> ngd_opt;
    GradientDescent<double> gd;
    EXPECT_THROW(ngd_opt.step(fx.ctx, model, theta.view(), batch, loss), E);
    EXPECT_TRUE(ngd_test::same_bits(theta, before)) << "NaturalGradient::step changed theta";
    EXPECT_THROW(gd.step(fx.ctx, model, theta.view(), batch, loss), E);
    EXPECT_TRUE(ngd_test::same_bits(theta, before)) << "GradientDescent::step changed theta";
}

TEST(Errors, MismatchedShapes) {
    Fixture fx;
    const Matrix<double> x4 = ngd_test::random_matrix<double>(4, 5, 5);  // rows != d
    const Matrix<double> y6 = ngd_test::random_matrix<double>(2, 6, 6);  // cols != n
    const Matrix<double> y3 = ngd_test::random_matrix<double>(3, 5, 7);  // rows != k
    expect_steps_throw<InvalidArgument>(fx, fx.model, fx.theta,
                                        {x4.const_view(), fx.y.const_view(), {}}, Loss::squared);
    expect_steps_throw<InvalidArgument>(fx, fx.model, fx.theta,
                                        {fx.x.const_view(), y6.const_view(), {}}, Loss::squared);
    expect_steps_throw<InvalidArgument>(fx, fx.model, fx.theta,
                                        {fx.x.const_view(), y3.const_view(), {}}, Loss::squared);
    Matrix<double> short_theta(fx.model.n_params() - 1, 1);
    expect_steps_throw<InvalidArgument>(fx, fx.model, short_theta,
                                        {fx.x.const_view(), fx.y.const_view(), {}}, Loss::squared);
    EXPECT_THROW(forward(fx.ctx, fx.model, short_theta.const_view(), fx.x.const_view()),
                 InvalidArgument);
    EXPECT_THROW(jacobian(fx.ctx, fx.model, fx.theta.const_view(), x4.const_view()),
                 InvalidArgument);
    EXPECT_THROW(gram(fx.ctx, fx.model, fx.theta.const_view(), x4.const_view()), InvalidArgument);
    EXPECT_THROW(loss_factors(fx.ctx, Loss::squared, fx.y.const_view(), y6.const_view()),
                 InvalidArgument);
    // logistic needs k = 1; softmax needs integer labels in a 1 x n row
    EXPECT_THROW(direction(fx.ctx, fx.model, fx.theta.const_view(),
                           {fx.x.const_view(), fx.labels.const_view(), {}}, Loss::logistic, 0.1),
                 InvalidArgument);
    EXPECT_THROW(
        direction(fx.ctx, fx.model, fx.theta.const_view(),
                  {fx.x.const_view(), fx.y.const_view(), {}}, Loss::softmax_cross_entropy, 0.1),
        InvalidArgument);
    // A leading dimension below the row count.
    const MatrixView<const double> bad_ld(fx.x.data(), 3, 5, 2);
    EXPECT_THROW(forward(fx.ctx, fx.model, fx.theta.const_view(), bad_ld), InvalidArgument);
    try {
        jacobian(fx.ctx, fx.model, fx.theta.const_view(), x4.const_view());
    } catch (const InvalidArgument& e) {
        EXPECT_TRUE(contains(e.what(), "jacobian"));
        EXPECT_TRUE(contains(e.what(), "inputs"));
    }
}

TEST(Errors, MatrixFactorizationOutputRows) {
    Fixture fx;
    const Mlp mf = matrix_factorization(4, 2);
    Matrix<double> theta = mf.init<double>(8);
    Matrix<double> x(4, 3), y = ngd_test::random_matrix<double>(1, 3, 9), rows(1, 3),
                            bad_rows(1, 3);
    for (int s = 0; s < 3; ++s) x(s, s) = 1, rows[s] = s, bad_rows[s] = s;
    bad_rows[2] = 4;  // rows are 0..3
    expect_steps_throw<InvalidArgument>(fx, mf, theta, {x.const_view(), y.const_view(), {}},
                                        Loss::squared);
    expect_steps_throw<InvalidArgument>(
        fx, mf, theta, {x.const_view(), y.const_view(), bad_rows.const_view()}, Loss::squared);
    EXPECT_THROW(forward(fx.ctx, mf, theta.const_view(), x.const_view()), InvalidArgument);
    EXPECT_NO_THROW(forward(fx.ctx, mf, theta.const_view(), x.const_view(), rows.const_view()));
    const Matrix<double> rows5(1, 5);  // output rows given to a model that does not select rows
    EXPECT_THROW(
        forward(fx.ctx, fx.model, fx.theta.const_view(), fx.x.const_view(), rows5.const_view()),
        InvalidArgument);
}

TEST(Errors, EmptyBatch) {
    Fixture fx;
    const Matrix<double> x0(3, 0), y0(2, 0);
    expect_steps_throw<InvalidArgument>(fx, fx.model, fx.theta,
                                        {x0.const_view(), y0.const_view(), {}}, Loss::squared);
    EXPECT_THROW(forward(fx.ctx, fx.model, fx.theta.const_view(), x0.const_view()),
                 InvalidArgument);
}

/// NaN/Inf anywhere: NonFiniteInput with how many and the column-major index of the first.
TEST(Errors, NonFiniteInputsTargetsAndTheta) {
    Fixture fx;
    auto expect_nonfinite = [&](const std::function<void()>& call, std::int64_t count,
                                std::int64_t first) {
        try {
            call();
            ADD_FAILURE() << "no NonFiniteInput";
        } catch (const NonFiniteInput& e) {
            EXPECT_EQ(e.count, count);
            EXPECT_EQ(e.first_index, first);
        }
    };
    Matrix<double> x = ngd_test::host_copy<double>(fx.x);
    x(2, 1) = kNaN;  // index 2 + 1 * 3 = 5
    x(0, 4) = kInf;
    const Batch<double> bx{x.const_view(), fx.y.const_view(), {}};
    expect_nonfinite([&] { gradient(fx.ctx, fx.model, fx.theta.const_view(), bx, Loss::squared); },
                     2, 5);
    expect_steps_throw<NonFiniteInput>(fx, fx.model, fx.theta, bx, Loss::squared);

    Matrix<double> y = ngd_test::host_copy<double>(fx.y);
    y(1, 3) = -kInf;  // index 1 + 3 * 2 = 7
    const Batch<double> by{fx.x.const_view(), y.const_view(), {}};
    expect_nonfinite(
        [&] { direction(fx.ctx, fx.model, fx.theta.const_view(), by, Loss::squared, 0.1); }, 1, 7);
    expect_steps_throw<NonFiniteInput>(fx, fx.model, fx.theta, by, Loss::squared);

    Matrix<double> theta = ngd_test::host_copy<double>(fx.theta);
    theta[3] = kNaN;
    theta[10] = kNaN;
    theta[11] = kInf;
    const Batch<double> ok{fx.x.const_view(), fx.y.const_view(), {}};
    expect_nonfinite([&] { jacobian(fx.ctx, fx.model, theta.const_view(), fx.x.const_view()); }, 3,
                     3);
    expect_steps_throw<NonFiniteInput>(fx, fx.model, theta, ok, Loss::squared);

    Matrix<double> g(2, 2), rhs(2, 1);
    g[0] = g[3] = 1;
    g[1] = kNaN;
    expect_nonfinite([&] { damped_solve(fx.ctx, g.const_view(), 0.0, rhs.const_view()); }, 1, 1);
}

TEST(Errors, BadLabels) {
    Fixture fx;
    const Mlp binary(3, {{4, Activation::tanh, true}, {1, Activation::identity, true}});
    Matrix<double> theta = binary.init<double>(10);
    for (double bad : {0.5, 2.0, -1.0}) {
        Matrix<double> labels = ngd_test::host_copy<double>(fx.labels);
        labels[3] = bad;
        expect_steps_throw<InvalidArgument>(
            fx, binary, theta, {fx.x.const_view(), labels.const_view(), {}}, Loss::logistic);
        EXPECT_THROW(loss_factors(fx.ctx, Loss::logistic, labels.const_view(), labels.const_view()),
                     InvalidArgument);
    }
    for (double bad : {2.0, -1.0, 1.5}) {  // k = 2 classes: labels 0 and 1 only
        Matrix<double> labels = ngd_test::host_copy<double>(fx.labels);
        labels[1] = bad;
        expect_steps_throw<InvalidArgument>(fx, fx.model, fx.theta,
                                            {fx.x.const_view(), labels.const_view(), {}},
                                            Loss::softmax_cross_entropy);
    }
}

TEST(Errors, BadScalars) {
    Fixture fx;
    for (double bad : {-1.0, kNaN, kInf}) {
        SCOPED_TRACE(bad);
        EXPECT_THROW(NaturalGradient<double>({/*learning_rate=*/bad, /*damping=*/1e-3}),
                     InvalidArgument);
        EXPECT_THROW(NaturalGradient<double>({/*learning_rate=*/1.0, /*damping=*/bad}),
                     InvalidArgument);
        EXPECT_THROW(NaturalGradient<float>({/*learning_rate=*/1.0, /*damping=*/bad}),
                     InvalidArgument);
        EXPECT_THROW(GradientDescent<double>({/*learning_rate=*/bad, true}), InvalidArgument);
        const Batch<double> ok{fx.x.const_view(), fx.y.const_view(), {}};
        EXPECT_THROW(direction(fx.ctx, fx.model, fx.theta.const_view(), ok, Loss::squared, bad),
                     InvalidArgument);
        const Matrix<double> j = ngd_test::random_matrix<double>(4, 6, 11),
                             u = ngd_test::random_matrix<double>(4, 1, 12);
        EXPECT_THROW(direction_from_jacobian(fx.ctx, j.const_view(), u.const_view(), bad),
                     InvalidArgument);
    }
    try {
        direction(fx.ctx, fx.model, fx.theta.const_view(),
                  {fx.x.const_view(), fx.y.const_view(), {}}, Loss::squared, -2.0);
        ADD_FAILURE() << "no InvalidArgument";
    } catch (const InvalidArgument& e) {
        EXPECT_TRUE(contains(e.what(), "direction"));
        EXPECT_TRUE(contains(e.what(), "damping"));
    }
    EXPECT_NO_THROW(
        NaturalGradient<double>({1.0, 0.0}));  // lambda = 0 is allowed (Zhang's setting)
}

TEST(Errors, BadDirectionArguments) {
    Fixture fx;
    // The natural-residual form needs an invertible H: not softmax.
    EXPECT_THROW(
        direction(fx.ctx, fx.model, fx.theta.const_view(),
                  {fx.x.const_view(), fx.labels.const_view(), {}}, Loss::softmax_cross_entropy, 0.1,
                  {GramMode::structured, SolveForm::natural_residual}),
        InvalidArgument);
    const Matrix<double> j = ngd_test::random_matrix<double>(6, 4, 13);
    const Matrix<double> u5 = ngd_test::random_matrix<double>(5, 1, 14);
    const Matrix<double> u6 = ngd_test::random_matrix<double>(6, 1, 15);
    const Matrix<double> m_bad = ngd_test::random_matrix<double>(2, 4, 16);  // needs 2 x 6
    EXPECT_THROW(direction_from_jacobian(fx.ctx, j.const_view(), u5.const_view(), 0.1),
                 InvalidArgument);
    EXPECT_THROW(
        direction_from_jacobian(fx.ctx, j.const_view(), u6.const_view(), 0.1, m_bad.const_view()),
        InvalidArgument);
    const Matrix<double> g = ngd_test::random_matrix<double>(3, 4, 17), rhs(3, 1);  // not square
    EXPECT_THROW(damped_solve(fx.ctx, g.const_view(), 1.0, rhs.const_view()), InvalidArgument);
}

TEST(Errors, ZeroWidthLayer) {
    EXPECT_THROW(Mlp(3, {{4, Activation::relu}, {0, Activation::identity}}), InvalidArgument);
    EXPECT_THROW(deep_linear(3, 0, 2), InvalidArgument);
}

TEST(Errors, ViewInTheWrongMemorySpace) {
    Fixture fx;
    const MatrixView<const double> dev_x(fx.x.data(), 3, 5, MemorySpace::device);
    const MatrixView<const double> dev_theta(fx.theta.data(), fx.theta.rows(), 1,
                                             MemorySpace::device);
    EXPECT_THROW(forward(fx.ctx, fx.model, fx.theta.const_view(), dev_x), InvalidArgument);
    EXPECT_THROW(jacobian(fx.ctx, fx.model, dev_theta, fx.x.const_view()), InvalidArgument);
    const MatrixView<double> dev_theta_mut(fx.theta.data(), fx.theta.rows(), 1,
                                           MemorySpace::device);
    NaturalGradient<double> opt;
    EXPECT_THROW(opt.step(fx.ctx, fx.model, dev_theta_mut,
                          {fx.x.const_view(), fx.y.const_view(), {}}, Loss::squared),
                 InvalidArgument);
}

TEST(Errors, CudaWithoutUsableDevice) {
    if (Context::cuda_available()) GTEST_SKIP() << "a CUDA device is usable here";
    try {
        Context::cuda();
        ADD_FAILURE() << "Context::cuda() did not throw without a usable device";
    } catch (const NotCompiled&) {
    } catch (const DeviceUnavailable&) {
    }
    EXPECT_THROW(Context::cuda(), Error);
    EXPECT_EQ(Context::best().backend(),
              Context::cpu_available() ? Backend::cpu : Backend::reference);
    EXPECT_THROW(Matrix<double>(2, 2, MemorySpace::device), Error);
}

TEST(Errors, CpuContextArguments) {
    EXPECT_THROW(Context::cpu(-1), InvalidArgument);
    if (Context::cpu_available()) {
        const Context ctx = Context::cpu(1);
        EXPECT_EQ(ctx.backend(), Backend::cpu);
        EXPECT_EQ(ctx.n_threads(), 1);
        EXPECT_EQ(ctx.memory_space(), MemorySpace::host);
    } else {
        EXPECT_THROW(Context::cpu(), NotCompiled);
    }
}

TEST(Errors, AllTypesDeriveFromError) {
    // Catchable as ngd::Error, and NotPositiveDefinite carries its numbers.
    Fixture fx;
    Matrix<double> g(3, 3), rhs(3, 1);
    const double a[9] = {1, 2, 3, 2, 4, 5, 3, 5, 12};
    for (int i = 0; i < 9; ++i) g[i] = a[i];
    EXPECT_THROW(damped_solve(fx.ctx, g.const_view(), 0.0, rhs.const_view()), Error);
    EXPECT_THROW(Mlp(0, {{1, Activation::relu}}), Error);
}

}  // namespace
