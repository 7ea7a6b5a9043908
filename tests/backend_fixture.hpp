// The fixture of the backend-vs-reference stage suites (tests/backend_*_test.cpp): one suite per
// stage, typed over (backend, precision) for every non-reference backend, so the cpu and CUDA
// backends run the same checks. Each instance skips with the reason when its backend cannot be
// used here; instances are named <backend>_<precision> (e.g. BackendSolve/cuda_double.X).
#pragma once

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <type_traits>

#include "cpu_fixture.hpp"
#include "cuda_fixture.hpp"
#include "ngd/ngd.hpp"

namespace ngd_test {

/// One instance of a backend suite: the backend under test and the working precision.
template <ngd::Backend B, class T>
struct Case {
    static constexpr ngd::Backend backend = B;
    using Scalar = T;
    static std::string name() {
        return std::string(B == ngd::Backend::cuda ? "cuda" : "cpu") +
               (std::is_same_v<T, float> ? "_float" : "_double");
    }
};

using Cases = ::testing::Types<Case<ngd::Backend::cpu, float>, Case<ngd::Backend::cpu, double>,
                               Case<ngd::Backend::cuda, float>, Case<ngd::Backend::cuda, double>>;
using DoubleCases =
    ::testing::Types<Case<ngd::Backend::cpu, double>, Case<ngd::Backend::cuda, double>>;

/// TYPED_TEST_SUITE's name generator: keeps the backend visible in every test name.
struct CaseNames {
    template <class C>
    static std::string GetName(int) {
        return C::name();
    }
};

/// Skips the test unless C's backend can be used here; holds a context of it (`dev()`) beside a
/// reference context (`ref()`).
template <class C>
class BackendVsReference : public ::testing::Test {
  protected:
    static constexpr ngd::Backend kBackend = C::backend;
    static constexpr bool kCuda = C::backend == ngd::Backend::cuda;

    void SetUp() override {
        const std::string why = kCuda ? cuda_unavailable_reason() : cpu_unavailable_reason();
        if (!why.empty()) GTEST_SKIP() << why;
        dev_.emplace(kCuda ? ngd::Context::cuda() : ngd::Context::cpu());
    }
    ngd::Context& dev() { return *dev_; }
    ngd::Context& ref() { return ref_; }
    /// Where the backend's results live.
    static ngd::MemorySpace space() {
        return kCuda ? ngd::MemorySpace::device : ngd::MemorySpace::host;
    }

  private:
    std::optional<ngd::Context> dev_;
    ngd::Context ref_ = ngd::Context::reference();
};

}  // namespace ngd_test
