// No silent overflow (DESIGN.md section 4): a stage given finite input never returns NaN/Inf
// without saying so. Inputs near 1e154 in double (1e20 in float) make |x|^2, and with it the
// structured Gram's input Gram, overflow; near 1e300 (1e38) the gradient J^T e itself does. Every
// public function either returns a finite result or throws NonFiniteInput naming the quantity, and
// the optimizers leave theta unchanged.
#include <cmath>
#include <functional>
#include <string>

#include "test_util.hpp"

namespace {

using namespace ngd;
using ngd_test::contains;

template <class T>
class Overflow : public ::testing::Test {};
using Precisions = ::testing::Types<float, double>;
TYPED_TEST_SUITE(Overflow, Precisions);

/// |x| where |x|^2 leaves the range of T (1e154 in double, 1e20 in float), and where the gradient
/// (~|x|^2 for a linear-in-x output and residual) overflows although |x| itself is far from it.
template <class T>
double near_square_root_of_max() {
    return sizeof(T) == sizeof(double) ? 1e154 : 1e20;
}
template <class T>
double near_max() {
    return sizeof(T) == sizeof(double) ? 1e300 : 1e37;
}

/// Runs `call`: a result must be finite; an exception must be NonFiniteInput whose message names
/// `fn` and mentions `quantity`. Returns true when it threw.
template <class T>
bool finite_or_named(const std::function<Matrix<T>()>& call, const std::string& fn,
                     const std::string& quantity) {
    try {
        const Matrix<T> out = call();
        for (std::int64_t i = 0; i < out.size(); ++i) {
            EXPECT_TRUE(std::isfinite(out[i]))
                << fn << " returned " << out[i] << " at " << i << " without an exception";
        }
        return false;
    } catch (const NonFiniteInput& e) {
        EXPECT_TRUE(contains(e.what(), fn));
        EXPECT_TRUE(contains(e.what(), quantity));
        EXPECT_GT(e.count, 0);
        return true;
    }
}

struct Data {
    Mlp model = two_layer_relu(3, 8);
    std::int64_t n = 4;
};

template <class T>
Matrix<T> inputs(double scale, std::int64_t n) {
    Matrix<T> x = ngd_test::random_unit_columns<T>(3, n, 11);
    for (std::int64_t i = 0; i < x.size(); ++i) x[i] = T(double(x[i]) * scale * std::sqrt(3.0));
    return x;
}

TYPED_TEST(Overflow, StructuredGramNamesTheInputGram) {
    using T = TypeParam;
    Data s;
    Context ctx = Context::reference();
    const Matrix<T> theta = s.model.init<T>(12);
    const Matrix<T> x = inputs<T>(near_square_root_of_max<T>(), s.n);
    const Matrix<T> y(1, s.n);
    const Batch<T> batch{x.const_view(), y.const_view(), {}};
    // The structured Gram forms x_i . x_j, which overflows: it must say so, naming the layer.
    EXPECT_TRUE(
        finite_or_named<T>([&] { return gram(ctx, s.model, theta.const_view(), x.const_view()); },
                           "ngd::gram", "input Gram of layer 0"));
    // The explicit mode never forms x_i . x_j: finite, or the overflow named as well.
    finite_or_named<T>(
        [&] {
            return gram(ctx, s.model, theta.const_view(), x.const_view(), {},
                        GramMode::explicit_jacobian);
        },
        "ngd::gram", "Gram matrix");
    // direction reported "Cholesky failed at leading minor 1" for the NaN Gram; now the overflow.
    EXPECT_TRUE(finite_or_named<T>(
        [&] { return direction(ctx, s.model, theta.const_view(), batch, Loss::squared, 1e-3); },
        "ngd::direction", "input Gram of layer 0"));
    Matrix<T> th = ngd_test::host_copy<T>(theta);
    NaturalGradient<T> opt;
    EXPECT_THROW(opt.step(ctx, s.model, th.view(), batch, Loss::squared), NonFiniteInput);
    EXPECT_TRUE(ngd_test::same_bits(th, theta)) << "a failed step changed theta";
}

TYPED_TEST(Overflow, GradientAndLossNameTheOverflow) {
    using T = TypeParam;
    Data s;
    Context ctx = Context::reference();
    const Matrix<T> theta = s.model.init<T>(12);
    const Matrix<T> x = inputs<T>(near_max<T>(), s.n);
    const Matrix<T> y(1, s.n);
    const Batch<T> batch{x.const_view(), y.const_view(), {}};
    // f ~ |x| is finite, but grad L = J^T (f - y) / n ~ |x|^2 is not.
    EXPECT_TRUE(finite_or_named<T>(
        [&] { return gradient(ctx, s.model, theta.const_view(), batch, Loss::squared); },
        "ngd::gradient", "gradient"));
    // The loss is a double: finite for float data (|f|^2 ~ 1e74), or the overflow named.
    try {
        const double l = loss(ctx, s.model, theta.const_view(), batch, Loss::squared);
        EXPECT_TRUE(std::isfinite(l)) << "ngd::loss returned " << l << " without an exception";
    } catch (const NonFiniteInput& e) {
        EXPECT_TRUE(contains(e.what(), "ngd::loss"));
    }
    finite_or_named<T>([&] { return jacobian(ctx, s.model, theta.const_view(), x.const_view()); },
                       "ngd::jacobian", "Jacobian");
    for (GramMode mode : {GramMode::structured, GramMode::explicit_jacobian}) {
        finite_or_named<T>(
            [&] { return gram(ctx, s.model, theta.const_view(), batch, Loss::squared, mode); },
            "ngd::gram", "Gram matrix");
        finite_or_named<T>(
            [&] {
                return direction(ctx, s.model, theta.const_view(), batch, Loss::squared, 1e-3,
                                 {mode, SolveForm::automatic});
            },
            "ngd::direction", "");
    }
    Matrix<T> th = ngd_test::host_copy<T>(theta);
    GradientDescent<T> gd;
    EXPECT_THROW(gd.step(ctx, s.model, th.view(), batch, Loss::squared), NonFiniteInput);
    EXPECT_TRUE(ngd_test::same_bits(th, theta)) << "GradientDescent wrote an overflowed step";
}

/// Below the overflow the same scale works: the check is not a magnitude cap.
TYPED_TEST(Overflow, LargeButRepresentableInputsStillWork) {
    using T = TypeParam;
    Data s;
    Context ctx = Context::reference();
    const Matrix<T> theta = s.model.init<T>(12);
    const Matrix<T> x = inputs<T>(near_square_root_of_max<T>() * 1e-3, s.n);
    const Matrix<T> g = gram(ctx, s.model, theta.const_view(), x.const_view());
    for (std::int64_t i = 0; i < g.size(); ++i) ASSERT_TRUE(std::isfinite(g[i]));
}

}  // namespace
