// Shared pieces of the CUDA backend: one check macro each for CUDA, cuBLAS and cuSOLVER (throwing
// the typed ngd errors with the call text and file:line), the launch helper that checks every
// kernel launch, the per-context state (stream, lazily created handles, cached workspaces), and
// small typed bindings (gemm, syrk, gemv, symv, potrf, potrs) so that stage code reads as math.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cusolverDn.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "ngd/context.hpp"
#include "ngd/matrix.hpp"

namespace ngd::cuda {

[[noreturn]] void throw_cuda_error(cudaError_t status, const char* call, const char* file,
                                   int line);
[[noreturn]] void throw_cublas_error(cublasStatus_t status, const char* call, const char* file,
                                     int line);
[[noreturn]] void throw_cusolver_error(cusolverStatus_t status, const char* call, const char* file,
                                       int line);
/// "cudaErrorMemoryAllocation (out of memory)".
std::string error_text(cudaError_t status);
/// Throws for a failed launch: OutOfMemory for cudaErrorMemoryAllocation, else CudaError.
[[noreturn]] void throw_launch_error(cudaError_t status, const char* kernel, const char* file,
                                     int line);
/// Throws OutOfMemory (requested 0: the library did not say how much; free from cudaMemGetInfo)
/// for a cuBLAS/cuSOLVER call that could not allocate even after release_cached_memory().
[[noreturn]] void throw_library_out_of_memory(const char* call, const char* file, int line);
/// The rare path of every allocation failure: waits for the device (so that pending frees have
/// happened), hands the idle memory of the current device's pool back to the driver, and counts
/// the event. The caller then retries once. Never throws.
void release_cached_memory() noexcept;

/// Debug counters of the CUDA backend, process-wide (atomic): host synchronisations made by the
/// library, device allocations that reached the driver (cudaMalloc, or a pool growing its
/// reservation), and memory releases after a failed allocation. Read by the tests and benchmarks
/// (baselines.cuh) to check a steady state.
struct Counters {
    std::int64_t host_syncs = 0;
    std::int64_t device_allocations = 0;
    std::int64_t memory_releases = 0;
    std::int64_t gram_layers_fused = 0;
    std::int64_t gram_layers_cublas = 0;
};
Counters counters() noexcept;
void count_host_sync() noexcept;
void count_device_allocation() noexcept;
void count_memory_release() noexcept;
void count_gram_layer(bool cublas) noexcept;
/// cudaStreamSynchronize(stream), counted. Every synchronisation of kernels/ goes through here.
void synchronize_stream(cudaStream_t stream);

}  // namespace ngd::cuda

#define NGD_CUDA_CHECK(call)                                                       \
    do {                                                                           \
        const cudaError_t ngd_status_ = (call);                                    \
        if (ngd_status_ != cudaSuccess) {                                          \
            ::ngd::cuda::throw_cuda_error(ngd_status_, #call, __FILE__, __LINE__); \
        }                                                                          \
    } while (0)

// cuBLAS and cuSOLVER allocate internally (workspace, handle state): on ALLOC_FAILED the cached
// memory of the pool goes back to the driver and the call is made once more; a second failure is
// OutOfMemory, not a library error. The calls checked here are safe to repeat (they failed
// before doing anything).
#define NGD_CUBLAS_CHECK(call)                                                       \
    do {                                                                             \
        cublasStatus_t ngd_status_ = (call);                                         \
        if (ngd_status_ == CUBLAS_STATUS_ALLOC_FAILED) {                             \
            ::ngd::cuda::release_cached_memory();                                    \
            ngd_status_ = (call);                                                    \
            if (ngd_status_ == CUBLAS_STATUS_ALLOC_FAILED) {                         \
                ::ngd::cuda::throw_library_out_of_memory(#call, __FILE__, __LINE__); \
            }                                                                        \
        }                                                                            \
        if (ngd_status_ != CUBLAS_STATUS_SUCCESS) {                                  \
            ::ngd::cuda::throw_cublas_error(ngd_status_, #call, __FILE__, __LINE__); \
        }                                                                            \
    } while (0)

#define NGD_CUSOLVER_CHECK(call)                                                       \
    do {                                                                               \
        cusolverStatus_t ngd_status_ = (call);                                         \
        if (ngd_status_ == CUSOLVER_STATUS_ALLOC_FAILED) {                             \
            ::ngd::cuda::release_cached_memory();                                      \
            ngd_status_ = (call);                                                      \
            if (ngd_status_ == CUSOLVER_STATUS_ALLOC_FAILED) {                         \
                ::ngd::cuda::throw_library_out_of_memory(#call, __FILE__, __LINE__);   \
            }                                                                          \
        }                                                                              \
        if (ngd_status_ != CUSOLVER_STATUS_SUCCESS) {                                  \
            ::ngd::cuda::throw_cusolver_error(ngd_status_, #call, __FILE__, __LINE__); \
        }                                                                              \
    } while (0)

/// NGD_LAUNCH(kernel, grid, block, stream, args...): launches and checks. A kernel name with commas
/// in its template arguments goes in parentheses. Empty grids are skipped (CUDA rejects them).
#define NGD_LAUNCH(kernel, grid, block, stream, ...)                                     \
    ::ngd::cuda::launch_kernel(#kernel, __FILE__, __LINE__, kernel, grid, block, stream, \
                               __VA_ARGS__)

namespace ngd::detail {

/// The state behind a CUDA Context. Not thread-safe: one context is used by one thread at a time.
/// Everything here is ordered on `stream`, which is a blocking stream, so that copies through the
/// legacy default stream (ngd::copy) and the stream-ordered Matrix allocator stay ordered with it.
struct CudaState {
    CudaState() = default;
    CudaState(const CudaState&) = delete;
    CudaState& operator=(const CudaState&) = delete;
    ~CudaState();  // waits for the stream, then frees everything; never throws

    int device = 0;
    cudaStream_t stream = nullptr;
    std::string device_name;
    int cc_major = 0, cc_minor = 0;
    std::size_t total_memory = 0;
    /// Double-precision Gram tiles on FP64 tensor cores (sm_80+); off: CUDA-core FMAs (for checks).
    bool double_tensor_cores = true;
    /// How each layer's term of the structured Gram is computed (gram_route.cu): the fused tile
    /// kernel, the cuBLAS route (seed Gram by GEMM on column panels, then one Hadamard pass), or
    /// the per-layer rule. Set from NGD_GRAM_ROUTE (auto | fused | cublas) when the state is made.
    enum class GramRoute { automatic, fused, cublas };
    GramRoute gram_route = GramRoute::automatic;
    /// The rule's threshold: a layer whose seed depth d_l (its width) is at least this takes the
    /// cuBLAS route (NGD_GRAM_CUBLAS_MIN_DEPTH overrides it).
    std::int64_t gram_cublas_min_depth = 256;
    /// Bound on the cuBLAS route's seed-Gram panel (N x w entries of T); sets w.
    std::size_t gram_panel_bytes = std::size_t(512) << 20;
    /// float only: cuBLAS Gram products on TF32 tensor cores (about 1e-3 relative error per
    /// product instead of 1e-7). Off unless asked for (NGD_FLOAT_TF32=1 or the baselines setter).
    bool float_tf32 = false;

    /// Lazily created handles, bound to `stream`.
    cublasHandle_t blas();
    cusolverDnHandle_t solver();
    cusolverDnParams_t solver_params();

    /// Scratch from the device's stream-ordered memory pool (the one behind device Matrix memory),
    /// allocated and freed on `stream`: a block goes back to the pool as soon as its Scratch
    /// dies, so what one stage used is there for the next stage's Matrix, and a steady-state
    /// step reuses the pool's memory without reaching the driver. `bucket` is the size to pass
    /// back to release().
    void* acquire(std::size_t bytes, std::size_t& bucket);
    void release(void* ptr, std::size_t bucket) noexcept;

    /// Xpotrf workspace, kept across solves and grown when a larger system needs more.
    void* potrf_device = nullptr;
    std::size_t potrf_device_bytes = 0;
    std::vector<unsigned char> potrf_host;
    std::int64_t potrf_query_n = -1, potrf_query_ld = -1;
    int potrf_query_type = -1;
    std::size_t potrf_need_device = 0, potrf_need_host = 0;
    /// Host workspace of the rarer cuSOLVER calls (syevd); their device workspace is scratch.
    std::vector<unsigned char> host_work;

    /// Small status words read back by the synchronising stages (counts, flags, sums), with a
    /// pinned host mirror so the read-back is a true asynchronous copy.
    static constexpr std::size_t kStatusBytes = 256;
    void* status_device = nullptr;
    void* status_host = nullptr;

    cublasHandle_t cublas_handle = nullptr;
    cusolverDnHandle_t cusolver_handle = nullptr;
    cusolverDnParams_t cusolver_params = nullptr;
};

}  // namespace ngd::detail

namespace ngd::cuda {

using detail::CudaState;

/// Threads per block of the one-dimensional elementwise kernels.
constexpr int kThreads = 256;

/// Blocks for a grid-stride loop over `count` items: enough to fill the device, never more than the
/// items need, and never zero for a non-empty range.
inline unsigned int grid_for(std::int64_t count, int threads = kThreads) {
    const std::int64_t blocks = (count + threads - 1) / threads;
    constexpr std::int64_t kMaxBlocks = 8192;
    return static_cast<unsigned int>(blocks < kMaxBlocks ? blocks : kMaxBlocks);
}

template <class... Params, class... Args>
void launch_kernel(const char* name, const char* file, int line, void (*kernel)(Params...),
                   dim3 grid, dim3 block, cudaStream_t stream, Args... args) {
    if (grid.x == 0 || grid.y == 0 || grid.z == 0) return;
    kernel<<<grid, block, 0, stream>>>(args...);
    cudaError_t status = cudaGetLastError();
    if (status == cudaErrorMemoryAllocation) {
        // A launch can fail to reserve its local memory: give back cached memory, launch again.
        release_cached_memory();
        kernel<<<grid, block, 0, stream>>>(args...);
        status = cudaGetLastError();
    }
    if (status != cudaSuccess) throw_launch_error(status, name, file, line);
}

/// Makes `device` current for the lifetime of the guard and restores the previous one after.
class DeviceGuard {
  public:
    explicit DeviceGuard(int device);
    ~DeviceGuard();
    DeviceGuard(const DeviceGuard&) = delete;
    DeviceGuard& operator=(const DeviceGuard&) = delete;

  private:
    int previous_ = -1;
};

/// What every stage opens with: the context's state, its device made current.
struct Stage {
    explicit Stage(Context& ctx) : state(*ctx.cuda_state()), guard(state.device) {}
    CudaState& state;
    DeviceGuard guard;
    cudaStream_t stream() const { return state.stream; }
};

/// Typed scratch from the state's free list, returned to it on destruction.
template <class T>
class Scratch {
  public:
    Scratch(CudaState& state, std::int64_t count) : state_(&state) {
        if (count > 0) {
            ptr_ = static_cast<T*>(
                state.acquire(static_cast<std::size_t>(count) * sizeof(T), bucket_));
        }
    }
    ~Scratch() {
        if (ptr_ != nullptr) state_->release(ptr_, bucket_);
    }
    Scratch(const Scratch&) = delete;
    Scratch& operator=(const Scratch&) = delete;
    T* data() const { return ptr_; }

  private:
    CudaState* state_;
    T* ptr_ = nullptr;
    std::size_t bucket_ = 0;
};

/// Gives `m` the shape rows x cols in device memory, reusing its buffer when it already has it.
template <class T>
void ensure_shape(Matrix<T>& m, std::int64_t rows, std::int64_t cols) {
    if (m.rows() != rows || m.cols() != cols || m.space() != MemorySpace::device) {
        m = Matrix<T>();  // free first: the old and new buffers need not coexist
        m = Matrix<T>(rows, cols, MemorySpace::device);
    }
}

/// Sums `count` doubles on the device in a fixed order (deterministic), copies the sum to the host
/// and returns it. Synchronises. Defined in dense.cu.
double finish_sum(CudaState& state, const double* partials, std::int64_t count);

/// The same sum, divided by `divisor` (its square root taken when `root`), written into *out on
/// the device: no synchronisation. Defined in dense.cu.
void finish_sum_into(CudaState& state, const double* partials, std::int64_t count, double* out,
                     double divisor = 1.0, bool root = false);

/// seeds[r, col] *= dact[r, col / cols_per_sample] for a rows x cols contiguous matrix (dact is
/// rows x cols / cols_per_sample, contiguous). Defined in backprop.cu.
template <class T>
void multiply_by_dact(cudaStream_t stream, T* seeds, std::int64_t rows, std::int64_t cols,
                      const T* dact, std::int64_t cols_per_sample);

// ---- typed bindings: 64-bit cuBLAS and cuSOLVER, alpha and beta from the host -------------------

inline void gemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, std::int64_t m,
                 std::int64_t n, std::int64_t k, double alpha, const double* a, std::int64_t lda,
                 const double* b, std::int64_t ldb, double beta, double* c, std::int64_t ldc) {
    NGD_CUBLAS_CHECK(cublasDgemm_64(h, ta, tb, m, n, k, &alpha, a, lda, b, ldb, &beta, c, ldc));
}
inline void gemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, std::int64_t m,
                 std::int64_t n, std::int64_t k, float alpha, const float* a, std::int64_t lda,
                 const float* b, std::int64_t ldb, float beta, float* c, std::int64_t ldc) {
    NGD_CUBLAS_CHECK(cublasSgemm_64(h, ta, tb, m, n, k, &alpha, a, lda, b, ldb, &beta, c, ldc));
}

inline void syrk(cublasHandle_t h, cublasFillMode_t uplo, cublasOperation_t trans, std::int64_t n,
                 std::int64_t k, double alpha, const double* a, std::int64_t lda, double beta,
                 double* c, std::int64_t ldc) {
    NGD_CUBLAS_CHECK(cublasDsyrk_64(h, uplo, trans, n, k, &alpha, a, lda, &beta, c, ldc));
}
inline void syrk(cublasHandle_t h, cublasFillMode_t uplo, cublasOperation_t trans, std::int64_t n,
                 std::int64_t k, float alpha, const float* a, std::int64_t lda, float beta,
                 float* c, std::int64_t ldc) {
    NGD_CUBLAS_CHECK(cublasSsyrk_64(h, uplo, trans, n, k, &alpha, a, lda, &beta, c, ldc));
}

inline void gemv(cublasHandle_t h, cublasOperation_t trans, std::int64_t m, std::int64_t n,
                 double alpha, const double* a, std::int64_t lda, const double* x, double beta,
                 double* y) {
    NGD_CUBLAS_CHECK(cublasDgemv_64(h, trans, m, n, &alpha, a, lda, x, 1, &beta, y, 1));
}
inline void gemv(cublasHandle_t h, cublasOperation_t trans, std::int64_t m, std::int64_t n,
                 float alpha, const float* a, std::int64_t lda, const float* x, float beta,
                 float* y) {
    NGD_CUBLAS_CHECK(cublasSgemv_64(h, trans, m, n, &alpha, a, lda, x, 1, &beta, y, 1));
}

inline void symv(cublasHandle_t h, cublasFillMode_t uplo, std::int64_t n, double alpha,
                 const double* a, std::int64_t lda, const double* x, double beta, double* y) {
    NGD_CUBLAS_CHECK(cublasDsymv_64(h, uplo, n, &alpha, a, lda, x, 1, &beta, y, 1));
}
inline void symv(cublasHandle_t h, cublasFillMode_t uplo, std::int64_t n, float alpha,
                 const float* a, std::int64_t lda, const float* x, float beta, float* y) {
    NGD_CUBLAS_CHECK(cublasSsymv_64(h, uplo, n, &alpha, a, lda, x, 1, &beta, y, 1));
}

template <class T>
constexpr cudaDataType data_type() {
    return sizeof(T) == sizeof(double) ? CUDA_R_64F : CUDA_R_32F;
}

/// Workspace of Xpotrf (lower) for an n x n matrix with leading dimension lda.
template <class T>
void potrf_buffer_size(cusolverDnHandle_t h, cusolverDnParams_t params, std::int64_t n, const T* a,
                       std::int64_t lda, std::size_t* device_bytes, std::size_t* host_bytes) {
    NGD_CUSOLVER_CHECK(cusolverDnXpotrf_bufferSize(h, params, CUBLAS_FILL_MODE_LOWER, n,
                                                   data_type<T>(), a, lda, data_type<T>(),
                                                   device_bytes, host_bytes));
}

/// Lower Cholesky factor in place; *info (device) is LAPACK's info.
template <class T>
void potrf(cusolverDnHandle_t h, cusolverDnParams_t params, std::int64_t n, T* a, std::int64_t lda,
           void* device_work, std::size_t device_bytes, void* host_work, std::size_t host_bytes,
           int* info) {
    NGD_CUSOLVER_CHECK(cusolverDnXpotrf(h, params, CUBLAS_FILL_MODE_LOWER, n, data_type<T>(), a,
                                        lda, data_type<T>(), device_work, device_bytes, host_work,
                                        host_bytes, info));
}

/// Solves L L^T X = B in place of B with the factor from potrf.
template <class T>
void potrs(cusolverDnHandle_t h, cusolverDnParams_t params, std::int64_t n, std::int64_t nrhs,
           const T* a, std::int64_t lda, T* b, std::int64_t ldb, int* info) {
    NGD_CUSOLVER_CHECK(cusolverDnXpotrs(h, params, CUBLAS_FILL_MODE_LOWER, n, nrhs, data_type<T>(),
                                        a, lda, data_type<T>(), b, ldb, info));
}

/// Workspace of Xsyevd (eigenvalues and eigenvectors, lower) for an n x n matrix.
template <class T>
void syevd_buffer_size(cusolverDnHandle_t h, cusolverDnParams_t params, std::int64_t n, const T* a,
                       std::int64_t lda, const T* w, std::size_t* device_bytes,
                       std::size_t* host_bytes) {
    NGD_CUSOLVER_CHECK(cusolverDnXsyevd_bufferSize(
        h, params, CUSOLVER_EIG_MODE_VECTOR, CUBLAS_FILL_MODE_LOWER, n, data_type<T>(), a, lda,
        data_type<T>(), w, data_type<T>(), device_bytes, host_bytes));
}

/// Eigenvalues (ascending) into w and orthonormal eigenvectors into the columns of a.
template <class T>
void syevd(cusolverDnHandle_t h, cusolverDnParams_t params, std::int64_t n, T* a, std::int64_t lda,
           T* w, void* device_work, std::size_t device_bytes, void* host_work,
           std::size_t host_bytes, int* info) {
    NGD_CUSOLVER_CHECK(cusolverDnXsyevd(
        h, params, CUSOLVER_EIG_MODE_VECTOR, CUBLAS_FILL_MODE_LOWER, n, data_type<T>(), a, lda,
        data_type<T>(), w, data_type<T>(), device_work, device_bytes, host_work, host_bytes, info));
}

/// g[i, i] += shift[i] for i < n, on `stream`. Defined in solve.cu.
template <class T>
void add_to_diagonal(cudaStream_t stream, T* g, std::int64_t ldg, const T* shift, std::int64_t n);

/// Makes sure the state's potrf workspace fits an n x n factorisation with leading dimension lda,
/// querying cuSOLVER only when (n, lda, type) changed. Defined in solve.cu.
template <class T>
void ensure_potrf_workspace(CudaState& state, std::int64_t n, T* a, std::int64_t lda);

}  // namespace ngd::cuda
