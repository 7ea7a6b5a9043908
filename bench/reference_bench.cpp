// Reference-backend benchmarks at a small size (wall-clock time per iteration): what the
// float64-accumulating CPU oracle costs per stage and per step, so the binary measures something on
// a machine without a GPU and the CUDA speed-up over the oracle can be read off one run. Model
// 32-64(relu)-64(tanh)-4, softmax, n = 64 (N = 256).
#include <cstdint>
#include <string>

#include "bench_common.hpp"

namespace ngd_bench {
namespace {

const Config& small_config() {
    using ngd::Activation;
    static const Config c{
        "small",
        ngd::Mlp(32, {ngd::Layer{64, Activation::relu}, ngd::Layer{64, Activation::tanh},
                      ngd::Layer{4, Activation::identity}}),
        ngd::Loss::softmax_cross_entropy, 64};
    return c;
}

ngd::Context& reference_context() {
    static ngd::Context ctx = ngd::Context::reference();
    return ctx;
}

void bm_forward(benchmark::State& state) {
    const Config& c = small_config();
    const Data<double> d = make_data<double>(reference_context(), c);
    double total = 0;
    for (auto _ : state) {
        record(state, wall_seconds([&] {
                   benchmark::DoNotOptimize(ngd::forward(
                       reference_context(), c.model, d.theta.const_view(), d.inputs.const_view()));
               }),
               total);
    }
    set_rates(state, total, forward_flops(c), forward_bytes<double>(c));
    set_sizes(state, c);
}

// gram() with a batch: the forward pass, the loss factors and the seeds come first (the rate
// counts only the Gram's own flops).
void bm_gram(benchmark::State& state, ngd::GramMode mode) {
    const Config& c = small_config();
    const Data<double> d = make_data<double>(reference_context(), c);
    double total = 0;
    for (auto _ : state) {
        record(
            state, wall_seconds([&] {
                benchmark::DoNotOptimize(ngd::gram(reference_context(), c.model,
                                                   d.theta.const_view(), d.batch(), c.loss, mode));
            }),
            total);
    }
    set_rates(
        state, total,
        mode == ngd::GramMode::structured ? gram_structured_flops(c) : gram_explicit_flops(c));
    set_sizes(state, c);
}

void bm_solve(benchmark::State& state) {
    const Config& c = small_config();
    ngd::Context& ctx = reference_context();
    const Data<double> d = make_data<double>(ctx, c);
    const ngd::Matrix<double> g = ngd::gram(ctx, c.model, d.theta.const_view(), d.batch(), c.loss);
    ngd::Matrix<double> rhs(c.big_n(), 1);
    for (std::int64_t i = 0; i < rhs.size(); ++i) rhs[i] = 1;
    double total = 0;
    for (auto _ : state) {
        record(state, wall_seconds([&] {
                   benchmark::DoNotOptimize(
                       ngd::damped_solve(ctx, g.const_view(), 1e-2, rhs.const_view()));
               }),
               total);
    }
    set_rates(state, total, solve_flops(double(c.big_n()), 1));
    set_sizes(state, c);
}

void bm_step(benchmark::State& state) {
    const Config& c = small_config();
    ngd::Context& ctx = reference_context();
    const Data<double> d = make_data<double>(ctx, c);
    ngd::Matrix<double> theta = ngd::to_context(ctx, d.theta.const_view());
    ngd::NaturalGradient<double>::Options options;
    options.learning_rate = 1e-2;
    options.evaluate_after = false;
    ngd::NaturalGradient<double> ngd_step(options);
    double total = 0;
    for (auto _ : state) {
        record(state,
               wall_seconds([&] { ngd_step.step(ctx, c.model, theta.view(), d.batch(), c.loss); }),
               total);
    }
    set_rates(state, total, step_flops(c));
    set_sizes(state, c);
}

BENCHMARK(bm_forward)
    ->Name("reference/forward/small/f64")
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(bm_gram, structured, ngd::GramMode::structured)
    ->Name("reference/gram_structured/small/f64")
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(bm_gram, explicit_jacobian, ngd::GramMode::explicit_jacobian)
    ->Name("reference/gram_explicit/small/f64")
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(bm_solve)
    ->Name("reference/solve/small/f64")
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(bm_step)
    ->Name("reference/step/small/f64")
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace ngd_bench
