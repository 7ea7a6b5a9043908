// The stage functions of the NGD pipeline (DESIGN.md section 2), usable one by one. Every function
// checks its arguments (shapes, memory space, finiteness) before any work, throws an ngd::Error
// subclass naming the argument and the sizes, and runs on the context's backend. Inputs and results
// live in the context's memory space. n = samples, k = outputs per sample, N = n k, p = parameters.
//
// Conventions: rows of J (N x p) are ordered sample-major, row i k + o is d f_o(x_i) / d theta.
// A = M^T J (row block i is M_i^T J_i). The damping lambda is the parameter-space damping of
// (F + lambda I) d = grad L with F = A^T A / n; on the Gram side it appears as n lambda:
//     (A A^T + n lambda I) alpha = u,   d = A^T alpha.
#pragma once

#include <cstdint>

#include "ngd/context.hpp"
#include "ngd/export.hpp"
#include "ngd/loss.hpp"
#include "ngd/matrix.hpp"
#include "ngd/model.hpp"

namespace ngd {

/// structured: sum over layers of (A_{l-1}^T A_{l-1}) o (Delta_l^T Delta_l); J is never formed.
/// explicit_jacobian: rows of A materialised in column blocks (Context::memory_budget), then A A^T.
enum class GramMode { structured, explicit_jacobian };

/// Which linear system gives the direction (DESIGN.md section 1):
///   factor:           (A A^T + n lambda I) alpha = u,               d = A^T alpha   (any loss)
///   natural_residual: (J J^T + n lambda H^{-1}) beta = H^{-1} e,     d = J^T beta   (squared,
///   logistic) automatic:        squared and softmax -> factor; logistic -> natural_residual,
///   unless
///                     n lambda H^{-1} overflows (margins beyond ~700 in double, ~85 in float),
///                     then factor.
/// The natural-residual form stays as well conditioned as J J^T when lambda -> 0 and predictions
/// are confident, where M spans e^{-|m|} and the factor form loses all accuracy.
enum class SolveForm { automatic, factor, natural_residual };

/// The precision of the damped solve's factorization (DESIGN.md section 4, docs/performance.md).
///   working: Cholesky in the data's precision T (the default).
///   mixed:   for double data, K = G + shift is factored in float (about twice as fast on a CPU,
///            more on GPUs with slow float64) and the solution refined in double: r = u - K alpha
///            in double, alpha += (L L^T)^{-1} r with the float factor L, until the normwise
///            backward error |K alpha - u| / (|K|_F |alpha| + |u|) is that of a double Cholesky
///            (it stops below 2^-53, or where it stops improving below sqrt(N) 2^-53). Where
///            classical refinement stagnates (kappa(K) near 1e8 to 1e9), conjugate gradients
///            preconditioned by the float factor continue from its iterate, at most 50
///            iterations (SolveReport::cg_iterations). When the float factorization fails
///            (kappa(K) beyond about 1e9, e.g. a small damping) or conjugate gradients fail too,
///            the double factorization gives the solution instead and the report says so
///            (SolveReport::mixed_fallback). For float data there is no lower precision to
///            factor in: mixed is the working solve (the report says working, with no refinement
///            and no fallback).
///   mixed_tf32: as mixed, but the float factor is blocked (block width 512, at most N / 8) and
///            its trailing updates run on TF32 tensor cores (CUDA, sm_80 and newer; operands
///            with 10-bit mantissas, float accumulation), emulated on the reference and cpu
///            backends (their oracle, not a speed path). On a dense K the factor's relative
///            error is about 1e-4 in place of 1e-7: classical refinement alone converges for
///            kappa(K) up to about 1e4 (13-14 corrections there), conjugate gradients carry it to
///            about 3e4 to 1e5; beyond, the fallback. Below sm_80 the CUDA backend factors in
///            float32 and reports used = mixed. For float data it is the working solve, as mixed.
/// Either way the solution then passes the same acceptance test.
enum class SolvePrecision { working, mixed, mixed_tf32 };

/// What a damped solve did: damped_solve, direction and direction_from_jacobian fill it when given
/// one; NaturalGradient copies it into its StepReport. With several right-hand sides, the largest
/// iterations and errors over the columns.
struct SolveReport {
    SolvePrecision requested = SolvePrecision::working;
    /// The precision whose factorization gave the solution: mixed or mixed_tf32 (the float or
    /// TF32 factor, refined), or working (asked for, float data, or the fallback).
    SolvePrecision used = SolvePrecision::working;
    bool mixed_fallback = false;    ///< mixed was asked for double data and refinement failed
    int refinement_iterations = 0;  ///< corrections alpha += (L L^T)^{-1} r applied
    /// conjugate-gradient iterations (preconditioned by the float factor) taken after classical
    /// refinement stagnated; 0 when it did not
    int cg_iterations = 0;
    std::int64_t float_info = 0;  ///< the float factorization's info (0 ok, > 0 pivot, -1 NaN)
    /// |K alpha - u|_2 / (|K|_F |alpha|_2 + |u|_2), in double, of the solution returned
    double backward_error = 0;
    /// |D^-1/2 (K alpha - u)| / |D^-1/2 u|, D = diag(K): the acceptance test's residual
    double solve_residual = 0;
};

NGD_API const char* to_string(GramMode mode);
NGD_API const char* to_string(SolveForm form);
NGD_API const char* to_string(SolvePrecision precision);

/// Model outputs f (k x n). `output_rows` only for matrix-factorization models.
template <class T>
NGD_API Matrix<T> forward(Context& ctx, const Mlp& model, MatrixView<const T> theta,
                          MatrixView<const T> inputs, MatrixView<const T> output_rows = {});

/// The training loss L(theta) on the batch.
template <class T>
NGD_API double loss(Context& ctx, const Mlp& model, MatrixView<const T> theta,
                    const Batch<T>& batch, Loss loss);

/// grad L = J^T e / n (p x 1).
template <class T>
NGD_API Matrix<T> gradient(Context& ctx, const Mlp& model, MatrixView<const T> theta,
                           const Batch<T>& batch, Loss loss);

/// The Jacobian J (N x p), sample-major rows; frozen layers give zero columns.
template <class T>
NGD_API Matrix<T> jacobian(Context& ctx, const Mlp& model, MatrixView<const T> theta,
                           MatrixView<const T> inputs, MatrixView<const T> output_rows = {});

/// The Gram matrix G = J J^T (N x N, full symmetric).
template <class T>
NGD_API Matrix<T> gram(Context& ctx, const Mlp& model, MatrixView<const T> theta,
                       MatrixView<const T> inputs, MatrixView<const T> output_rows = {},
                       GramMode mode = GramMode::structured);

/// The loss-weighted Gram matrix A A^T = M^T J J^T M (N x N, full symmetric).
template <class T>
NGD_API Matrix<T> gram(Context& ctx, const Mlp& model, MatrixView<const T> theta,
                       const Batch<T>& batch, Loss loss, GramMode mode = GramMode::structured);

/// Solves (G + shift I) X = rhs for symmetric G (N x N, only its lower triangle is read) and
/// rhs (N x r) by Cholesky. For an NGD step, shift = n lambda. Throws NotPositiveDefinite with
/// LAPACK's info when G + shift I is not numerically positive definite, or info = -1 when a
/// column of X fails the acceptance test (equilibrated residual above 1e-3 in double, 1e-2 in
/// float; docs/errors.md); NonFiniteInput for NaN/Inf. `precision`: see SolvePrecision; `report`
/// (optional) says what the solve did.
template <class T>
NGD_API Matrix<T> damped_solve(Context& ctx, MatrixView<const T> gram, double shift,
                               MatrixView<const T> rhs,
                               SolvePrecision precision = SolvePrecision::working,
                               SolveReport* report = nullptr);

struct DirectionOptions {
    GramMode gram_mode = GramMode::structured;
    SolveForm form = SolveForm::automatic;
    SolvePrecision precision = SolvePrecision::working;  ///< of the damped solve
};

/// The damped natural-gradient direction d = (F + lambda I)^{-1} grad L (p x 1), lambda >= 0.
/// lambda = 0 needs A A^T nonsingular, so it is refused by design (NotPositiveDefinite) when
/// N > p, where A A^T has rank <= p < N even if F is invertible (only a u that happens to lie in
/// the range of A passes the acceptance test): use lambda > 0, or NaturalGradient with
/// damping 0, damping_raises 0 and Fallback::pseudo_inverse, whose step A^T (A A^T)^+ u is then
/// the undamped F^{-1} grad L. Throws NotPositiveDefinite when the solve fails the acceptance test
/// of docs/errors.md. `report` (optional) says what the damped solve did.
template <class T>
NGD_API Matrix<T> direction(Context& ctx, const Mlp& model, MatrixView<const T> theta,
                            const Batch<T>& batch, Loss loss, double damping,
                            DirectionOptions options = {}, SolveReport* report = nullptr);

/// Bring your own Jacobian: for a model ngd does not know. jacobian is N x p (sample-major rows,
/// N = n k), residual u is N x 1, factor is empty (M = I, k = 1: each row its own sample, as for
/// squared loss) or k x (k n) with block i = M_i (so F = J^T blockdiag(M M^T) J / n and
/// grad L = J^T blockdiag(M) u / n). Returns d = A^T (A A^T + n lambda I)^{-1} u with A = M^T J.
/// Throws NotPositiveDefinite as direction() does (the same acceptance test). `precision` and
/// `report` as for damped_solve.
template <class T>
NGD_API Matrix<T> direction_from_jacobian(Context& ctx, MatrixView<const T> jacobian,
                                          MatrixView<const T> residual, double damping,
                                          MatrixView<const T> factor = {},
                                          SolvePrecision precision = SolvePrecision::working,
                                          SolveReport* report = nullptr);

}  // namespace ngd
