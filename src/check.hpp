// Argument checks of the public functions: shapes, memory spaces, finiteness, labels, scalars. Each
// throws the typed error of error.hpp with the function, the argument and the sizes in its message,
// before any work is done (so nothing of the caller's is written on failure). The checks that read
// data (finiteness, labels) take an optional StatusBlock: given one, they only queue their counts
// into fault words of it and return (no synchronisation); the caller reads the block later and, on
// a fault, runs the same check without it to throw the error.
#pragma once

#include <cstdint>
#include <string>

#include "ngd/context.hpp"
#include "ngd/loss.hpp"
#include "ngd/matrix.hpp"
#include "ngd/model.hpp"

namespace ngd::detail {

class StatusBlock;

/// The index arrays of a batch as a deferred check_batch leaves them: copies in the context's
/// memory space in which every invalid entry reads 0 (so that no stage indexes out of bounds
/// before the block is read), or empty where the batch has none (inputs-only models, squared
/// loss).
template <class T>
struct SafeIndices {
    Matrix<T> rows, targets;
    /// `batch` with its index arrays replaced by these copies.
    Batch<T> apply(const Batch<T>& batch) const {
        return {batch.inputs, targets.empty() ? batch.targets : targets.const_view(),
                rows.empty() ? batch.output_rows : rows.const_view()};
    }
};

/// "fn: argument 'arg' what".
std::string message(const std::string& fn, const std::string& arg, const std::string& what);
/// "3 x 4".
std::string shape(std::int64_t rows, std::int64_t cols);
/// A floating value as printf's %.6g writes it (-1e-09, 5e-07, 0.001, 1.79769e+308, inf): every
/// message prints numbers through this, so that their magnitude survives (std::to_string prints
/// -1e-9 as -0.000000).
std::string number(double value);

/// rows x cols (what = how the expected shape reads, e.g. "d x n"), a valid ld, a non-null pointer
/// when non-empty, and the context's memory space.
template <class T>
void check_matrix(const Context& ctx, const char* fn, const char* arg, MatrixView<const T> v,
                  std::int64_t rows, std::int64_t cols, const char* what);

/// NonFiniteInput with count and first index when v holds NaN/Inf. Synchronises (unless deferred).
template <class T>
void check_finite(Context& ctx, const char* fn, const char* arg, MatrixView<const T> v,
                  StatusBlock* defer = nullptr);

/// A finite, >= 0 scalar (damping, learning rate).
void check_nonnegative(const char* fn, const char* arg, double value);

/// theta is p x 1 and finite.
template <class T>
void check_theta(Context& ctx, const char* fn, const Mlp& model, MatrixView<const T> theta,
                 StatusBlock* defer = nullptr);

/// inputs d x n with n >= 1, finite; output_rows 1 x n with valid row indices iff the model selects
/// output rows.
template <class T>
void check_inputs(Context& ctx, const char* fn, const Mlp& model, MatrixView<const T> inputs,
                  MatrixView<const T> output_rows, StatusBlock* defer = nullptr,
                  Matrix<T>* safe_rows = nullptr);

/// Targets for `loss` and k outputs per sample: shape, finiteness and labels.
template <class T>
void check_targets(Context& ctx, const char* fn, Loss loss, std::int64_t k, std::int64_t n,
                   MatrixView<const T> targets, StatusBlock* defer = nullptr,
                   Matrix<T>* safe_labels = nullptr);

/// check_inputs, then check_targets, and that the loss fits the model (logistic needs k = 1,
/// softmax k >= 2). Deferred (defer and safe given), the index arrays are checked into fault
/// words and copied into *safe with their invalid entries zeroed: the step runs on
/// safe->apply(batch).
template <class T>
void check_batch(Context& ctx, const char* fn, const Mlp& model, const Batch<T>& batch, Loss loss,
                 StatusBlock* defer = nullptr, SafeIndices<T>* safe = nullptr);

}  // namespace ngd::detail
