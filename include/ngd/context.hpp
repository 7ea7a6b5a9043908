// The execution context: which backend runs the stages (the float64-accumulating CPU reference or
// CUDA), and for CUDA the device, stream, lazily created cuBLAS/cuSOLVER handles and a workspace
// cache. Contexts are move-only. Functions that wait for the device say so in their comment.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "ngd/export.hpp"
#include "ngd/matrix.hpp"

namespace ngd {

enum class Backend { reference, cuda };

namespace detail {
struct CudaState;
}

class NGD_API Context {
  public:
    /// The CPU reference backend: plain loops, double accumulation. Always available.
    static Context reference();
    /// The CUDA backend on `device`. Throws NotCompiled in a build without CUDA and
    /// DeviceUnavailable when no usable device (or driver) is present.
    static Context cuda(int device = 0);
    /// CUDA device 0 when usable, else the reference backend.
    static Context best();
    /// True when this build has CUDA and a device can be used.
    static bool cuda_available();

    Context(Context&&) noexcept;
    Context& operator=(Context&&) noexcept;
    Context(const Context&) = delete;
    Context& operator=(const Context&) = delete;
    ~Context();

    Backend backend() const { return backend_; }
    /// Where this context expects its matrices: host for reference, device for CUDA.
    MemorySpace memory_space() const {
        return backend_ == Backend::cuda ? MemorySpace::device : MemorySpace::host;
    }
    int device() const { return device_; }
    /// "reference (CPU)" or "CUDA device 0 (NVIDIA H100 80GB HBM3)".
    std::string description() const;
    /// Waits until all work queued on this context is done (synchronises).
    void synchronize();

    /// Upper bound in bytes for the scratch that the explicit Gram mode streams J through (one
    /// column block of A at a time). Default: 256 MiB.
    void set_memory_budget(std::size_t bytes) { memory_budget_ = bytes; }
    std::size_t memory_budget() const { return memory_budget_; }

    /// Internal: the CUDA state (stream, handles, workspace); null for the reference backend.
    detail::CudaState* cuda_state() const { return cuda_.get(); }

  private:
    Context(Backend backend, int device);
    Backend backend_ = Backend::reference;
    int device_ = -1;
    std::size_t memory_budget_ = std::size_t(256) << 20;
    struct CudaDeleter {
        void operator()(detail::CudaState* s) const noexcept;
    };
    std::unique_ptr<detail::CudaState, CudaDeleter> cuda_;
};

/// Copies src into dst (same shape; any memory spaces). Synchronises.
template <class T>
NGD_API void copy(Context& ctx, MatrixView<const T> src, MatrixView<T> dst);

/// A contiguous copy of `src` in `space`. Synchronises.
template <class T>
NGD_API Matrix<T> copy_to(Context& ctx, MatrixView<const T> src, MemorySpace space);

/// A contiguous copy of `src` in host memory. Synchronises.
template <class T>
Matrix<T> to_host(Context& ctx, MatrixView<const T> src) {
    return copy_to(ctx, src, MemorySpace::host);
}
/// A contiguous copy of `src` in the context's memory space. Synchronises.
template <class T>
Matrix<T> to_context(Context& ctx, MatrixView<const T> src) {
    return copy_to(ctx, src, ctx.memory_space());
}

}  // namespace ngd
