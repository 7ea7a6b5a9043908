// Shared pieces of the benchmarks: the DESIGN.md section 6 configurations (Z, M at n = 1024 and
// 4096, L, F), their data on a context (cached, so Google Benchmark's repeated calls of one
// benchmark do not regenerate it), the flop and byte counts every benchmark reports, and the
// counter helpers. Flops count a multiply-add as 2; a symmetric rank-k update of an n x n triangle
// from n x w costs n (n + 1) w (LAPACK Working Note 41).
#pragma once

#include <benchmark/benchmark.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "ngd/ngd.hpp"

namespace ngd_bench {

/// One benchmark configuration: a model, its loss and a batch size.
struct Config {
    std::string name;
    ngd::Mlp model;
    ngd::Loss loss;
    std::int64_t n;
    std::int64_t big_n() const { return n * model.n_outputs(); }
};

/// DESIGN.md section 6. Z: Zhang et al.'s two-layer ReLU network; M: an MNIST-sized MLP; L: a deep
/// linear network with logistic loss; F: deep matrix factorization from 20 000 observed entries.
inline const std::vector<Config>& configs() {
    using ngd::Activation;
    static const std::vector<Config> all = [] {
        auto relu = [](std::int64_t w) { return ngd::Layer{w, Activation::relu}; };
        const ngd::Mlp m(784, {relu(1024), relu(1024), ngd::Layer{10, Activation::identity}});
        return std::vector<Config>{
            {"Z", ngd::two_layer_relu(784, 16384), ngd::Loss::squared, 4096},
            {"M1024", m, ngd::Loss::softmax_cross_entropy, 1024},
            {"M4096", m, ngd::Loss::softmax_cross_entropy, 4096},
            {"L", ngd::deep_linear(256, 256, 4), ngd::Loss::logistic, 2048},
            {"F", ngd::matrix_factorization(512, 3), ngd::Loss::squared, 20000}};
    }();
    return all;
}

template <class T>
const char* precision_name() {
    return sizeof(T) == sizeof(double) ? "f64" : "f32";
}

/// A batch and theta in one context's memory space.
template <class T>
struct Data {
    ngd::Matrix<T> theta, inputs, targets, rows;
    ngd::Batch<T> batch() const {
        return {inputs.const_view(), targets.const_view(), rows.const_view()};
    }
};

/// Random data for `c` (fixed seed): unit-norm Gaussian inputs or one-hot columns for matrix
/// factorization, targets that fit the loss, theta from the model's initialiser.
template <class T>
Data<T> make_data(ngd::Context& ctx, const Config& c) {
    const ngd::Mlp& model = c.model;
    const std::int64_t d = model.n_inputs(), n = c.n, k = model.n_outputs();
    std::mt19937_64 gen(2024);
    std::normal_distribution<double> normal;
    ngd::Matrix<T> x(d, n), y(c.loss == ngd::Loss::squared ? k : 1, n), rows;
    if (model.selects_output_row()) {
        std::uniform_int_distribution<std::int64_t> pick(0, d - 1);
        rows = ngd::Matrix<T>(1, n);
        for (std::int64_t i = 0; i < n; ++i) {
            x(pick(gen), i) = T(1);
            rows[i] = T(pick(gen));
        }
    } else {
        for (std::int64_t i = 0; i < n; ++i) {
            double s = 0;
            for (std::int64_t r = 0; r < d; ++r) s += (x(r, i) = T(normal(gen))) * double(x(r, i));
            for (std::int64_t r = 0; r < d; ++r) x(r, i) = T(double(x(r, i)) / std::sqrt(s));
        }
    }
    std::uniform_int_distribution<std::int64_t> label(0, c.loss == ngd::Loss::logistic ? 1 : k - 1);
    for (std::int64_t i = 0; i < y.size(); ++i) {
        y[i] = c.loss == ngd::Loss::squared ? T(normal(gen)) : T(label(gen));
    }
    const ngd::Matrix<T> theta = model.template init<T>(7);
    auto put = [&ctx](const ngd::Matrix<T>& m) {
        return m.empty() ? ngd::Matrix<T>() : ngd::to_context(ctx, m.const_view());
    };
    return {put(theta), put(x), put(y), put(rows)};
}

/// The data of configuration `index` on ctx, made on first use and kept for the process (a few
/// hundred MB at most: the Gram matrices are not cached).
template <class T>
const Data<T>& cached_data(ngd::Context& ctx, std::size_t index) {
    static std::map<std::pair<const ngd::Context*, std::size_t>, std::unique_ptr<Data<T>>> cache;
    auto& slot = cache[{&ctx, index}];
    if (!slot) slot = std::make_unique<Data<T>>(make_data<T>(ctx, configs().at(index)));
    return *slot;
}

// ---- flop and byte counts --------------------------------------------------------------------

inline double syrk_flops(double n, double w) { return n * (n + 1) * w; }

/// Forward pass: one GEMM per layer, 2 n d_in d_out.
inline double forward_flops(const Config& c) {
    double f = 0;
    for (std::int64_t l = 0; l < c.model.n_layers(); ++l) {
        f += 2.0 * double(c.n) * double(c.model.fan_in(l)) * double(c.model.layer(l).n_out);
    }
    return f;
}
/// Forward pass traffic: theta and x read, a_l and act'(z_l) written.
template <class T>
double forward_bytes(const Config& c) {
    double words = double(c.model.n_params()) + double(c.model.n_inputs() * c.n);
    for (std::int64_t l = 0; l < c.model.n_layers(); ++l) {
        words += 2.0 * double(c.model.layer(l).n_out * c.n);
    }
    return words * sizeof(T);
}

/// Backprop seeds: Delta_l = act'(z_l) o (w W_{l+1}^T Delta_{l+1}) for N columns, 2 N d_l d_{l+1}.
inline double seeds_flops(const Config& c) {
    double f = 0;
    for (std::int64_t l = 0; l + 1 < c.model.n_layers(); ++l) {
        f += 2.0 * double(c.big_n()) * double(c.model.layer(l).n_out) *
             double(c.model.layer(l + 1).n_out);
    }
    return f;
}

/// Structured Gram: per trainable layer (A~ A~^T) o (Delta Delta^T), two triangular products
/// n x (d_in + bias) and N x d_out.
inline double gram_structured_flops(const Config& c) {
    double f = 0;
    for (std::int64_t l = 0; l < c.model.n_layers(); ++l) {
        const ngd::Layer& layer = c.model.layer(l);
        if (!layer.trainable) continue;
        f += syrk_flops(double(c.n), double(c.model.fan_in(l) + (layer.bias ? 1 : 0)));
        f += syrk_flops(double(c.big_n()), double(layer.n_out));
    }
    return f;
}

/// Explicit Gram: A A^T over all p columns (frozen ones included: they are streamed as zeros).
inline double gram_explicit_flops(const Config& c) {
    return syrk_flops(double(c.big_n()), double(c.model.n_params()));
}

/// Cholesky of an N x N matrix (N^3 / 3) and two triangular solves per right-hand side (2 N^2).
inline double solve_flops(double n, double n_rhs) { return n * n * n / 3 + 2 * n * n * n_rhs; }

/// d = A^T alpha: per layer the weight-gradient GEMM (2 n d_in d_out) and, below the top layer,
/// the propagation of the cotangent (another 2 n d_in d_out).
inline double direction_flops(const Config& c) {
    double f = 0;
    for (std::int64_t l = 0; l < c.model.n_layers(); ++l) {
        const double g =
            2.0 * double(c.n) * double(c.model.fan_in(l)) * double(c.model.layer(l).n_out);
        f += l > 0 ? 2 * g : g;
    }
    return f;
}

/// The whole structured step: forward, seeds, Gram, solve (one right-hand side), direction.
inline double step_flops(const Config& c) {
    return forward_flops(c) + seeds_flops(c) + gram_structured_flops(c) +
           solve_flops(double(c.big_n()), 1) + direction_flops(c);
}

// ---- counters ------------------------------------------------------------------------------

/// GFLOP/s (and GB/s when bytes > 0) from the per-iteration counts and the total timed seconds
/// (plain values: Google Benchmark's rate counters would divide by CPU time, not the timed time).
inline void set_rates(benchmark::State& state, double seconds, double flops, double bytes = 0) {
    if (seconds <= 0) return;
    const double iters = double(state.iterations());
    state.counters["GFLOP/s"] = flops * 1e-9 * iters / seconds;
    if (bytes > 0) state.counters["GB/s"] = bytes * 1e-9 * iters / seconds;
}

/// Reports one iteration's timed seconds to Google Benchmark and adds them to `total`.
inline void record(benchmark::State& state, double seconds, double& total) {
    state.SetIterationTime(seconds);
    total += seconds;
}

/// Wall-clock seconds of fn(), for the host (reference) benchmarks.
template <class F>
double wall_seconds(F&& fn) {
    const auto start = std::chrono::steady_clock::now();
    fn();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

/// The baseline timed in the same run: its mean time, its rate, and ngd's time over it.
inline void set_baseline(benchmark::State& state, double ngd_seconds, double baseline_seconds,
                         double baseline_flops) {
    const double iters = double(state.iterations());
    if (iters == 0 || baseline_seconds <= 0) return;
    state.counters["baseline_ms"] = 1e3 * baseline_seconds / iters;
    state.counters["baseline_GFLOP/s"] = baseline_flops * 1e-9 * iters / baseline_seconds;
    state.counters["ratio_to_baseline"] = ngd_seconds / baseline_seconds;
}

inline void set_sizes(benchmark::State& state, const Config& c) {
    state.counters["n"] = double(c.n);
    state.counters["N"] = double(c.big_n());
    state.counters["p"] = double(c.model.n_params());
}

/// Runs body(); an ngd::Error (no device, out of memory, a failed factorization) skips the
/// benchmark with its message instead of aborting the whole run.
template <class F>
void guarded(benchmark::State& state, F&& body) {
    try {
        body();
    } catch (const ngd::Error& e) {
        state.SkipWithError(e.what());
    }
}

}  // namespace ngd_bench
