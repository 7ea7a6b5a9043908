// The cuBLAS route for one layer's term of the structured Gram, and the rule that picks it.
//
//   G[(i,c),(j,c')] += (S_l[i,j] + b^2) D[(i,c),(j,c')],   D = Delta_l^T Delta_l   (N x N)
//
// D is never held whole: the lower triangle is cut into column panels of w columns (w from
// CudaState::gram_panel_bytes, so the temporary is at most N w entries however large N is); per
// panel the diagonal block comes from one syrk and the rows below it from one GEMM, then one
// memory-bound pass multiplies by S_l (expanded over the k x k blocks of a sample pair) and
// accumulates into G. Cost per layer: the GEMM-rate N^2 d_l / 2 multiply-adds, plus one write and
// one read of D (N^2 / 2 entries) that the fused tile kernel does not have.
//
// The rule (gram_route_uses_cublas): the cuBLAS route when the seed depth d_l is at least
// CudaState::gram_cublas_min_depth (256 by default) and N is at least one panel of 256 rows; the
// fused tile kernel otherwise. Why: per entry of G the route adds 16 bytes of traffic (D written
// and read), which at about 4.8 TB/s costs what d_l multiply-adds cost at a rate gap of
// 1/R_fused - 1/R_gemm; with R_gemm about 55 TFLOP/s (FP64 DGEMM on an H200) and the fused kernel
// estimated at 20-35, the break-even sits at d_l of about 60-150, so 256 leaves the route a margin
// where it is taken, and narrow layers (d_l below a few hundred, where GEMM is also at its least
// efficient) stay fused. The first GPU run measures the crossover (bench: cuda/gram_route) and
// sets the default from it. Overrides: NGD_GRAM_ROUTE = auto | fused | cublas and
// NGD_GRAM_CUBLAS_MIN_DEPTH, read once when a context is made, or the setters of baselines.cuh.
#include <algorithm>
#include <cstdint>

#include "baselines.cuh"
#include "common.cuh"
#include "gram_route.cuh"

namespace ngd::cuda {
namespace {

// Smallest N for the cuBLAS route: below one 256-row panel the GEMM is too small to win.
constexpr std::int64_t kMinRowsForCublas = 256;
// Panel widths are multiples of this (GEMM tile friendly) and at least this.
constexpr std::int64_t kPanelQuantum = 64;

// One thread per row r of the panel (x; rows c0 .. N - 1), columns c0 .. c0 + w - 1 over y
// (grid-stride); lower entries only: G[r, c] = beta G[r, c] + (S[r/k, c/k] + s_offset) D[r, c],
// D held as the panel (r - c0, c - c0) with leading dimension ldd. beta = 0 ignores G's old value.
template <class T>
__global__ void hadamard_panel_kernel(const T* __restrict__ d, std::int64_t ldd, std::int64_t c0,
                                      std::int64_t width, std::int64_t n_rows,
                                      const T* __restrict__ s, std::int64_t lds, T s_offset,
                                      std::uint32_t k, T beta, T* __restrict__ g,
                                      std::int64_t ldg) {
    const std::int64_t r = c0 + blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x;
    if (r >= n_rows) return;
    const std::uint32_t si = static_cast<std::uint32_t>(r) / k;
    const std::int64_t c_end = std::min(c0 + width - 1, r);  // lower triangle: c <= r
    for (std::int64_t c = c0 + blockIdx.y; c <= c_end; c += gridDim.y) {
        const std::uint32_t sj = static_cast<std::uint32_t>(c) / k;
        const T value = (__ldg(s + si + std::int64_t(sj) * lds) + s_offset) *
                        __ldg(d + (r - c0) + (c - c0) * ldd);
        T* out = g + r + c * ldg;
        *out = beta == T(0) ? value : beta * *out + value;
    }
}

}  // namespace

bool gram_route_uses_cublas(int route, std::int64_t min_depth, std::int64_t depth,
                            std::int64_t n_rows) {
    using Route = CudaState::GramRoute;
    if (route == static_cast<int>(Route::fused)) return false;
    if (route == static_cast<int>(Route::cublas)) return true;
    return depth >= min_depth && n_rows >= kMinRowsForCublas;
}

bool gram_layer_uses_cublas(const CudaState& state, std::int64_t depth, std::int64_t n_rows) {
    return gram_route_uses_cublas(static_cast<int>(state.gram_route), state.gram_cublas_min_depth,
                                  depth, n_rows);
}

std::int64_t gram_panel_width(const CudaState& state, std::int64_t n_rows, std::size_t type_size) {
    const auto per_column =
        static_cast<std::int64_t>(type_size) * std::max<std::int64_t>(n_rows, 1);
    std::int64_t w = static_cast<std::int64_t>(state.gram_panel_bytes) / per_column;
    w = std::max<std::int64_t>(w / kPanelQuantum * kPanelQuantum, kPanelQuantum);
    return std::min(w, n_rows);
}

template <class T>
void gram_layer_cublas(CudaState& state, const T* seeds, std::int64_t depth, std::int64_t n_rows,
                       const T* s, std::int64_t lds, T s_offset, std::int64_t k, T beta, T* g,
                       std::int64_t ldg) {
    // seeds: depth x N (column (i, c) = Delta_l[:, (i, c)]); s: n x n (lower triangle read at
    // S[i, j], i >= j); g: N x N, lower triangle updated.
    const std::int64_t width = gram_panel_width(state, n_rows, sizeof(T));
    Scratch<T> panel(state, n_rows * width);
    cublasHandle_t h = state.blas();
    for (std::int64_t c0 = 0; c0 < n_rows; c0 += width) {
        const std::int64_t w = std::min(width, n_rows - c0), m = n_rows - c0;
        const T* left = seeds + c0 * depth;
        // Diagonal block (w x w, lower) by syrk; the m - w rows below it by one GEMM.
        syrk(h, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_T, w, depth, T(1), left, depth, T(0),
             panel.data(), m);
        if (m > w) {
            gemm(h, CUBLAS_OP_T, CUBLAS_OP_N, m - w, w, depth, T(1), seeds + (c0 + w) * depth,
                 depth, left, depth, T(0), panel.data() + w, m);
        }
        const dim3 grid(static_cast<unsigned int>((m + kThreads - 1) / kThreads),
                        static_cast<unsigned int>(std::min<std::int64_t>(w, 65535)));
        NGD_LAUNCH(hadamard_panel_kernel<T>, grid, kThreads, state.stream,
                   static_cast<const T*>(panel.data()), m, c0, w, n_rows, s, lds, s_offset,
                   static_cast<std::uint32_t>(k), beta, g, ldg);
    }
}

template void gram_layer_cublas<float>(CudaState&, const float*, std::int64_t, std::int64_t,
                                       const float*, std::int64_t, float, std::int64_t, float,
                                       float*, std::int64_t);
template void gram_layer_cublas<double>(CudaState&, const double*, std::int64_t, std::int64_t,
                                        const double*, std::int64_t, double, std::int64_t, double,
                                        double*, std::int64_t);

}  // namespace ngd::cuda

namespace ngd::cuda::baseline {

void set_gram_route(Context& ctx, GramRouteSetting route) {
    using Route = CudaState::GramRoute;
    CudaState& state = *ctx.cuda_state();
    switch (route) {
        case GramRouteSetting::automatic:
            state.gram_route = Route::automatic;
            return;
        case GramRouteSetting::fused:
            state.gram_route = Route::fused;
            return;
        case GramRouteSetting::cublas:
            state.gram_route = Route::cublas;
            return;
    }
}

void set_gram_cublas_min_depth(Context& ctx, std::int64_t depth) {
    ctx.cuda_state()->gram_cublas_min_depth = depth;
}

void set_gram_panel_bytes(Context& ctx, std::size_t bytes) {
    ctx.cuda_state()->gram_panel_bytes = bytes;
}

void set_float_tf32(Context& ctx, bool on) { ctx.cuda_state()->float_tf32 = on; }

bool gram_rule_uses_cublas(GramRouteSetting route, std::int64_t min_depth, std::int64_t depth,
                           std::int64_t n_rows) {
    const auto r = route == GramRouteSetting::fused    ? CudaState::GramRoute::fused
                   : route == GramRouteSetting::cublas ? CudaState::GramRoute::cublas
                                                       : CudaState::GramRoute::automatic;
    return gram_route_uses_cublas(static_cast<int>(r), min_depth, depth, n_rows);
}

bool gram_layer_uses_cublas(Context& ctx, std::int64_t depth, std::int64_t n_rows) {
    return cuda::gram_layer_uses_cublas(*ctx.cuda_state(), depth, n_rows);
}

DebugCounters debug_counters() {
    const Counters c = counters();
    DebugCounters out;
    out.host_syncs = c.host_syncs;
    out.device_allocations = c.device_allocations;
    out.memory_releases = c.memory_releases;
    out.gram_layers_fused = c.gram_layers_fused;
    out.gram_layers_cublas = c.gram_layers_cublas;
    return out;
}

}  // namespace ngd::cuda::baseline
