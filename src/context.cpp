// Context construction and backend selection, memory allocation for Matrix, and explicit copies
// between memory spaces. CUDA specifics live behind src/device.hpp (kernels/context.cu or the
// stub).
#include "ngd/context.hpp"

#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <tuple>

#include "check.hpp"
#include "cpu_backend.hpp"
#include "device.hpp"
#include "ngd/error.hpp"

namespace ngd {

Context::Context(Backend backend, int device, int n_threads)
    : backend_(backend), device_(device), n_threads_(n_threads) {
    if (backend == Backend::cuda) cuda_.reset(cuda::create_state(device));
}
// A moved-from context is left a valid reference context (never a CUDA one without its state).
Context::Context(Context&& other) noexcept
    : backend_(other.backend_),
      device_(other.device_),
      n_threads_(other.n_threads_),
      memory_budget_(other.memory_budget_),
      host_syncs_(other.host_syncs_),
      cuda_(std::move(other.cuda_)) {
    other.backend_ = Backend::reference;
    other.device_ = -1;
    other.n_threads_ = 0;
}
Context& Context::operator=(Context&& other) noexcept {
    if (this != &other) {
        backend_ = other.backend_;
        device_ = other.device_;
        n_threads_ = other.n_threads_;
        memory_budget_ = other.memory_budget_;
        host_syncs_ = other.host_syncs_;
        cuda_ = std::move(other.cuda_);
        other.backend_ = Backend::reference;
        other.device_ = -1;
        other.n_threads_ = 0;
    }
    return *this;
}
Context::~Context() = default;

void Context::CudaDeleter::operator()(detail::CudaState* s) const noexcept {
    cuda::destroy_state(s);
}

Context Context::reference() { return Context(Backend::reference, -1); }

Context Context::cuda(int device) {
    if (device < 0) {
        throw InvalidArgument(detail::message("ngd::Context::cuda", "device",
                                              "must be >= 0, got " + std::to_string(device)));
    }
    return Context(Backend::cuda, device);
}

Context Context::cpu(int n_threads) {
    if (n_threads < 0) {
        throw InvalidArgument(
            detail::message("ngd::Context::cpu", "n_threads",
                            "must be >= 0 (0: one per core), got " + std::to_string(n_threads)));
    }
    cpu::require_compiled("ngd::Context::cpu");
    return Context(Backend::cpu, -1, n_threads);
}

bool Context::cuda_available() { return cuda::device_usable(0); }

bool Context::cpu_available() { return cpu::compiled(); }

Context Context::best() {
    if (cuda_available()) return cuda(0);
    return cpu_available() ? cpu() : reference();
}

std::string Context::description() const {
    if (backend_ == Backend::reference) return "reference (CPU, float64 accumulation)";
    if (backend_ == Backend::cpu) return cpu::describe(n_threads_);
    return "CUDA device " + std::to_string(device_) + " (" + cuda::describe(cuda_.get()) + ")";
}

void Context::synchronize() {
    note_host_sync();
    if (backend_ == Backend::cuda) cuda::synchronize(cuda_.get());
}

namespace detail {

void* allocate(MemorySpace space, std::size_t bytes) {
    if (bytes == 0) return nullptr;
    if (space == MemorySpace::device) return cuda::allocate(bytes);
    void* p = std::malloc(bytes);
    if (p == nullptr) {
        throw OutOfMemory(
            "ngd::Matrix: host allocation of " + std::to_string(bytes) + " bytes failed",
            static_cast<std::int64_t>(bytes), 0);
    }
    return p;
}

void throw_negative_size(std::int64_t rows, std::int64_t cols) {
    throw InvalidArgument(
        message("ngd::Matrix", "rows, cols", "must be >= 0, got " + shape(rows, cols)));
}

void deallocate(MemorySpace space, void* ptr) noexcept {
    if (ptr == nullptr) return;
    if (space == MemorySpace::device) {
        cuda::deallocate(ptr);
    } else {
        std::free(ptr);
    }
}

}  // namespace detail

template <class T>
void copy(Context& ctx, MatrixView<const T> src, MatrixView<T> dst) {
    const char* fn = "ngd::copy";
    if (src.rows != dst.rows || src.cols != dst.cols) {
        throw InvalidArgument(detail::message(fn, "dst",
                                              "must have the shape of src, " +
                                                  detail::shape(src.rows, src.cols) + ", got " +
                                                  detail::shape(dst.rows, dst.cols)));
    }
    for (const auto& [name, rows, ld, data] :
         {std::tuple{"src", src.rows, src.ld, static_cast<const void*>(src.data)},
          std::tuple{"dst", dst.rows, dst.ld, static_cast<const void*>(dst.data)}}) {
        if (ld < (rows > 1 ? rows : 1)) {
            throw InvalidArgument(detail::message(
                fn, name,
                "has leading dimension " + std::to_string(ld) + " < rows " + std::to_string(rows)));
        }
        if (data == nullptr && src.rows > 0 && src.cols > 0) {
            throw InvalidArgument(
                detail::message(fn, name, "is " + detail::shape(src.rows, src.cols) + " but null"));
        }
    }
    if (src.empty()) return;
    if (dst.space == MemorySpace::host) ctx.note_host_sync();
    if (src.space == MemorySpace::host && dst.space == MemorySpace::host) {
        for (std::int64_t c = 0; c < src.cols; ++c) {
            std::memcpy(dst.data + c * dst.ld, src.data + c * src.ld, sizeof(T) * src.rows);
        }
        return;
    }
    cuda::copy_2d(src.data, src.ld * std::int64_t(sizeof(T)), dst.data,
                  dst.ld * std::int64_t(sizeof(T)), src.rows * std::int64_t(sizeof(T)), src.cols);
}

template <class T>
Matrix<T> copy_to(Context& ctx, MatrixView<const T> src, MemorySpace space) {
    Matrix<T> out(src.rows, src.cols, space);
    copy<T>(ctx, src, out.view());
    return out;
}

template void copy<float>(Context&, MatrixView<const float>, MatrixView<float>);
template void copy<double>(Context&, MatrixView<const double>, MatrixView<double>);
template Matrix<float> copy_to<float>(Context&, MatrixView<const float>, MemorySpace);
template Matrix<double> copy_to<double>(Context&, MatrixView<const double>, MemorySpace);

}  // namespace ngd
