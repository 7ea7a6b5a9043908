// Synthetic data for the examples: a seeded generator that gives the same numbers on every platform
// (splitmix64 + Box-Muller; std::normal_distribution differs between standard libraries), unit-norm
// inputs with no two parallel (the assumption under which the Gram of a wide ReLU net is
// nonsingular), and random targets. Everything is returned in host memory; move it with
// ngd::to_context.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <ngd/matrix.hpp>
#include <stdexcept>
#include <string>

namespace examples {

/// splitmix64 with a Box-Muller normal: small, fast, and reproducible bit for bit.
class Rng {
  public:
    explicit Rng(std::uint64_t seed) : state_(mix(seed)) {}
    std::uint64_t next_u64() { return mix(state_ += 0x9E3779B97F4A7C15ull); }
    /// Uniform in (0, 1): never 0, so log() is safe.
    double uniform() { return (static_cast<double>(next_u64() >> 11) + 0.5) * 0x1.0p-53; }
    double normal() {
        const double r = std::sqrt(-2.0 * std::log(uniform()));
        return r * std::cos(6.283185307179586 * uniform());
    }
    /// +1 or -1 with equal probability.
    double sign() { return (next_u64() >> 63) ? 1.0 : -1.0; }
    /// Uniform integer in [0, n).
    std::int64_t below(std::int64_t n) {
        return static_cast<std::int64_t>(uniform() * static_cast<double>(n)) % n;
    }

  private:
    static std::uint64_t mix(std::uint64_t z) {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    std::uint64_t state_;
};

/// rows x cols entries N(0, stddev^2).
template <class T>
ngd::Matrix<T> gaussian_matrix(std::int64_t rows, std::int64_t cols, std::uint64_t seed,
                               double stddev = 1.0) {
    ngd::Matrix<T> a(rows, cols);
    Rng rng(seed);
    for (std::int64_t i = 0; i < a.size(); ++i) a[i] = static_cast<T>(stddev * rng.normal());
    return a;
}

/// The largest |cos angle| between two distinct columns of x (0 for fewer than two columns).
/// O(n^2 d): meant for the small n of a reproduction, not for n in the tens of thousands.
template <class T>
double max_abs_cosine(const ngd::Matrix<T>& x) {
    double worst = 0;
    for (std::int64_t i = 0; i < x.cols(); ++i) {
        for (std::int64_t j = 0; j < i; ++j) {
            double dot = 0, ni = 0, nj = 0;
            for (std::int64_t r = 0; r < x.rows(); ++r) {
                dot += double(x(r, i)) * double(x(r, j));
                ni += double(x(r, i)) * double(x(r, i));
                nj += double(x(r, j)) * double(x(r, j));
            }
            worst = std::max(worst, std::abs(dot) / std::sqrt(ni * nj));
        }
    }
    return worst;
}

/// d x n inputs, each column uniform on the unit sphere (a normalised Gaussian). With
/// max_abs_cos < 1, a column whose |cos| with an earlier column reaches max_abs_cos is drawn again
/// (deterministically, from the same stream), so no two inputs are parallel; throws
/// std::invalid_argument when that cannot be met (e.g. d = 1 with n > 1). The check costs O(n^2 d).
template <class T>
ngd::Matrix<T> unit_norm_inputs(std::int64_t d, std::int64_t n, std::uint64_t seed,
                                double max_abs_cos = 1.0) {
    if (d < 1 || n < 0) throw std::invalid_argument("unit_norm_inputs: need d >= 1 and n >= 0");
    ngd::Matrix<T> x(d, n);
    Rng rng(seed);
    constexpr int kMaxTries = 100;
    for (std::int64_t i = 0; i < n; ++i) {
        int tries = 0;
        for (;; ++tries) {
            if (tries == kMaxTries) {
                throw std::invalid_argument(
                    "unit_norm_inputs: cannot draw " + std::to_string(n) + " unit vectors in R^" +
                    std::to_string(d) + " with pairwise |cos| < " + std::to_string(max_abs_cos));
            }
            double norm2 = 0;
            for (std::int64_t r = 0; r < d; ++r) {
                const double v = rng.normal();
                x(r, i) = static_cast<T>(v);
                norm2 += v * v;
            }
            const double inv = 1.0 / std::sqrt(norm2);
            for (std::int64_t r = 0; r < d; ++r) x(r, i) = static_cast<T>(x(r, i) * inv);
            if (max_abs_cos >= 1.0) break;
            bool ok = true;
            for (std::int64_t j = 0; j < i && ok; ++j) {
                double dot = 0;
                for (std::int64_t r = 0; r < d; ++r) dot += double(x(r, i)) * double(x(r, j));
                ok = std::abs(dot) < max_abs_cos;
            }
            if (ok) break;
        }
    }
    return x;
}

/// k x n regression targets: "sign" draws +-1, "gaussian" draws N(0, 1).
template <class T>
ngd::Matrix<T> random_targets(std::int64_t k, std::int64_t n, const std::string& kind,
                              std::uint64_t seed) {
    if (kind != "sign" && kind != "gaussian") {
        throw std::invalid_argument("random_targets: kind must be sign or gaussian, got '" + kind +
                                    "'");
    }
    ngd::Matrix<T> y(k, n);
    Rng rng(seed);
    for (std::int64_t i = 0; i < y.size(); ++i) {
        y[i] = static_cast<T>(kind == "sign" ? rng.sign() : rng.normal());
    }
    return y;
}

/// 1 x n class labels 0 .. n_classes-1 stored as T (the layout of Batch::targets for the logistic
/// loss with n_classes = 2 and for softmax cross-entropy).
template <class T>
ngd::Matrix<T> random_labels(std::int64_t n, std::int64_t n_classes, std::uint64_t seed) {
    if (n_classes < 1) throw std::invalid_argument("random_labels: need n_classes >= 1");
    ngd::Matrix<T> y(1, n);
    Rng rng(seed);
    for (std::int64_t i = 0; i < n; ++i) y[i] = static_cast<T>(rng.below(n_classes));
    return y;
}

}  // namespace examples
