// The CUDA runtime side of a Context (src/device.hpp): device discovery, the per-context state and
// its lazily created cuBLAS/cuSOLVER handles, the error helpers behind the check macros and the
// device guard. Device memory (Matrix and scratch) is in memory.cu.
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "common.cuh"
#include "device.hpp"
#include "ngd/error.hpp"

namespace ngd::cuda {
namespace {

// "kernels/gram.cu" rather than the build machine's absolute path.
const char* source_name(const char* file) {
    const char* found = nullptr;
    for (const char* p = std::strstr(file, "kernels/"); p != nullptr;
         p = std::strstr(p + 1, "kernels/")) {
        found = p;
    }
    if (found != nullptr) return found;
    const char* slash = std::strrchr(file, '/');
    return slash != nullptr ? slash + 1 : file;
}

std::string where(const char* call, const char* file, int line) {
    return std::string(call) + " at " + source_name(file) + ":" + std::to_string(line);
}

const char* cusolver_status_name(cusolverStatus_t status) {
    switch (status) {
        case CUSOLVER_STATUS_NOT_INITIALIZED:
            return "CUSOLVER_STATUS_NOT_INITIALIZED";
        case CUSOLVER_STATUS_ALLOC_FAILED:
            return "CUSOLVER_STATUS_ALLOC_FAILED";
        case CUSOLVER_STATUS_INVALID_VALUE:
            return "CUSOLVER_STATUS_INVALID_VALUE";
        case CUSOLVER_STATUS_ARCH_MISMATCH:
            return "CUSOLVER_STATUS_ARCH_MISMATCH";
        case CUSOLVER_STATUS_EXECUTION_FAILED:
            return "CUSOLVER_STATUS_EXECUTION_FAILED";
        case CUSOLVER_STATUS_INTERNAL_ERROR:
            return "CUSOLVER_STATUS_INTERNAL_ERROR";
        case CUSOLVER_STATUS_NOT_SUPPORTED:
            return "CUSOLVER_STATUS_NOT_SUPPORTED";
        case CUSOLVER_STATUS_INVALID_WORKSPACE:
            return "CUSOLVER_STATUS_INVALID_WORKSPACE";
        default:
            return "cusolverStatus_t";
    }
}

std::size_t free_device_bytes() noexcept {
    std::size_t free_bytes = 0, total_bytes = 0;
    if (cudaMemGetInfo(&free_bytes, &total_bytes) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return free_bytes;
}

[[noreturn]] void throw_out_of_memory_from(const std::string& head, cudaError_t status) {
    const std::size_t free_bytes = free_device_bytes();
    throw OutOfMemory(head + " (" + std::to_string(free_bytes) + " bytes free" +
                          (status != cudaSuccess ? ", " + error_text(status) : std::string()) + ")",
                      0, static_cast<std::int64_t>(free_bytes));
}

struct AtomicCounters {
    std::atomic<std::int64_t> host_syncs{0}, device_allocations{0}, memory_releases{0},
        gram_layers_fused{0}, gram_layers_cublas{0};
};
AtomicCounters& atomic_counters() {
    static AtomicCounters* c = new AtomicCounters;  // never destroyed (used at exit)
    return *c;
}

// NGD_GRAM_ROUTE and friends, read once per state (gram_route.cu documents the rule).
void read_environment(detail::CudaState& state) {
    if (const char* route = std::getenv("NGD_GRAM_ROUTE")) {
        const std::string r = route;
        if (r == "fused") state.gram_route = detail::CudaState::GramRoute::fused;
        if (r == "cublas") state.gram_route = detail::CudaState::GramRoute::cublas;
    }
    if (const char* depth = std::getenv("NGD_GRAM_CUBLAS_MIN_DEPTH")) {
        const long long d = std::atoll(depth);
        if (d > 0) state.gram_cublas_min_depth = d;
    }
    if (const char* tf32 = std::getenv("NGD_FLOAT_TF32")) {
        state.float_tf32 = std::string(tf32) == "1";
    }
}

}  // namespace

Counters counters() noexcept {
    const AtomicCounters& c = atomic_counters();
    Counters out;
    out.host_syncs = c.host_syncs.load();
    out.device_allocations = c.device_allocations.load();
    out.memory_releases = c.memory_releases.load();
    out.gram_layers_fused = c.gram_layers_fused.load();
    out.gram_layers_cublas = c.gram_layers_cublas.load();
    return out;
}
void count_host_sync() noexcept { ++atomic_counters().host_syncs; }
void count_device_allocation() noexcept { ++atomic_counters().device_allocations; }
void count_memory_release() noexcept { ++atomic_counters().memory_releases; }
void count_gram_layer(bool cublas) noexcept {
    if (cublas) {
        ++atomic_counters().gram_layers_cublas;
    } else {
        ++atomic_counters().gram_layers_fused;
    }
}

void synchronize_stream(cudaStream_t stream) {
    count_host_sync();
    NGD_CUDA_CHECK(cudaStreamSynchronize(stream));
}

std::string error_text(cudaError_t status) {
    return std::string(cudaGetErrorName(status)) + " (" + cudaGetErrorString(status) + ")";
}

void throw_cuda_error(cudaError_t status, const char* call, const char* file, int line) {
    cudaGetLastError();  // a non-sticky error must not be reported again by the next launch check
    if (status == cudaErrorMemoryAllocation) {
        throw_out_of_memory_from(where(call, file, line) + " could not allocate device memory",
                                 status);
    }
    throw CudaError(where(call, file, line) + " failed: " + error_text(status),
                    static_cast<int>(status));
}

void throw_cublas_error(cublasStatus_t status, const char* call, const char* file, int line) {
    throw CublasError(where(call, file, line) + " failed: " + cublasGetStatusName(status) + " (" +
                          cublasGetStatusString(status) + ")",
                      static_cast<int>(status));
}

void throw_cusolver_error(cusolverStatus_t status, const char* call, const char* file, int line) {
    throw CusolverError(where(call, file, line) + " failed: " + cusolver_status_name(status) +
                            " (" + std::to_string(static_cast<int>(status)) + ")",
                        static_cast<int>(status));
}

void throw_launch_error(cudaError_t status, const char* kernel, const char* file, int line) {
    cudaGetLastError();
    if (status == cudaErrorMemoryAllocation) {
        throw_out_of_memory_from(
            where(kernel, file, line) + ": kernel launch could not allocate device memory", status);
    }
    throw CudaError(where(kernel, file, line) + ": kernel launch failed: " + error_text(status),
                    static_cast<int>(status));
}

void throw_library_out_of_memory(const char* call, const char* file, int line) {
    throw_out_of_memory_from(where(call, file, line) +
                                 " could not allocate its workspace, even after the cached memory "
                                 "was released",
                             cudaSuccess);
}

DeviceGuard::DeviceGuard(int device) {
    int current = -1;
    NGD_CUDA_CHECK(cudaGetDevice(&current));
    if (current != device) {
        NGD_CUDA_CHECK(cudaSetDevice(device));
        previous_ = current;
    }
}

DeviceGuard::~DeviceGuard() {
    if (previous_ >= 0 && cudaSetDevice(previous_) != cudaSuccess) cudaGetLastError();
}

// ---- device.hpp
// -----------------------------------------------------------------------------------

bool device_usable(int device) noexcept {
    // Without a driver every runtime call fails (cudaErrorInsufficientDriver, cudaErrorNoDevice,
    // ...): any error means "not usable", and is cleared so no later check reports it.
    int count = 0;
    if (device < 0 || cudaGetDeviceCount(&count) != cudaSuccess || device >= count) {
        cudaGetLastError();
        return false;
    }
    int previous = -1;
    if (cudaGetDevice(&previous) != cudaSuccess) {
        cudaGetLastError();
        return false;
    }
    // cudaSetDevice initialises the primary context (CUDA >= 12), which is what "usable" needs.
    const bool usable = cudaSetDevice(device) == cudaSuccess;
    if (previous != device) cudaSetDevice(previous);
    cudaGetLastError();
    return usable;
}

detail::CudaState* create_state(int device) {
    const char* fn = "ngd::Context::cuda";
    int count = 0;
    cudaError_t status = cudaGetDeviceCount(&count);
    if (status != cudaSuccess) {
        cudaGetLastError();
        throw DeviceUnavailable(std::string(fn) + ": no usable CUDA device: cudaGetDeviceCount " +
                                "failed: " + error_text(status));
    }
    if (device < 0 || device >= count) {
        throw DeviceUnavailable(std::string(fn) + ": device " + std::to_string(device) +
                                " requested, but " + std::to_string(count) +
                                " CUDA device(s) are present");
    }
    // The context's device becomes the thread's current device, so that Matrix memory (allocated on
    // the current device) lands where the context's kernels run.
    status = cudaSetDevice(device);
    if (status != cudaSuccess) {
        cudaGetLastError();
        throw DeviceUnavailable(std::string(fn) + ": CUDA device " + std::to_string(device) +
                                " cannot be used: cudaSetDevice failed: " + error_text(status));
    }
    auto state = std::make_unique<detail::CudaState>();
    state->device = device;
    cudaDeviceProp prop;
    NGD_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
    state->device_name = prop.name;
    state->cc_major = prop.major;
    state->cc_minor = prop.minor;
    state->total_memory = prop.totalGlobalMem;
    read_environment(*state);
    NGD_CUDA_CHECK(cudaStreamCreateWithFlags(&state->stream, cudaStreamDefault));
    NGD_CUDA_CHECK(cudaMalloc(&state->status_device, detail::CudaState::kStatusBytes));
    count_device_allocation();
    NGD_CUDA_CHECK(cudaMallocHost(&state->status_host, detail::CudaState::kStatusBytes));
    return state.release();
}

void destroy_state(detail::CudaState* state) noexcept { delete state; }

std::string describe(const detail::CudaState* state) {
    return state->device_name + " (sm_" + std::to_string(state->cc_major) +
           std::to_string(state->cc_minor) + ", " + std::to_string(state->total_memory >> 30) +
           " GiB)";
}

void synchronize(detail::CudaState* state) {
    DeviceGuard guard(state->device);
    synchronize_stream(state->stream);
}

}  // namespace ngd::cuda

namespace ngd::detail {

CudaState::~CudaState() {
    int current = -1;
    if (cudaGetDevice(&current) != cudaSuccess) current = -1;
    if (current != device) cudaSetDevice(device);
    if (potrf_device != nullptr) release(potrf_device, potrf_device_bytes);
    if (stream != nullptr) cudaStreamSynchronize(stream);
    if (cusolver_params != nullptr) cusolverDnDestroyParams(cusolver_params);
    if (cusolver_handle != nullptr) cusolverDnDestroy(cusolver_handle);
    if (cublas_handle != nullptr) cublasDestroy(cublas_handle);
    if (status_device != nullptr) cudaFree(status_device);
    if (status_host != nullptr) cudaFreeHost(status_host);
    if (stream != nullptr) cudaStreamDestroy(stream);
    if (current >= 0 && current != device) cudaSetDevice(current);
    cudaGetLastError();
}

cublasHandle_t CudaState::blas() {
    if (cublas_handle == nullptr) {
        cublasHandle_t handle = nullptr;
        NGD_CUBLAS_CHECK(cublasCreate(&handle));
        const cublasStatus_t status = cublasSetStream(handle, stream);
        if (status != CUBLAS_STATUS_SUCCESS) {
            cublasDestroy(handle);
            cuda::throw_cublas_error(status, "cublasSetStream(handle, stream)", __FILE__, __LINE__);
        }
        cublas_handle = handle;
    }
    return cublas_handle;
}

cusolverDnHandle_t CudaState::solver() {
    if (cusolver_handle == nullptr) {
        cusolverDnHandle_t handle = nullptr;
        NGD_CUSOLVER_CHECK(cusolverDnCreate(&handle));
        const cusolverStatus_t status = cusolverDnSetStream(handle, stream);
        if (status != CUSOLVER_STATUS_SUCCESS) {
            cusolverDnDestroy(handle);
            cuda::throw_cusolver_error(status, "cusolverDnSetStream(handle, stream)", __FILE__,
                                       __LINE__);
        }
        cusolver_handle = handle;
    }
    return cusolver_handle;
}

cusolverDnParams_t CudaState::solver_params() {
    if (cusolver_params == nullptr) NGD_CUSOLVER_CHECK(cusolverDnCreateParams(&cusolver_params));
    return cusolver_params;
}

}  // namespace ngd::detail
