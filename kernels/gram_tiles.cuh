// The lower-triangle tile kernels behind the structured Gram and syrk_lower (included by gram.cu
// only): G[r, c] = beta G[r, c] + scale(r, c) (a[r, :] . a[c, :]) for r >= c, one block per tile on
// or below the diagonal. Two inner products: CUDA-core FMAs with a register sub-tile per thread
// (float, and double before sm_80), and FP64 tensor cores (mma.sync m8n8k4 through inline PTX,
// sm_80+; m16n8k4 on sm_90 when built with NGD_DMMA_M16) for double.
//
// Cost of the structured Gram per layer: N^2 d_l / 2 multiply-adds here plus n^2 d_{l-1} / 2 in the
// syrk for S_l, instead of N^2 d_l d_{l-1} / 2 for A A^T through J. Traffic: each tile streams two
// kTile x d_l operand panels (the seeds, d_l N entries, stay L2-resident for moderate N), i.e.
// d_l N^2 / kTile loads in all, and reads and writes its part of G once per layer (N^2 / 2
// entries); S_l (n^2) is read once per entry of G, each entry reused by the k^2 entries of a sample
// pair.
#pragma once

#include <cstdint>

#include "common.cuh"

namespace ngd::cuda {
namespace {

// A tile is kTile x kTile entries of G per block of 256 threads; CUDA-core path: 16 x 16 threads,
// each a kMicro x kMicro register sub-tile at stride 16 (rows tr + 16 m, columns tc + 16 q).
// Operands are staged through shared memory kChunk depths at a time, in rows of kRow (padded) so
// that the depth-contiguous stores hit distinct banks. kMinBlocks resident blocks per SM cap the
// registers (about 80 for double, 128 for float: the accumulators plus the prefetched chunk).
template <class T>
struct TileShape;
template <>
struct TileShape<double> {
    static constexpr int kTile = 64, kMicro = 4, kChunk = 16, kRow = 65, kMinBlocks = 3;
};
template <>
struct TileShape<float> {
    static constexpr int kTile = 128, kMicro = 8, kChunk = 16, kRow = 130, kMinBlocks = 2;
};
constexpr int kSide = 16;
constexpr int kTileThreads = kSide * kSide;
// Tensor-core path (double): shared rows of 68 doubles. 68 = 4 (mod 16) makes both the fragment
// loads (lane -> depth tig, row gid: 4 tig + gid) and the swizzled chunk stores below hit 16
// distinct 8-byte banks per half-warp; 8 warps as 4 x 2, each a 16 x 32 region of 1 x 4 m16n8
// accumulators.
constexpr int kDmmaRow = 68;

// Which entries of an operand chunk (rows [row0, row0 + kTile) x depths [t0, t0 + kChunk)) thread
// x loads: load q is depth kk0 + q kStepK, row rr0 + q kStepR.
// kDepthContiguous: element (t, row) at a[t + row * lda] (seeds, d_l x N). Plain map: 16
// consecutive threads read 16 consecutive depths of one row; with kSwizzle (the tensor-core path,
// rows of kDmmaRow): a half-warp reads 4 depths of 4 rows (each row's 32 bytes one sector), so that
// its shared stores (4 kk + rr mod 16) fall in 16 distinct banks. Otherwise element (row, t) at
// a[row + t * lda] (A, N x w); consecutive threads read consecutive rows.
template <class T, bool kDepthContiguous, bool kSwizzle = false>
struct ChunkMap {
    static constexpr int kTile = TileShape<T>::kTile, kChunk = TileShape<T>::kChunk;
    static constexpr int kLoads = kChunk * kTile / kTileThreads;
    static constexpr int kStepK = kDepthContiguous ? 0 : kTileThreads / kTile;
    static constexpr int kStepR = kDepthContiguous ? kTileThreads / kChunk : 0;
    static_assert(kTileThreads % kChunk == 0 && kTileThreads % kTile == 0, "even split");
    static_assert(kLoads * kTileThreads == kChunk * kTile, "chunks split evenly over the block");
    static_assert(!kSwizzle || (kChunk == 16 && kTileThreads == 256), "swizzle is for 16 x 64");
    static __device__ int kk0() {
        const int t = threadIdx.x;
        if (kDepthContiguous && kSwizzle) return (t & 3) + 4 * ((t >> 4) & 3);
        return kDepthContiguous ? t % kChunk : t / kTile;
    }
    static __device__ int rr0() {
        const int t = threadIdx.x;
        if (kDepthContiguous && kSwizzle) return ((t >> 2) & 3) + 4 * (t >> 6);
        return kDepthContiguous ? t / kChunk : t % kTile;
    }
};

// Global -> registers for one operand chunk; out-of-range entries load as 0. Read-only path
// (__ldg): the operands are never written during the kernel.
template <class T, bool kDepthContiguous, bool kSwizzle, int kLoads>
__device__ __forceinline__ void load_chunk(const T* __restrict__ a, std::int64_t lda,
                                           std::int64_t n_rows, std::int64_t depth,
                                           std::int64_t row0, std::int64_t t0, T (&reg)[kLoads]) {
    using Map = ChunkMap<T, kDepthContiguous, kSwizzle>;
    const std::int64_t t = t0 + Map::kk0(), row = row0 + Map::rr0();
    const T* p = kDepthContiguous ? a + t + row * lda : a + row + t * lda;
    const std::int64_t step = std::int64_t(kDepthContiguous ? Map::kStepR : Map::kStepK) * lda;
#pragma unroll
    for (int q = 0; q < kLoads; ++q) {
        const bool valid = kDepthContiguous ? t < depth && row + q * Map::kStepR < n_rows
                                            : row < n_rows && t + q * Map::kStepK < depth;
        reg[q] = valid ? __ldg(p + q * step) : T(0);
    }
}

// Registers -> shared sh[depth][row] (rows of kRow entries), same mapping as load_chunk.
template <class T, bool kDepthContiguous, bool kSwizzle, int kRow, int kLoads>
__device__ __forceinline__ void store_chunk(const T (&reg)[kLoads], T (*sh)[kRow]) {
    using Map = ChunkMap<T, kDepthContiguous, kSwizzle>;
    const int kk0 = Map::kk0(), rr0 = Map::rr0();
#pragma unroll
    for (int q = 0; q < kLoads; ++q) sh[kk0 + q * Map::kStepK][rr0 + q * Map::kStepR] = reg[q];
}

// blockIdx.x enumerates the lower tiles row by row: b = ti (ti + 1) / 2 + tj, tj <= ti.
__device__ __forceinline__ void lower_tile_of(std::int64_t b, std::int64_t* ti, std::int64_t* tj) {
    auto t = static_cast<std::int64_t>((sqrt(8.0 * double(b) + 1.0) - 1.0) * 0.5);
    while (t * (t + 1) / 2 > b) --t;
    while ((t + 1) * (t + 2) / 2 <= b) ++t;
    *ti = t;
    *tj = b - t * (t + 1) / 2;
}

// The sample of Gram row r: r / k in 32-bit arithmetic (N < 2^31 for any Gram that fits in
// memory), computed once per row or column a thread owns rather than twice per entry.
__device__ __forceinline__ std::uint32_t sample_of(std::int64_t r, std::uint32_t k) {
    return static_cast<std::uint32_t>(r) / k;
}

// G[r, c] = beta G[r, c] + scale acc, scale = S[si, sj] + s_offset with si, sj the samples of r and
// c (s = null: 1); beta = 0 ignores G's old value (even NaN). Callers pass r >= c, r < n_rows only.
template <class T>
__device__ __forceinline__ void update_entry(T acc, std::int64_t r, std::int64_t c,
                                             std::uint32_t si, std::uint32_t sj,
                                             const T* __restrict__ s, std::int64_t lds, T s_offset,
                                             T beta, T* __restrict__ g, std::int64_t ldg) {
    if (s != nullptr) acc *= __ldg(s + si + std::int64_t(sj) * lds) + s_offset;
    T* out = g + r + c * ldg;
    *out = beta == T(0) ? acc : beta * *out + acc;
}

// One block per kTile x kTile tile on or below the diagonal (tiles strictly above are never
// launched), one thread per kMicro x kMicro register sub-tile; CUDA-core FMAs.
template <class T, bool kDepthContiguous>
__global__ void __launch_bounds__(kTileThreads, TileShape<T>::kMinBlocks)
    lower_tile_kernel(const T* __restrict__ a, std::int64_t lda, std::int64_t n_rows,
                      std::int64_t depth, const T* __restrict__ s, std::int64_t lds, T s_offset,
                      std::int64_t k, T beta, T* __restrict__ g, std::int64_t ldg) {
    constexpr int kTile = TileShape<T>::kTile, kMicro = TileShape<T>::kMicro;
    constexpr int kChunk = TileShape<T>::kChunk, kRow = TileShape<T>::kRow;
    constexpr int kLoads = ChunkMap<T, kDepthContiguous>::kLoads;
    static_assert(kSide * kMicro == kTile, "a tile is 16 sub-tiles wide");
    __shared__ T as[kChunk][kRow];
    __shared__ T bs[kChunk][kRow];
    std::int64_t ti, tj;
    lower_tile_of(blockIdx.x, &ti, &tj);
    const std::int64_t r0 = ti * kTile, c0 = tj * kTile;
    const int tr = threadIdx.x % kSide, tc = threadIdx.x / kSide;

    T acc[kMicro][kMicro];
#pragma unroll
    for (int m = 0; m < kMicro; ++m) {
#pragma unroll
        for (int q = 0; q < kMicro; ++q) acc[m][q] = T(0);
    }
    // The next chunk is fetched into registers while the current one is multiplied from shared.
    T ra[kLoads], rb[kLoads];
    load_chunk<T, kDepthContiguous, false>(a, lda, n_rows, depth, r0, 0, ra);
    load_chunk<T, kDepthContiguous, false>(a, lda, n_rows, depth, c0, 0, rb);
    for (std::int64_t t0 = 0; t0 < depth; t0 += kChunk) {
        store_chunk<T, kDepthContiguous, false, kRow>(ra, as);
        store_chunk<T, kDepthContiguous, false, kRow>(rb, bs);
        __syncthreads();
        if (t0 + kChunk < depth) {
            load_chunk<T, kDepthContiguous, false>(a, lda, n_rows, depth, r0, t0 + kChunk, ra);
            load_chunk<T, kDepthContiguous, false>(a, lda, n_rows, depth, c0, t0 + kChunk, rb);
        }
#pragma unroll
        for (int kk = 0; kk < kChunk; ++kk) {
            T av[kMicro], bv[kMicro];
#pragma unroll
            for (int m = 0; m < kMicro; ++m) {
                av[m] = as[kk][tr + m * kSide];
                bv[m] = bs[kk][tc + m * kSide];
            }
#pragma unroll
            for (int m = 0; m < kMicro; ++m) {
#pragma unroll
                for (int q = 0; q < kMicro; ++q) acc[m][q] += av[m] * bv[q];
            }
        }
        __syncthreads();
    }

    // Epilogue: lower entries only; a warp writes 16 consecutive rows of 2 columns (coalesced).
    const auto k32 = static_cast<std::uint32_t>(k);
    std::uint32_t sc[kMicro];
#pragma unroll
    for (int q = 0; q < kMicro; ++q) sc[q] = sample_of(c0 + tc + q * kSide, k32);
#pragma unroll
    for (int m = 0; m < kMicro; ++m) {
        const std::int64_t r = r0 + tr + m * kSide;
        if (r >= n_rows) continue;
        const std::uint32_t sr = sample_of(r, k32);
#pragma unroll
        for (int q = 0; q < kMicro; ++q) {
            const std::int64_t c = c0 + tc + q * kSide;
            if (c <= r) update_entry(acc[m][q], r, c, sr, sc[q], s, lds, s_offset, beta, g, ldg);
        }
    }
}

// d[0..3] += A (16 x 4) B (4 x 8) on FP64 tensor cores for one warp, in mma.sync's fragment layout
// (gid = lane / 4, tig = lane % 4): a0 = A[gid][tig], a1 = A[gid + 8][tig], b = B[tig][gid];
// d0, d1 = D[gid][2 tig + {0, 1}], d2, d3 = D[gid + 8][2 tig + {0, 1}]. m16n8k4 exists from sm_90
// on; elsewhere (and by default, until the first-light probe has compared their rates) two m8n8k4.
__device__ __forceinline__ void mma_16x8x4(double (&d)[4], double a0, double a1, double b) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900 && defined(NGD_DMMA_M16)
    asm volatile(
        "mma.sync.aligned.m16n8k4.row.col.f64.f64.f64.f64 {%0, %1, %2, %3}, {%4, %5}, {%6}, "
        "{%0, %1, %2, %3};\n"
        : "+d"(d[0]), "+d"(d[1]), "+d"(d[2]), "+d"(d[3])
        : "d"(a0), "d"(a1), "d"(b));
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("mma.sync.aligned.m8n8k4.row.col.f64.f64.f64.f64 {%0, %1}, {%2}, {%3}, {%0, %1};\n"
                 : "+d"(d[0]), "+d"(d[1])
                 : "d"(a0), "d"(b));
    asm volatile("mma.sync.aligned.m8n8k4.row.col.f64.f64.f64.f64 {%0, %1}, {%2}, {%3}, {%0, %1};\n"
                 : "+d"(d[2]), "+d"(d[3])
                 : "d"(a1), "d"(b));
#else
    (void)d, (void)a0, (void)a1, (void)b;
#endif
}

// One block per 64 x 64 double tile on or below the diagonal, 8 warps as 4 (rows) x 2 (columns),
// each warp a 16 x 32 region as 4 m16n8 FP64 tensor-core accumulators (mma.sync, sm_80+; fragments
// read from shared memory by plain shared loads, conflict-free with rows of kDmmaRow). Operands
// are staged as in lower_tile_kernel; the epilogue writes straight from the accumulators (each warp
// store covers 8 columns of 8 consecutive rows: whole 32-byte sectors).
template <bool kDepthContiguous>
__global__ void __launch_bounds__(kTileThreads)
    lower_tile_dmma_kernel(const double* __restrict__ a, std::int64_t lda, std::int64_t n_rows,
                           std::int64_t depth, const double* __restrict__ s, std::int64_t lds,
                           double s_offset, std::int64_t k, double beta, double* __restrict__ g,
                           std::int64_t ldg) {
    std::int64_t ti, tj;
    lower_tile_of(blockIdx.x, &ti, &tj);
    const auto k32 = static_cast<std::uint32_t>(k);
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
    constexpr int kTile = TileShape<double>::kTile, kChunk = TileShape<double>::kChunk;
    constexpr int kLoads = ChunkMap<double, kDepthContiguous, true>::kLoads;
    static_assert(kTile == 64 && kChunk % 4 == 0, "tile shape");
    __shared__ double as[kChunk][kDmmaRow];
    __shared__ double bs[kChunk][kDmmaRow];
    const std::int64_t r0 = ti * kTile, c0 = tj * kTile;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int gid = lane / 4, tig = lane % 4;
    const int wr = (warp % 4) * 16, wc = (warp / 4) * 32;  // the warp's region in the tile

    double acc[4][4];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
#pragma unroll
        for (int e = 0; e < 4; ++e) acc[j][e] = 0.0;
    }
    double ra[kLoads], rb[kLoads];
    load_chunk<double, kDepthContiguous, true>(a, lda, n_rows, depth, r0, 0, ra);
    load_chunk<double, kDepthContiguous, true>(a, lda, n_rows, depth, c0, 0, rb);
    for (std::int64_t t0 = 0; t0 < depth; t0 += kChunk) {
        store_chunk<double, kDepthContiguous, true, kDmmaRow>(ra, as);
        store_chunk<double, kDepthContiguous, true, kDmmaRow>(rb, bs);
        __syncthreads();
        if (t0 + kChunk < depth) {
            load_chunk<double, kDepthContiguous, true>(a, lda, n_rows, depth, r0, t0 + kChunk, ra);
            load_chunk<double, kDepthContiguous, true>(a, lda, n_rows, depth, c0, t0 + kChunk, rb);
        }
#pragma unroll
        for (int kk = 0; kk < kChunk; kk += 4) {
            // A (row, depth) = as[depth][row]; B (depth, col) = bs[depth][col].
            const double a0 = as[kk + tig][wr + gid], a1 = as[kk + tig][wr + 8 + gid];
#pragma unroll
            for (int j = 0; j < 4; ++j) mma_16x8x4(acc[j], a0, a1, bs[kk + tig][wc + 8 * j + gid]);
        }
        __syncthreads();
    }

    // Lower entries to G: rows wr + gid (+ 8), columns wc + 8 j + 2 tig (+ 1).
    std::int64_t rows[2];
    std::uint32_t srow[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        rows[h] = r0 + wr + gid + 8 * h;
        srow[h] = sample_of(rows[h], k32);
    }
#pragma unroll
    for (int j = 0; j < 4; ++j) {
#pragma unroll
        for (int e = 0; e < 2; ++e) {
            const std::int64_t c = c0 + wc + 8 * j + 2 * tig + e;
            const std::uint32_t sc = sample_of(c, k32);
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                if (rows[h] < n_rows && c <= rows[h]) {
                    update_entry(acc[j][2 * h + e], rows[h], c, srow[h], sc, s, lds, s_offset, beta,
                                 g, ldg);
                }
            }
        }
    }
#else
    // Review fix: this code image targets < sm_80 (a user's CMAKE_CUDA_ARCHITECTURES below 80,
    // JIT-compiled for the sm_80+ device the host check saw), so FP64 mma is unavailable. An
    // empty body would leave G unwritten (silently wrong); plain FMAs keep it correct, if slow.
    for (int e = threadIdx.x; e < 64 * 64; e += kTileThreads) {
        const std::int64_t r = ti * 64 + e % 64, c = tj * 64 + e / 64;
        if (r >= n_rows || c > r) continue;
        double acc = 0;
        for (std::int64_t t = 0; t < depth; ++t) {
            acc += kDepthContiguous ? a[t + r * lda] * a[t + c * lda]
                                    : a[r + t * lda] * a[c + t * lda];
        }
        update_entry(acc, r, c, sample_of(r, k32), sample_of(c, k32), s, lds, s_offset, beta, g,
                     ldg);
    }
#endif
}

// Lower tiles of an n_rows x n_rows matrix (the grid of both kernels).
template <class T>
unsigned int lower_tile_count(std::int64_t n_rows) {
    const std::int64_t tiles = (n_rows + TileShape<T>::kTile - 1) / TileShape<T>::kTile;
    // Fits gridDim.x (2^31 - 1) for N up to 4 million: far past any Gram that fits in memory.
    return static_cast<unsigned int>(tiles * (tiles + 1) / 2);
}

}  // namespace
}  // namespace ngd::cuda
