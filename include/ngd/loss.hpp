// Losses and their factors (DESIGN.md section 1). L = (1/n) sum_i l(f_i, y_i); the per-sample
// output Hessian is H_i = M_i M_i^T and the output gradient is e_i = M_i u_i.
//   squared:   l = 1/2 |f - y|^2                 M = I, u = f - y
//   logistic:  l = log(1 + exp(-s z)), s = 2y - 1   M = sqrt(sig(m) sig(-m)), u = -s
//   sqrt(sig(-m)/sig(m))
//              (k = 1, margin m = s z; evaluated in log space: M and the loss value are finite for
//              any margin, u, rho and H^{-1} wherever their true value fits in T)
//   softmax cross-entropy (integer label y):     M = diag(sqrt p) - p sqrt(p)^T, u = (p - y)/sqrt p
#pragma once

#include <cstdint>

#include "ngd/context.hpp"
#include "ngd/export.hpp"
#include "ngd/matrix.hpp"

namespace ngd {

enum class Loss { squared, logistic, softmax_cross_entropy };

NGD_API const char* to_string(Loss loss);

/// One mini-batch, all views in the context's memory space.
///   inputs:      d x n, one sample per column.
///   targets:     squared: k x n; logistic: 1 x n with values 0 or 1; softmax: 1 x n class indices
///                0..k-1 stored as T.
///   output_rows: matrix-factorization models only: 1 x n row indices 0..d_L-1 stored as T.
template <class T>
struct Batch {
    MatrixView<const T> inputs;
    MatrixView<const T> targets;
    MatrixView<const T> output_rows;
    std::int64_t size() const { return inputs.cols; }
};

/// The loss and its factors for outputs f (k x n) and targets, in the context's memory space.
template <class T>
struct LossFactors {
    double value = 0;             ///< L = (1/n) sum_i l_i
    Matrix<T> gradient;           ///< e_i = d l_i / d f_i, k x n (not divided by n)
    Matrix<T> factor;             ///< M_i, k x (k n): block i (columns i k .. i k + k - 1) is M_i
    Matrix<T> residual;           ///< u_i with e_i = M_i u_i, k x n
    Matrix<T> natural_residual;   ///< rho_i = H_i^{-1} e_i, k x n; empty for softmax (H singular)
    Matrix<T> curvature_inverse;  ///< diagonal of H_i^{-1}, k x n; empty for softmax. Logistic:
                                  ///< (1 + e^{|m|})^2 / e^{|m|}, Inf once that overflows T.
};

/// Evaluates the loss and its factors. Throws InvalidArgument for shape or label errors and
/// NonFiniteInput for NaN/Inf in outputs or targets.
template <class T>
NGD_API LossFactors<T> loss_factors(Context& ctx, Loss loss, MatrixView<const T> outputs,
                                    MatrixView<const T> targets);

}  // namespace ngd
