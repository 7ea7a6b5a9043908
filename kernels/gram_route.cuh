// The structured Gram's two per-layer routes (the fused tile kernel, gram.cu; the cuBLAS route,
// gram_route.cu, which documents the rule that picks one per layer), declared for gram.cu and the
// benchmarks, and the TF32 opt-in scope of the float products.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common.cuh"

namespace ngd::cuda {

/// The per-layer rule (documented in gram_route.cu): route is a CudaState::GramRoute as int.
bool gram_route_uses_cublas(int route, std::int64_t min_depth, std::int64_t depth,
                            std::int64_t n_rows);
bool gram_layer_uses_cublas(const CudaState& state, std::int64_t depth, std::int64_t n_rows);
/// Columns per seed-Gram panel of the cuBLAS route for an N-row Gram of entries of type_size.
std::int64_t gram_panel_width(const CudaState& state, std::int64_t n_rows, std::size_t type_size);
/// Lower triangle of g <- beta g + (S[r/k, c/k] + s_offset) (seeds^T seeds)[r, c]: seeds is
/// depth x N, s is n x n (lower read). The fused tile kernel (gram.cu), or cuBLAS panels and one
/// Hadamard pass per panel (gram_route.cu).
template <class T>
void gram_layer_fused(CudaState& state, const T* seeds, std::int64_t depth, std::int64_t n_rows,
                      const T* s, std::int64_t lds, T s_offset, std::int64_t k, T beta, T* g,
                      std::int64_t ldg);
template <class T>
void gram_layer_cublas(CudaState& state, const T* seeds, std::int64_t depth, std::int64_t n_rows,
                       const T* s, std::int64_t lds, T s_offset, std::int64_t k, T beta, T* g,
                       std::int64_t ldg);

/// Puts a cuBLAS handle in TF32 tensor-op mode for float products while alive when `on`, and back
/// to the default (full float32) after.
class Tf32Scope {
  public:
    Tf32Scope(cublasHandle_t h, bool on) : h_(on ? h : nullptr) {
        if (h_ != nullptr) NGD_CUBLAS_CHECK(cublasSetMathMode(h_, CUBLAS_TF32_TENSOR_OP_MATH));
    }
    ~Tf32Scope() {
        if (h_ != nullptr) cublasSetMathMode(h_, CUBLAS_DEFAULT_MATH);
    }
    Tf32Scope(const Tf32Scope&) = delete;
    Tf32Scope& operator=(const Tf32Scope&) = delete;

  private:
    cublasHandle_t h_;
};

}  // namespace ngd::cuda
