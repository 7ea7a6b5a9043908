// cpu backend benchmarks on the CPU configurations of DESIGN.md section 6 (a: two-layer ReLU
// d 64, m 4096, n 256; b: MLP 64-512-512-10 relu, softmax, n 256; c: two-layer ReLU d 784, m 4096,
// n 1024), float64 and float32: one NaturalGradient step on Context::cpu() and on the reference,
// and in the same run the floors: the step's own BLAS products (GEMM, SYRK) on the same operand
// shapes plus LAPACK potrf/potrs at the same N, each timed alone (wall clock, medians by Google
// Benchmark's repetitions). The ratio step / floors is the "within 1.3x" target.
#if defined(NGD_WITH_CPU)

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "cpu/blas.hpp"

namespace ngd_bench {
namespace {

const std::vector<Config>& cpu_configs() {
    using ngd::Activation;
    static const std::vector<Config> all = [] {
        const ngd::Mlp mlp(64,
                           {ngd::Layer{512, Activation::relu}, ngd::Layer{512, Activation::relu},
                            ngd::Layer{10, Activation::identity}});
        return std::vector<Config>{{"a", ngd::two_layer_relu(64, 4096), ngd::Loss::squared, 256},
                                   {"b", mlp, ngd::Loss::softmax_cross_entropy, 256},
                                   {"c", ngd::two_layer_relu(784, 4096), ngd::Loss::squared, 1024}};
    }();
    return all;
}

ngd::Context& context(bool cpu) {
    static ngd::Context cpu_ctx = ngd::Context::cpu();
    static ngd::Context ref_ctx = ngd::Context::reference();
    return cpu ? cpu_ctx : ref_ctx;
}

template <class T>
const Data<T>& data(std::size_t index) {
    static std::map<std::size_t, std::unique_ptr<Data<T>>> cache;
    auto& slot = cache[index];
    if (!slot) slot = std::make_unique<Data<T>>(make_data<T>(context(false), cpu_configs()[index]));
    return *slot;
}

/// One step of NaturalGradient (structured Gram, automatic form, lambda = 1e-3, no loss after the
/// step, so that the step is the forward pass, seeds, Gram, solve and direction).
template <class T>
void bm_step(benchmark::State& state, std::size_t index, bool cpu) {
    guarded(state, [&] {
        const Config& c = cpu_configs()[index];
        ngd::Context& ctx = context(cpu);
        const Data<T>& d = data<T>(index);
        ngd::Matrix<T> theta = ngd::to_context(ctx, d.theta.const_view());
        typename ngd::NaturalGradient<T>::Options options;
        options.learning_rate = 1e-2;  // small: every timed step does the same work
        options.damping = 1e-3;
        options.evaluate_after = false;
        ngd::NaturalGradient<T> ngd_step(options);
        double total = 0;
        for (auto _ : state) {
            record(state, wall_seconds([&] {
                       ngd_step.step(ctx, c.model, theta.view(), d.batch(), c.loss);
                   }),
                   total);
        }
        set_rates(state, total, step_flops(c));
        set_sizes(state, c);
        options.time_stages = true;
        const ngd::StepReport r =
            ngd::NaturalGradient<T>(options).step(ctx, c.model, theta.view(), d.batch(), c.loss);
        state.counters["forward_ms"] = 1e3 * r.seconds.forward;
        state.counters["gram_ms"] = 1e3 * r.seconds.gram;
        state.counters["solve_ms"] = 1e3 * r.seconds.solve;
        state.counters["direction_ms"] = 1e3 * r.seconds.direction;
        state.counters["cholesky_tries"] = double(r.cholesky_tries);
    });
}

/// The floors of one step: every BLAS/LAPACK product the structured step needs, with its shapes,
/// on random operands, timed per kind. Forward: z_l = W_l a (d_out x n, inner d_in). Seeds:
/// W_l^T Delta_l (d_in x N, inner d_out) below the top layer. Gram: per trainable layer the input
/// Gram (n x n triangle, inner d_in) and the seed Gram (N x N triangle, inner d_out). Solve: potrf
/// at N and potrs with one right-hand side. Direction: per trainable layer v a^T (d_out x d_in,
/// inner n), and W^T v (d_in x n, inner d_out) below the top layer.
template <class T>
struct Floors {
    double gemm = 0, syrk = 0, potrf = 0;
};

template <class T>
Floors<T> run_floors(const Config& c) {
    using ngd::cpu::blas::gemm;
    using ngd::cpu::blas::syrk_lower;
    const std::int64_t n = c.n, big_n = c.big_n();
    std::int64_t widest = c.model.n_inputs();
    for (std::int64_t l = 0; l < c.model.n_layers(); ++l) {
        widest = std::max(widest, c.model.layer(l).n_out);
    }
    // Operands: random, big enough for every shape (contents do not change BLAS's speed).
    static std::map<std::string, std::vector<T>> pool;
    auto buffer = [&](const char* name, std::int64_t size) -> T* {
        std::vector<T>& v = pool[name];
        if (static_cast<std::int64_t>(v.size()) < size) {
            v.assign(static_cast<std::size_t>(size), T(0));
            for (std::size_t i = 0; i < v.size(); ++i) v[i] = T(double((i * 7919) % 1000) / 1e3);
        }
        return v.data();
    };
    T* a = buffer("a", widest * big_n);
    T* b = buffer("b", widest * big_n);
    T* out = buffer("out", std::max(widest * big_n, widest * widest));
    T* g = buffer("g", big_n * big_n);
    T* rhs = buffer("rhs", big_n);
    Floors<T> f;
    f.gemm += wall_seconds([&] {
        for (std::int64_t l = 0; l < c.model.n_layers(); ++l) {
            const std::int64_t d_in = c.model.fan_in(l), d_out = c.model.layer(l).n_out;
            gemm(false, false, d_out, n, d_in, T(1), a, d_out, b, d_in, T(0), out, d_out);
            if (l > 0) {
                gemm(true, false, d_in, big_n, d_out, T(1), a, d_out, b, d_out, T(0), out, d_in);
                gemm(true, false, d_in, n, d_out, T(1), a, d_out, b, d_out, T(0), out, d_in);
            }
            if (c.model.layer(l).trainable) {
                gemm(false, true, d_out, d_in, n, T(1), a, d_out, b, d_in, T(0), out, d_out);
            }
        }
    });
    f.syrk += wall_seconds([&] {
        for (std::int64_t l = 0; l < c.model.n_layers(); ++l) {
            if (!c.model.layer(l).trainable) continue;
            const std::int64_t d_in = c.model.fan_in(l), d_out = c.model.layer(l).n_out;
            syrk_lower(true, n, d_in, T(1), a, d_in, T(0), out, n);
            syrk_lower(true, big_n, d_out, T(1), b, d_out, T(0), g, big_n);
        }
    });
    // An SPD matrix for potrf: the last seed Gram plus a large diagonal.
    for (std::int64_t i = 0; i < big_n; ++i) g[i + i * big_n] += T(big_n);
    f.potrf += wall_seconds([&] {
        ngd::cpu::blas::potrf_lower(big_n, g, big_n);
        ngd::cpu::blas::potrs_lower(big_n, 1, g, big_n, rhs, big_n);
    });
    return f;
}

template <class T>
void bm_floors(benchmark::State& state, std::size_t index) {
    const Config& c = cpu_configs()[index];
    // OpenMP's default threads, as the cpu context the step runs on.
    double total = 0;
    Floors<T> sum;
    for (auto _ : state) {
        const Floors<T> f = run_floors<T>(c);
        sum.gemm += f.gemm, sum.syrk += f.syrk, sum.potrf += f.potrf;
        record(state, f.gemm + f.syrk + f.potrf, total);
    }
    const double iters = double(state.iterations());
    state.counters["gemm_ms"] = 1e3 * sum.gemm / iters;
    state.counters["syrk_ms"] = 1e3 * sum.syrk / iters;
    state.counters["potrf_potrs_ms"] = 1e3 * sum.potrf / iters;
    set_rates(state, total, step_flops(c));
    set_sizes(state, c);
}

template <class T>
void register_all() {
    const std::string prec = precision_name<T>();
    for (std::size_t i = 0; i < cpu_configs().size(); ++i) {
        const std::string cfg = cpu_configs()[i].name;
        benchmark::RegisterBenchmark(("cpu/step/" + cfg + "/" + prec).c_str(), bm_step<T>, i, true)
            ->UseManualTime()
            ->Unit(benchmark::kMillisecond);
        benchmark::RegisterBenchmark(("cpu/floors/" + cfg + "/" + prec).c_str(), bm_floors<T>, i)
            ->UseManualTime()
            ->Unit(benchmark::kMillisecond);
        benchmark::RegisterBenchmark(("reference/step/" + cfg + "/" + prec).c_str(), bm_step<T>, i,
                                     false)
            ->UseManualTime()
            ->Unit(benchmark::kMillisecond)
            ->Iterations(1);
    }
}

const bool registered = [] {
    register_all<double>();
    register_all<float>();
    return true;
}();

}  // namespace
}  // namespace ngd_bench

#endif  // NGD_WITH_CPU
