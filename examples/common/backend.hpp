// Backend selection for the examples' --backend flag: "reference" (CPU, float64 accumulation),
// "cuda" (device 0; fails loudly when CUDA is not compiled in or no device is usable) or "best"
// (CUDA when usable, else the reference backend), so every example runs on a machine without a GPU.
#pragma once

#include <ngd/context.hpp>
#include <stdexcept>
#include <string>
#include <vector>

namespace examples {

/// The values --backend accepts, for Flags::get_choice.
inline const std::vector<std::string>& backend_choices() {
    static const std::vector<std::string> choices{"reference", "cuda", "best"};
    return choices;
}

/// The context for a --backend value. "cuda" throws ngd::NotCompiled or ngd::DeviceUnavailable
/// instead of falling back, so a run asked to use the GPU never silently measures the CPU.
inline ngd::Context make_context(const std::string& backend) {
    if (backend == "reference") return ngd::Context::reference();
    if (backend == "cuda") return ngd::Context::cuda(0);
    if (backend == "best") return ngd::Context::best();
    throw std::invalid_argument("backend must be reference, cuda or best, got '" + backend + "'");
}

/// "reference" or "cuda": the backend a context actually runs on (for CSV columns).
inline const char* backend_name(const ngd::Context& ctx) {
    return ctx.backend() == ngd::Backend::cuda ? "cuda" : "reference";
}

}  // namespace examples
