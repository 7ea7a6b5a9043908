// cpu damped solve (mirrors src/reference/solve.cpp): LAPACK potrf on g + diag(shift) in place
// (lower triangle), potrs for all right-hand sides. info > 0 is LAPACK's; a factor or solution
// that holds NaN/Inf gives -1, checked by an OpenMP scan, as the stage contract asks.
#include <cmath>
#include <cstdint>

#include "cpu/blas.hpp"
#include "cpu/threads.hpp"
#include "stages.hpp"

namespace ngd::cpu {
namespace {

// Below this order the factorization (N^3 / 3 flops: 44 M at 512) runs on the calling thread:
// LAPACK's blocked, threaded potrf meets a barrier per block column, which costs more than it
// saves at this size, and much more when the machine's cores are shared.
constexpr std::int64_t kSerialOrder = 512;

// True when every entry of the lower triangle of a (n x n, lower = true) or of all of a is finite.
template <class T>
bool all_finite(const T* a, std::int64_t rows, std::int64_t cols, std::int64_t ld, bool lower) {
    std::int64_t bad = 0;
#pragma omp parallel for schedule(static) reduction(+ : bad) if (rows * cols > kParallelMinEntries)
    for (std::int64_t j = 0; j < cols; ++j) {
        const T* col = a + j * ld;
        for (std::int64_t i = lower ? j : 0; i < rows; ++i) bad += std::isfinite(col[i]) ? 0 : 1;
    }
    return bad == 0;
}

}  // namespace

template <class T>
std::int64_t cholesky_solve(Context& ctx, MatrixView<T> g, MatrixView<const T> shift,
                            MatrixView<T> rhs) {
    // g: N x N (lower read, overwritten by L); shift: N x 1 (empty means 0); rhs: N x r -> X.
    const std::int64_t n = g.rows;
    if (n == 0) return 0;
    ThreadScope threads(ctx, n < kSerialOrder);
    if (!shift.empty()) {
        for (std::int64_t j = 0; j < n; ++j) g(j, j) += shift.data[j];
    }
    const int info = blas::potrf_lower(n, g.data, g.ld);
    if (info > 0) return info;
    if (!all_finite(g.data, n, n, g.ld, true)) return -1;
    if (rhs.cols == 0) return 0;
    blas::potrs_lower(n, rhs.cols, g.data, g.ld, rhs.data, rhs.ld);
    return all_finite(rhs.data, n, rhs.cols, rhs.ld, false) ? 0 : -1;
}

template std::int64_t cholesky_solve<float>(Context&, MatrixView<float>, MatrixView<const float>,
                                            MatrixView<float>);
template std::int64_t cholesky_solve<double>(Context&, MatrixView<double>, MatrixView<const double>,
                                             MatrixView<double>);

}  // namespace ngd::cpu
