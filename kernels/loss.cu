// CUDA loss factors (DESIGN.md section 1): one thread per sample computes e = M u, u, rho,
// diag(H^{-1}) and its loss term in double, from the same closed forms as src/reference/loss.cpp
// (logistic in log space through e^{-|m|}, softmax with a max shift and 1 - p_c summed from the
// other classes when p_c is near 1). Loss terms are reduced per block with CUB, then summed in a
// fixed order (deterministic).
#include <cstdint>
#include <cub/block/block_reduce.cuh>
#include <limits>

#include "common.cuh"
#include "stages.hpp"

namespace ngd::cuda {
namespace {

namespace cub = CUB_NS_QUALIFIER;

// Writes the block's sum of `term` to partials[blockIdx.x]; every thread of the block must call it.
__device__ void store_block_sum(double term, double* partials) {
    using Reduce = cub::BlockReduce<double, kThreads>;
    __shared__ typename Reduce::TempStorage storage;
    const double sum = Reduce(storage).Sum(term);
    if (threadIdx.x == 0) partials[blockIdx.x] = sum;
}

// One thread per sample: squared loss, e = u = rho = f - y, H^{-1} = 1, M_i = I (diagonal only: the
// factor was zeroed before the launch).
template <class T>
__global__ void squared_kernel(const T* __restrict__ f, std::int64_t ldf, const T* __restrict__ y,
                               std::int64_t ldy, std::int64_t k, std::int64_t n, T* gradient,
                               T* residual, T* natural, T* curvature_inverse, T* factor,
                               double* partials) {
    const std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x;
    double term = 0;
    if (i < n) {
        for (std::int64_t c = 0; c < k; ++c) {
            const double e = double(f[c + i * ldf]) - double(y[c + i * ldy]);
            term += 0.5 * e * e;
            const std::int64_t at = c + i * k;
            gradient[at] = T(e);
            residual[at] = T(e);
            natural[at] = T(e);
            curvature_inverse[at] = T(1);
            factor[c + (i * k + c) * k] = T(1);
        }
    }
    store_block_sum(term, partials);
}

// One thread per sample: logistic loss with s = 2y - 1, m = s f, t = e^{-|m|} (see loss.hpp).
template <class T>
__global__ void logistic_kernel(const T* __restrict__ f, std::int64_t ldf, const T* __restrict__ y,
                                std::int64_t ldy, std::int64_t n, T* gradient, T* residual,
                                T* natural, T* curvature_inverse, T* factor, double* partials) {
    const std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x;
    double term = 0;
    if (i < n) {
        const double s = double(y[i * ldy]) > 0.5 ? 1.0 : -1.0;
        const double m = s * double(f[i * ldf]);
        const double abs_m = fabs(m);
        const double t = exp(-abs_m);
        // l = log(1 + e^{-m}) = max(-m, 0) + log1p(e^{-|m|}).
        term = (m < 0 ? -m : 0.0) + log1p(t);
        const double sigma_neg = m >= 0 ? t / (1.0 + t) : 1.0 / (1.0 + t);
        gradient[i] = T(-s * sigma_neg);
        factor[i] = T(exp(-0.5 * abs_m) / (1.0 + t));
        residual[i] = T(-s * exp(-0.5 * m));
        natural[i] = T(-s * (1.0 + exp(-m)));
        curvature_inverse[i] = T(exp(abs_m) + 2.0 + t);
    }
    store_block_sum(term, partials);
}

// One thread per sample: softmax cross-entropy; writes e, u, lse_i and 1 - p_c (k x n, double) for
// the factor kernel.
template <class T>
__global__ void softmax_kernel(const T* __restrict__ f, std::int64_t ldf, const T* __restrict__ y,
                               std::int64_t ldy, std::int64_t k, std::int64_t n, T* gradient,
                               T* residual, double* lse_out, double* one_minus_p,
                               double* partials) {
    const std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x;
    double term = 0;
    if (i < n) {
        const T* fi = f + i * ldf;
        const auto label = static_cast<std::int64_t>(y[i * ldy]);
        double f_max = -INFINITY;
        for (std::int64_t c = 0; c < k; ++c) f_max = fmax(f_max, double(fi[c]));
        double sum = 0;
        for (std::int64_t c = 0; c < k; ++c) sum += exp(double(fi[c]) - f_max);
        const double lse = f_max + log(sum);
        lse_out[i] = lse;
        term = lse - double(fi[label]);
        for (std::int64_t c = 0; c < k; ++c) {
            const double log_p = double(fi[c]) - lse;
            const double p = exp(log_p);
            double rest = 1.0 - p;
            if (p > 0.5) {
                // Only one class can be here: 1 - p_c as the sum of the others, without
                // cancellation.
                rest = 0;
                for (std::int64_t o = 0; o < k; ++o) {
                    if (o != c) rest += exp(double(fi[o]) - lse);
                }
            }
            one_minus_p[c + i * k] = rest;
            gradient[c + i * k] = T(c == label ? -rest : p);
            residual[c + i * k] = T(c == label ? -rest / exp(0.5 * log_p) : exp(0.5 * log_p));
        }
    }
    store_block_sum(term, partials);
}

// One thread per entry (a, i k + b) of the factor (k x kn):
// M_i[a, b] = [a == b] sqrt(p_a) (1 - p_a) - [a != b] p_a sqrt(p_b).
template <class T>
__global__ void softmax_factor_kernel(const T* __restrict__ f, std::int64_t ldf,
                                      const double* __restrict__ lse,
                                      const double* __restrict__ one_minus_p, std::int64_t k,
                                      std::int64_t count, T* __restrict__ factor) {
    for (std::int64_t e = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; e < count;
         e += std::int64_t(gridDim.x) * blockDim.x) {
        const std::int64_t a = e % k;
        const std::int64_t col = e / k;
        const std::int64_t i = col / k;
        const std::int64_t b = col % k;
        const double log_p_a = double(f[a + i * ldf]) - lse[i];
        double value;
        if (a == b) {
            value = exp(0.5 * log_p_a) * one_minus_p[a + i * k];
        } else {
            value = -exp(log_p_a) * exp(0.5 * (double(f[b + i * ldf]) - lse[i]));
        }
        factor[e] = T(value);
    }
}

}  // namespace

// loss_factors, with the value read back (word null: synchronises) or finished into *word.
template <class T>
void loss_factors_to(Context& ctx, Loss loss, MatrixView<const T> f, MatrixView<const T> y,
                     LossFactors<T>& out, double* word) {
    // f: k x n; y: k x n (squared) or 1 x n. Factor members as in src/reference/loss.cpp.
    Stage stage(ctx);
    const std::int64_t k = f.rows, n = f.cols;
    const cudaStream_t stream = stage.stream();
    const unsigned int blocks = static_cast<unsigned int>((n + kThreads - 1) / kThreads);
    Scratch<double> partials(stage.state, blocks);
    switch (loss) {
        case Loss::squared: {
            ensure_shape(out.gradient, k, n);
            ensure_shape(out.residual, k, n);
            ensure_shape(out.natural_residual, k, n);
            ensure_shape(out.curvature_inverse, k, n);
            ensure_shape(out.factor, k, k * n);
            if (n == 0) break;
            NGD_CUDA_CHECK(cudaMemsetAsync(
                out.factor.data(), 0, sizeof(T) * static_cast<std::size_t>(k * k * n), stream));
            NGD_LAUNCH(squared_kernel<T>, blocks, kThreads, stream, f.data, f.ld, y.data, y.ld, k,
                       n, out.gradient.data(), out.residual.data(), out.natural_residual.data(),
                       out.curvature_inverse.data(), out.factor.data(), partials.data());
            break;
        }
        case Loss::logistic: {
            ensure_shape(out.gradient, 1, n);
            ensure_shape(out.residual, 1, n);
            ensure_shape(out.natural_residual, 1, n);
            ensure_shape(out.curvature_inverse, 1, n);
            ensure_shape(out.factor, 1, n);
            NGD_LAUNCH(logistic_kernel<T>, blocks, kThreads, stream, f.data, f.ld, y.data, y.ld, n,
                       out.gradient.data(), out.residual.data(), out.natural_residual.data(),
                       out.curvature_inverse.data(), out.factor.data(), partials.data());
            break;
        }
        case Loss::softmax_cross_entropy: {
            ensure_shape(out.gradient, k, n);
            ensure_shape(out.residual, k, n);
            ensure_shape(out.factor, k, k * n);
            out.natural_residual = Matrix<T>();
            out.curvature_inverse = Matrix<T>();
            if (n == 0) break;
            Scratch<double> lse(stage.state, n);
            Scratch<double> one_minus_p(stage.state, k * n);
            NGD_LAUNCH(softmax_kernel<T>, blocks, kThreads, stream, f.data, f.ld, y.data, y.ld, k,
                       n, out.gradient.data(), out.residual.data(), lse.data(), one_minus_p.data(),
                       partials.data());
            NGD_LAUNCH(softmax_factor_kernel<T>, grid_for(k * k * n), kThreads, stream, f.data,
                       f.ld, lse.data(), one_minus_p.data(), k, k * k * n, out.factor.data());
            break;
        }
    }
    if (word == nullptr) {
        out.value = n > 0 ? finish_sum(stage.state, partials.data(), blocks) / double(n) : 0.0;
        return;
    }
    out.value = std::numeric_limits<double>::quiet_NaN();  // in *word once the block is read
    if (n > 0) {
        finish_sum_into(stage.state, partials.data(), blocks, word, double(n));
    } else {
        NGD_CUDA_CHECK(cudaMemsetAsync(word, 0, sizeof(double), stream));
    }
}

template <class T>
void loss_factors(Context& ctx, Loss loss, MatrixView<const T> f, MatrixView<const T> y,
                  LossFactors<T>& out) {
    loss_factors_to<T>(ctx, loss, f, y, out, nullptr);
}

template <class T>
void loss_factors_into(Context& ctx, Loss loss, MatrixView<const T> f, MatrixView<const T> y,
                       LossFactors<T>& out, double* word) {
    loss_factors_to<T>(ctx, loss, f, y, out, word);
}

template void loss_factors<float>(Context&, Loss, MatrixView<const float>, MatrixView<const float>,
                                  LossFactors<float>&);
template void loss_factors<double>(Context&, Loss, MatrixView<const double>,
                                   MatrixView<const double>, LossFactors<double>&);
template void loss_factors_into<float>(Context&, Loss, MatrixView<const float>,
                                       MatrixView<const float>, LossFactors<float>&, double*);
template void loss_factors_into<double>(Context&, Loss, MatrixView<const double>,
                                        MatrixView<const double>, LossFactors<double>&, double*);

}  // namespace ngd::cuda
