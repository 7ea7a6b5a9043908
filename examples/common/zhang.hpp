// Zhang, Martens & Grosse (2019) on ngd::two_layer_relu: the data (unit-norm inputs, optionally
// with a controlled input spectrum), a trainer for NGD and GD, and the measurements behind claims
// 1-3: residual contraction, Jacobian stability (|J_t - J_0|_F / |J_0|_F and flipped ReLU patterns)
// and damped NGD's per-eigendirection contraction. Host code over the public ngd API, shared by
// examples/zhang_properties.cpp and tests/repro_zhang_test.cpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <ngd/ngd.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/data.hpp"

namespace examples::zhang {

using HostMatrix = ngd::Matrix<double>;

/// d x n unit-norm inputs. cond = 1: uniform on the sphere (examples::unit_norm_inputs). cond > 1:
/// z ~ N(0, diag(s_k^2)) with s_k^2 = cond^{-k/(d-1)} (so E[z z^T] has condition number cond),
/// then each column normalised; near-parallel draws (|cos| >= 1 - 1e-6) are redrawn.
inline HostMatrix make_inputs(std::int64_t d, std::int64_t n, double cond, std::uint64_t seed) {
    if (cond <= 1.0) return unit_norm_inputs<double>(d, n, seed, 1 - 1e-6);
    HostMatrix x(d, n);
    Rng rng(seed);
    for (std::int64_t i = 0; i < n; ++i) {
        for (bool ok = false; !ok;) {
            double norm2 = 0;
            for (std::int64_t k = 0; k < d; ++k) {
                const double s = d > 1 ? std::pow(cond, -0.5 * double(k) / double(d - 1)) : 1.0;
                x(k, i) = s * rng.normal();
                norm2 += x(k, i) * x(k, i);
            }
            for (std::int64_t k = 0; k < d; ++k) x(k, i) /= std::sqrt(norm2);
            ok = true;
            for (std::int64_t j = 0; j < i && ok; ++j) {
                double dot = 0;
                for (std::int64_t k = 0; k < d; ++k) dot += x(k, i) * x(k, j);
                ok = std::abs(dot) < 1 - 1e-6;
            }
        }
    }
    return x;
}

/// One problem instance, in host memory. Seeds follow zhang_convergence: inputs `seed`, targets
/// `seed + 1`, theta0 `seed + 2`, so the same --seed gives the same data in both programs.
struct Problem {
    ngd::Mlp model;
    HostMatrix x, y, theta0;
    std::int64_t n() const { return x.cols(); }
    std::int64_t d() const { return x.rows(); }
    std::int64_t m() const { return model.layer(0).n_out; }
};

/// targets: "sign" (+-1) or "gaussian" (N(0, 1)).
inline Problem make_problem(std::int64_t d, std::int64_t n, std::int64_t m, std::uint64_t seed,
                            double input_cond = 1.0, const std::string& targets = "sign") {
    Problem p{ngd::two_layer_relu(d, m),
              make_inputs(d, n, input_cond, seed),
              random_targets<double>(1, n, targets, seed + 1),
              {}};
    p.theta0 = p.model.init<double>(seed + 2);
    return p;
}

/// Eigen-decomposition of a symmetric host matrix by cyclic Jacobi rotations (small n only):
/// values ascending, vectors[:, i] the unit eigenvector of values[i].
struct SymmetricEigen {
    std::vector<double> values;
    HostMatrix vectors;
};

inline SymmetricEigen symmetric_eigen(ngd::MatrixView<const double> a_in) {
    const std::int64_t n = a_in.rows;
    if (a_in.cols != n) throw std::invalid_argument("symmetric_eigen: matrix is not square");
    HostMatrix a(n, n), v(n, n);
    for (std::int64_t j = 0; j < n; ++j) {
        for (std::int64_t i = 0; i < n; ++i) a(i, j) = 0.5 * (a_in(i, j) + a_in(j, i));
        v(j, j) = 1;
    }
    for (int sweep = 0; sweep < 100; ++sweep) {
        double off = 0, total = 0;
        for (std::int64_t j = 0; j < n; ++j) {
            for (std::int64_t i = 0; i < n; ++i) {
                total += a(i, j) * a(i, j);
                if (i != j) off += a(i, j) * a(i, j);
            }
        }
        if (off <= 1e-30 * total) break;
        for (std::int64_t p = 0; p < n - 1; ++p) {
            for (std::int64_t q = p + 1; q < n; ++q) {
                if (a(p, q) == 0) continue;
                // The rotation that zeroes a(p, q) (Golub & Van Loan, Algorithm 8.5.1).
                const double tau = (a(q, q) - a(p, p)) / (2 * a(p, q));
                const double t = (tau >= 0 ? 1 : -1) / (std::abs(tau) + std::sqrt(1 + tau * tau));
                const double c = 1 / std::sqrt(1 + t * t), s = t * c;
                for (std::int64_t k = 0; k < n; ++k) {
                    const double akp = a(k, p), akq = a(k, q);
                    a(k, p) = c * akp - s * akq;
                    a(k, q) = s * akp + c * akq;
                }
                for (std::int64_t k = 0; k < n; ++k) {
                    const double apk = a(p, k), aqk = a(q, k);
                    a(p, k) = c * apk - s * aqk;
                    a(q, k) = s * apk + c * aqk;
                    const double vkp = v(k, p), vkq = v(k, q);
                    v(k, p) = c * vkp - s * vkq;
                    v(k, q) = s * vkp + c * vkq;
                }
            }
        }
    }
    std::vector<std::int64_t> order(n);
    for (std::int64_t i = 0; i < n; ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](auto i, auto j) { return a(i, i) < a(j, j); });
    SymmetricEigen e{std::vector<double>(n), HostMatrix(n, n)};
    for (std::int64_t k = 0; k < n; ++k) {
        e.values[k] = a(order[k], order[k]);
        for (std::int64_t i = 0; i < n; ++i) e.vectors(i, k) = v(i, order[k]);
    }
    return e;
}

/// cond(X X^T) of the d x n inputs (= cond(X^T X) of the paper's n x d data matrix).
inline double input_condition(const HostMatrix& x) {
    HostMatrix c(x.rows(), x.rows());
    for (std::int64_t a = 0; a < x.rows(); ++a) {
        for (std::int64_t b = 0; b < x.rows(); ++b) {
            for (std::int64_t i = 0; i < x.cols(); ++i) c(a, b) += x(a, i) * x(b, i);
        }
    }
    const auto e = symmetric_eigen(c.const_view());
    return e.values.back() / e.values.front();
}

enum class Method { ngd, gd };

/// Trains a Problem from theta0 with NGD (theta <- theta - lr J^T (J J^T + n lambda I)^{-1} (f -
/// y)) or GD (theta <- theta - lr grad L), keeping data and parameters in the context's memory
/// space.
class Trainer {
  public:
    Trainer(ngd::Context& ctx, const Problem& p, Method method, double lr, double damping = 0)
        : ctx_(ctx),
          p_(p),
          method_(method),
          x_(ngd::to_context(ctx, p.x.const_view())),
          y_(ngd::to_context(ctx, p.y.const_view())),
          theta_(ngd::to_context(ctx, p.theta0.const_view())),
          ngd_({lr, damping}),
          gd_({lr}) {}

    ngd::Batch<double> batch() const { return {x_.const_view(), y_.const_view(), {}}; }
    ngd::StepReport step() {
        const auto loss = ngd::Loss::squared;
        return method_ == Method::ngd ? ngd_.step(ctx_, p_.model, theta_.view(), batch(), loss)
                                      : gd_.step(ctx_, p_.model, theta_.view(), batch(), loss);
    }
    /// f - y at the current parameters (n entries).
    std::vector<double> residual() const {
        const auto f = ngd::forward<double>(ctx_, p_.model, theta_.const_view(), x_.const_view());
        const HostMatrix fh = ngd::to_host(ctx_, f.const_view());
        std::vector<double> r(p_.n());
        for (std::int64_t i = 0; i < p_.n(); ++i) r[i] = fh[i] - p_.y[i];
        return r;
    }
    HostMatrix theta_host() const { return ngd::to_host(ctx_, theta_.const_view()); }

  private:
    ngd::Context& ctx_;
    const Problem& p_;
    Method method_;
    ngd::Matrix<double> x_, y_, theta_;
    ngd::NaturalGradient<double> ngd_;
    ngd::GradientDescent<double> gd_;
};

inline double squared_norm(const std::vector<double>& v) {
    double s = 0;
    for (double e : v) s += e * e;
    return s;
}

/// G = J J^T (n x n) at theta, in host memory, from the library.
inline HostMatrix gram_host(ngd::Context& ctx, const Problem& p, const HostMatrix& theta) {
    const auto th = ngd::to_context(ctx, theta.const_view());
    const auto x = ngd::to_context(ctx, p.x.const_view());
    const auto g = ngd::gram<double>(ctx, p.model, th.const_view(), x.const_view());
    return ngd::to_host(ctx, g.const_view());
}

/// The sample-space map of one damped NGD step on the linearised model, f - y <- (I - lr K)(f - y)
/// with K = G (G + shift I)^{-1}, shift = n lambda.
inline HostMatrix ngd_kernel(const HostMatrix& g, double shift) {
    const SymmetricEigen e = symmetric_eigen(g.const_view());
    const std::int64_t n = g.rows();
    HostMatrix k(n, n);
    for (std::int64_t j = 0; j < n; ++j) {
        for (std::int64_t i = 0; i < n; ++i) {
            for (std::int64_t q = 0; q < n; ++q) {
                const double s = e.values[q] / (e.values[q] + shift);
                k(i, j) += e.vectors(i, q) * s * e.vectors(j, q);
            }
        }
    }
    return k;
}

/// |f - y|^2 after t = 0 .. steps steps of the linear map r <- r - lr K r from r0.
inline std::vector<double> linear_residual_sq(const HostMatrix& k, double lr, std::vector<double> r,
                                              std::int64_t steps) {
    const std::int64_t n = k.rows();
    std::vector<double> out{squared_norm(r)}, kr(static_cast<std::size_t>(n));
    for (std::int64_t t = 0; t < steps; ++t) {
        for (std::int64_t i = 0; i < n; ++i) {
            kr[i] = 0;
            for (std::int64_t j = 0; j < n; ++j) kr[i] += k(i, j) * r[j];
        }
        for (std::int64_t i = 0; i < n; ++i) r[i] -= lr * kr[i];
        out.push_back(squared_norm(r));
    }
    return out;
}

/// The convergence rate of a run: the geometric-mean ratio |f - y|^2_t / |f - y|^2_{t-1} over the
/// second half of the steps (the fast directions are gone by then), leaving out steps below
/// 1e-20 of the start, where the ratios only measure rounding. NaN when no step qualifies.
inline double late_rate(const std::vector<double>& residual_sq) {
    double log_sum = 0;
    int count = 0;
    for (std::size_t t = 1; t < residual_sq.size(); ++t) {
        if (2 * t > residual_sq.size() && residual_sq[t] > 1e-20 * residual_sq[0]) {
            log_sum += std::log(residual_sq[t] / residual_sq[t - 1]);
            ++count;
        }
    }
    return count ? std::exp(log_sum / count) : NAN;
}

// ---- claim 2: Jacobian stability (the runs are in common/zhang_stability.hpp) ----------------

/// J(theta) (n x p) in host memory, from the library.
inline HostMatrix jacobian_host(ngd::Context& ctx, const Problem& p, const HostMatrix& theta) {
    const auto th = ngd::to_context(ctx, theta.const_view());
    const auto x = ngd::to_context(ctx, p.x.const_view());
    const auto j = ngd::jacobian<double>(ctx, p.model, th.const_view(), x.const_view());
    return ngd::to_host(ctx, j.const_view());
}

/// |a - b|_F / |b|_F.
inline double relative_difference(const HostMatrix& a, const HostMatrix& b) {
    double num = 0, den = 0;
    for (std::int64_t i = 0; i < a.size(); ++i) {
        num += (a[i] - b[i]) * (a[i] - b[i]);
        den += b[i] * b[i];
    }
    return std::sqrt(num / den);
}

/// Signs of the pre-activations w_r . x_i (m x n, +1 active, 0 inactive), from theta's W block.
inline std::vector<char> activation_pattern(const Problem& p, const HostMatrix& theta) {
    const std::int64_t m = p.m(), d = p.d(), n = p.n();
    std::vector<char> on(static_cast<std::size_t>(m * n));
    std::vector<double> z(static_cast<std::size_t>(m));
    for (std::int64_t i = 0; i < n; ++i) {
        std::fill(z.begin(), z.end(), 0.0);
        for (std::int64_t c = 0; c < d; ++c) {
            const double xc = p.x(c, i);
            const double* w = theta.data() + c * m;  // column c of W (m x d, column-major)
            for (std::int64_t r = 0; r < m; ++r) z[r] += w[r] * xc;
        }
        for (std::int64_t r = 0; r < m; ++r) on[std::size_t(r + i * m)] = z[r] > 0;
    }
    return on;
}

/// Fraction of the m n (unit, sample) pairs whose ReLU pattern differs between a and b.
inline double flipped_fraction(const std::vector<char>& a, const std::vector<char>& b) {
    std::int64_t flips = 0;
    for (std::size_t i = 0; i < a.size(); ++i) flips += a[i] != b[i];
    return double(flips) / double(a.size());
}

// ---- claim 3: damped NGD contracts each eigendirection of G by n lambda / (sigma_i + n lambda) --

/// One eigendirection of G = J J^T at theta0.
struct DirectionRecord {
    std::int64_t index = 0;  ///< 0 = smallest eigenvalue
    double eigenvalue = 0;   ///< sigma_i of G = J J^T (no 1/n)
    double predicted =
        0;  ///< 1 - lr sigma_i / (sigma_i + n lambda); n lambda/(sigma_i + n lambda) at lr 1
    std::vector<double> coefficient;  ///< v_i . (f_t - y) for t = 0 .. steps
    /// Measured per-step ratio over the first step, c_1 / c_0.
    double measured_first() const { return coefficient[1] / coefficient[0]; }
    /// Measured per-step ratio over all steps, (c_T / c_0)^{1/T} (NaN when the sign changed).
    double measured_mean() const {
        const double q = coefficient.back() / coefficient.front();
        return q > 0 ? std::pow(q, 1.0 / double(coefficient.size() - 1)) : NAN;
    }
};

/// Damped NGD (parameter-space lambda, Gram side n lambda) from theta0; the residual projected on
/// the eigenvectors of G(theta0) after every step.
inline std::vector<DirectionRecord> damped_contraction(ngd::Context& ctx, const Problem& p,
                                                       double lr, double damping,
                                                       std::int64_t steps) {
    const auto th = ngd::to_context(ctx, p.theta0.const_view());
    const auto x = ngd::to_context(ctx, p.x.const_view());
    const auto g = ngd::gram<double>(ctx, p.model, th.const_view(), x.const_view());
    const SymmetricEigen eig = symmetric_eigen(ngd::to_host(ctx, g.const_view()).const_view());
    const double shift = double(p.n()) * damping;
    std::vector<DirectionRecord> out(static_cast<std::size_t>(p.n()));
    for (std::int64_t i = 0; i < p.n(); ++i) {
        out[i].index = i;
        out[i].eigenvalue = eig.values[i];
        out[i].predicted = 1 - lr * eig.values[i] / (eig.values[i] + shift);
    }
    Trainer t(ctx, p, Method::ngd, lr, damping);
    for (std::int64_t s = 0; s <= steps; ++s) {
        if (s > 0) t.step();
        const std::vector<double> r = t.residual();
        for (std::int64_t i = 0; i < p.n(); ++i) {
            double c = 0;
            for (std::int64_t k = 0; k < p.n(); ++k) c += eig.vectors(k, i) * r[k];
            out[i].coefficient.push_back(c);
        }
    }
    return out;
}

/// How well one damped run matches the prediction after its first step.
struct ContractionSummary {
    /// max |c_1/c_0 - predicted| over the directions with |c_0| >= rms(c_0) / 4: a ratio with a
    /// near-zero denominator measures the leakage from other directions, not the contraction.
    double max_error = 0;
    std::int64_t resolved = 0;  ///< how many directions entered max_error
    /// |c_1 - D c_0| / |c_0| over all directions, D = diag(predicted): everything the linear,
    /// fixed-G model misses (finite width, leakage), relative to the initial residual.
    double vector_error = 0;
};

inline ContractionSummary summarize(const std::vector<DirectionRecord>& dirs) {
    double c0_sq = 0, miss_sq = 0;
    for (const auto& d : dirs) {
        c0_sq += d.coefficient[0] * d.coefficient[0];
        const double miss = d.coefficient[1] - d.predicted * d.coefficient[0];
        miss_sq += miss * miss;
    }
    ContractionSummary s;
    s.vector_error = std::sqrt(miss_sq / c0_sq);
    const double floor = 0.25 * std::sqrt(c0_sq / double(dirs.size()));
    for (const auto& d : dirs) {
        if (std::abs(d.coefficient[0]) < floor) continue;
        s.max_error = std::max(s.max_error, std::abs(d.measured_first() - d.predicted));
        ++s.resolved;
    }
    return s;
}

}  // namespace examples::zhang
