// The fixture of the host mixed-precision suites (tests/mixed_solve_test.cpp,
// tests/mixed_tf32_test.cpp, tests/mixed_direction_test.cpp): each test runs on the reference and
// the cpu backend (skipped without BLAS), with a system order each can afford, and solves through
// ngd::damped_solve with a report.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <string>

#include "cpu_fixture.hpp"
#include "mixed_problems.hpp"

namespace ngd_test {

enum class HostBackend { reference, cpu };

class HostBackendTest : public ::testing::TestWithParam<HostBackend> {
  protected:
    void SetUp() override {
        if (GetParam() == HostBackend::cpu) {
            const std::string why = cpu_unavailable_reason();
            if (!why.empty()) GTEST_SKIP() << why;
            ctx_.emplace(ngd::Context::cpu());
        } else {
            ctx_.emplace(ngd::Context::reference());
        }
    }
    ngd::Context& ctx() { return *ctx_; }
    // Orders: the reference's loops are cubic; the cpu's run LAPACK's blocked code (and TF32
    // blocks of 96) at 600.
    std::int64_t order() const { return GetParam() == HostBackend::cpu ? 600 : 160; }

  private:
    std::optional<ngd::Context> ctx_;
};

/// INSTANTIATE_TEST_SUITE_P's name generator for HostBackendTest suites.
inline std::string host_backend_name(const ::testing::TestParamInfo<HostBackend>& info) {
    return info.param == HostBackend::cpu ? "cpu" : "reference";
}

struct Solved {
    ngd::Matrix<double> x;
    ngd::SolveReport report;
};

inline Solved solve(ngd::Context& ctx, const ngd::Matrix<double>& k, double shift,
                    const ngd::Matrix<double>& rhs, ngd::SolvePrecision precision) {
    Solved s;
    s.x = ngd::damped_solve<double>(ctx, k.const_view(), shift, rhs.const_view(), precision,
                                    &s.report);
    return s;
}

}  // namespace ngd_test
