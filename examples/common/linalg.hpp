// Small host-side linear algebra for the examples' bookkeeping (not for the NGD step itself): the
// largest eigenvalue of a symmetric positive semidefinite matrix by power iteration, used to pick a
// stable gradient-descent step size from the Gram matrix at initialisation.
#pragma once

#include <cmath>
#include <cstdint>
#include <ngd/matrix.hpp>
#include <stdexcept>
#include <vector>

namespace examples {

/// lambda_max of a symmetric PSD host matrix (full storage), by power iteration in double from the
/// all-ones vector plus a small deterministic perturbation (so it is not orthogonal to the top
/// eigenvector in symmetric cases). Stops when the Rayleigh quotient changes by less than
/// rel_tol relatively; the result never overestimates lambda_max.
template <class T>
double largest_eigenvalue(ngd::MatrixView<const T> a, int max_iters = 2000,
                          double rel_tol = 1e-10) {
    if (a.rows != a.cols) throw std::invalid_argument("largest_eigenvalue: matrix is not square");
    if (a.space != ngd::MemorySpace::host) {
        throw std::invalid_argument("largest_eigenvalue: matrix must be in host memory");
    }
    const std::int64_t n = a.rows;
    if (n == 0) return 0;
    std::vector<double> v(n), w(n);
    for (std::int64_t i = 0; i < n; ++i) v[i] = 1.0 + 1e-3 * std::sin(double(i + 1));
    double lambda = 0;
    for (int it = 0; it < max_iters; ++it) {
        double norm2 = 0;
        for (double x : v) norm2 += x * x;
        const double inv = 1.0 / std::sqrt(norm2);
        for (double& x : v) x *= inv;
        for (std::int64_t i = 0; i < n; ++i) w[i] = 0;
        for (std::int64_t j = 0; j < n; ++j) {
            for (std::int64_t i = 0; i < n; ++i) w[i] += double(a(i, j)) * v[j];
        }
        double rayleigh = 0;
        for (std::int64_t i = 0; i < n; ++i) rayleigh += v[i] * w[i];
        const bool converged = std::abs(rayleigh - lambda) <= rel_tol * std::abs(rayleigh);
        lambda = rayleigh;
        if (converged || rayleigh == 0) break;
        v.swap(w);
    }
    return lambda;
}

}  // namespace examples
