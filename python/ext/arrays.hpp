// Arrays across the boundary: DLPack arrays (nanobind's ndarray: NumPy, PyTorch, CuPy, JAX) seen as
// ngd's column-major MatrixViews without a copy, and ngd's Matrix results handed to Python without
// a copy (a capsule owns the Matrix). A layout that has no copy-free view is refused with
// InvalidArgument naming the argument, its shape and strides; the Python layer (ngd/_arrays.py)
// makes the documented copies before calling here.
#pragma once

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>

#include "ngd/ngd.hpp"

namespace ngd_python {

namespace nb = nanobind;

/// Any array, read-only allowed (inputs).
using Input = nb::ndarray<nb::ro>;
/// Any writable array (theta in a step).
using Output = nb::ndarray<>;

/// "(5, 3)" and "(3, 1)" for messages.
std::string shape_text(const Input& a);
std::string strides_text(const Input& a);

/// Throws InvalidArgument "fn: argument 'name' ...: what".
[[noreturn]] void refuse(const char* fn, const char* name, const Input& a, const std::string& what);

/// Checks the array's device against the context (host arrays for reference and cpu contexts, CUDA
/// arrays of the context's device for a CUDA context) and its dtype against T.
template <class T>
void check_array(const ngd::Context& ctx, const char* fn, const char* name, const Input& a);

/// Rows are samples: (n, r) with unit stride along r (or r <= 1) is ngd's r x n (ld = stride 0);
/// (n,) is 1 x n. For x, targets, labels, output rows and outputs.
template <class T>
ngd::MatrixView<const T> sample_view(const ngd::Context& ctx, const char* fn, const char* name,
                                     const Input& a);
/// Column-major: (r, c) with unit stride along r (Fortran order, or a column block of one) is
/// r x c; (r,) is r x 1. For theta, J, Gram matrices, right-hand sides, residuals.
template <class T>
ngd::MatrixView<const T> column_view(const ngd::Context& ctx, const char* fn, const char* name,
                                     const Input& a);
/// The same for a writable array.
template <class T>
ngd::MatrixView<T> column_view_mut(const ngd::Context& ctx, const char* fn, const char* name,
                                   const Output& a);

/// An optional sample-major argument: an empty view for None.
template <class T>
ngd::MatrixView<const T> optional_sample_view(const ngd::Context& ctx, const char* fn,
                                              const char* name, const std::optional<Input>& a) {
    return a ? sample_view<T>(ctx, fn, name, *a) : ngd::MatrixView<const T>{};
}

/// Hands `m` to Python without a copy: a NumPy array for host memory, an array object with
/// __dlpack__ on a CUDA device. `shape` and `strides` (in elements) describe the Python view of
/// m's column-major buffer.
template <class T>
nb::object to_python(const ngd::Context& ctx, ngd::Matrix<T>&& m,
                     std::initializer_list<size_t> shape,
                     std::initializer_list<std::int64_t> strides);

/// True for float64, false for float32; InvalidArgument for any other dtype (the dtype of this
/// argument decides the precision of the call).
bool is_double(const char* fn, const char* name, const Input& a);

}  // namespace ngd_python
