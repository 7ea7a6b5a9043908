// CUDA mixed-precision solve stages (mirror src/reference/mixed_solve.cpp): K = g + diag(shift)
// rounded to float into a copy by one kernel, cusolverDnXpotrf in float on it, Xpotrs in float for
// each correction (the double residuals are the backend's cublasDsymv and vector stages, called
// from src/mixed_solve.cpp), and ||K||_F by a deterministic block reduction. On sm_80+,
// FactorArithmetic::tf32 factors blocked and right-looking: float Xpotrf per diagonal block,
// cublasStrsm for the panel, and the trailing update as cublasGemmEx calls on TF32 tensor cores
// (docs/performance.md, "Mixed-precision solve"). Compile-checked; not yet run on a device.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cub/block/block_reduce.cuh>
#include <string>

#include "common.cuh"
#include "ngd/error.hpp"
#include "stages.hpp"

namespace ngd::cuda {
namespace {

// CUB lives in a wrapped namespace (THRUST_CUB_WRAPPED_NAMESPACE), as in dense.cu.
namespace cub = CUB_NS_QUALIFIER;

constexpr std::int64_t kMaxNormBlocks = 1024;

// Status words of cholesky_factor_float in state.status_device.
struct FactorStatus {
    int potrf_info;
    int factor_nonfinite;
};

// One block per column j (grid-stride over columns), threads over its rows i >= j: the block's
// sum of k_jj^2 + 2 sum_{i > j} g_ij^2 in double into partials[block].
template <class T>
__global__ void frobenius_partials_kernel(const T* __restrict__ g, std::int64_t ldg,
                                          const T* __restrict__ shift, std::int64_t n,
                                          double* __restrict__ partials) {
    double sum = 0;
    for (std::int64_t j = blockIdx.x; j < n; j += gridDim.x) {
        const T* col = g + j * ldg;
        for (std::int64_t i = j + threadIdx.x; i < n; i += blockDim.x) {
            if (i == j) {
                const double d = double(col[j]) + (shift != nullptr ? double(shift[j]) : 0.0);
                sum += d * d;
            } else {
                sum += 2.0 * double(col[i]) * double(col[i]);
            }
        }
    }
    using Reduce = cub::BlockReduce<double, kThreads>;
    __shared__ typename Reduce::TempStorage storage;
    const double block_sum = Reduce(storage).Sum(sum);
    if (threadIdx.x == 0) partials[blockIdx.x] = block_sum;
}

// One thread per row i (x, grid-stride) of column j (y, grid-stride), lower triangle only:
// l_ij = float(g_ij + [i == j] shift_j).
__global__ void round_to_float_kernel(const double* __restrict__ g, std::int64_t ldg,
                                      const double* __restrict__ shift, std::int64_t n,
                                      float* __restrict__ l, std::int64_t ldl) {
    for (std::int64_t j = blockIdx.y; j < n; j += gridDim.y) {
        for (std::int64_t i = j + blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
             i += std::int64_t(gridDim.x) * blockDim.x) {
            const double s = (i == j && shift != nullptr) ? shift[j] : 0.0;
            l[i + j * ldl] = float(g[i + j * ldg] + s);
        }
    }
}

// One thread per diagonal entry of L (grid-stride): raises *flag when one is NaN/Inf (a NaN
// anywhere in the factor reaches the diagonal of its row through the sum of squares).
__global__ void check_float_diagonal_kernel(const float* __restrict__ l, std::int64_t ldl,
                                            std::int64_t n, int* flag) {
    for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
         i += std::int64_t(gridDim.x) * blockDim.x) {
        if (!isfinite(l[i + i * ldl])) *flag = 1;
    }
}

// One thread per entry (grid-stride): y = float(x).
__global__ void narrow_kernel(const double* __restrict__ x, std::int64_t n, float* __restrict__ y) {
    for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
         i += std::int64_t(gridDim.x) * blockDim.x) {
        y[i] = float(x[i]);
    }
}

// One thread per entry (grid-stride): x = double(y).
__global__ void widen_kernel(const float* __restrict__ y, std::int64_t n, double* __restrict__ x) {
    for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
         i += std::int64_t(gridDim.x) * blockDim.x) {
        x[i] = double(y[i]);
    }
}

// The TF32 blocked factorization (FactorArithmetic::tf32, the reference's algorithm): for each
// block column of width nb = tf32_block_width(n), float potrf of the diagonal block (its info into
// infos[block]), the panel below it by cublasStrsm (float), and the trailing matrix updated one
// block column at a time by cublasGemmEx with CUBLAS_COMPUTE_32F_FAST_TF32 (operands rounded to
// TF32 by the tensor cores, float accumulation): C[j0:, j0:j0+jw] -= P[j0:, :] P[j0:j0+jw, :]^T.
// Each GEMM also writes the strict upper triangle of its diagonal block, which no one reads.
// Nothing is read back here: a failed block leaves garbage below it, and the caller takes the
// first nonzero info in block order.
void factor_tf32(CudaState& state, std::int64_t n, float* l, std::int64_t ldl, int* infos) {
    const std::int64_t nb = tf32_block_width(n);
    const cublasHandle_t blas = state.blas();
    const float one = 1.0f, minus_one = -1.0f;
    for (std::int64_t b0 = 0, block = 0; b0 < n; b0 += nb, ++block) {
        const std::int64_t b1 = std::min(n, b0 + nb), w = b1 - b0, rest = n - b1;
        float* diag = l + b0 + b0 * ldl;
        ensure_potrf_workspace<float>(state, w, diag, ldl);
        potrf<float>(state.solver(), state.solver_params(), w, diag, ldl, state.potrf_device,
                     state.potrf_need_device,
                     state.potrf_host.empty() ? nullptr : state.potrf_host.data(),
                     state.potrf_need_host, infos + block);
        if (rest == 0) break;
        float* panel = l + b1 + b0 * ldl;
        // L21 = K21 L11^{-T}, in float.
        NGD_CUBLAS_CHECK(cublasStrsm_64(blas, CUBLAS_SIDE_RIGHT, CUBLAS_FILL_MODE_LOWER,
                                        CUBLAS_OP_T, CUBLAS_DIAG_NON_UNIT, rest, w, &one, diag, ldl,
                                        panel, ldl));
        for (std::int64_t j0 = b1; j0 < n; j0 += nb) {
            const std::int64_t jw = std::min(nb, n - j0), rows = n - j0;
            const float* a = l + j0 + b0 * ldl;  // P[j0:, :], rows x w
            float* c = l + j0 + j0 * ldl;        // C[j0:, j0:j0+jw], rows x jw
            NGD_CUBLAS_CHECK(cublasGemmEx_64(blas, CUBLAS_OP_N, CUBLAS_OP_T, rows, jw, w,
                                             &minus_one, a, CUDA_R_32F, ldl, a, CUDA_R_32F, ldl,
                                             &one, c, CUDA_R_32F, ldl, CUBLAS_COMPUTE_32F_FAST_TF32,
                                             CUBLAS_GEMM_DEFAULT));
        }
    }
}

// One thread: status->potrf_info = the first nonzero info of the blocks, offset to the order of
// the whole matrix (b0 = block nb), as one potrf of the whole matrix would report it.
__global__ void first_block_info_kernel(const int* __restrict__ infos, std::int64_t blocks,
                                        std::int64_t nb, FactorStatus* status) {
    for (std::int64_t b = 0; b < blocks; ++b) {
        if (infos[b] != 0) {
            status->potrf_info = infos[b] < 0 ? infos[b] : static_cast<int>(b * nb + infos[b]);
            return;
        }
    }
}

}  // namespace

template <class T>
double frobenius_norm_lower(Context& ctx, MatrixView<const T> g, MatrixView<const T> shift) {
    // g: N x N (lower triangle read); shift: N x 1 or empty. Synchronises (finish_sum).
    const std::int64_t n = g.rows;
    if (n == 0) return 0.0;
    Stage stage(ctx);
    const std::int64_t blocks = std::min<std::int64_t>(n, kMaxNormBlocks);
    Scratch<double> partials(stage.state, blocks);
    NGD_LAUNCH(frobenius_partials_kernel<T>, static_cast<unsigned int>(blocks), kThreads,
               stage.stream(), g.data, g.ld, shift.empty() ? nullptr : shift.data, n,
               partials.data());
    return std::sqrt(finish_sum(stage.state, partials.data(), blocks));
}

template <class T>
void frobenius_norm_lower_into(Context& ctx, MatrixView<const T> g, MatrixView<const T> shift,
                               double* word) {
    // As frobenius_norm_lower, with the square root of the sum taken into *word on the device.
    Stage stage(ctx);
    const std::int64_t n = g.rows;
    if (n == 0) {
        NGD_CUDA_CHECK(cudaMemsetAsync(word, 0, sizeof(double), stage.stream()));
        return;
    }
    const std::int64_t blocks = std::min<std::int64_t>(n, kMaxNormBlocks);
    Scratch<double> partials(stage.state, blocks);
    NGD_LAUNCH(frobenius_partials_kernel<T>, static_cast<unsigned int>(blocks), kThreads,
               stage.stream(), g.data, g.ld, shift.empty() ? nullptr : shift.data, n,
               partials.data());
    finish_sum_into(stage.state, partials.data(), blocks, word, 1.0, true);
}

std::int64_t cholesky_factor_float(Context& ctx, MatrixView<const double> g,
                                   MatrixView<const double> shift, MatrixView<float> l,
                                   double* norm, FactorArithmetic* arithmetic) {
    // g: N x N double (lower read); shift: N x 1; l: N x N float (lower written) -> L.
    Stage stage(ctx);
    CudaState& state = stage.state;
    const cudaStream_t stream = stage.stream();
    const std::int64_t n = g.rows;
    *norm = 0;
    if (n == 0) return 0;
    // ||K||_F first (a second read of g's lower triangle, a few percent of the factorization's
    // time at the sizes where mixed precision pays; it synchronises, before the factorization is
    // queued).
    *norm = frobenius_norm_lower<double>(ctx, g, shift);
    auto* status = static_cast<FactorStatus*>(state.status_device);
    NGD_CUDA_CHECK(cudaMemsetAsync(status, 0, sizeof(FactorStatus), stream));

    // l = float(g + diag(shift)): the one rounding of K.
    const dim3 grid(grid_for(n), static_cast<unsigned int>(std::min<std::int64_t>(n, 65535)));
    NGD_LAUNCH(round_to_float_kernel, grid, kThreads, stream, g.data, g.ld,
               shift.empty() ? nullptr : shift.data, n, l.data, l.ld);
    // TF32 tensor cores exist from sm_80 on; below, the float32 factor (the caller reports it).
    if (*arithmetic == FactorArithmetic::tf32 && state.cc_major < 8) {
        *arithmetic = FactorArithmetic::float32;
    }
    if (*arithmetic == FactorArithmetic::tf32) {
        const std::int64_t nb = tf32_block_width(n), blocks = (n + nb - 1) / nb;
        Scratch<int> infos(state, blocks);
        NGD_CUDA_CHECK(cudaMemsetAsync(infos.data(), 0, sizeof(int) * blocks, stream));
        factor_tf32(state, n, l.data, l.ld, infos.data());
        NGD_LAUNCH(first_block_info_kernel, 1, 1, stream, infos.data(), blocks, nb, status);
    } else {
        // L L^T = l in float (cuSOLVER's 64-bit API; the workspace cache is shared with the
        // working solve and re-queried when the type changes).
        ensure_potrf_workspace<float>(state, n, l.data, l.ld);
        potrf<float>(state.solver(), state.solver_params(), n, l.data, l.ld, state.potrf_device,
                     state.potrf_need_device,
                     state.potrf_host.empty() ? nullptr : state.potrf_host.data(),
                     state.potrf_need_host, &status->potrf_info);
    }
    NGD_LAUNCH(check_float_diagonal_kernel, grid_for(n), kThreads, stream, l.data, l.ld, n,
               &status->factor_nonfinite);

    auto* host = static_cast<FactorStatus*>(state.status_host);
    NGD_CUDA_CHECK(
        cudaMemcpyAsync(host, status, sizeof(FactorStatus), cudaMemcpyDeviceToHost, stream));
    NGD_CUDA_CHECK(cudaStreamSynchronize(stream));
    if (host->potrf_info < 0) {
        throw CusolverError(
            "ngd::cuda::cholesky_factor_float: cusolverDnXpotrf rejected argument " +
                std::to_string(-host->potrf_info) + " (order " + std::to_string(n) + ", ld " +
                std::to_string(l.ld) + ")",
            static_cast<int>(CUSOLVER_STATUS_INVALID_VALUE));
    }
    if (host->potrf_info > 0) return host->potrf_info;
    return host->factor_nonfinite != 0 ? -1 : 0;
}

void cholesky_apply_float(Context& ctx, MatrixView<const float> l, double* x, float* work) {
    // l: N x N float lower factor; x: N double (in: b, out: (L L^T)^{-1} b); work: N float.
    // Does not synchronise: potrs's info (< 0 only for arguments the caller has checked) is
    // written to scratch and not read.
    Stage stage(ctx);
    const cudaStream_t stream = stage.stream();
    const std::int64_t n = l.rows;
    if (n == 0) return;
    Scratch<int> info(stage.state, 1);
    NGD_LAUNCH(narrow_kernel, grid_for(n), kThreads, stream, x, n, work);
    potrs<float>(stage.state.solver(), stage.state.solver_params(), n, 1, l.data, l.ld, work, n,
                 info.data());
    NGD_LAUNCH(widen_kernel, grid_for(n), kThreads, stream, work, n, x);
}

template double frobenius_norm_lower<float>(Context&, MatrixView<const float>,
                                            MatrixView<const float>);
template double frobenius_norm_lower<double>(Context&, MatrixView<const double>,
                                             MatrixView<const double>);
template void frobenius_norm_lower_into<float>(Context&, MatrixView<const float>,
                                               MatrixView<const float>, double*);
template void frobenius_norm_lower_into<double>(Context&, MatrixView<const double>,
                                                MatrixView<const double>, double*);

}  // namespace ngd::cuda
