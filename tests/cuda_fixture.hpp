// The test problems of the backend-vs-reference suites (tests/backend_*_test.cpp) and the fixture
// of the CUDA-only suites (tests/cuda_*_test.cpp). Every result in precision T is compared with the
// reference run in double on the same T-valued data, so the comparison measures the backend's own
// roundoff. Tolerances come from tolerance<T>() in test_util.hpp; this file only says which
// reduction length and which condition number each comparison has.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ngd/ngd.hpp"
#include "test_util.hpp"

namespace ngd_test {

using Precisions = ::testing::Types<float, double>;

/// Why Context::cuda() cannot be used here, or "" when it can.
inline std::string cuda_unavailable_reason() {
    if (ngd::Context::cuda_available()) return "";
    try {
        ngd::Context probe = ngd::Context::cuda();
    } catch (const ngd::NotCompiled&) {
        return "CUDA not compiled in";
    } catch (const ngd::Error& e) {
        // DeviceUnavailable's message already opens with the phrase the skip reason needs.
        const std::string what = e.what(), head = "no usable CUDA device";
        return what.find(head) != std::string::npos ? what : head + ": " + what;
    }
    return "no usable CUDA device: Context::cuda_available() is false";
}

/// Skips the test unless a CUDA context can be made; holds it beside a reference context.
template <class T>
class CudaVsReference : public ::testing::Test {
  protected:
    void SetUp() override {
        const std::string why = cuda_unavailable_reason();
        if (!why.empty()) GTEST_SKIP() << why;
        cuda_.emplace(ngd::Context::cuda());
    }
    ngd::Context& cuda() { return *cuda_; }
    ngd::Context& ref() { return ref_; }

  private:
    std::optional<ngd::Context> cuda_;
    ngd::Context ref_ = ngd::Context::reference();
};

/// A host copy of a result that lives in ctx's memory space.
template <class T>
Matrix<T> host(ngd::Context& ctx, const Matrix<T>& m) {
    if (m.empty()) return Matrix<T>(m.rows(), m.cols());
    return ngd::to_host(ctx, m.const_view());
}

/// A copy of the host matrix m in ctx's memory space, converted to U (exactly, for U = T or
/// double).
template <class U, class T>
Matrix<U> put(ngd::Context& ctx, const Matrix<T>& m) {
    if (m.empty()) return Matrix<U>();
    const Matrix<U> h = host_copy<U>(m);
    return ngd::to_context(ctx, h.const_view());
}

/// Rounds every entry to a multiple of `grid` (a power of two). Inputs on 2^-2 and weights on 2^-4
/// keep every partial sum of the first layers exact in float (few significant bits, small
/// magnitudes), so both backends see the same sign of each relu pre-activation, exact zeros
/// included (relu'(0) = 0 in both), in any summation order. Without it a pre-activation within
/// roundoff of the kink flips a whole Jacobian row by O(1), by chance of the seed.
template <class T>
void snap(Matrix<T>& m, double grid) {
    for (std::int64_t i = 0; i < m.size(); ++i) {
        m[i] = static_cast<T>(std::nearbyint(static_cast<double>(m[i]) / grid) * grid);
    }
}
constexpr double kInputGrid = 0.25;
constexpr double kWeightGrid = 0.0625;

/// One model, loss and batch in host memory, precision T.
template <class T>
struct Problem {
    std::string name;
    ngd::Mlp model;
    ngd::Loss loss = ngd::Loss::squared;
    Matrix<T> theta, inputs, targets, rows;  ///< rows: empty unless matrix factorization
    std::int64_t n() const { return inputs.cols(); }
    std::int64_t k() const { return model.n_outputs(); }
    std::int64_t big_n() const { return n() * k(); }
    std::int64_t p() const { return model.n_params(); }
};

/// Targets for `loss` with k outputs per sample: uniform values, labels in {0, 1}, or class
/// indices.
template <class T>
Matrix<T> random_targets(ngd::Loss loss, std::int64_t k, std::int64_t n, std::uint64_t seed) {
    if (loss == ngd::Loss::logistic) return random_labels<T>(n, 2, seed);
    if (loss == ngd::Loss::softmax_cross_entropy) return random_labels<T>(n, k, seed);
    Matrix<T> y = random_matrix<T>(k, n, seed);
    snap(y, kInputGrid);
    return y;
}

/// theta from the model's own initialiser with random biases (the initialiser's are zero), snapped,
/// so the bias columns are exercised; inputs uniform in [-1, 1) or, for matrix factorization,
/// one-hot columns.
template <class T>
Problem<T> make_problem(std::string name, ngd::Mlp model, ngd::Loss loss, std::int64_t n,
                        std::uint64_t seed) {
    Problem<T> p{std::move(name), std::move(model), loss, {}, {}, {}, {}};
    p.theta = p.model.template init<T>(seed);
    const Matrix<T> bias = random_matrix<T>(p.model.n_params(), 1, seed + 1, -0.5, 0.5);
    for (std::int64_t l = 0; l < p.model.n_layers(); ++l) {
        const std::int64_t b = p.model.bias_offset(l);
        if (b < 0) continue;
        for (std::int64_t r = 0; r < p.model.layer(l).n_out; ++r) p.theta[b + r] = bias[b + r];
    }
    snap(p.theta, kWeightGrid);
    const std::int64_t d = p.model.n_inputs();
    if (p.model.selects_output_row()) {
        const Matrix<T> cols = random_labels<T>(n, d, seed + 2);
        p.inputs = Matrix<T>(d, n);
        for (std::int64_t i = 0; i < n; ++i) p.inputs(static_cast<std::int64_t>(cols[i]), i) = T(1);
        p.rows = random_labels<T>(n, p.model.n_last(), seed + 3);
    } else {
        p.inputs = random_matrix<T>(d, n, seed + 2);
        snap(p.inputs, kInputGrid);
    }
    p.targets = random_targets<T>(loss, p.model.n_outputs(), n, seed + 4);
    return p;
}

inline ngd::Layer layer(std::int64_t n_out, ngd::Activation act, bool bias = true,
                        bool trainable = true) {
    ngd::Layer l;
    l.n_out = n_out;
    l.activation = act;
    l.bias = bias;
    l.trainable = trainable;
    return l;
}

/// The models every stage is checked on: the three presets, a general MLP with every activation,
/// NTK without some biases, a frozen layer, width 1 with n = 1, and n = 257.
template <class T>
std::vector<Problem<T>> model_problems() {
    using ngd::Activation;
    using ngd::Loss;
    std::vector<Problem<T>> v;
    v.push_back(
        make_problem<T>("two_layer_relu", ngd::two_layer_relu(33, 65), Loss::squared, 31, 11));
    v.push_back(
        make_problem<T>("deep_linear", ngd::deep_linear(31, 33, 3), Loss::logistic, 33, 12));
    v.push_back(make_problem<T>("matrix_factorization", ngd::matrix_factorization(31, 3),
                                Loss::squared, 65, 13));
    v.push_back(
        make_problem<T>("mlp_every_activation",
                        ngd::Mlp(33, {layer(31, Activation::relu), layer(33, Activation::tanh),
                                      layer(31, Activation::softplus), layer(33, Activation::gelu),
                                      layer(3, Activation::identity)}),
                        Loss::softmax_cross_entropy, 31, 14));
    v.push_back(make_problem<T>(
        "mlp_ntk_partial_bias",
        ngd::Mlp(31,
                 {layer(65, Activation::relu, false), layer(33, Activation::gelu, true),
                  layer(2, Activation::identity, false)},
                 ngd::Parameterization::ntk, 0.5),
        Loss::squared, 33, 15));
    v.push_back(
        make_problem<T>("mlp_frozen_layer",
                        ngd::Mlp(33, {layer(31, Activation::tanh, true, false),
                                      layer(33, Activation::relu), layer(4, Activation::identity)}),
                        Loss::softmax_cross_entropy, 33, 16));
    v.push_back(make_problem<T>(
        "width_1_n_1", ngd::Mlp(1, {layer(1, Activation::tanh), layer(1, Activation::identity)}),
        Loss::logistic, 1, 17));
    v.push_back(make_problem<T>(
        "n_257", ngd::Mlp(31, {layer(33, Activation::softplus), layer(1, Activation::identity)}),
        Loss::squared, 257, 18));
    return v;
}

/// The problem's data in ctx's memory space, as U.
template <class U>
struct Uploaded {
    Matrix<U> theta, inputs, targets, rows;
    ngd::Batch<U> batch() const {
        return {inputs.const_view(), targets.const_view(), rows.const_view()};
    }
};
template <class U, class T>
Uploaded<U> upload(ngd::Context& ctx, const Problem<T>& p) {
    return {put<U>(ctx, p.theta), put<U>(ctx, p.inputs), put<U>(ctx, p.targets),
            put<U>(ctx, p.rows)};
}

/// The longest chain of dot products behind one Jacobian entry: forward through every layer, then
/// back. Errors add along the chain, so it is the reduction length for outputs, J and gradients.
inline double chain_length(const ngd::Mlp& model) {
    double len = 0;
    for (std::int64_t l = 0; l < model.n_layers(); ++l) {
        len += static_cast<double>(model.fan_in(l) + model.layer(l).n_out);
    }
    return len;
}

/// Largest eigenvalue of the symmetric PSD host matrix g by power iteration. It approaches
/// lambda_max from below; 100 steps from a positive start vector are ample for the tolerances here.
inline double largest_eigenvalue(const Matrix<double>& g) {
    const std::int64_t n = g.rows();
    std::vector<double> v(static_cast<size_t>(n), 1.0 / std::sqrt(static_cast<double>(n)));
    std::vector<double> w(v.size());
    double lambda = 0;
    for (int it = 0; it < 100; ++it) {
        double norm = 0;
        lambda = 0;
        for (std::int64_t i = 0; i < n; ++i) {
            double s = 0;
            for (std::int64_t j = 0; j < n; ++j) s += g(i, j) * v[j];
            w[i] = s;
            lambda += v[i] * s;  // Rayleigh quotient, |v| = 1
            norm += s * s;
        }
        norm = std::sqrt(norm);
        if (norm == 0) return 0;
        for (std::int64_t i = 0; i < n; ++i) v[i] = w[i] / norm;
    }
    return lambda;
}

/// 2-norm condition of g + diag(shift) for symmetric PSD g and positive shift: at most
/// (lambda_max(g) + max shift) / min shift, since lambda_min(g + D) >= min D. The damping in these
/// suites is chosen so this bound stays small (kConditionTarget), which keeps the float
/// tolerances of solves tight enough to catch real errors.
inline double damped_condition(const Matrix<double>& g, double min_shift, double max_shift) {
    return (largest_eigenvalue(g) + max_shift) / min_shift;
}
constexpr double kConditionTarget = 10;

/// A parameter-space damping lambda for n samples with n lambda = lambda_max(g) / kConditionTarget,
/// so cond(g + n lambda I) <= kConditionTarget + 1: the eigenvalues still spread over a factor 11,
/// so the solve matters, while tolerance<float>() stays far below the O(1) error of a real bug.
inline double well_conditioned_damping(const Matrix<double>& g, std::int64_t n) {
    const double top = largest_eigenvalue(g);
    return (top > 0 ? top : 1.0) / (kConditionTarget * static_cast<double>(n));
}

/// Euclidean norm of all entries of a host matrix.
inline double vector_norm(const Matrix<double>& v) {
    double s = 0;
    for (std::int64_t i = 0; i < v.size(); ++i) s += v[i] * v[i];
    return std::sqrt(s);
}

/// The reduction length behind a direction: Gram entries (p and the chain), the solve (N), the
/// product A^T alpha (N again) and M on both sides (2k).
template <class T>
double direction_length(const Problem<T>& p) {
    return static_cast<double>(p.p() + 2 * p.big_n() + 2 * p.k()) + chain_length(p.model);
}

/// The reference direction of one problem for one form, with what a comparison with it needs.
/// `condition` is cond(K) of the damped system K = G0 + D (D = n lambda I or n lambda H^-1).
/// `sensitivity` bounds how roundoff eps ||K|| in K reaches d = A^T alpha: the error in alpha is
/// K^-1 dK alpha, and ||A^T K^-1|| <= 1 / (2 sqrt(min D)), so
///     ||dd|| / ||d|| <= eps ||K|| ||alpha|| / (2 sqrt(min D) ||d||)   (+ the same again for A^T
///     alpha).
/// It exceeds cond(K) when alpha leans on the null space of A^T (duplicate samples, softmax's M),
/// where d is small but alpha's roundoff reaches it.
struct DirectionOracle {
    Matrix<double> d;
    double condition = 1;
    double sensitivity = 1;
};

/// The same bound for any damped system: lambda_max(K) ||alpha|| / (sqrt(min shift) ||d||).
inline double direction_sensitivity(double k_norm, double min_shift, const Matrix<double>& alpha,
                                    const Matrix<double>& d) {
    const double d_norm = vector_norm(d);
    if (d_norm == 0) return 1;
    return std::max(1.0, k_norm * vector_norm(alpha) / (std::sqrt(min_shift) * d_norm));
}

template <class T>
DirectionOracle direction_oracle(ngd::Context& ref, const Problem<T>& p, double lambda,
                                 ngd::SolveForm form) {
    const auto r = upload<double>(ref, p);
    const bool natural = form == ngd::SolveForm::natural_residual;
    const Matrix<double> f = ngd::forward(ref, p.model, r.theta.const_view(), r.inputs.const_view(),
                                          r.rows.const_view());
    const auto factors = ngd::loss_factors(ref, p.loss, f.const_view(), r.targets.const_view());
    // factor form: (A A^T + n lambda I) alpha = u; natural: (G + n lambda H^-1) beta = rho.
    const Matrix<double> g0 =
        natural ? ngd::gram(ref, p.model, r.theta.const_view(), r.inputs.const_view(),
                            r.rows.const_view())
                : ngd::gram(ref, p.model, r.theta.const_view(), r.batch(), p.loss);
    const Matrix<double>& rhs = natural ? factors.natural_residual : factors.residual;
    const std::int64_t big_n = p.big_n();
    Matrix<double> k = host_copy<double>(g0);
    double min_shift = 0, max_shift = 0;
    for (std::int64_t i = 0; i < big_n; ++i) {
        const double h = natural ? factors.curvature_inverse[i] : 1.0;
        const double s = static_cast<double>(p.n()) * lambda * h;
        k(i, i) += s;
        min_shift = i == 0 ? s : std::min(min_shift, s);
        max_shift = std::max(max_shift, s);
    }
    const Matrix<double> alpha =
        ngd::damped_solve(ref, k.const_view(), 0.0, MatrixView<const double>(rhs.data(), big_n, 1));
    DirectionOracle o;
    o.d = ngd::direction(ref, p.model, r.theta.const_view(), r.batch(), p.loss, lambda,
                         {ngd::GramMode::structured, form});
    o.condition = damped_condition(g0, min_shift, max_shift);
    o.sensitivity =
        direction_sensitivity(largest_eigenvalue(g0) + max_shift, min_shift, alpha, o.d);
    return o;
}

}  // namespace ngd_test
