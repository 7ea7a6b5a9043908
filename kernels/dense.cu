// CUDA dense helpers of the pipeline: apply_factor, gemv/symv (cuBLAS), symmetrize (tiled transpose
// of the lower triangle), the scans for NaN/Inf and invalid indices and the dot product (CUB block
// reductions; sums are finished in a fixed order so results are deterministic), axpby and the
// copies; mirrors src/reference/dense.cpp. Every kernel runs on the context's stream.
#include <algorithm>
#include <climits>
#include <cstdint>
#include <cub/block/block_reduce.cuh>

#include "common.cuh"
#include "stages.hpp"

namespace ngd::cuda {
namespace {

namespace cub = CUB_NS_QUALIFIER;

// Blocks of the deterministic two-pass sums: fixed for a given length, so the order is too.
constexpr std::int64_t kMaxSumBlocks = 1024;

struct MinOp {
    __device__ unsigned long long operator()(unsigned long long a, unsigned long long b) const {
        return a < b ? a : b;
    }
};

struct IsNonFinite {
    template <class T>
    __device__ bool operator()(T v) const {
        return !isfinite(v);
    }
};

// Not an integer in [0, limit): NaN fails every comparison and counts as invalid.
struct IsInvalidIndex {
    double limit;
    template <class T>
    __device__ bool operator()(T v) const {
        const double d = double(v);
        return !(d >= 0.0 && d < limit && d == floor(d));
    }
};

// One thread per entry: rows over x (grid-stride), columns over y (grid-stride). Each block reduces
// its count and its smallest column-major index (r + c rows) with CUB, then adds them atomically.
template <class T, class Predicate>
__global__ void scan_entries_kernel(const T* __restrict__ a, std::int64_t rows, std::int64_t cols,
                                    std::int64_t lda, Predicate predicate,
                                    unsigned long long* count, unsigned long long* first) {
    unsigned long long local_count = 0, local_first = ULLONG_MAX;
    for (std::int64_t c = blockIdx.y; c < cols; c += gridDim.y) {
        for (std::int64_t r = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; r < rows;
             r += std::int64_t(gridDim.x) * blockDim.x) {
            if (predicate(a[r + c * lda])) {
                ++local_count;
                local_first = min(local_first, static_cast<unsigned long long>(r + c * rows));
            }
        }
    }
    using Reduce = cub::BlockReduce<unsigned long long, kThreads>;
    __shared__ typename Reduce::TempStorage storage;
    const unsigned long long block_count = Reduce(storage).Sum(local_count);
    __syncthreads();  // the temp storage is reused
    const unsigned long long block_first = Reduce(storage).Reduce(local_first, MinOp{});
    if (threadIdx.x == 0 && block_count > 0) {
        atomicAdd(count, block_count);
        atomicMin(first, block_first);
    }
}

// One thread per entry pair (grid-stride); per block a CUB sum in double into partials[block].
template <class T>
__global__ void dot_partials_kernel(const T* __restrict__ x, const T* __restrict__ y,
                                    std::int64_t n, double* __restrict__ partials) {
    double sum = 0;
    for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
         i += std::int64_t(gridDim.x) * blockDim.x) {
        sum += double(x[i]) * double(y[i]);
    }
    using Reduce = cub::BlockReduce<double, kThreads>;
    __shared__ typename Reduce::TempStorage storage;
    const double block_sum = Reduce(storage).Sum(sum);
    if (threadIdx.x == 0) partials[blockIdx.x] = block_sum;
}

// One block: thread t sums partials t, t + 256, ... in order, then a CUB block sum into *out.
__global__ void finish_sum_kernel(const double* __restrict__ partials, std::int64_t count,
                                  double* __restrict__ out) {
    double sum = 0;
    for (std::int64_t i = threadIdx.x; i < count; i += blockDim.x) sum += partials[i];
    using Reduce = cub::BlockReduce<double, kThreads>;
    __shared__ typename Reduce::TempStorage storage;
    const double total = Reduce(storage).Sum(sum);
    if (threadIdx.x == 0) *out = total;
}

// finish_sum_kernel, with the total divided by `divisor` (and its square root taken when `root`)
// on the device into *out: the same roundings as the host's finish_sum(...) / divisor.
__global__ void finish_sum_into_kernel(const double* __restrict__ partials, std::int64_t count,
                                       double* __restrict__ out, double divisor, bool root) {
    double sum = 0;
    for (std::int64_t i = threadIdx.x; i < count; i += blockDim.x) sum += partials[i];
    using Reduce = cub::BlockReduce<double, kThreads>;
    __shared__ typename Reduce::TempStorage storage;
    const double total = Reduce(storage).Sum(sum);
    if (threadIdx.x == 0) {
        const double v = total / divisor;
        *out = root ? sqrt(v) : v;
    }
}

// One thread per entry (r, q) of v: x over rows, y (grid-stride) over columns. out = v where the
// entry is an integer in [0, limit) (IsInvalidIndex's test), else 0.
template <class T>
__global__ void sanitize_indices_kernel(const T* __restrict__ v, std::int64_t ldv,
                                        std::int64_t rows, std::int64_t cols, double limit,
                                        T* __restrict__ out, std::int64_t ldo) {
    const std::int64_t r = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x;
    if (r >= rows) return;
    for (std::int64_t q = blockIdx.y; q < cols; q += gridDim.y) {
        const T value = v[r + q * ldv];
        const double d = double(value);
        out[r + q * ldo] = (d >= 0.0 && d < limit && d == floor(d)) ? value : T(0);
    }
}

// One thread: *out = double(*count), the count of a scan.
__global__ void count_to_word_kernel(const unsigned long long* __restrict__ count,
                                     double* __restrict__ out) {
    *out = double(*count);
}

// One thread per entry (r, q) of a: x over rows, y (grid-stride) over columns.
// a[i k + c, q] = sum_o M_i[o, c] j[i k + o, q].
template <class T>
__global__ void apply_factor_kernel(const T* __restrict__ factor, std::int64_t ld_factor,
                                    std::int64_t k, const T* __restrict__ j, std::int64_t ldj,
                                    std::int64_t n_rows, std::int64_t cols, T* __restrict__ a,
                                    std::int64_t lda) {
    const std::int64_t r = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x;
    if (r >= n_rows) return;
    const std::int64_t i = r / k, c = r % k;
    const T* m = factor + (i * k + c) * ld_factor;  // column c of M_i
    for (std::int64_t q = blockIdx.y; q < cols; q += gridDim.y) {
        const T* jq = j + i * k + q * ldj;
        double sum = 0;
        for (std::int64_t o = 0; o < k; ++o) sum += double(m[o]) * double(jq[o]);
        a[r + q * lda] = T(sum);
    }
}

// One block per 32 x 32 tile on or above the diagonal (32 x 8 threads, 4 entries each): the mirror
// lower tile is read coalesced into shared memory, then written transposed to the strict upper
// part.
template <class T>
__global__ void symmetrize_kernel(T* g, std::int64_t n, std::int64_t ld) {
    __shared__ T tile[32][33];
    // blockIdx.x enumerates upper tiles column by column: b = tj (tj + 1) / 2 + ti, ti <= tj.
    const std::int64_t b = blockIdx.x;
    auto tj = static_cast<std::int64_t>((sqrt(8.0 * double(b) + 1.0) - 1.0) * 0.5);
    while (tj * (tj + 1) / 2 > b) --tj;
    while ((tj + 1) * (tj + 2) / 2 <= b) ++tj;
    const std::int64_t ti = b - tj * (tj + 1) / 2;
    const std::int64_t r0 = ti * 32, c0 = tj * 32;  // destination tile: rows r0.., columns c0..
    // tile[y][x] = g[c0 + x, r0 + y] (the lower mirror).
    for (int y = threadIdx.y; y < 32; y += blockDim.y) {
        const std::int64_t src_row = c0 + threadIdx.x, src_col = r0 + y;
        if (src_row < n && src_col < n) tile[y][threadIdx.x] = g[src_row + src_col * ld];
    }
    __syncthreads();
    // g[r0 + x, c0 + y] = g[c0 + y, r0 + x] = tile[x][y], strictly above the diagonal only.
    for (int y = threadIdx.y; y < 32; y += blockDim.y) {
        const std::int64_t dst_row = r0 + threadIdx.x, dst_col = c0 + y;
        if (dst_row < dst_col && dst_col < n) g[dst_row + dst_col * ld] = tile[threadIdx.x][y];
    }
}

// One thread per entry (grid-stride): y = alpha x + beta y in double, as the reference; beta = 0
// never reads y (a NaN there must not leak through).
template <class T>
__global__ void axpby_kernel(std::int64_t n, T alpha, const T* x, T beta, T* y) {
    for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
         i += std::int64_t(gridDim.x) * blockDim.x) {
        const double old = beta == T(0) ? 0.0 : double(beta) * double(y[i]);
        y[i] = T(double(alpha) * double(x[i]) + old);
    }
}

// Count and first index of the entries of a that satisfy `predicate`. Synchronises.
template <class T, class Predicate>
NonFiniteCount scan_entries(Context& ctx, MatrixView<const T> a, Predicate predicate) {
    NonFiniteCount result;
    if (a.empty()) return result;
    Stage stage(ctx);
    // A contiguous matrix is scanned as one long column: its memory index is the column-major
    // index.
    const bool flat = a.contiguous();
    const std::int64_t rows = flat ? a.size() : a.rows, cols = flat ? 1 : a.cols;
    const std::int64_t lda = flat ? a.size() : a.ld;
    auto* words = static_cast<unsigned long long*>(stage.state.status_device);
    NGD_CUDA_CHECK(cudaMemsetAsync(words, 0, sizeof(unsigned long long), stage.stream()));
    NGD_CUDA_CHECK(cudaMemsetAsync(words + 1, 0xFF, sizeof(unsigned long long), stage.stream()));
    const unsigned int gx = grid_for(rows);
    const auto gy = static_cast<unsigned int>(
        std::min<std::int64_t>(cols, std::max<std::int64_t>(1, 8192 / std::int64_t(gx))));
    NGD_LAUNCH((scan_entries_kernel<T, Predicate>), dim3(gx, gy), kThreads, stage.stream(), a.data,
               rows, cols, lda, predicate, words, words + 1);
    auto* host = static_cast<unsigned long long*>(stage.state.status_host);
    NGD_CUDA_CHECK(cudaMemcpyAsync(host, words, 2 * sizeof(unsigned long long),
                                   cudaMemcpyDeviceToHost, stage.stream()));
    synchronize_stream(stage.stream());
    result.count = static_cast<std::int64_t>(host[0]);
    result.first = host[0] > 0 ? static_cast<std::int64_t>(host[1]) : -1;
    return result;
}

// The count of the entries of a that satisfy `predicate`, into *word (device). No synchronisation.
template <class T, class Predicate>
void scan_count_into(Context& ctx, MatrixView<const T> a, Predicate predicate, double* word) {
    Stage stage(ctx);
    if (a.empty()) {
        NGD_CUDA_CHECK(cudaMemsetAsync(word, 0, sizeof(double), stage.stream()));  // 0.0
        return;
    }
    const bool flat = a.contiguous();
    const std::int64_t rows = flat ? a.size() : a.rows, cols = flat ? 1 : a.cols;
    const std::int64_t lda = flat ? a.size() : a.ld;
    Scratch<unsigned long long> words(stage.state, 2);
    NGD_CUDA_CHECK(cudaMemsetAsync(words.data(), 0, sizeof(unsigned long long), stage.stream()));
    NGD_CUDA_CHECK(
        cudaMemsetAsync(words.data() + 1, 0xFF, sizeof(unsigned long long), stage.stream()));
    const unsigned int gx = grid_for(rows);
    const auto gy = static_cast<unsigned int>(
        std::min<std::int64_t>(cols, std::max<std::int64_t>(1, 8192 / std::int64_t(gx))));
    NGD_LAUNCH((scan_entries_kernel<T, Predicate>), dim3(gx, gy), kThreads, stage.stream(), a.data,
               rows, cols, lda, predicate, words.data(), words.data() + 1);
    NGD_LAUNCH(count_to_word_kernel, 1, 1, stage.stream(), words.data(), word);
}

dim3 column_grid(std::int64_t n_rows, std::int64_t cols) {
    return dim3(static_cast<unsigned int>((n_rows + kThreads - 1) / kThreads),
                static_cast<unsigned int>(std::min<std::int64_t>(cols, 65535)));
}

}  // namespace

double finish_sum(CudaState& state, const double* partials, std::int64_t count) {
    auto* out = static_cast<double*>(state.status_device);
    NGD_LAUNCH(finish_sum_kernel, 1, kThreads, state.stream, partials, count, out);
    auto* host = static_cast<double*>(state.status_host);
    NGD_CUDA_CHECK(
        cudaMemcpyAsync(host, out, sizeof(double), cudaMemcpyDeviceToHost, state.stream));
    synchronize_stream(state.stream);
    return *host;
}

void finish_sum_into(CudaState& state, const double* partials, std::int64_t count, double* out,
                     double divisor, bool root) {
    NGD_LAUNCH(finish_sum_into_kernel, 1, kThreads, state.stream, partials, count, out, divisor,
               root);
}

template <class T>
void apply_factor(Context& ctx, MatrixView<const T> factor, MatrixView<const T> j,
                  MatrixView<T> a) {
    // factor: k x kn (block i = M_i) or empty (M = I); j, a: N x p.
    if (factor.empty()) {
        copy_matrix<T>(ctx, j, a);
        return;
    }
    Stage stage(ctx);
    if (j.rows == 0 || j.cols == 0) return;
    NGD_LAUNCH(apply_factor_kernel<T>, column_grid(j.rows, j.cols), kThreads, stage.stream(),
               factor.data, factor.ld, factor.rows, j.data, j.ld, j.rows, j.cols, a.data, a.ld);
}

template <class T>
void gemv(Context& ctx, bool transpose, MatrixView<const T> a, const T* x, T* y) {
    Stage stage(ctx);
    const std::int64_t out_len = transpose ? a.cols : a.rows;
    const std::int64_t in_len = transpose ? a.rows : a.cols;
    if (out_len == 0) return;
    if (in_len == 0) {
        // BLAS returns early here without writing y; the product of an empty sum is 0.
        NGD_CUDA_CHECK(cudaMemsetAsync(y, 0, sizeof(T) * out_len, stage.stream()));
        return;
    }
    gemv(stage.state.blas(), transpose ? CUBLAS_OP_T : CUBLAS_OP_N, a.rows, a.cols, T(1), a.data,
         a.ld, x, T(0), y);
}

template <class T>
void symv_lower(Context& ctx, MatrixView<const T> g, const T* x, T* y) {
    Stage stage(ctx);
    if (g.rows == 0) return;
    symv(stage.state.blas(), CUBLAS_FILL_MODE_LOWER, g.rows, T(1), g.data, g.ld, x, T(0), y);
}

template <class T>
void symmetrize(Context& ctx, MatrixView<T> g) {
    Stage stage(ctx);
    const std::int64_t tiles = (g.rows + 31) / 32;
    NGD_LAUNCH(symmetrize_kernel<T>, static_cast<unsigned int>(tiles * (tiles + 1) / 2),
               dim3(32, 8), stage.stream(), g.data, g.rows, g.ld);
}

template <class T>
NonFiniteCount count_nonfinite(Context& ctx, MatrixView<const T> a) {
    return scan_entries(ctx, a, IsNonFinite{});
}

template <class T>
std::int64_t first_invalid_index(Context& ctx, MatrixView<const T> v, std::int64_t limit) {
    return scan_entries(ctx, v, IsInvalidIndex{double(limit)}).first;
}

template <class T>
void axpby(Context& ctx, std::int64_t n, T alpha, const T* x, T beta, T* y) {
    Stage stage(ctx);
    NGD_LAUNCH(axpby_kernel<T>, grid_for(n), kThreads, stage.stream(), n, alpha, x, beta, y);
}

template <class T>
double dot(Context& ctx, std::int64_t n, const T* x, const T* y) {
    if (n <= 0) return 0.0;
    Stage stage(ctx);
    const std::int64_t blocks =
        std::min<std::int64_t>((n + kThreads - 1) / kThreads, kMaxSumBlocks);
    Scratch<double> partials(stage.state, blocks);
    NGD_LAUNCH(dot_partials_kernel<T>, static_cast<unsigned int>(blocks), kThreads, stage.stream(),
               x, y, n, partials.data());
    return finish_sum(stage.state, partials.data(), blocks);
}

template <class T>
void count_nonfinite_into(Context& ctx, MatrixView<const T> a, double* word) {
    scan_count_into(ctx, a, IsNonFinite{}, word);
}

template <class T>
void sanitize_indices_into(Context& ctx, MatrixView<const T> v, std::int64_t limit,
                           MatrixView<T> out, double* word) {
    // v, out: m x n. The count first (a scan of v), then the copy with invalid entries zeroed.
    scan_count_into(ctx, v, IsInvalidIndex{double(limit)}, word);
    if (v.empty()) return;
    Stage stage(ctx);
    NGD_LAUNCH(sanitize_indices_kernel<T>, column_grid(v.rows, v.cols), kThreads, stage.stream(),
               v.data, v.ld, v.rows, v.cols, double(limit), out.data, out.ld);
}

template <class T>
void dot_into(Context& ctx, std::int64_t n, const T* x, const T* y, double* word) {
    // As dot(), with the sum finished into *word on the device.
    Stage stage(ctx);
    if (n <= 0) {
        NGD_CUDA_CHECK(cudaMemsetAsync(word, 0, sizeof(double), stage.stream()));
        return;
    }
    const std::int64_t blocks =
        std::min<std::int64_t>((n + kThreads - 1) / kThreads, kMaxSumBlocks);
    Scratch<double> partials(stage.state, blocks);
    NGD_LAUNCH(dot_partials_kernel<T>, static_cast<unsigned int>(blocks), kThreads, stage.stream(),
               x, y, n, partials.data());
    finish_sum_into(stage.state, partials.data(), blocks, word);
}

template <class T>
void copy_vector(Context& ctx, std::int64_t n, const T* x, T* y) {
    if (n <= 0 || x == y) return;
    Stage stage(ctx);
    NGD_CUDA_CHECK(cudaMemcpyAsync(y, x, sizeof(T) * n, cudaMemcpyDeviceToDevice, stage.stream()));
}

template <class T>
void copy_matrix(Context& ctx, MatrixView<const T> a, MatrixView<T> b) {
    if (a.empty() || a.data == b.data) return;
    Stage stage(ctx);
    NGD_CUDA_CHECK(cudaMemcpy2DAsync(b.data, sizeof(T) * b.ld, a.data, sizeof(T) * a.ld,
                                     sizeof(T) * a.rows, a.cols, cudaMemcpyDeviceToDevice,
                                     stage.stream()));
}

#define NGD_INSTANTIATE_DENSE(T)                                                               \
    template void apply_factor<T>(Context&, MatrixView<const T>, MatrixView<const T>,          \
                                  MatrixView<T>);                                              \
    template void gemv<T>(Context&, bool, MatrixView<const T>, const T*, T*);                  \
    template void symv_lower<T>(Context&, MatrixView<const T>, const T*, T*);                  \
    template void symmetrize<T>(Context&, MatrixView<T>);                                      \
    template NonFiniteCount count_nonfinite<T>(Context&, MatrixView<const T>);                 \
    template std::int64_t first_invalid_index<T>(Context&, MatrixView<const T>, std::int64_t); \
    template void axpby<T>(Context&, std::int64_t, T, const T*, T, T*);                        \
    template double dot<T>(Context&, std::int64_t, const T*, const T*);                        \
    template void count_nonfinite_into<T>(Context&, MatrixView<const T>, double*);             \
    template void sanitize_indices_into<T>(Context&, MatrixView<const T>, std::int64_t,        \
                                           MatrixView<T>, double*);                            \
    template void dot_into<T>(Context&, std::int64_t, const T*, const T*, double*);            \
    template void copy_vector<T>(Context&, std::int64_t, const T*, T*);                        \
    template void copy_matrix<T>(Context&, MatrixView<const T>, MatrixView<T>);
NGD_INSTANTIATE_DENSE(float)
NGD_INSTANTIATE_DENSE(double)
#undef NGD_INSTANTIATE_DENSE

}  // namespace ngd::cuda
