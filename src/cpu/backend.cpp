// The cpu backend's non-stage side (src/cpu_backend.hpp): it is compiled in, and how a context
// describes itself (the BLAS library when it says its name: OpenBLAS does, through a weak symbol
// that stays null with other vendors).
#include <omp.h>

#include <sstream>
#include <string>

#include "cpu_backend.hpp"

extern "C" char* openblas_get_config() __attribute__((weak));

namespace ngd::cpu {

bool compiled() noexcept { return true; }

void require_compiled(const char*) {}

std::string describe(int n_threads) {
    std::string blas = "BLAS";
    if (openblas_get_config != nullptr && openblas_get_config() != nullptr) {
        // "OpenBLAS 0.3.21 DYNAMIC_ARCH ...": the first two words.
        std::istringstream words(openblas_get_config());
        std::string name, version;
        words >> name >> version;
        if (!name.empty()) blas = name + (version.empty() ? "" : " " + version);
    }
    const std::string threads =
        n_threads == 0 ? std::to_string(omp_get_max_threads()) + " threads, OpenMP's default"
                       : std::to_string(n_threads) + (n_threads == 1 ? " thread" : " threads");
    return "cpu (" + blas + ", LAPACK, OpenMP; " + threads + ")";
}

}  // namespace ngd::cpu
