// The benchmarks' CUDA context and its stream. A .cu file because the stream lives in the library's
// private CUDA state (kernels/common.cuh), which only nvcc compiles.
#include <string>

#include "common.cuh"
#include "cuda_timer.hpp"

namespace ngd_bench {

ngd::Context* cuda_context(std::string* why) {
    static std::string reason;
    // Never destroyed: at exit the CUDA runtime may be gone before static destructors run.
    static ngd::Context* const ctx = []() -> ngd::Context* {
        try {
            return new ngd::Context(ngd::Context::cuda(0));
        } catch (const ngd::Error& e) {
            reason = e.what();
            return nullptr;
        }
    }();
    if (ctx == nullptr && why != nullptr) *why = reason;
    return ctx;
}

cudaStream_t context_stream(ngd::Context& ctx) { return ctx.cuda_state()->stream; }

}  // namespace ngd_bench
