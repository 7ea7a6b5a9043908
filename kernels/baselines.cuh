// Yardsticks for the benchmarks and tests (private; not installed): the same products computed with
// plain cuBLAS/cuSOLVER calls, so the custom kernels can be timed against, and checked with, what
// the vendor libraries give. Host-compilable (no CUDA headers); include with src/ on the path.
#pragma once

#include <cstdint>
#include <vector>

#include "ngd/context.hpp"
#include "ngd/export.hpp"
#include "ngd/matrix.hpp"
#include "ngd/model.hpp"
#include "stages.hpp"

namespace ngd::cuda::baseline {

/// Whether the double-precision Gram tiles of `ctx` (structured Gram and syrk_lower) use FP64
/// tensor cores (the default on sm_80+) or CUDA-core FMAs, so both kernels can be checked and
/// timed.
NGD_API void set_double_tensor_cores(Context& ctx, bool on);

/// Lower triangle of g <- beta g + op(a) op(a)^T by cublas<t>syrk_64: a is N x w, or w x N with
/// `transpose` (then g = beta g + a^T a: the product the structured Gram fuses, at cuBLAS's rate).
template <class T>
NGD_API void syrk_lower_cublas(Context& ctx, MatrixView<const T> a, bool transpose, T beta,
                               MatrixView<T> g);

/// The structured Gram (lower triangle) from vendor calls only: per trainable layer S_l by syrk and
/// Delta_l^T Delta_l by syrk into an N x N scratch, then an elementwise multiply-accumulate. Needs
/// N^2 extra memory; the fused kernel of gram_structured does not.
template <class T>
NGD_API void gram_structured_cublas(Context& ctx, const Mlp& model, MatrixView<const T> x,
                                    const ForwardState<T>& state,
                                    const std::vector<Matrix<T>>& seeds, MatrixView<T> g);

/// Bare cusolverDnXpotrf + Xpotrs (lower) with the context's cached workspace: no shift, no checks.
/// Returns potrf's info. Synchronises (to read info).
template <class T>
NGD_API std::int64_t cholesky_solve_bare(Context& ctx, MatrixView<T> g, MatrixView<T> rhs);

}  // namespace ngd::cuda::baseline
