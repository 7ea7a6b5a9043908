// Device memory: one stream-ordered pool per device behind both device Matrix memory
// (src/device.hpp) and a context's scratch, so the buffers a steady-state step creates and
// destroys never go back to cudaMalloc/cudaFree, and memory one of them frees serves the other.
// Every allocation failure releases the pool's idle memory and retries once; copy_2d for explicit
// copies.
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>

#include "common.cuh"
#include "device.hpp"
#include "ngd/error.hpp"

namespace ngd::cuda {
namespace {

// Device Matrix memory: one memory pool per device, allocated from and freed to in stream order on
// the legacy default stream. The legacy stream orders itself with every blocking stream (contexts
// use blocking streams), so a block freed while a context's kernels still read it is only reused
// after they finish, whichever context reuses it. The pool keeps freed memory (release threshold =
// max).
struct DevicePools {
    std::mutex mutex;
    std::map<int, cudaMemPool_t> pools;    // null: pools unsupported, plain cudaMalloc
    std::unordered_map<void*, int> owner;  // live allocation -> device
};

DevicePools& device_pools() {
    // Never destroyed: Matrix objects with static storage may be freed after static destructors
    // ran.
    static DevicePools* pools = new DevicePools;
    return *pools;
}

cudaMemPool_t pool_for(int device) {
    DevicePools& registry = device_pools();
    std::lock_guard<std::mutex> lock(registry.mutex);
    const auto it = registry.pools.find(device);
    if (it != registry.pools.end()) return it->second;
    int supported = 0;
    NGD_CUDA_CHECK(cudaDeviceGetAttribute(&supported, cudaDevAttrMemoryPoolsSupported, device));
    cudaMemPool_t pool = nullptr;
    if (supported != 0) {
        cudaMemPoolProps props;
        std::memset(&props, 0, sizeof(props));
        props.allocType = cudaMemAllocationTypePinned;
        props.handleTypes = cudaMemHandleTypeNone;
        props.location.type = cudaMemLocationTypeDevice;
        props.location.id = device;
        NGD_CUDA_CHECK(cudaMemPoolCreate(&pool, &props));
        std::uint64_t keep = UINT64_MAX;
        NGD_CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep));
    }
    registry.pools.emplace(device, pool);
    return pool;
}

std::uint64_t reserved_bytes(cudaMemPool_t pool) {
    std::uint64_t reserved = 0;
    if (cudaMemPoolGetAttribute(pool, cudaMemPoolAttrReservedMemCurrent, &reserved) !=
        cudaSuccess) {
        cudaGetLastError();
    }
    return reserved;
}

// From the pool in `stream`'s order (or cudaMalloc without pools); counts the allocations that
// reached the driver: a plain cudaMalloc, or the pool growing its reservation.
cudaError_t try_allocate(cudaMemPool_t pool, void** ptr, std::size_t bytes, cudaStream_t stream) {
    if (pool == nullptr) {
        const cudaError_t status = cudaMalloc(ptr, bytes);
        if (status == cudaSuccess) count_device_allocation();
        return status;
    }
    const std::uint64_t before = reserved_bytes(pool);
    const cudaError_t status = cudaMallocFromPoolAsync(ptr, bytes, pool, stream);
    if (status == cudaSuccess && reserved_bytes(pool) > before) count_device_allocation();
    return status;
}

// try_allocate, and on failure release_cached_memory() and once more.
cudaError_t allocate_or_retry(cudaMemPool_t pool, void** ptr, std::size_t bytes,
                              cudaStream_t stream) {
    cudaError_t status = try_allocate(pool, ptr, bytes, stream);
    if (status == cudaErrorMemoryAllocation) {
        cudaGetLastError();
        release_cached_memory();
        status = try_allocate(pool, ptr, bytes, stream);
    }
    return status;
}

[[noreturn]] void throw_out_of_memory(const char* fn, std::size_t bytes, int device) {
    std::size_t free_bytes = 0, total_bytes = 0;
    if (cudaMemGetInfo(&free_bytes, &total_bytes) != cudaSuccess) {
        cudaGetLastError();
        free_bytes = 0;
    }
    throw OutOfMemory(std::string(fn) + ": device allocation of " + std::to_string(bytes) +
                          " bytes failed on CUDA device " + std::to_string(device) + " (" +
                          std::to_string(free_bytes) + " bytes free)",
                      static_cast<std::int64_t>(bytes), static_cast<std::int64_t>(free_bytes));
}

}  // namespace

void release_cached_memory() noexcept {
    // Every pending free (stream-ordered, on any stream) has happened once the device is idle;
    // then the pool's unused reservation goes back to the driver, for cuBLAS, cuSOLVER, a
    // kernel's local memory or the next allocation.
    count_memory_release();
    count_host_sync();
    if (cudaDeviceSynchronize() != cudaSuccess) cudaGetLastError();
    int device = 0;
    if (cudaGetDevice(&device) != cudaSuccess) {
        cudaGetLastError();
        return;
    }
    try {
        const cudaMemPool_t pool = pool_for(device);
        if (pool != nullptr && cudaMemPoolTrimTo(pool, 0) != cudaSuccess) cudaGetLastError();
    } catch (...) {
        cudaGetLastError();  // no pool to trim: nothing cached
    }
}

void* allocate(std::size_t bytes) {
    if (bytes == 0) return nullptr;
    int device = 0;
    const cudaError_t found = cudaGetDevice(&device);
    if (found != cudaSuccess) {
        cudaGetLastError();
        throw DeviceUnavailable(
            "ngd::Matrix: device memory needs a usable CUDA device: "
            "cudaGetDevice failed: " +
            error_text(found));
    }
    const cudaMemPool_t pool = pool_for(device);
    void* ptr = nullptr;
    const cudaError_t status = allocate_or_retry(pool, &ptr, bytes, cudaStreamLegacy);
    if (status == cudaErrorMemoryAllocation) {
        cudaGetLastError();
        throw_out_of_memory("ngd::Matrix", bytes, device);
    }
    if (status != cudaSuccess) {
        // A request beyond the device's memory may come back as another code (invalid value):
        // it is still an out-of-memory, not a CUDA failure.
        cudaGetLastError();
        std::size_t free_bytes = 0, total_bytes = 0;
        if (cudaMemGetInfo(&free_bytes, &total_bytes) == cudaSuccess && bytes > free_bytes) {
            throw_out_of_memory("ngd::Matrix", bytes, device);
        }
        throw_cuda_error(status, pool != nullptr ? "cudaMallocFromPoolAsync" : "cudaMalloc",
                         __FILE__, __LINE__);
    }
    DevicePools& registry = device_pools();
    std::lock_guard<std::mutex> lock(registry.mutex);
    registry.owner.emplace(ptr, device);
    return ptr;
}

void deallocate(void* ptr) noexcept {
    if (ptr == nullptr) return;
    int device = -1;
    cudaMemPool_t pool = nullptr;
    {
        DevicePools& registry = device_pools();
        std::lock_guard<std::mutex> lock(registry.mutex);
        const auto it = registry.owner.find(ptr);
        if (it != registry.owner.end()) {
            device = it->second;
            registry.owner.erase(it);
            const auto p = registry.pools.find(device);
            if (p != registry.pools.end()) pool = p->second;
        }
    }
    int current = -1;
    if (cudaGetDevice(&current) != cudaSuccess) current = -1;
    if (device >= 0 && device != current) cudaSetDevice(device);
    if (pool != nullptr) {
        cudaFreeAsync(ptr, cudaStreamLegacy);
    } else {
        cudaFree(ptr);
    }
    if (device >= 0 && device != current && current >= 0) cudaSetDevice(current);
    cudaGetLastError();  // errors here (e.g. at process exit) are not reportable; never leave them
}

void copy_2d(const void* src, std::int64_t src_ld_bytes, void* dst, std::int64_t dst_ld_bytes,
             std::int64_t row_bytes, std::int64_t cols) {
    if (row_bytes <= 0 || cols <= 0) return;
    // A single column has no pitch; cudaMemcpy2D still wants pitch >= width.
    const auto width = static_cast<std::size_t>(row_bytes);
    const std::size_t spitch = cols == 1 ? width : static_cast<std::size_t>(src_ld_bytes);
    const std::size_t dpitch = cols == 1 ? width : static_cast<std::size_t>(dst_ld_bytes);
    NGD_CUDA_CHECK(cudaMemcpy2D(dst, dpitch, src, spitch, width, static_cast<std::size_t>(cols),
                                cudaMemcpyDefault));
    // Device-to-device copies return early; the contract says this call synchronises.
    synchronize_stream(cudaStreamLegacy);
}

}  // namespace ngd::cuda

namespace ngd::detail {

void* CudaState::acquire(std::size_t bytes, std::size_t& bucket) {
    bucket = bytes;
    const cudaMemPool_t pool = cuda::pool_for(device);
    void* ptr = nullptr;
    const cudaError_t status = cuda::allocate_or_retry(pool, &ptr, bytes, stream);
    if (status == cudaErrorMemoryAllocation) {
        cudaGetLastError();
        cuda::throw_out_of_memory("ngd (CUDA scratch)", bytes, device);
    }
    if (status != cudaSuccess) {
        // As for Matrix memory: a request beyond the device's memory is an out-of-memory.
        cudaGetLastError();
        std::size_t free_bytes = 0, total_bytes = 0;
        if (cudaMemGetInfo(&free_bytes, &total_bytes) == cudaSuccess && bytes > free_bytes) {
            cuda::throw_out_of_memory("ngd (CUDA scratch)", bytes, device);
        }
        cuda::throw_cuda_error(status, pool != nullptr ? "cudaMallocFromPoolAsync" : "cudaMalloc",
                               __FILE__, __LINE__);
    }
    return ptr;
}

void CudaState::release(void* ptr, std::size_t) noexcept {
    if (ptr == nullptr) return;
    // Stream-ordered: the block is reused only after the work queued on `stream` that reads it.
    // Without pools cudaFree waits for the device itself.
    int supported = 0;
    if (cudaDeviceGetAttribute(&supported, cudaDevAttrMemoryPoolsSupported, device) ==
            cudaSuccess &&
        supported != 0) {
        cudaFreeAsync(ptr, stream);
    } else {
        cudaFree(ptr);
    }
    cudaGetLastError();
}

}  // namespace ngd::detail
