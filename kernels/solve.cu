// CUDA damped Cholesky solve: shift the diagonal, cusolverDnXpotrf with a workspace cached in the
// context's state, a finiteness check of diag(L) (potrf can report success on a NaN input), Xpotrs
// into scratch, a finiteness check of the solution, and a copy into rhs only on success. All the
// status words come back in one read, so the whole solve synchronises once; cholesky_solve_into
// encodes them into a word on the device instead and does not synchronise.
#include <cstdint>
#include <string>

#include "common.cuh"
#include "ngd/error.hpp"
#include "stages.hpp"

namespace ngd::cuda {
namespace {

// Status words in state.status_device: potrf info, potrs info, factor flag, solution flag.
struct SolveStatus {
    int potrf_info;
    int potrs_info;
    int factor_nonfinite;
    int solution_nonfinite;
};

// One thread per diagonal entry (grid-stride): g[i, i] += shift[i].
template <class T>
__global__ void add_shift_kernel(T* __restrict__ g, std::int64_t ldg, const T* __restrict__ shift,
                                 std::int64_t n) {
    for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
         i += std::int64_t(gridDim.x) * blockDim.x) {
        g[i + i * ldg] += shift[i];
    }
}

// One thread per diagonal entry of L (grid-stride): raises *flag when one is NaN/Inf. A NaN
// anywhere in the factor reaches the diagonal of its row through the sum of squares.
template <class T>
__global__ void check_diagonal_kernel(const T* __restrict__ l, std::int64_t ldl, std::int64_t n,
                                      int* flag) {
    for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
         i += std::int64_t(gridDim.x) * blockDim.x) {
        if (!isfinite(l[i + i * ldl])) *flag = 1;
    }
}

// One thread per entry of the contiguous solution (grid-stride): raises *flag on NaN/Inf.
template <class T>
__global__ void check_finite_kernel(const T* __restrict__ x, std::int64_t count, int* flag) {
    for (std::int64_t e = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; e < count;
         e += std::int64_t(gridDim.x) * blockDim.x) {
        if (!isfinite(x[e])) *flag = 1;
    }
}

// One thread per entry of rhs (n x r, grid-stride): rhs = x, only when every status word is 0, so a
// failed solve leaves rhs as it was.
template <class T>
__global__ void commit_solution_kernel(const T* __restrict__ x, std::int64_t n, std::int64_t count,
                                       const SolveStatus* status, T* __restrict__ rhs,
                                       std::int64_t ld_rhs) {
    if (status->potrf_info != 0 || status->potrs_info != 0 || status->factor_nonfinite != 0 ||
        status->solution_nonfinite != 0) {
        return;
    }
    for (std::int64_t e = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; e < count;
         e += std::int64_t(gridDim.x) * blockDim.x) {
        rhs[e % n + (e / n) * ld_rhs] = x[e];
    }
}

// One thread: the return value of cholesky_solve from the status words into *word (-2 for an
// argument cuSOLVER rejected, where cholesky_solve throws).
__global__ void encode_status_kernel(const SolveStatus* status, double* word) {
    if (status->potrf_info < 0 || status->potrs_info < 0) {
        *word = -2;
    } else if (status->potrf_info > 0) {
        *word = status->potrf_info;
    } else {
        *word = (status->factor_nonfinite != 0 || status->solution_nonfinite != 0) ? -1 : 0;
    }
}

}  // namespace

template <class T>
void add_to_diagonal(cudaStream_t stream, T* g, std::int64_t ldg, const T* shift, std::int64_t n) {
    NGD_LAUNCH(add_shift_kernel<T>, grid_for(n), kThreads, stream, g, ldg, shift, n);
}

template <class T>
void ensure_potrf_workspace(CudaState& state, std::int64_t n, T* a, std::int64_t lda) {
    const int type = static_cast<int>(data_type<T>());
    if (state.potrf_query_n != n || state.potrf_query_ld != lda || state.potrf_query_type != type) {
        potrf_buffer_size<T>(state.solver(), state.solver_params(), n, a, lda,
                             &state.potrf_need_device, &state.potrf_need_host);
        state.potrf_query_n = n;
        state.potrf_query_ld = lda;
        state.potrf_query_type = type;
    }
    if (state.potrf_need_device > state.potrf_device_bytes) {
        // Grow: the old block goes back to the pool in stream order (a queued potrf may still use
        // it); acquire() gives back idle cached memory, retries, and throws OutOfMemory with the
        // bytes requested and free, as every other allocation does.
        if (state.potrf_device != nullptr) {
            state.release(state.potrf_device, state.potrf_device_bytes);
            state.potrf_device = nullptr;
            state.potrf_device_bytes = 0;
        }
        std::size_t bucket = 0;
        state.potrf_device = state.acquire(state.potrf_need_device, bucket);
        state.potrf_device_bytes = bucket;
    }
    if (state.potrf_need_host > state.potrf_host.size())
        state.potrf_host.resize(state.potrf_need_host);
}

namespace {

// cholesky_solve; with `word`, its return value is encoded into *word on the device instead of
// read back (no synchronisation) and 0 is returned.
template <class T>
std::int64_t cholesky_solve_to(Context& ctx, MatrixView<T> g, MatrixView<const T> shift,
                               MatrixView<T> rhs, double* word) {
    // g: N x N (lower read, overwritten by L); shift: N x 1 (empty means 0); rhs: N x r -> X.
    Stage stage(ctx);
    CudaState& state = stage.state;
    const cudaStream_t stream = stage.stream();
    const std::int64_t n = g.rows, n_rhs = rhs.cols;
    if (n == 0) {
        if (word != nullptr) NGD_CUDA_CHECK(cudaMemsetAsync(word, 0, sizeof(double), stream));
        return 0;
    }
    auto* status = static_cast<SolveStatus*>(state.status_device);
    NGD_CUDA_CHECK(cudaMemsetAsync(status, 0, sizeof(SolveStatus), stream));

    // K = G + diag(shift), then K = L L^T.
    if (!shift.empty()) {
        add_to_diagonal(stream, g.data, g.ld, shift.data, n);
    }
    ensure_potrf_workspace<T>(state, n, g.data, g.ld);
    potrf<T>(state.solver(), state.solver_params(), n, g.data, g.ld, state.potrf_device,
             state.potrf_need_device, state.potrf_host.empty() ? nullptr : state.potrf_host.data(),
             state.potrf_need_host, &status->potrf_info);
    NGD_LAUNCH(check_diagonal_kernel<T>, grid_for(n), kThreads, stream, g.data, g.ld, n,
               &status->factor_nonfinite);

    // X = K^{-1} rhs into scratch; committed to rhs on the device only if every check passed.
    Scratch<T> x(state, n * n_rhs);
    if (n_rhs > 0) {
        NGD_CUDA_CHECK(cudaMemcpy2DAsync(x.data(), sizeof(T) * n, rhs.data, sizeof(T) * rhs.ld,
                                         sizeof(T) * n, n_rhs, cudaMemcpyDeviceToDevice, stream));
        potrs<T>(state.solver(), state.solver_params(), n, n_rhs, g.data, g.ld, x.data(), n,
                 &status->potrs_info);
        NGD_LAUNCH(check_finite_kernel<T>, grid_for(n * n_rhs), kThreads, stream, x.data(),
                   n * n_rhs, &status->solution_nonfinite);
        NGD_LAUNCH(commit_solution_kernel<T>, grid_for(n * n_rhs), kThreads, stream, x.data(), n,
                   n * n_rhs, status, rhs.data, rhs.ld);
    }

    if (word != nullptr) {
        NGD_LAUNCH(encode_status_kernel, 1, 1, stream, status, word);
        return 0;
    }
    // The one synchronisation of the solve.
    auto* host = static_cast<SolveStatus*>(state.status_host);
    NGD_CUDA_CHECK(
        cudaMemcpyAsync(host, status, sizeof(SolveStatus), cudaMemcpyDeviceToHost, stream));
    synchronize_stream(stream);
    if (host->potrf_info < 0 || host->potrs_info < 0) {
        throw CusolverError(
            "ngd::cuda::cholesky_solve: cusolverDnXpotrf/Xpotrs rejected argument " +
                std::to_string(host->potrf_info < 0 ? -host->potrf_info : -host->potrs_info) +
                " (order " + std::to_string(n) + ", ld " + std::to_string(g.ld) + ", " +
                std::to_string(n_rhs) + " right-hand sides)",
            static_cast<int>(CUSOLVER_STATUS_INVALID_VALUE));
    }
    if (host->potrf_info > 0) return host->potrf_info;
    if (host->factor_nonfinite != 0 || host->solution_nonfinite != 0) return -1;
    return 0;
}

}  // namespace

template <class T>
std::int64_t cholesky_solve(Context& ctx, MatrixView<T> g, MatrixView<const T> shift,
                            MatrixView<T> rhs) {
    return cholesky_solve_to<T>(ctx, g, shift, rhs, nullptr);
}

template <class T>
void cholesky_solve_into(Context& ctx, MatrixView<T> g, MatrixView<const T> shift,
                         MatrixView<T> rhs, double* word) {
    cholesky_solve_to<T>(ctx, g, shift, rhs, word);
}

template void add_to_diagonal<float>(cudaStream_t, float*, std::int64_t, const float*,
                                     std::int64_t);
template void add_to_diagonal<double>(cudaStream_t, double*, std::int64_t, const double*,
                                      std::int64_t);
template void ensure_potrf_workspace<float>(CudaState&, std::int64_t, float*, std::int64_t);
template void ensure_potrf_workspace<double>(CudaState&, std::int64_t, double*, std::int64_t);
template std::int64_t cholesky_solve<float>(Context&, MatrixView<float>, MatrixView<const float>,
                                            MatrixView<float>);
template std::int64_t cholesky_solve<double>(Context&, MatrixView<double>, MatrixView<const double>,
                                             MatrixView<double>);
template void cholesky_solve_into<float>(Context&, MatrixView<float>, MatrixView<const float>,
                                         MatrixView<float>, double*);
template void cholesky_solve_into<double>(Context&, MatrixView<double>, MatrixView<const double>,
                                          MatrixView<double>, double*);

}  // namespace ngd::cuda
