// The cpu backend's skip reason (used by backend_fixture.hpp) and the fixture of the cpu-only
// suites (tests/cpu_*_test.cpp). The test problems, the upload helpers and the oracles are the
// backend-independent part of cuda_fixture.hpp, used here as they are. Every cpu result in
// precision T is compared with the reference run in double on the same T-valued data; tolerances
// come from tolerance<T>().
#pragma once

#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "cuda_fixture.hpp"
#include "ngd/ngd.hpp"

namespace ngd_test {

/// Why Context::cpu() cannot be used here, or "" when it can.
inline std::string cpu_unavailable_reason() {
    if (ngd::Context::cpu_available()) return "";
    return "cpu backend not compiled in (no BLAS/LAPACK at configure time)";
}

/// Skips the test unless the cpu backend is compiled in; holds a cpu context (OpenMP's default
/// threads) beside a reference context.
template <class T>
class CpuVsReference : public ::testing::Test {
  protected:
    void SetUp() override {
        const std::string why = cpu_unavailable_reason();
        if (!why.empty()) GTEST_SKIP() << why;
        cpu_.emplace(ngd::Context::cpu());
    }
    ngd::Context& cpu() { return *cpu_; }
    ngd::Context& ref() { return ref_; }

  private:
    std::optional<ngd::Context> cpu_;
    ngd::Context ref_ = ngd::Context::reference();
};

}  // namespace ngd_test
