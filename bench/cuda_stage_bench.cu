// Per-stage CUDA benchmarks on the DESIGN.md section 6 configurations, each timed with CUDA events
// on the context's stream and, where DESIGN.md sets a target, beside its baseline timed in the same
// loop: forward, backprop seeds, structured Gram (vs the GEMM-rate floor of its own two products
// per layer, and vs cuBLAS syrk on explicit J), explicit Gram (vs syrk on explicit J), damped solve
// (vs bare cusolverDnXpotrf + Xpotrs at the same N), and the direction A^T alpha. Skips without a
// device.
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "common.cuh"  // private: the context's stream and handles, typed syrk/potrf bindings
#include "cuda_timer.hpp"
#include "gram_route.cuh"
#include "pipeline.hpp"  // private: detail::build_gram, the explicit path as the library runs it
#include "stages.hpp"

namespace ngd_bench {
namespace {

using ngd::Matrix;
using ngd::MatrixView;

/// What the later stages need, made the way detail::GramSystem makes it: M for softmax, none for
/// squared (M = I) and logistic (its natural-residual form uses the plain Gram).
template <class T>
struct Front {
    ngd::ForwardState<T> state;
    ngd::LossFactors<T> factors;
    MatrixView<const T> factor;
    std::vector<Matrix<T>> seeds;
};

template <class T>
void run_front(ngd::Context& ctx, const Config& c, const Data<T>& d, Front<T>& f, bool seeds) {
    ngd::cuda::forward<T>(ctx, c.model, d.theta.data(), d.inputs.const_view(), d.rows.const_view(),
                          f.state);
    ngd::cuda::loss_factors<T>(ctx, c.loss, f.state.outputs.const_view(), d.targets.const_view(),
                               f.factors);
    f.factor = c.loss == ngd::Loss::softmax_cross_entropy ? f.factors.factor.const_view()
                                                          : MatrixView<const T>();
    if (seeds) {
        ngd::cuda::backprop_seeds<T>(ctx, c.model, d.theta.data(), f.state, f.factor,
                                     d.rows.const_view(), f.seeds);
    }
}

/// cuBLAS syrk on explicit J at the same N and p: J streamed in the column blocks the library's
/// explicit mode uses (width from the memory budget), each block one syrk into g. The block holds
/// real J columns; `reps` blocks are timed and the time scaled to all ceil(p / width) of them.
template <class T>
struct ExplicitSyrk {
    std::int64_t width = 0, blocks = 0, reps = 0;
    Matrix<T> block;
    ExplicitSyrk(ngd::Context& ctx, const Config& c, const Data<T>& d, const Front<T>& f) {
        const std::int64_t big_n = c.big_n(), p = c.model.n_params();
        width = std::clamp<std::int64_t>(
            std::int64_t(ctx.memory_budget()) / (big_n * std::int64_t(sizeof(T))), 1, p);
        blocks = (p + width - 1) / width;
        reps = std::min<std::int64_t>(blocks, 8);
        block = Matrix<T>(big_n, width, ngd::MemorySpace::device);
        ngd::cuda::jacobian_block<T>(ctx, c.model, d.inputs.const_view(), f.state, f.seeds, 0,
                                     block.view());
    }
    /// Device seconds of the whole streamed product (extrapolated from `reps` blocks).
    double run(ngd::Context& ctx, EventTimer& timer, Matrix<T>& g) {
        cublasHandle_t h = ctx.cuda_state()->blas();
        const double t = timer.time([&] {
            for (std::int64_t b = 0; b < reps; ++b) {
                ngd::cuda::syrk(h, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_N, g.rows(), width, T(1),
                                block.data(), block.rows(), T(b == 0 ? 0 : 1), g.data(), g.rows());
            }
        });
        return t * double(blocks) / double(reps);
    }
};

/// a's diagonal += s: an axpy with stride n + 1 over the n x n matrix a.
inline void add_to_diagonal(cublasHandle_t h, std::int64_t n, const double* s, double* a) {
    const double one = 1;
    NGD_CUBLAS_CHECK(cublasDaxpy_64(h, n, &one, s, 1, a, n + 1));
}
inline void add_to_diagonal(cublasHandle_t h, std::int64_t n, const float* s, float* a) {
    const float one = 1;
    NGD_CUBLAS_CHECK(cublasSaxpy_64(h, n, &one, s, 1, a, n + 1));
}

template <class T>
void bm_forward(benchmark::State& state, std::size_t index) {
    ngd::Context* ctx = cuda_or_skip(state);
    if (ctx == nullptr) return;
    guarded(state, [&] {
        const Config& c = configs()[index];
        const Data<T>& d = cached_data<T>(*ctx, index);
        ngd::ForwardState<T> fs;
        EventTimer timer(context_stream(*ctx));
        double total = 0;
        for (auto _ : state) {
            record(state, timer.time([&] {
                ngd::cuda::forward<T>(*ctx, c.model, d.theta.data(), d.inputs.const_view(),
                                      d.rows.const_view(), fs);
            }),
                   total);
        }
        set_rates(state, total, forward_flops(c), forward_bytes<T>(c));
        set_sizes(state, c);
    });
}

template <class T>
void bm_seeds(benchmark::State& state, std::size_t index) {
    ngd::Context* ctx = cuda_or_skip(state);
    if (ctx == nullptr) return;
    guarded(state, [&] {
        const Config& c = configs()[index];
        const Data<T>& d = cached_data<T>(*ctx, index);
        Front<T> f;
        run_front(*ctx, c, d, f, false);
        EventTimer timer(context_stream(*ctx));
        double total = 0;
        for (auto _ : state) {
            record(state, timer.time([&] {
                ngd::cuda::backprop_seeds<T>(*ctx, c.model, d.theta.data(), f.state, f.factor,
                                             d.rows.const_view(), f.seeds);
            }),
                   total);
        }
        set_rates(state, total, seeds_flops(c));
        set_sizes(state, c);
    });
}

// Structured Gram. Baselines in the same loop: the GEMM-rate floor (its own products at cuBLAS's
// rate, without the Hadamard pass or the sum: A_{l-1}^T A_{l-1} by syrk (n x n over d_in) and the
// seed Gram Delta_l^T Delta_l over the lower triangle by the cuBLAS route's panels, a syrk per
// diagonal block and one GEMM below it; target ratio <= 1.11, DESIGN.md section 6), one whole-N
// DSYRK per layer instead of the panels (counter syrk_floor_ms), and syrk on explicit J (what the
// structure saves).
template <class T>
void bm_gram_structured(benchmark::State& state, std::size_t index) {
    ngd::Context* ctx = cuda_or_skip(state);
    if (ctx == nullptr) return;
    guarded(state, [&] {
        const Config& c = configs()[index];
        const Data<T>& d = cached_data<T>(*ctx, index);
        Front<T> f;
        run_front(*ctx, c, d, f, true);
        const std::int64_t n = c.n, big_n = c.big_n();
        Matrix<T> g(big_n, big_n, ngd::MemorySpace::device), small(n, n, ngd::MemorySpace::device);
        ExplicitSyrk<T> explicit_syrk(*ctx, c, d, f);
        ngd::detail::CudaState& cs = *ctx->cuda_state();
        cublasHandle_t h = cs.blas();
        const std::int64_t width = ngd::cuda::gram_panel_width(cs, big_n, sizeof(T));
        Matrix<T> panel(big_n, width, ngd::MemorySpace::device);
        EventTimer timer(context_stream(*ctx));
        double t_ngd = 0, t_floor = 0, t_syrk = 0, t_explicit = 0, floor_flops = 0;
        // The layers' own products: S_l by syrk, then the seed Gram either by the route's panels
        // (panels = true) or by one whole-N syrk into g.
        auto products = [&](bool panels) {
            floor_flops = 0;
            bool first = true;
            for (std::int64_t l = 0; l < c.model.n_layers(); ++l) {
                if (!c.model.layer(l).trainable) continue;
                const Matrix<T>* a = l == 0 ? nullptr : &f.state.act[l - 1];
                const std::int64_t d_in = c.model.fan_in(l), d_out = c.model.layer(l).n_out;
                const T* seeds = f.seeds[l].data();
                ngd::cuda::syrk(h, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_T, n, d_in, T(1),
                                a ? a->data() : d.inputs.data(), d_in, T(0), small.data(), n);
                if (!panels) {
                    ngd::cuda::syrk(h, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_T, big_n, d_out, T(1),
                                    seeds, d_out, T(first ? 0 : 1), g.data(), big_n);
                }
                for (std::int64_t c0 = 0; panels && c0 < big_n; c0 += width) {
                    const std::int64_t w = std::min(width, big_n - c0), m = big_n - c0;
                    const T* left = seeds + c0 * d_out;
                    ngd::cuda::syrk(h, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_T, w, d_out, T(1), left,
                                    d_out, T(0), panel.data(), m);
                    if (m > w) {
                        ngd::cuda::gemm(h, CUBLAS_OP_T, CUBLAS_OP_N, m - w, w, d_out, T(1),
                                        left + w * d_out, d_out, left, d_out, T(0),
                                        panel.data() + w, m);
                    }
                }
                first = false;
                floor_flops +=
                    syrk_flops(double(n), double(d_in)) + syrk_flops(double(big_n), double(d_out));
            }
        };
        for (auto _ : state) {
            record(state, timer.time([&] {
                ngd::cuda::gram_structured<T>(*ctx, c.model, d.inputs.const_view(), f.state,
                                              f.seeds, g.view());
            }),
                   t_ngd);
            t_floor += timer.time([&] { products(true); });
            t_syrk += timer.time([&] { products(false); });
            t_explicit += explicit_syrk.run(*ctx, timer, g);
        }
        set_rates(state, t_ngd, gram_structured_flops(c));
        set_sizes(state, c);
        set_baseline(state, t_ngd, t_floor, floor_flops);
        const double iters = double(state.iterations());
        if (iters > 0) state.counters["syrk_floor_ms"] = 1e3 * t_syrk / iters;
        if (t_ngd > 0) state.counters["speedup_vs_explicit_syrk"] = t_explicit / t_ngd;
    });
}

// Explicit Gram as the library runs it (jacobian_block + syrk per column block), against syrk on
// the same explicit J blocks: the ratio is the cost of forming J.
template <class T>
void bm_gram_explicit(benchmark::State& state, std::size_t index) {
    ngd::Context* ctx = cuda_or_skip(state);
    if (ctx == nullptr) return;
    guarded(state, [&] {
        const Config& c = configs()[index];
        const Data<T>& d = cached_data<T>(*ctx, index);
        Front<T> f;
        run_front(*ctx, c, d, f, true);
        Matrix<T> g(c.big_n(), c.big_n(), ngd::MemorySpace::device);
        ExplicitSyrk<T> explicit_syrk(*ctx, c, d, f);
        EventTimer timer(context_stream(*ctx));
        double t_ngd = 0, t_base = 0;
        for (auto _ : state) {
            record(state, timer.time([&] {
                ngd::detail::build_gram<T>(*ctx, c.model, d.inputs.const_view(), f.state, f.seeds,
                                           ngd::GramMode::explicit_jacobian, g.view());
            }),
                   t_ngd);
            t_base += explicit_syrk.run(*ctx, timer, g);
        }
        set_rates(state, t_ngd, gram_explicit_flops(c));
        set_sizes(state, c);
        set_baseline(state, t_ngd, t_base, gram_explicit_flops(c));
        state.counters["column_blocks"] = double(explicit_syrk.blocks);
    });
}

// Damped solve of the configuration's own Gram + shift I (shift = 1e-3 mean diagonal, one
// right-hand side) against bare Xpotrf + Xpotrs on the same shifted matrix (target ratio <= 1.05).
// ngd's time includes the shift, the non-finite checks of the factor and solution, and reading
// info.
template <class T>
void bm_solve(benchmark::State& state, std::size_t index) {
    ngd::Context* ctx = cuda_or_skip(state);
    if (ctx == nullptr) return;
    guarded(state, [&] {
        const Config& c = configs()[index];
        const Data<T>& d = cached_data<T>(*ctx, index);
        const std::int64_t big_n = c.big_n();
        Matrix<T> g(big_n, big_n, ngd::MemorySpace::device);
        {
            Front<T> f;
            run_front(*ctx, c, d, f, true);
            ngd::cuda::gram_structured<T>(*ctx, c.model, d.inputs.const_view(), f.state, f.seeds,
                                          g.view());
        }
        ngd::detail::CudaState& cs = *ctx->cuda_state();
        std::vector<T> diag(static_cast<std::size_t>(big_n));
        cuda_check(cudaMemcpy2DAsync(diag.data(), sizeof(T), g.data(), (big_n + 1) * sizeof(T),
                                     sizeof(T), big_n, cudaMemcpyDeviceToHost, cs.stream),
                   "copy the diagonal");
        cuda_check(cudaStreamSynchronize(cs.stream), "cudaStreamSynchronize");
        double mean = 0;
        for (const T v : diag) mean += double(v) / double(big_n);
        const T shift_value = T(1e-3 * mean);
        Matrix<T> shift(big_n, 1, ngd::MemorySpace::device),
            rhs(big_n, 1, ngd::MemorySpace::device);
        Matrix<T> x(big_n, 1, ngd::MemorySpace::device);
        Matrix<T> work(big_n, big_n, ngd::MemorySpace::device);
        ngd::cuda::fill<T>(*ctx, big_n, shift_value, shift.data());
        ngd::cuda::fill<T>(*ctx, big_n, T(1), rhs.data());

        // The bare baseline's workspace, queried and allocated once, outside the timing.
        std::size_t device_bytes = 0, host_bytes = 0;
        ngd::cuda::potrf_buffer_size<T>(cs.solver(), cs.solver_params(), big_n, work.data(), big_n,
                                        &device_bytes, &host_bytes);
        Matrix<unsigned char> device_work(std::int64_t(device_bytes) + 1, 1,
                                          ngd::MemorySpace::device);
        std::vector<unsigned char> host_work(host_bytes + 1);
        Matrix<int> info(1, 1, ngd::MemorySpace::device);

        EventTimer timer(context_stream(*ctx));
        double t_ngd = 0, t_bare = 0;
        for (auto _ : state) {
            ngd::cuda::copy_matrix<T>(*ctx, g.const_view(), work.view());
            ngd::cuda::copy_vector<T>(*ctx, big_n, rhs.data(), x.data());
            std::int64_t status = 0;
            const double t = timer.time([&] {
                status =
                    ngd::cuda::cholesky_solve<T>(*ctx, work.view(), shift.const_view(), x.view());
            });
            if (status != 0) {
                state.SkipWithError(("Cholesky failed, info " + std::to_string(status)).c_str());
                break;
            }
            record(state, t, t_ngd);

            ngd::cuda::copy_matrix<T>(*ctx, g.const_view(), work.view());
            ngd::cuda::copy_vector<T>(*ctx, big_n, rhs.data(), x.data());
            add_to_diagonal(cs.blas(), big_n, shift.data(), work.data());
            t_bare += timer.time([&] {
                ngd::cuda::potrf<T>(cs.solver(), cs.solver_params(), big_n, work.data(), big_n,
                                    device_work.data(), device_bytes, host_work.data(), host_bytes,
                                    info.data());
                ngd::cuda::potrs<T>(cs.solver(), cs.solver_params(), big_n, 1, work.data(), big_n,
                                    x.data(), big_n, info.data());
            });
        }
        set_rates(state, t_ngd, solve_flops(double(big_n), 1));
        set_sizes(state, c);
        set_baseline(state, t_ngd, t_bare, solve_flops(double(big_n), 1));
    });
}

// d = A^T alpha with alpha = the residual u (k x n): one backprop and one GEMM per layer.
template <class T>
void bm_direction(benchmark::State& state, std::size_t index) {
    ngd::Context* ctx = cuda_or_skip(state);
    if (ctx == nullptr) return;
    guarded(state, [&] {
        const Config& c = configs()[index];
        const Data<T>& d = cached_data<T>(*ctx, index);
        Front<T> f;
        run_front(*ctx, c, d, f, false);
        Matrix<T> out(c.model.n_params(), 1, ngd::MemorySpace::device);
        EventTimer timer(context_stream(*ctx));
        double total = 0;
        for (auto _ : state) {
            record(state, timer.time([&] {
                ngd::cuda::transpose_product<T>(
                    *ctx, c.model, d.theta.data(), d.inputs.const_view(), f.state, f.factor,
                    d.rows.const_view(), f.factors.residual.const_view(), out.data());
            }),
                   total);
        }
        set_rates(state, total, direction_flops(c));
        set_sizes(state, c);
    });
}

template <class T>
void register_stages() {
    using Fn = void (*)(benchmark::State&, std::size_t);
    const std::pair<const char*, Fn> stages[] = {{"forward", bm_forward<T>},
                                                 {"seeds", bm_seeds<T>},
                                                 {"gram_structured", bm_gram_structured<T>},
                                                 {"gram_explicit", bm_gram_explicit<T>},
                                                 {"solve", bm_solve<T>},
                                                 {"direction", bm_direction<T>}};
    for (const auto& [stage, fn] : stages) {
        for (std::size_t i = 0; i < configs().size(); ++i) {
            // M4096's explicit Gram streams 1.4e15 flops (about half a minute per iteration on an
            // H100): too long for the default run; its structured Gram and solve still run.
            if (std::string(stage) == "gram_explicit" && gram_explicit_flops(configs()[i]) > 1e15) {
                continue;
            }
            const std::string name =
                std::string("cuda/") + stage + "/" + configs()[i].name + "/" + precision_name<T>();
            benchmark::RegisterBenchmark(name.c_str(), fn, i)
                ->UseManualTime()
                ->Unit(benchmark::kMillisecond);
        }
    }
}

const bool registered = [] {
    register_stages<double>();
    register_stages<float>();
    return true;
}();

}  // namespace
}  // namespace ngd_bench
