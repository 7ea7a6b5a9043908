// cpu eigendecomposition for the failure ladder's last rung (mirrors src/reference/eigen.cpp):
// LAPACK syevd (divide and conquer) on g + diag(shift), eigenvectors in place of g. The trace and
// the pseudo-inverse scaling are O(N) and stay with the reference code (src/cpu/reused.cpp).
#include <cstdint>
#include <vector>

#include "cpu/blas.hpp"
#include "cpu/threads.hpp"
#include "stages.hpp"

namespace ngd::cpu {

template <class T>
std::int64_t symmetric_eigen(Context& ctx, MatrixView<T> g, MatrixView<const T> shift, T* w) {
    // g: N x N (lower triangle read) -> eigenvectors of g + diag(shift) as columns; w: N,
    // ascending.
    const std::int64_t n = g.rows;
    if (n == 0) return 0;
    ThreadScope threads(ctx, n < 512);  // as cholesky_solve: small orders on the calling thread
    if (!shift.empty()) {
        for (std::int64_t j = 0; j < n; ++j) g(j, j) += shift.data[j];
    }
    // Workspace query, then the decomposition.
    T work_size = 0;
    int iwork_size = 0;
    int info = blas::syevd_lower(n, g.data, g.ld, w, &work_size, -1, &iwork_size, -1);
    if (info != 0) return info;
    // A float lwork can round below LAPACK's integer answer: leave a margin.
    std::vector<T> work(static_cast<std::size_t>(double(work_size) * 1.0001) + 64);
    std::vector<int> iwork(static_cast<std::size_t>(iwork_size) + 1);
    info =
        blas::syevd_lower(n, g.data, g.ld, w, work.data(), static_cast<std::int64_t>(work.size()),
                          iwork.data(), static_cast<std::int64_t>(iwork.size()));
    return info;
}

template std::int64_t symmetric_eigen<float>(Context&, MatrixView<float>, MatrixView<const float>,
                                             float*);
template std::int64_t symmetric_eigen<double>(Context&, MatrixView<double>,
                                              MatrixView<const double>, double*);

}  // namespace ngd::cpu
