// Private interface to the cpu backend's side that is not a pipeline stage: whether it is compiled
// in, and how a context describes it. Implemented in src/cpu/backend.cpp, or by src/cpu_stub.cpp
// (NotCompiled) in a build without BLAS/LAPACK.
#pragma once

#include <string>

namespace ngd::cpu {

/// True when this build has the cpu backend. Never throws.
bool compiled() noexcept;
/// Throws NotCompiled naming `fn` when the cpu backend is not compiled in.
void require_compiled(const char* fn);
/// "cpu (OpenBLAS 0.3.21, LAPACK, OpenMP; 2 threads)".
std::string describe(int n_threads);

}  // namespace ngd::cpu
