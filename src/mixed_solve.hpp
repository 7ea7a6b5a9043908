// The mixed-precision damped solve (SolvePrecision::mixed and mixed_tf32, DESIGN.md section 4): a
// float (or TF32) Cholesky factor of the double K = G + diag(shift), refined in double to the
// backward error of a double Cholesky, classically and then by preconditioned conjugate gradients.
// One loop for every backend, written with the stages of stage_signatures.inc; the callers
// (damped_solve, direction_from_jacobian, GramSystem::solve) fall back to their double
// factorization when it returns false, and then apply the acceptance test as for any solve.
#pragma once

#include <cstdint>

#include "ngd/context.hpp"
#include "ngd/matrix.hpp"
#include "ngd/stages.hpp"

namespace ngd::detail {

/// Refinement succeeds once the backward error is at most 2^-53 / sqrt(N) (below where a double
/// Cholesky's lies on the test systems: 1 to 2.3 times that), or at most refinement_floor() =
/// 2^-53 (double's unit roundoff) with the last correction reducing it by less than a factor of
/// two: it has then reached the rounding floor of its double residual, which is where a double
/// Cholesky's backward error lies (within 2x in the tests). It fails when the backward error gains
/// less than a factor of four over two corrections above 2^-53 (kappa(K) eps_float near or beyond
/// 1/2), goes non-finite, or is still above 2^-53 after kMaxRefinements corrections (LAPACK's
/// dsposv allows 30).
constexpr int kMaxRefinements = 30;
double refinement_floor();

/// Where classical refinement stagnates (not where it goes non-finite or the float factorization
/// fails), conjugate gradients on K, preconditioned by the same float factor, continue from its
/// iterate to the same target, for at most kMaxCgIterations iterations (pcg_column in
/// mixed_solve.cpp). Why 50: the preconditioned K has most eigenvalues within kappa(K) eps_factor
/// of 1 and a few outliers; measured, CG took 3-33 iterations where it converged (up to 50 at
/// the TF32 factor's edge; docs/performance.md). Each iteration costs one double matvec and one
/// float factor solve, about 1.6% of a double Cholesky solve at N = 4096 on a CPU core, so 50
/// iterations cost about 0.8 of the double factorization: beyond, the fallback is cheaper.
constexpr int kMaxCgIterations = 50;

/// r = (g + diag(shift)) x - u for N-vectors in the context's memory space; g lower triangle,
/// shift N x 1 (empty: 0); u null means 0; tmp is an N-vector of scratch.
template <class T>
void shifted_residual(Context& ctx, MatrixView<const T> g, MatrixView<const T> shift, const T* x,
                      const T* u, T* r, T* tmp);

/// |r|_2 / (norm_k |x|_2 + |u|_2) for N-vectors in the context's memory space, in double; +Inf
/// when it is not finite. Synchronises.
template <class T>
double backward_error(Context& ctx, std::int64_t n, const T* r, const T* x, const T* u,
                      double norm_k);

/// Solves (g + diag(shift)) X = rhs in mixed precision: g N x N (lower triangle read, left
/// intact), shift N x 1, rhs N x r, X into x (N x r). True when every column's refinement
/// succeeded (see kMaxRefinements); false when the caller must solve in double (x is then
/// undefined). The factor's arithmetic follows report.requested (mixed_tf32: TF32 trailing
/// updates, FactorArithmetic::tf32; else float32). Fills report's float_info,
/// refinement_iterations and cg_iterations (largest over columns), mixed_fallback and
/// backward_error, and on success `used` (mixed_tf32 or mixed: which factor gave the solution);
/// requested is the caller's, and so is `used` on failure. For float T it returns false at once
/// and leaves the report alone (no lower precision to factor in).
/// `factor`: N x N float storage for the float factor in the context's memory space (e.g. the
/// scratch a double fallback overwrites anyway), or empty to allocate it. Synchronises.
template <class T>
bool mixed_solve(Context& ctx, MatrixView<const T> g, MatrixView<const T> shift,
                 MatrixView<const T> rhs, MatrixView<T> x, SolveReport& report,
                 MatrixView<float> factor = {});

}  // namespace ngd::detail
