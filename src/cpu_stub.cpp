// Stand-in for the cpu backend's non-stage side in a build without BLAS/LAPACK (NGD_WITH_CPU=OFF):
// Context::cpu() throws ngd::NotCompiled and Context::best() skips the backend. The stages still
// link (src/cpu/reused.cpp forwards them to the reference), but no cpu context can reach them.
#include <string>

#include "cpu_backend.hpp"
#include "ngd/error.hpp"

namespace ngd::cpu {

bool compiled() noexcept { return false; }

void require_compiled(const char* fn) {
    throw NotCompiled(std::string(fn) +
                      ": this build of ngd has no cpu backend (BLAS and LAPACK were not found at "
                      "configure time; install OpenBLAS and LAPACK, e.g. Debian's "
                      "libopenblas-openmp-dev and liblapack-dev, and configure with "
                      "-DNGD_WITH_CPU=ON)");
}

std::string describe(int) { return "cpu (not compiled)"; }

}  // namespace ngd::cpu
