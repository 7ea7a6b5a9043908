// Every structured-Gram implementation of the CUDA backend at real sizes (N = 3000, k = 1 and
// k = 10) against the reference: the fused tile kernel on FP64 tensor cores, the same kernel on
// CUDA cores, the cuBLAS route (GEMM panels + one Hadamard pass, several panels forced), and the
// vendor-only yardstick of baselines.cu (whole-N syrk). Then the per-layer rule: its threshold
// without a device, and on a device that one Gram takes each layer its own way; and float's TF32
// opt-in. Float and double.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "cuda_fixture.hpp"
#if defined(NGD_TESTS_WITH_CUDA)
#include "baselines.cuh"
#endif

namespace {

using namespace ngd_test;
using ngd::Activation;
using ngd::GramMode;

/// Two problems of N = 3000 whose middle layer (300 or 320 wide) is past the rule's threshold
/// (256) and whose others are narrow, so that the automatic rule mixes both routes in one Gram.
template <class T>
std::vector<Problem<T>> large_problems() {
    std::vector<Problem<T>> v;
    v.push_back(
        make_problem<T>("k1_n3000",
                        ngd::Mlp(24, {layer(64, Activation::relu), layer(300, Activation::tanh),
                                      layer(1, Activation::identity)}),
                        ngd::Loss::squared, 3000, 41));
    v.push_back(
        make_problem<T>("k10_n300",
                        ngd::Mlp(24, {layer(48, Activation::gelu), layer(320, Activation::relu),
                                      layer(10, Activation::identity)}),
                        ngd::Loss::squared, 300, 42));
    return v;
}

template <class T>
double large_gram_tolerance(const Problem<T>& p) {
    return tolerance<T>(static_cast<double>(p.p()) + chain_length(p.model));
}

template <class T>
class CudaGramSizes : public CudaVsReference<T> {};
TYPED_TEST_SUITE(CudaGramSizes, Precisions);

#if defined(NGD_TESTS_WITH_CUDA)
using ngd::cuda::baseline::GramRouteSetting;

struct Variant {
    const char* name;
    GramRouteSetting route;
    bool tensor_cores;
};
constexpr Variant kVariants[] = {
    {"fused, FP64 tensor cores", GramRouteSetting::fused, true},
    {"fused, CUDA cores", GramRouteSetting::fused, false},
    {"cuBLAS route", GramRouteSetting::cublas, true},
    {"automatic rule", GramRouteSetting::automatic, true},
};

TYPED_TEST(CudaGramSizes, EveryImplementationMatchesReference) {
    using T = TypeParam;
    ngd::Context& cuda = this->cuda();
    for (const auto& p : large_problems<T>()) {
        SCOPED_TRACE(p.name);
        const auto c = upload<T>(cuda, p);
        const auto r = upload<double>(this->ref(), p);
        const Matrix<double> g_ref =
            ngd::gram(this->ref(), p.model, r.theta.const_view(), r.inputs.const_view(),
                      r.rows.const_view(), GramMode::structured);
        const double tol = large_gram_tolerance(p);
        // 512 columns a panel: six panels at N = 3000, the last one partial.
        ngd::cuda::baseline::set_gram_panel_bytes(
            cuda, static_cast<std::size_t>(p.big_n()) * sizeof(T) * 512);
        for (const Variant& v : kVariants) {
            SCOPED_TRACE(v.name);
            ngd::cuda::baseline::set_gram_route(cuda, v.route);
            ngd::cuda::baseline::set_double_tensor_cores(cuda, v.tensor_cores);
            const Matrix<T> g =
                host(cuda, ngd::gram(cuda, p.model, c.theta.const_view(), c.inputs.const_view(),
                                     c.rows.const_view(), GramMode::structured));
            EXPECT_NEAR_NORMWISE(g, g_ref, tol);
        }
        ngd::cuda::baseline::set_gram_route(cuda, GramRouteSetting::automatic);
        ngd::cuda::baseline::set_double_tensor_cores(cuda, true);
        SCOPED_TRACE("vendor-only yardstick (baselines.cu)");
        const Matrix<T> g_vendor = host(cuda, ngd::cuda::baseline::gram_structured_vendor<T>(
                                                  cuda, p.model, c.theta.const_view(),
                                                  c.inputs.const_view(), c.rows.const_view()));
        EXPECT_NEAR_NORMWISE(g_vendor, g_ref, tol);
    }
}

// TF32 is an opt-in for float: off, the float Gram is within tolerance<float>() (the test above);
// on, each product rounds its inputs to 10 mantissa bits, so the Gram is only good to about 1e-3
// (2e-2 here: a loose bound that still catches a wrong or unscaled result). Then off again.
TEST(CudaGramRoute, FloatTf32IsOptInWithItsOwnAccuracy) {
    const std::string why = cuda_unavailable_reason();
    if (!why.empty()) GTEST_SKIP() << why;
    ngd::Context cuda = ngd::Context::cuda();
    ngd::Context ref = ngd::Context::reference();
    auto problems = large_problems<float>();
    const Problem<float>& p = problems[0];
    const auto c = upload<float>(cuda, p);
    const auto r = upload<double>(ref, p);
    const Matrix<double> g_ref =
        ngd::gram(ref, p.model, r.theta.const_view(), r.inputs.const_view(), r.rows.const_view());
    ngd::cuda::baseline::set_gram_route(cuda, GramRouteSetting::cublas);
    ngd::cuda::baseline::set_float_tf32(cuda, true);
    const Matrix<float> g_tf32 = host(cuda, ngd::gram(cuda, p.model, c.theta.const_view(),
                                                      c.inputs.const_view(), c.rows.const_view()));
    EXPECT_NEAR_NORMWISE(g_tf32, g_ref, 2e-2);
    ngd::cuda::baseline::set_float_tf32(cuda, false);
    const Matrix<float> g_fp32 = host(cuda, ngd::gram(cuda, p.model, c.theta.const_view(),
                                                      c.inputs.const_view(), c.rows.const_view()));
    EXPECT_NEAR_NORMWISE(g_fp32, g_ref, large_gram_tolerance(p));
}

TEST(CudaGramRoute, RuleIsTheDocumentedThreshold) {
    using ngd::cuda::baseline::gram_rule_uses_cublas;
    // Automatic: d_l >= min_depth and N >= 256.
    EXPECT_FALSE(gram_rule_uses_cublas(GramRouteSetting::automatic, 256, 255, 4096));
    EXPECT_TRUE(gram_rule_uses_cublas(GramRouteSetting::automatic, 256, 256, 4096));
    EXPECT_TRUE(gram_rule_uses_cublas(GramRouteSetting::automatic, 256, 16384, 4096));
    EXPECT_FALSE(gram_rule_uses_cublas(GramRouteSetting::automatic, 256, 1024, 255));
    EXPECT_TRUE(gram_rule_uses_cublas(GramRouteSetting::automatic, 64, 64, 256));
    // The overrides win whatever the sizes.
    EXPECT_FALSE(gram_rule_uses_cublas(GramRouteSetting::fused, 256, 16384, 65536));
    EXPECT_TRUE(gram_rule_uses_cublas(GramRouteSetting::cublas, 256, 1, 1));
}

TYPED_TEST(CudaGramSizes, AutomaticRuleTakesEachLayerItsOwnWay) {
    using T = TypeParam;
    ngd::Context& cuda = this->cuda();
    ngd::cuda::baseline::set_gram_route(cuda, GramRouteSetting::automatic);
    ngd::cuda::baseline::set_gram_cublas_min_depth(cuda, 256);
    auto problems = large_problems<T>();
    const Problem<T>& p = problems[0];  // widths 64, 300, 1 at N = 3000
    EXPECT_FALSE(ngd::cuda::baseline::gram_layer_uses_cublas(cuda, 64, p.big_n()));
    EXPECT_TRUE(ngd::cuda::baseline::gram_layer_uses_cublas(cuda, 300, p.big_n()));
    const auto c = upload<T>(cuda, p);
    const auto before = ngd::cuda::baseline::debug_counters();
    const Matrix<T> g =
        host(cuda, ngd::gram(cuda, p.model, c.theta.const_view(), c.inputs.const_view(),
                             c.rows.const_view(), GramMode::structured));
    const auto after = ngd::cuda::baseline::debug_counters();
    EXPECT_EQ(after.gram_layers_cublas - before.gram_layers_cublas, 1);
    EXPECT_EQ(after.gram_layers_fused - before.gram_layers_fused, 2);
    const auto r = upload<double>(this->ref(), p);
    const Matrix<double> g_ref =
        ngd::gram(this->ref(), p.model, r.theta.const_view(), r.inputs.const_view(),
                  r.rows.const_view(), GramMode::structured);
    EXPECT_NEAR_NORMWISE(g, g_ref, large_gram_tolerance(p));
}
#else
TYPED_TEST(CudaGramSizes, EveryImplementationMatchesReference) {
    GTEST_SKIP() << "CUDA not compiled in";
}
#endif

}  // namespace
