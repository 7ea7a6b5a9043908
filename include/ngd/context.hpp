// The execution context: which backend runs the stages (the float64-accumulating CPU reference, the
// fast CPU backend on BLAS/LAPACK/OpenMP, or CUDA), its thread count on the CPU, and for CUDA the
// device, stream, lazily created cuBLAS/cuSOLVER handles and a workspace cache. Contexts are
// move-only. Functions that wait for the device say so in their comment.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "ngd/export.hpp"
#include "ngd/matrix.hpp"

namespace ngd {

enum class Backend { reference, cuda, cpu };

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
    /// The fast CPU backend (BLAS, LAPACK, OpenMP) with `n_threads` threads for its BLAS calls and
    /// parallel loops (0: OpenMP's default, usually one per core). Throws NotCompiled in a build
    /// without BLAS/LAPACK and InvalidArgument for n_threads < 0.
    static Context cpu(int n_threads = 0);
    /// CUDA device 0 when usable, else the cpu backend when compiled, else the reference backend.
    static Context best();
    /// True when this build has CUDA and a device can be used.
    static bool cuda_available();
    /// True when this build has the cpu backend (BLAS and LAPACK were found at configure time).
    static bool cpu_available();

    Context(Context&&) noexcept;
    Context& operator=(Context&&) noexcept;
    Context(const Context&) = delete;
    Context& operator=(const Context&) = delete;
    ~Context();

    Backend backend() const { return backend_; }
    /// Where this context expects its matrices: host for reference and cpu, device for CUDA.
    MemorySpace memory_space() const {
        return backend_ == Backend::cuda ? MemorySpace::device : MemorySpace::host;
    }
    int device() const { return device_; }
    /// Threads of a cpu context (0: OpenMP's default); 0 for the other backends.
    int n_threads() const { return n_threads_; }
    /// "reference (CPU, float64 accumulation)", "cpu (BLAS, LAPACK, OpenMP; 2 threads)" or
    /// "CUDA device 0 (NVIDIA H100 80GB HBM3)".
    std::string description() const;
    /// Waits until all work queued on this context is done (synchronises).
    void synchronize();

    /// Debug counter: the points where the library waited for this context's backend, i.e. read
    /// one of its results on the host (a scalar a stage returned, a copy into host memory) or
    /// called synchronize(). On CUDA each is a host synchronisation; the CPU backends count the
    /// same points (there is nothing to wait for), so the count is a property of the code path
    /// and reads the same on every backend. A steady-state NaturalGradient step with fixed
    /// damping makes one (docs/performance.md, "One host synchronisation").
    std::int64_t host_syncs() const { return host_syncs_; }
    /// Internal: counts one such point.
    void note_host_sync() { ++host_syncs_; }

    /// Upper bound in bytes for the scratch that the explicit Gram mode streams J through (one
    /// column block of A at a time). Default: 256 MiB.
    void set_memory_budget(std::size_t bytes) { memory_budget_ = bytes; }
    std::size_t memory_budget() const { return memory_budget_; }

    /// Internal: the CUDA state (stream, handles, workspace); null for the reference backend.
    detail::CudaState* cuda_state() const { return cuda_.get(); }

  private:
    Context(Backend backend, int device, int n_threads = 0);
    Backend backend_ = Backend::reference;
    int device_ = -1;
    int n_threads_ = 0;
    std::size_t memory_budget_ = std::size_t(256) << 20;
    std::int64_t host_syncs_ = 0;
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
