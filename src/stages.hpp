// The private stage interface shared by the backends. Each stage is declared once, in
// stage_signatures.inc, and that list is opened in namespace ngd::reference (src/reference/, plain
// loops, double accumulation: the oracle), in namespace ngd::cpu (src/cpu/: BLAS, LAPACK, OpenMP,
// or src/cpu_stub.cpp without them) and in namespace ngd::cuda (kernels/, or src/cuda_stub.cpp when
// CUDA is not compiled). Public functions check their arguments, then switch on ctx.backend().
//
// Stages trust their arguments: shapes, memory spaces and finiteness are checked by the caller.
#pragma once

#include <cstdint>
#include <vector>

#include "ngd/context.hpp"
#include "ngd/loss.hpp"
#include "ngd/matrix.hpp"
#include "ngd/model.hpp"

namespace ngd {

/// What forward() keeps for the later stages, in the backend's memory space. For layer l (0-based):
/// act[l] = a_{l+1} (n_out_l x n) and dact[l] = act_l'(z_{l+1}) (n_out_l x n); outputs = f (k x n).
template <class T>
struct ForwardState {
    std::vector<Matrix<T>> act;
    std::vector<Matrix<T>> dact;
    Matrix<T> outputs;
};

/// Result of a scan for NaN/Inf: how many, and the column-major index of the first (-1 if none).
struct NonFiniteCount {
    std::int64_t count = 0;
    std::int64_t first = -1;
};

/// NaturalGradient's step guard (optimizer.hpp): eta = learning_rate, shortened so that
/// |eta d| <= max_step_norm and eta sqrt(d^T F d) <= max_output_change (src/step_guard.hpp).
struct StepGuard {
    double learning_rate = 1;
    double max_step_norm = 0;
    double max_output_change = 0;
};

/// Arithmetic of the float Cholesky factor of the mixed solve (cholesky_factor_float):
///   float32: float potrf throughout (LAPACK spotrf, cuSOLVER Xpotrf, or the reference's loops);
///   tf32:    blocked right-looking, block width tf32_block_width(N): each diagonal block by float
///            potrf, the panel below it by a float triangular solve, and the trailing update
///            C <- C - P P^T with the entries of P rounded to TF32 (10 explicit mantissa bits,
///            round_to_tf32 in tf32.hpp) and the products accumulated in float, as TF32 tensor
///            cores do (SolvePrecision::mixed_tf32).
enum class FactorArithmetic { float32, tf32 };

/// Block width of the TF32 factorization, the same on every backend so that the reference is the
/// oracle of the others: 512 (wide enough for TF32 GEMMs near peak on sm_80+, and the GPU design's
/// width in docs/performance.md), but at most N / 8 rounded up to a multiple of 32, and at least
/// 32, so that below N = 4096 the trailing updates still carry most of the work (and of the
/// rounding).
inline std::int64_t tf32_block_width(std::int64_t n) {
    const std::int64_t eighth = (n / 8 + 31) / 32 * 32;
    return eighth < 32 ? 32 : (eighth > 512 ? 512 : eighth);
}

namespace reference {
#include "stage_signatures.inc"
}  // namespace reference

namespace cpu {
#include "stage_signatures.inc"
}  // namespace cpu

namespace cuda {
#include "stage_signatures.inc"
}  // namespace cuda

}  // namespace ngd
