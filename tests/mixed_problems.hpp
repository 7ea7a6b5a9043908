// Test systems of the mixed-precision solve suites (tests/mixed_solve_test.cpp,
// tests/cuda_mixed_solve_test.cpp): dense SPD matrices of a chosen condition number, and the
// working-precision solve they are measured against.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>

#include "ngd/ngd.hpp"

namespace ngd_test {

/// K = Q diag(sigma) Q^T (N x N, full symmetric, host) with sigma_i = kappa^(-i / (N - 1)) from 1
/// down to 1 / kappa, and Q = H_1 ... H_r the product of r Householder reflections with random
/// (seeded) vectors: SPD, 2-norm condition number kappa (to double's rounding of K). With the
/// default r = 3, K is diag(sigma) plus a rank-6 term, its off-diagonal entries O(1 / N); with r
/// of order N / 4 it is dense like a Gram matrix, every entry O(1 / sqrt(N)) (the TF32 tests need
/// that: their rounding acts on the off-diagonal mass).
inline ngd::Matrix<double> spd_with_condition(std::int64_t n, double kappa, std::uint64_t seed,
                                              int reflections = 3) {
    ngd::Matrix<double> k(n, n);
    for (std::int64_t i = 0; i < n; ++i) {
        k(i, i) = n == 1 ? 1.0 : std::pow(kappa, -double(i) / double(n - 1));
    }
    std::mt19937_64 gen(seed);
    std::normal_distribution<double> normal;
    std::vector<double> v(n), w(n);
    for (int h = 0; h < reflections; ++h) {
        // v: unit random vector; K <- H K H with H = I - 2 v v^T, i.e. with w = K v and
        // c = v . w: K <- K - 2 v w^T - 2 w v^T + 4 c v v^T.
        double norm = 0;
        for (double& x : v) {
            x = normal(gen);
            norm += x * x;
        }
        norm = std::sqrt(norm);
        for (double& x : v) x /= norm;
        double c = 0;
        for (std::int64_t i = 0; i < n; ++i) {
            double s = 0;
            for (std::int64_t j = 0; j < n; ++j) s += k(i, j) * v[j];
            w[i] = s;
            c += v[i] * s;
        }
        for (std::int64_t j = 0; j < n; ++j) {
            for (std::int64_t i = 0; i < n; ++i) {
                k(i, j) += -2 * v[i] * w[j] - 2 * w[i] * v[j] + 4 * c * v[i] * v[j];
            }
        }
    }
    // Exactly symmetric, as a Gram matrix is.
    for (std::int64_t j = 0; j < n; ++j) {
        for (std::int64_t i = j + 1; i < n; ++i) k(j, i) = k(i, j);
    }
    return k;
}

}  // namespace ngd_test
