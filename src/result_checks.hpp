// Checks of what a stage produced, shared by every entry point: the acceptance test of a solve
// (DESIGN.md section 4, docs/errors.md) and the overflow check of results computed from finite
// input. Both run on the context's backend through stages and host copies of N-vectors, so they
// behave the same on every backend.
#pragma once

#include <cstdint>
#include <vector>

#include "ngd/context.hpp"
#include "ngd/matrix.hpp"
#include "ngd/model.hpp"
#include "ngd/stages.hpp"
#include "stages.hpp"

namespace ngd::detail {

/// The acceptance threshold of a solve, the one place it is set: a Cholesky solution alpha of
/// K alpha = u is taken when its equilibrated residual (see equilibrated_residual) is at most
/// 1e-3 in double and 1e-2 in float. A backward-stable solve of an equilibrated system with
/// condition kappa leaves about kappa N eps, so these pass any system that is not singular to
/// working precision, and reject the O(1) residual of a singular or inconsistent one.
double max_solve_residual(bool is_double);
template <class T>
double max_solve_residual() {
    return max_solve_residual(sizeof(T) == sizeof(double));
}

/// diag(g) of an N x N matrix in the context's memory space, copied to the host in double.
/// Synchronises.
template <class T>
std::vector<double> diagonal(Context& ctx, MatrixView<const T> g);

/// |D^-1/2 r| / |D^-1/2 u| with D = diagonal (diag(K)), r = K alpha - u and u N-vectors in the
/// context's memory space. It is the relative residual of the equilibrated system D^-1/2 K D^-1/2,
/// so it does not depend on the scaling of the rows (a plain |r| / |u| rejects good solutions when
/// diag(K) spans many orders of magnitude), and unlike the normwise backward error it does not
/// shrink when alpha is huge. Entries of D that are not > 0 (a zero row of a semidefinite K) take
/// the smallest positive one, the heaviest weight. +Inf when r is not finite; |D^-1/2 r| when
/// u = 0. Synchronises.
template <class T>
double equilibrated_residual(Context& ctx, std::int64_t n, const T* r, const T* u,
                             const std::vector<double>& diagonal);

/// NotPositiveDefinite naming fn, the order and the shift n lambda: info > 0 is Cholesky's failed
/// leading minor; info = -1 a non-finite solution, or one whose equilibrated residual `residual`
/// exceeded `limit` (pass a negative residual when it was not computed).
[[noreturn]] void throw_not_positive_definite(const char* fn, std::int64_t info, std::int64_t order,
                                              double shift, double residual = -1,
                                              double limit = -1);

/// NonFiniteInput when v, computed from finite input, holds NaN/Inf: it overflowed the range of
/// T. The message names fn, the quantity, its shape, the first bad entry and `hint` (what to do).
/// Synchronises.
template <class T>
void check_overflow(Context& ctx, const char* fn, const char* quantity, MatrixView<const T> v,
                    const std::string& hint);

/// The Gram matrix's diagonal (host, from diagonal()) holds NaN/Inf although its inputs are
/// finite: throws NonFiniteInput naming the quantity that overflowed. In the structured mode that
/// is usually a layer's input Gram w^2 x_i . x_j (|x|^2 beyond the type's range), which the
/// explicit mode never forms; otherwise the products of the rows of A. No-op when the diagonal is
/// finite (an off-diagonal entry cannot overflow alone: |G_ij| <= sqrt(G_ii G_jj)).
template <class T>
void check_gram_overflow(Context& ctx, const char* fn, const Mlp& model, MatrixView<const T> x,
                         const ForwardState<T>& state, GramMode mode,
                         const std::vector<double>& gram_diagonal);

}  // namespace ngd::detail
