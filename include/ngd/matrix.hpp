// Column-major matrices: MatrixView (non-owning: pointer, shape, leading dimension, memory space)
// and Matrix (owning, move-only, in host or device memory). Copies between memory spaces are
// explicit (ngd::copy in context.hpp). Vectors are n x 1 matrices.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "ngd/export.hpp"

namespace ngd {

/// Where a buffer lives. Host memory is ordinary pageable memory; device memory is CUDA global
/// memory on the context's device.
enum class MemorySpace { host, device };

namespace detail {
/// Allocates `bytes` in `space`; throws OutOfMemory (with bytes requested and free) or
/// NotCompiled/DeviceUnavailable for device memory without CUDA. Never returns null for bytes > 0.
NGD_API void* allocate(MemorySpace space, std::size_t bytes);
/// Frees memory from allocate(); never throws.
NGD_API void deallocate(MemorySpace space, void* ptr) noexcept;
/// Throws InvalidArgument naming the negative size.
[[noreturn]] NGD_API void throw_negative_size(std::int64_t rows, std::int64_t cols);
}  // namespace detail

/// A non-owning column-major view: element (r, c) is data[r + c * ld].
template <class T>
struct MatrixView {
    T* data = nullptr;
    std::int64_t rows = 0;
    std::int64_t cols = 0;
    std::int64_t ld = 0;  ///< leading dimension, >= max(1, rows)
    MemorySpace space = MemorySpace::host;

    MatrixView() = default;
    MatrixView(T* data, std::int64_t rows, std::int64_t cols, std::int64_t ld,
               MemorySpace space = MemorySpace::host)
        : data(data), rows(rows), cols(cols), ld(ld), space(space) {}
    MatrixView(T* data, std::int64_t rows, std::int64_t cols, MemorySpace space = MemorySpace::host)
        : data(data), rows(rows), cols(cols), ld(rows > 0 ? rows : 1), space(space) {}
    /// A view of T converts to a view of const T.
    template <class U,
              class = std::enable_if_t<std::is_same_v<const U, T> && !std::is_same_v<U, T>>>
    MatrixView(const MatrixView<U>& other)  // NOLINT(google-explicit-constructor)
        : data(other.data), rows(other.rows), cols(other.cols), ld(other.ld), space(other.space) {}

    std::int64_t size() const { return rows * cols; }
    bool empty() const { return rows == 0 || cols == 0; }
    bool contiguous() const { return ld == rows || cols <= 1; }
    /// Host views only.
    T& operator()(std::int64_t r, std::int64_t c) const { return data[r + c * ld]; }
    /// Columns [c0, c0 + n).
    MatrixView col_block(std::int64_t c0, std::int64_t n) const {
        return MatrixView(data + c0 * ld, rows, n, ld, space);
    }
    /// Rows [r0, r0 + m).
    MatrixView row_block(std::int64_t r0, std::int64_t m) const {
        return MatrixView(data + r0, m, cols, ld, space);
    }
};

/// An owning, contiguous (ld == rows) column-major matrix. Move-only; freed on destruction.
template <class T>
class Matrix {
  public:
    Matrix() = default;
    /// Allocates rows x cols in `space`; host memory is zero-initialised, device memory is not.
    /// Throws InvalidArgument for a negative size, OutOfMemory when the allocation fails.
    Matrix(std::int64_t rows, std::int64_t cols, MemorySpace space = MemorySpace::host)
        : rows_(rows), cols_(cols), space_(space) {
        if (rows < 0 || cols < 0) detail::throw_negative_size(rows, cols);
        const auto bytes = static_cast<std::size_t>(rows * cols) * sizeof(T);
        if (bytes > 0) {
            data_ = static_cast<T*>(detail::allocate(space, bytes));
        }
        if (space == MemorySpace::host) {
            for (std::int64_t i = 0; i < rows * cols; ++i) data_[i] = T(0);
        }
    }
    Matrix(const Matrix&) = delete;
    Matrix& operator=(const Matrix&) = delete;
    Matrix(Matrix&& o) noexcept { swap(o); }
    Matrix& operator=(Matrix&& o) noexcept {
        Matrix tmp(std::move(o));
        swap(tmp);
        return *this;
    }
    ~Matrix() { detail::deallocate(space_, data_); }

    T* data() { return data_; }
    const T* data() const { return data_; }
    std::int64_t rows() const { return rows_; }
    std::int64_t cols() const { return cols_; }
    std::int64_t size() const { return rows_ * cols_; }
    bool empty() const { return size() == 0; }
    MemorySpace space() const { return space_; }

    MatrixView<T> view() { return MatrixView<T>(data_, rows_, cols_, space_); }
    MatrixView<const T> view() const { return MatrixView<const T>(data_, rows_, cols_, space_); }
    MatrixView<const T> const_view() const { return view(); }

    /// Host matrices only.
    T& operator()(std::int64_t r, std::int64_t c) { return data_[r + c * rows_]; }
    const T& operator()(std::int64_t r, std::int64_t c) const { return data_[r + c * rows_]; }
    T& operator[](std::int64_t i) { return data_[i]; }
    const T& operator[](std::int64_t i) const { return data_[i]; }

  private:
    void swap(Matrix& o) noexcept {
        std::swap(data_, o.data_);
        std::swap(rows_, o.rows_);
        std::swap(cols_, o.cols_);
        std::swap(space_, o.space_);
    }
    T* data_ = nullptr;
    std::int64_t rows_ = 0;
    std::int64_t cols_ = 0;
    MemorySpace space_ = MemorySpace::host;
};

}  // namespace ngd
