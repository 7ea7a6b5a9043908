// The reference eigensolver stage (src/reference/eigen.cpp) with an empty shift, which means no
// shift, as it does for cholesky_solve: it used to read shift.data without checking. The stage is
// private (hidden in the shared library), so this test compiles the reference source itself; that
// needs src/ on the include path, which the CUDA-enabled test build has. Elsewhere it skips.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#if defined(NGD_TESTS_WITH_CUDA)
#include "reference/eigen.cpp"
#endif

namespace {

TEST(ReferenceEigen, EmptyShiftMeansNoShift) {
#if defined(NGD_TESTS_WITH_CUDA)
    ngd::Context ctx = ngd::Context::reference();
    // [[2, 1], [1, 2]] (lower triangle given, a huge value above it that must not be read):
    // eigenvalues 1 and 3.
    const double big = 1e300;
    std::vector<double> g = {2.0, 1.0, big, 2.0};
    std::vector<double> w(2, 0.0);
    const ngd::MatrixView<double> gv(g.data(), 2, 2, ngd::MemorySpace::host);
    const std::int64_t info =
        ngd::reference::symmetric_eigen<double>(ctx, gv, ngd::MatrixView<const double>(), w.data());
    ASSERT_EQ(info, 0);
    EXPECT_NEAR(w[0], 1.0, 1e-14);
    EXPECT_NEAR(w[1], 3.0, 1e-14);
    // Eigenvectors (1, -1)/sqrt2 and (1, 1)/sqrt2 up to sign.
    EXPECT_NEAR(std::fabs(g[0]), std::sqrt(0.5), 1e-14);
    EXPECT_NEAR(g[0] + g[1], 0.0, 1e-14);
    EXPECT_NEAR(g[2] - g[3], 0.0, 1e-14);
#else
    GTEST_SKIP() << "needs the private stage headers (a CUDA-enabled test build)";
#endif
}

}  // namespace
