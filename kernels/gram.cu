// CUDA Gram stages. The structured Gram is the library's main speed lever: per trainable layer l,
//   G[(i,c),(j,c')] += S_l[i,j] * (Delta_l[:, (i,c)] . Delta_l[:, (j,c')]),
//   S_l = w_l^2 a_{l-1}^T a_{l-1} + b_l^2 (bias) (n x n, one cuBLAS syrk),
// over the lower triangle of G only; J (N x p) is never formed. Each layer's term goes one of two
// ways, by the per-layer rule of gram_route.cu: the fused tile kernel (seed dot products and the
// multiply by S in one pass; gram_tiles.cuh, with its cost) for narrow layers, or the cuBLAS route
// (seed Gram by GEMM on column panels, then one Hadamard pass) for wide ones. Also the explicit
// path: columns of A, and a tiled SYRK-style a a^T over lower tiles (cuBLAS syrk stays in
// baselines.cu as the yardstick).
#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "common.cuh"
#include "gram_route.cuh"
#include "gram_tiles.cuh"
#include "stages.hpp"

namespace ngd::cuda {
namespace {

// Lower triangle of g <- beta g + scale (a[r, :] . a[c, :]) over the n_rows x n_rows tiles (see
// lower_tile_kernel); double runs on FP64 tensor cores where the device has them (sm_80+) unless
// the context turned them off.
template <class T, bool kDepthContiguous>
void launch_lower_tiles(const CudaState& state, const T* a, std::int64_t lda, std::int64_t n_rows,
                        std::int64_t depth, const T* s, std::int64_t lds, T s_offset,
                        std::int64_t k, T beta, T* g, std::int64_t ldg) {
    if constexpr (std::is_same_v<T, double>) {
        if (state.double_tensor_cores && state.cc_major >= 8) {
            NGD_LAUNCH(lower_tile_dmma_kernel<kDepthContiguous>, lower_tile_count<T>(n_rows),
                       kTileThreads, state.stream, a, lda, n_rows, depth, s, lds, s_offset, k, beta,
                       g, ldg);
            return;
        }
    }
    NGD_LAUNCH((lower_tile_kernel<T, kDepthContiguous>), lower_tile_count<T>(n_rows), kTileThreads,
               state.stream, a, lda, n_rows, depth, s, lds, s_offset, k, beta, g, ldg);
}

// One thread per entry (r, q) of a weight-column segment of A: x over rows r, y (grid-stride) over
// columns. A[(i, c), q] = Delta_l[unit, (i, c)] w_l a_{l-1}[input, i] for W_l[unit, input].
template <class T>
__global__ void jacobian_weight_kernel(const T* __restrict__ seed, std::int64_t d_l,
                                       const T* __restrict__ a_in, std::int64_t ld_in,
                                       double w_mult, std::int64_t k, std::int64_t n_rows,
                                       std::int64_t local_begin, std::int64_t cols,
                                       T* __restrict__ block, std::int64_t ldb) {
    const std::int64_t r = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x;
    if (r >= n_rows) return;
    const std::int64_t i = r / k;
    for (std::int64_t q = blockIdx.y; q < cols; q += gridDim.y) {
        const std::int64_t local = local_begin + q;
        const std::int64_t unit = local % d_l, input = local / d_l;
        const double a = w_mult * double(a_in[input + i * ld_in]);
        block[r + q * ldb] = T(double(seed[unit + r * d_l]) * a);
    }
}

// One thread per entry (r, q) of a bias-column segment of A: A[r, q] = b_mult Delta_l[unit, r].
template <class T>
__global__ void jacobian_bias_kernel(const T* __restrict__ seed, std::int64_t d_l, double b_mult,
                                     std::int64_t n_rows, std::int64_t unit_begin,
                                     std::int64_t cols, T* __restrict__ block, std::int64_t ldb) {
    const std::int64_t r = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x;
    if (r >= n_rows) return;
    for (std::int64_t q = blockIdx.y; q < cols; q += gridDim.y) {
        block[r + q * ldb] = T(b_mult * double(seed[unit_begin + q + r * d_l]));
    }
}

dim3 column_grid(std::int64_t n_rows, std::int64_t cols) {
    return dim3(static_cast<unsigned int>((n_rows + kThreads - 1) / kThreads),
                static_cast<unsigned int>(std::min<std::int64_t>(cols, 65535)));
}

}  // namespace

template <class T>
void gram_layer_fused(CudaState& state, const T* seeds, std::int64_t depth, std::int64_t n_rows,
                      const T* s, std::int64_t lds, T s_offset, std::int64_t k, T beta, T* g,
                      std::int64_t ldg) {
    launch_lower_tiles<T, true>(state, seeds, depth, n_rows, depth, s, lds, s_offset, k, beta, g,
                                ldg);
}

template <class T>
void gram_structured(Context& ctx, const Mlp& model, MatrixView<const T> x,
                     const ForwardState<T>& state, const std::vector<Matrix<T>>& seeds,
                     MatrixView<T> g) {
    // x: d_0 x n; seeds[l]: d_l x N; g: N x N, lower triangle written.
    Stage stage(ctx);
    const std::int64_t n = x.cols;
    const std::int64_t k = model.n_outputs();
    const std::int64_t n_rows = n * k;
    if (n_rows == 0) return;
    // Review fix: S is as large as G when k = 1 (32 GiB at n = 65536 in double). As context
    // scratch it stayed cached after this call, where only the context can reuse it, and the
    // step's next N x N Matrix ran out of memory on an 80 GB device. From the Matrix pool it goes
    // back (stream-ordered) to serve that allocation, and a steady state still reuses it.
    Matrix<T> s(n, n, MemorySpace::device);
    // float products on TF32 tensor cores only when the context opted in.
    const Tf32Scope tf32(stage.state.blas(), std::is_same_v<T, float> && stage.state.float_tf32);
    bool first = true;
    for (std::int64_t l = 0; l < model.n_layers(); ++l) {
        const Layer& layer = model.layer(l);
        if (!layer.trainable) continue;
        const std::int64_t n_in = model.fan_in(l);
        const T* a_in = l == 0 ? x.data : state.act[l - 1].data();
        const std::int64_t ld_in = l == 0 ? x.ld : n_in;
        const double w_mult = model.weight_multiplier(l);
        const double b_mult = model.bias_multiplier(l);
        // S_l = w_l^2 a^T a (lower triangle; the kernel reads S[i, j] with i >= j only).
        syrk(stage.state.blas(), CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_T, n, n_in, T(w_mult * w_mult),
             a_in, ld_in, T(0), s.data(), n);
        const T s_offset = T(layer.bias ? b_mult * b_mult : 0.0), beta = T(first ? 0 : 1);
        const bool cublas = gram_layer_uses_cublas(stage.state, layer.n_out, n_rows);
        count_gram_layer(cublas);
        (cublas ? gram_layer_cublas<T> : gram_layer_fused<T>)(stage.state, seeds[l].data(),
                                                              layer.n_out, n_rows, s.data(), n,
                                                              s_offset, k, beta, g.data, g.ld);
        first = false;
    }
    if (first) {
        // No trainable layer: A = 0.
        NGD_CUDA_CHECK(cudaMemset2DAsync(g.data, sizeof(T) * g.ld, 0, sizeof(T) * n_rows, n_rows,
                                         stage.stream()));
    }
}

template <class T>
void jacobian_block(Context& ctx, const Mlp& model, MatrixView<const T> x,
                    const ForwardState<T>& state, const std::vector<Matrix<T>>& seeds,
                    std::int64_t col_begin, MatrixView<T> block) {
    // x: d_0 x n; seeds[l]: d_l x N; block: N x w, column q is parameter col_begin + q.
    Stage stage(ctx);
    const std::int64_t n_rows = block.rows;
    const std::int64_t col_end = col_begin + block.cols;
    const std::int64_t k = model.n_outputs();
    if (n_rows == 0 || block.cols == 0) return;
    for (std::int64_t l = 0; l < model.n_layers(); ++l) {
        const Layer& layer = model.layer(l);
        const std::int64_t n_in = model.fan_in(l);
        const std::int64_t begin = model.weight_offset(l);
        const std::int64_t weights_end = begin + layer.n_out * n_in;
        const std::int64_t end = weights_end + (layer.bias ? layer.n_out : 0);
        const std::int64_t lo = std::max(col_begin, begin), hi = std::min(col_end, end);
        if (lo >= hi) continue;
        if (!layer.trainable) {
            NGD_CUDA_CHECK(cudaMemset2DAsync(block.data + (lo - col_begin) * block.ld,
                                             sizeof(T) * block.ld, 0, sizeof(T) * n_rows, hi - lo,
                                             stage.stream()));
            continue;
        }
        const T* seed = seeds[l].data();
        if (lo < weights_end) {
            const std::int64_t w_hi = std::min(hi, weights_end);
            const T* a_in = l == 0 ? x.data : state.act[l - 1].data();
            const std::int64_t ld_in = l == 0 ? x.ld : n_in;
            NGD_LAUNCH(jacobian_weight_kernel<T>, column_grid(n_rows, w_hi - lo), kThreads,
                       stage.stream(), seed, layer.n_out, a_in, ld_in, model.weight_multiplier(l),
                       k, n_rows, lo - begin, w_hi - lo, block.data + (lo - col_begin) * block.ld,
                       block.ld);
        }
        const std::int64_t b_lo = std::max(lo, weights_end);
        if (b_lo < hi) {
            NGD_LAUNCH(jacobian_bias_kernel<T>, column_grid(n_rows, hi - b_lo), kThreads,
                       stage.stream(), seed, layer.n_out, model.bias_multiplier(l), n_rows,
                       b_lo - weights_end, hi - b_lo, block.data + (b_lo - col_begin) * block.ld,
                       block.ld);
        }
    }
}

template <class T>
void syrk_lower(Context& ctx, MatrixView<const T> a, T beta, MatrixView<T> g) {
    // a: N x w; g: N x N, lower triangle <- beta g + a a^T.
    Stage stage(ctx);
    if (a.rows == 0) return;
    launch_lower_tiles<T, false>(stage.state, a.data, a.ld, a.rows, a.cols, nullptr, 0, T(0), 1,
                                 beta, g.data, g.ld);
}

#define NGD_INSTANTIATE_GRAM(T)                                                                   \
    template void gram_layer_fused<T>(CudaState&, const T*, std::int64_t, std::int64_t, const T*, \
                                      std::int64_t, T, std::int64_t, T, T*, std::int64_t);        \
    template void gram_structured<T>(Context&, const Mlp&, MatrixView<const T>,                   \
                                     const ForwardState<T>&, const std::vector<Matrix<T>>&,       \
                                     MatrixView<T>);                                              \
    template void jacobian_block<T>(Context&, const Mlp&, MatrixView<const T>,                    \
                                    const ForwardState<T>&, const std::vector<Matrix<T>>&,        \
                                    std::int64_t, MatrixView<T>);                                 \
    template void syrk_lower<T>(Context&, MatrixView<const T>, T, MatrixView<T>);
NGD_INSTANTIATE_GRAM(float)
NGD_INSTANTIATE_GRAM(double)
#undef NGD_INSTANTIATE_GRAM

}  // namespace ngd::cuda
