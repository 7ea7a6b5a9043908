// cpu mixed-precision solve stages (mirror src/reference/mixed_solve.cpp): K = g + diag(shift)
// rounded to float by an OpenMP pass, LAPACK spotrf on it (or, for TF32, the reference's blocked
// algorithm with spotrf, strsm and an ssyrk on a TF32-rounded copy of each panel), two strsv for
// each correction, and the
// Frobenius norm of K by an OpenMP reduction. The double residuals of the refinement are the
// backend's symv (dsymv) and vector stages, called from src/mixed_solve.cpp.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "cpu/blas.hpp"
#include "cpu/threads.hpp"
#include "stages.hpp"
#include "tf32.hpp"

namespace ngd::cpu {
namespace {

// Below this order the float factorization runs on the calling thread (as in solve.cpp).
constexpr std::int64_t kSerialOrder = 512;

// The TF32 factorization emulated with float BLAS (FactorArithmetic::tf32, the reference's
// algorithm): per block column, spotrf on the diagonal block, strsm for the panel below it, then
// the panel rounded to TF32 into a copy and the trailing update as one ssyrk on that copy. A
// product of two TF32 numbers is exact in float, so ssyrk's float accumulation is that of a TF32
// tensor core up to the order of the sum. An oracle and a check of the CUDA path, not a speed
// path: it costs about what spotrf does (docs/performance.md).
std::int64_t factor_tf32(std::int64_t n, float* l, std::int64_t ldl) {
    const std::int64_t nb = tf32_block_width(n);
    std::vector<float> p;
    for (std::int64_t b0 = 0; b0 < n; b0 += nb) {
        const std::int64_t b1 = std::min(n, b0 + nb), w = b1 - b0, rest = n - b1;
        float* diag = l + b0 + b0 * ldl;
        const int info = blas::potrf_lower(w, diag, ldl);
        if (info > 0) return b0 + info;
        if (rest == 0) break;
        float* panel = l + b1 + b0 * ldl;
        blas::trsm_right_lower_transpose(rest, w, diag, ldl, panel, ldl);
        p.resize(std::size_t(rest * w));
#pragma omp parallel for schedule(static) if (rest * w > kParallelMinEntries)
        for (std::int64_t c = 0; c < w; ++c) {
            for (std::int64_t i = 0; i < rest; ++i) {
                p[std::size_t(i + c * rest)] = detail::round_to_tf32(panel[i + c * ldl]);
            }
        }
        blas::syrk_lower(false, rest, w, -1.0f, p.data(), rest, 1.0f, l + b1 + b1 * ldl, ldl);
    }
    return 0;
}

}  // namespace

template <class T>
double frobenius_norm_lower(Context& ctx, MatrixView<const T> g, MatrixView<const T> shift) {
    // g: N x N (lower triangle read); shift: N x 1 or empty. Off-diagonal entries count twice.
    const std::int64_t n = g.rows;
    ThreadScope threads(ctx);
    double sum = 0;
#pragma omp parallel for schedule(dynamic, 16) reduction(+ : sum) if (n * n > kParallelMinEntries)
    for (std::int64_t j = 0; j < n; ++j) {
        const T* col = g.data + j * g.ld;
        const double d = double(col[j]) + (shift.empty() ? 0.0 : double(shift.data[j]));
        double off = 0;
        for (std::int64_t i = j + 1; i < n; ++i) off += double(col[i]) * double(col[i]);
        sum += d * d + 2.0 * off;
    }
    return std::sqrt(sum);
}

std::int64_t cholesky_factor_float(Context& ctx, MatrixView<const double> g,
                                   MatrixView<const double> shift, MatrixView<float> l,
                                   double* norm, FactorArithmetic* arithmetic) {
    // g: N x N double (lower read); shift: N x 1; l: N x N float (lower written) -> L.
    const std::int64_t n = g.rows;
    *norm = 0;
    if (n == 0) return 0;
    ThreadScope threads(ctx, n < kSerialOrder);
    // l <- float(g + diag(shift)), lower triangle, one column per iteration; |K|_F^2 in the same
    // pass (off-diagonal entries twice).
    double sum = 0;
#pragma omp parallel for schedule(dynamic, 16) reduction(+ : sum) if (n * n > kParallelMinEntries)
    for (std::int64_t j = 0; j < n; ++j) {
        const double* src = g.data + j * g.ld;
        float* dst = l.data + j * l.ld;
        const double d = src[j] + (shift.empty() ? 0.0 : shift.data[j]);
        dst[j] = float(d);
        double off = 0;
        for (std::int64_t i = j + 1; i < n; ++i) {
            dst[i] = float(src[i]);
            off += src[i] * src[i];
        }
        sum += d * d + 2.0 * off;
    }
    *norm = std::sqrt(sum);
    const std::int64_t info = *arithmetic == FactorArithmetic::tf32
                                  ? factor_tf32(n, l.data, l.ld)
                                  : std::int64_t(blas::potrf_lower(n, l.data, l.ld));
    if (info > 0) return info;
    std::int64_t bad = 0;
#pragma omp parallel for schedule(dynamic, 16) reduction(+ : bad) if (n * n > kParallelMinEntries)
    for (std::int64_t j = 0; j < n; ++j) {
        const float* col = l.data + j * l.ld;
        for (std::int64_t i = j; i < n; ++i) bad += std::isfinite(col[i]) ? 0 : 1;
    }
    return bad == 0 ? 0 : -1;
}

void cholesky_apply_float(Context& ctx, MatrixView<const float> l, double* x, float* work) {
    // l: N x N float lower factor; x: N double (in: b, out: (L L^T)^{-1} b); work: N float.
    const std::int64_t n = l.rows;
    if (n == 0) return;
    ThreadScope threads(ctx, n < kSerialOrder);
    for (std::int64_t i = 0; i < n; ++i) work[i] = float(x[i]);
    // Two triangular solves (level 2: one pass over the factor each, where potrs with one
    // right-hand side goes through trsm).
    blas::trsv_lower(false, n, l.data, l.ld, work);
    blas::trsv_lower(true, n, l.data, l.ld, work);
    for (std::int64_t i = 0; i < n; ++i) x[i] = double(work[i]);
}

template double frobenius_norm_lower<float>(Context&, MatrixView<const float>,
                                            MatrixView<const float>);
template double frobenius_norm_lower<double>(Context&, MatrixView<const double>,
                                             MatrixView<const double>);

}  // namespace ngd::cpu
