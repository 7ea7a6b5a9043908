// The CUDA runtime side of a Context (src/device.hpp): device discovery, the per-context state and
// its lazily created cuBLAS/cuSOLVER handles, the error helpers behind the check macros and the
// device guard. Device memory (Matrix and scratch) is in memory.cu.
#include <cstdint>
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

}  // namespace

std::string error_text(cudaError_t status) {
    return std::string(cudaGetErrorName(status)) + " (" + cudaGetErrorString(status) + ")";
}

void throw_cuda_error(cudaError_t status, const char* call, const char* file, int line) {
    cudaGetLastError();  // a non-sticky error must not be reported again by the next launch check
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

void check_launch(const char* kernel, const char* file, int line) {
    const cudaError_t status = cudaGetLastError();
    if (status != cudaSuccess) {
        throw CudaError(where(kernel, file, line) + ": kernel launch failed: " + error_text(status),
                        static_cast<int>(status));
    }
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
    NGD_CUDA_CHECK(cudaStreamCreateWithFlags(&state->stream, cudaStreamDefault));
    NGD_CUDA_CHECK(cudaMalloc(&state->status_device, detail::CudaState::kStatusBytes));
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
    NGD_CUDA_CHECK(cudaStreamSynchronize(state->stream));
}

}  // namespace ngd::cuda

namespace ngd::detail {

CudaState::~CudaState() {
    int current = -1;
    if (cudaGetDevice(&current) != cudaSuccess) current = -1;
    if (current != device) cudaSetDevice(device);
    if (stream != nullptr) cudaStreamSynchronize(stream);
    if (cusolver_params != nullptr) cusolverDnDestroyParams(cusolver_params);
    if (cusolver_handle != nullptr) cusolverDnDestroy(cusolver_handle);
    if (cublas_handle != nullptr) cublasDestroy(cublas_handle);
    for (const auto& block : free_blocks) cudaFree(block.second);
    free_blocks.clear();
    if (potrf_device != nullptr) cudaFree(potrf_device);
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
