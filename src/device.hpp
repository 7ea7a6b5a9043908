// Private interface to the CUDA runtime side of the library that is not a pipeline stage: device
// discovery, the per-context state (stream, handles, workspace), device memory and copies.
// Implemented in kernels/context.cu, or by src/cuda_stub.cpp (every call throws NotCompiled)
// without CUDA.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "ngd/context.hpp"

namespace ngd::cuda {

/// True when CUDA is compiled in and `device` can be used (driver present, device exists). Never
/// throws.
bool device_usable(int device) noexcept;
/// Creates the state of a CUDA context on `device`: throws DeviceUnavailable when it cannot be
/// used.
detail::CudaState* create_state(int device);
void destroy_state(detail::CudaState* state) noexcept;
/// "NVIDIA H100 80GB HBM3 (sm_90, 79 GiB)".
std::string describe(const detail::CudaState* state);
/// Waits for the state's stream.
void synchronize(detail::CudaState* state);

/// Device memory on the current device; throws OutOfMemory (requested, free) on failure.
void* allocate(std::size_t bytes);
void deallocate(void* ptr) noexcept;

/// Copies a rows x cols column-major block between any two memory spaces (cudaMemcpy2D).
/// Synchronises.
void copy_2d(const void* src, std::int64_t src_ld_bytes, void* dst, std::int64_t dst_ld_bytes,
             std::int64_t row_bytes, std::int64_t cols);

}  // namespace ngd::cuda
