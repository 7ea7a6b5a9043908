// Backend selection for the examples' --backend flag: "reference" (CPU, float64 accumulation),
// "cpu" (BLAS/LAPACK/OpenMP), "cuda" (device 0; fails loudly when CUDA is not compiled in or no
// device is usable) or "best" (CUDA when usable, else cpu when compiled, else the reference), so
// every example runs on a machine without a GPU.
#pragma once

#include <ngd/context.hpp>
#include <stdexcept>
#include <string>
#include <vector>

namespace examples {

/// The values --backend accepts, for Flags::get_choice.
inline const std::vector<std::string>& backend_choices() {
    static const std::vector<std::string> choices{"reference", "cpu", "cuda", "best"};
    return choices;
}

/// The context for a --backend value. "cuda" throws ngd::NotCompiled or ngd::DeviceUnavailable
/// instead of falling back, so a run asked to use the GPU never silently measures the CPU.
inline ngd::Context make_context(const std::string& backend) {
    if (backend == "reference") return ngd::Context::reference();
    if (backend == "cpu") return ngd::Context::cpu();
    if (backend == "cuda") return ngd::Context::cuda(0);
    if (backend == "best") return ngd::Context::best();
    throw std::invalid_argument("backend must be reference, cpu, cuda or best, got '" + backend +
                                "'");
}

/// "reference", "cpu" or "cuda": the backend a context actually runs on (for CSV columns).
inline const char* backend_name(const ngd::Context& ctx) {
    switch (ctx.backend()) {
        case ngd::Backend::cuda:
            return "cuda";
        case ngd::Backend::cpu:
            return "cpu";
        case ngd::Backend::reference:
            break;
    }
    return "reference";
}

}  // namespace examples
