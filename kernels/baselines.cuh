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

/// How the structured Gram computes each layer's term (kernels/gram_route.cu has the rule):
/// the per-layer rule, always the fused tile kernel, or always the cuBLAS route.
enum class GramRouteSetting { automatic, fused, cublas };
NGD_API void set_gram_route(Context& ctx, GramRouteSetting route);
/// The rule's threshold on the seed depth d_l (default 256).
NGD_API void set_gram_cublas_min_depth(Context& ctx, std::int64_t depth);
/// Bound on the cuBLAS route's panel temporary (default 512 MiB); small values force many panels.
NGD_API void set_gram_panel_bytes(Context& ctx, std::size_t bytes);
/// float Gram products on TF32 tensor cores (opt-in; off by default).
NGD_API void set_float_tf32(Context& ctx, bool on);
/// The rule itself, without a device: whether a layer of seed depth `depth` in an N = n_rows Gram
/// takes the cuBLAS route under `route` and threshold `min_depth`.
NGD_API bool gram_rule_uses_cublas(GramRouteSetting route, std::int64_t min_depth,
                                   std::int64_t depth, std::int64_t n_rows);
/// The rule as ctx would apply it now.
NGD_API bool gram_layer_uses_cublas(Context& ctx, std::int64_t depth, std::int64_t n_rows);

/// Process-wide debug counters of the CUDA backend (monotone; take differences): host
/// synchronisations, device allocations that reached the driver (cudaMalloc or the pool growing),
/// releases of cached memory after a failed allocation, and structured-Gram layers per route.
struct DebugCounters {
    std::int64_t host_syncs = 0;
    std::int64_t device_allocations = 0;
    std::int64_t memory_releases = 0;
    std::int64_t gram_layers_fused = 0;
    std::int64_t gram_layers_cublas = 0;
};
NGD_API DebugCounters debug_counters();

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

/// gram_structured_cublas on a batch, end to end (forward, seeds, the vendor Gram, both
/// triangles), for the tests: the plain Gram J J^T (M = I), N x N in device memory.
template <class T>
NGD_API Matrix<T> gram_structured_vendor(Context& ctx, const Mlp& model, MatrixView<const T> theta,
                                         MatrixView<const T> x, MatrixView<const T> rows);

/// Bare cusolverDnXpotrf + Xpotrs (lower) with the context's cached workspace: no shift, no checks.
/// Returns potrf's info. Synchronises (to read info).
template <class T>
NGD_API std::int64_t cholesky_solve_bare(Context& ctx, MatrixView<T> g, MatrixView<T> rhs);

}  // namespace ngd::cuda::baseline
