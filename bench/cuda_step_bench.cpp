// The whole damped natural-gradient step (NaturalGradient<T>::step, public API, structured Gram,
// automatic form, lambda = 1e-3) on the DESIGN.md section 6 configurations, timed with CUDA events
// on the context's stream. One extra step with per-stage timing (it synchronises per stage, so it
// stays out of the timed loop) reports where the time goes. The PyTorch and JAX versions of the
// same step live in bench/peers. Skips without a device.
#if defined(NGD_WITH_CUDA)

#include <cstdint>
#include <string>

#include "bench_common.hpp"
#include "cuda_timer.hpp"

namespace ngd_bench {
namespace {

template <class T>
void bm_step(benchmark::State& state, std::size_t index) {
    ngd::Context* ctx = cuda_or_skip(state);
    if (ctx == nullptr) return;
    guarded(state, [&] {
        const Config& c = configs()[index];
        const Data<T>& d = cached_data<T>(*ctx, index);
        ngd::Matrix<T> theta = ngd::to_context(*ctx, d.theta.const_view());
        typename ngd::NaturalGradient<T>::Options options;
        // A small step keeps theta near its initial value, so every timed step does the same work
        // (one factorization, no damping raises: see the cholesky_tries counter).
        options.learning_rate = 1e-2;
        options.damping = 1e-3;
        options.evaluate_after = false;
        ngd::NaturalGradient<T> ngd_step(options);
        EventTimer timer(context_stream(*ctx));
        double total = 0;
        for (auto _ : state) {
            record(state, timer.time([&] {
                ngd_step.step(*ctx, c.model, theta.view(), d.batch(), c.loss);
            }),
                   total);
        }
        set_rates(state, total, step_flops(c));
        set_sizes(state, c);

        options.time_stages = true;
        const ngd::StepReport r =
            ngd::NaturalGradient<T>(options).step(*ctx, c.model, theta.view(), d.batch(), c.loss);
        state.counters["forward_ms"] = 1e3 * r.seconds.forward;
        state.counters["gram_ms"] = 1e3 * r.seconds.gram;
        state.counters["solve_ms"] = 1e3 * r.seconds.solve;
        state.counters["direction_ms"] = 1e3 * r.seconds.direction;
        state.counters["cholesky_tries"] = double(r.cholesky_tries);
    });
}

template <class T>
void register_steps() {
    for (std::size_t i = 0; i < configs().size(); ++i) {
        const std::string name = "cuda/step/" + configs()[i].name + "/" + precision_name<T>();
        benchmark::RegisterBenchmark(name.c_str(), bm_step<T>, i)
            ->UseManualTime()
            ->Unit(benchmark::kMillisecond);
    }
}

const bool registered = [] {
    register_steps<double>();
    register_steps<float>();
    return true;
}();

}  // namespace
}  // namespace ngd_bench

#endif  // NGD_WITH_CUDA
