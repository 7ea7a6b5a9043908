// Vendor-library yardsticks for the custom kernels (see baselines.cuh): cuBLAS SYRK for syrk_lower
// and for the seed products of the structured Gram, and bare cuSOLVER potrf + potrs for
// cholesky_solve. The benchmarks time the custom kernels against these in the same run; the tests
// cross-check them.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "baselines.cuh"
#include "common.cuh"

namespace ngd::cuda::baseline {
namespace {

// One thread per entry (r, c) of the lower triangle: x over rows, y (grid-stride) over columns.
// g[r, c] = beta g[r, c] + (S[r/k, c/k] + s_offset) d[r, c]; beta = 0 ignores g's old value.
template <class T>
__global__ void hadamard_accumulate_kernel(const T* __restrict__ d, std::int64_t n_rows,
                                           const T* __restrict__ s, std::int64_t lds, T s_offset,
                                           std::int64_t k, T beta, T* __restrict__ g,
                                           std::int64_t ldg) {
    const std::int64_t r = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x;
    if (r >= n_rows) return;
    for (std::int64_t c = blockIdx.y; c <= r && c < n_rows; c += gridDim.y) {
        const T value = (s[r / k + (c / k) * lds] + s_offset) * d[r + c * n_rows];
        T* out = g + r + c * ldg;
        *out = beta == T(0) ? value : beta * *out + value;
    }
}

}  // namespace

void set_double_tensor_cores(Context& ctx, bool on) { ctx.cuda_state()->double_tensor_cores = on; }

template <class T>
void syrk_lower_cublas(Context& ctx, MatrixView<const T> a, bool transpose, T beta,
                       MatrixView<T> g) {
    Stage stage(ctx);
    const std::int64_t n_rows = transpose ? a.cols : a.rows;
    const std::int64_t depth = transpose ? a.rows : a.cols;
    if (n_rows == 0) return;
    syrk(stage.state.blas(), CUBLAS_FILL_MODE_LOWER, transpose ? CUBLAS_OP_T : CUBLAS_OP_N, n_rows,
         depth, T(1), a.data, a.ld, beta, g.data, g.ld);
}

template <class T>
void gram_structured_cublas(Context& ctx, const Mlp& model, MatrixView<const T> x,
                            const ForwardState<T>& state, const std::vector<Matrix<T>>& seeds,
                            MatrixView<T> g) {
    Stage stage(ctx);
    const std::int64_t n = x.cols, k = model.n_outputs(), n_rows = n * k;
    if (n_rows == 0) return;
    Scratch<T> s(stage.state, n * n), d(stage.state, n_rows * n_rows);
    const dim3 grid(static_cast<unsigned int>((n_rows + kThreads - 1) / kThreads),
                    static_cast<unsigned int>(std::min<std::int64_t>(n_rows, 65535)));
    bool first = true;
    for (std::int64_t l = 0; l < model.n_layers(); ++l) {
        const Layer& layer = model.layer(l);
        if (!layer.trainable) continue;
        const std::int64_t n_in = model.fan_in(l);
        const T* a_in = l == 0 ? x.data : state.act[l - 1].data();
        const std::int64_t ld_in = l == 0 ? x.ld : n_in;
        const double w_mult = model.weight_multiplier(l), b_mult = model.bias_multiplier(l);
        syrk(stage.state.blas(), CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_T, n, n_in, T(w_mult * w_mult),
             a_in, ld_in, T(0), s.data(), n);
        syrk(stage.state.blas(), CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_T, n_rows, layer.n_out, T(1),
             seeds[l].data(), layer.n_out, T(0), d.data(), n_rows);
        NGD_LAUNCH(hadamard_accumulate_kernel<T>, grid, kThreads, stage.stream(),
                   static_cast<const T*>(d.data()), n_rows, static_cast<const T*>(s.data()), n,
                   T(layer.bias ? b_mult * b_mult : 0.0), k, T(first ? 0 : 1), g.data, g.ld);
        first = false;
    }
    if (first) {
        NGD_CUDA_CHECK(cudaMemset2DAsync(g.data, sizeof(T) * g.ld, 0, sizeof(T) * n_rows, n_rows,
                                         stage.stream()));
    }
}

template <class T>
Matrix<T> gram_structured_vendor(Context& ctx, const Mlp& model, MatrixView<const T> theta,
                                 MatrixView<const T> x, MatrixView<const T> rows) {
    // The plain Gram J J^T (M = I) of the batch x, both triangles, from vendor calls only.
    ForwardState<T> state;
    forward<T>(ctx, model, theta.data, x, rows, state);
    std::vector<Matrix<T>> seeds;
    backprop_seeds<T>(ctx, model, theta.data, state, MatrixView<const T>(), rows, seeds);
    const std::int64_t n_rows = x.cols * model.n_outputs();
    Matrix<T> g(n_rows, n_rows, MemorySpace::device);
    gram_structured_cublas<T>(ctx, model, x, state, seeds, g.view());
    symmetrize<T>(ctx, g.view());
    return g;
}

template <class T>
std::int64_t cholesky_solve_bare(Context& ctx, MatrixView<T> g, MatrixView<T> rhs) {
    Stage stage(ctx);
    CudaState& state = stage.state;
    const std::int64_t n = g.rows;
    if (n == 0) return 0;
    int* info = static_cast<int*>(state.status_device);
    ensure_potrf_workspace<T>(state, n, g.data, g.ld);
    potrf<T>(state.solver(), state.solver_params(), n, g.data, g.ld, state.potrf_device,
             state.potrf_need_device, state.potrf_host.empty() ? nullptr : state.potrf_host.data(),
             state.potrf_need_host, info);
    if (rhs.cols > 0) {
        potrs<T>(state.solver(), state.solver_params(), n, rhs.cols, g.data, g.ld, rhs.data, rhs.ld,
                 info + 1);
    }
    auto* host = static_cast<int*>(state.status_host);
    NGD_CUDA_CHECK(cudaMemcpyAsync(host, info, sizeof(int), cudaMemcpyDeviceToHost, state.stream));
    synchronize_stream(state.stream);
    return host[0];
}

#define NGD_INSTANTIATE_BASELINES(T)                                                               \
    template void syrk_lower_cublas<T>(Context&, MatrixView<const T>, bool, T, MatrixView<T>);     \
    template void gram_structured_cublas<T>(Context&, const Mlp&, MatrixView<const T>,             \
                                            const ForwardState<T>&, const std::vector<Matrix<T>>&, \
                                            MatrixView<T>);                                        \
    template Matrix<T> gram_structured_vendor<T>(Context&, const Mlp&, MatrixView<const T>,        \
                                                 MatrixView<const T>, MatrixView<const T>);        \
    template std::int64_t cholesky_solve_bare<T>(Context&, MatrixView<T>, MatrixView<T>);
NGD_INSTANTIATE_BASELINES(float)
NGD_INSTANTIATE_BASELINES(double)
#undef NGD_INSTANTIATE_BASELINES

}  // namespace ngd::cuda::baseline
