// The cpu backend's non-stage side (src/cpu_backend.hpp): it is compiled in, and how a context
// describes itself.
#include <string>

#include "cpu_backend.hpp"

namespace ngd::cpu {

bool compiled() noexcept { return true; }

void require_compiled(const char*) {}

std::string describe(int n_threads) {
    const std::string threads =
        n_threads == 0 ? "OpenMP's default threads" : std::to_string(n_threads) + " threads";
    return "cpu (BLAS, LAPACK, OpenMP; " + threads + ")";
}

}  // namespace ngd::cpu
