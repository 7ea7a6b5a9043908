// Reference loss factors (DESIGN.md section 1): the loss value and, per sample, e = M u, M, u, and
// for the losses with an invertible Hessian rho = H^{-1} e and diag(H^{-1}). Everything is computed
// in double from closed forms that never subtract nearly equal numbers: logistic in log space
// through e^{-|m|}, softmax with a max shift and 1 - p_c summed from the other classes when p_c is
// near 1.
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "stages.hpp"

namespace ngd::reference {
namespace {

// squared: l = 1/2 |f - y|^2, M = I, u = e = rho = f - y, H^{-1} = I.
template <class T>
void squared_factors(MatrixView<const T> f, MatrixView<const T> y, LossFactors<T>& out) {
    // f, y: k x n. gradient, residual, natural_residual, curvature_inverse: k x n. factor: k x kn.
    const std::int64_t k = f.rows, n = f.cols;
    out.gradient = Matrix<T>(k, n);
    out.residual = Matrix<T>(k, n);
    out.natural_residual = Matrix<T>(k, n);
    out.curvature_inverse = Matrix<T>(k, n);
    out.factor = Matrix<T>(k, k * n);
    double total = 0;
    for (std::int64_t i = 0; i < n; ++i) {
        for (std::int64_t c = 0; c < k; ++c) {
            // e = f - y.
            const double e = double(f(c, i)) - double(y(c, i));
            total += 0.5 * e * e;
            out.gradient(c, i) = T(e);
            out.residual(c, i) = T(e);
            out.natural_residual(c, i) = T(e);
            out.curvature_inverse(c, i) = T(1);
            // M_i = I (block i of the factor).
            out.factor(c, i * k + c) = T(1);
        }
    }
    out.value = n > 0 ? total / double(n) : 0.0;
}

// logistic (k = 1): s = 2y - 1, m = s f, l = log(1 + e^{-m}). With t = e^{-|m|} <= 1:
//   sigma(-m) = t/(1+t) (m >= 0) or 1/(1+t) (m < 0), e = -s sigma(-m),
//   M = sqrt(sigma(m) sigma(-m)) = e^{-|m|/2}/(1+t), u = -s e^{-m/2} (so M u = e),
//   rho = e / H = -s/sigma(m) = -s(1 + e^{-m}), H^{-1} = e^{|m|} + 2 + e^{-|m|}.
// None of these forms sigma - y or sigma(1 - sigma), which round to 0 for m >~ 37 in double.
template <class T>
void logistic_factors(MatrixView<const T> f, MatrixView<const T> y, LossFactors<T>& out) {
    // f, y: 1 x n. All outputs: 1 x n.
    const std::int64_t n = f.cols;
    out.gradient = Matrix<T>(1, n);
    out.residual = Matrix<T>(1, n);
    out.natural_residual = Matrix<T>(1, n);
    out.curvature_inverse = Matrix<T>(1, n);
    out.factor = Matrix<T>(1, n);
    double total = 0;
    for (std::int64_t i = 0; i < n; ++i) {
        // Sign s = 2y - 1 and margin m = s f.
        const double s = double(y(0, i)) > 0.5 ? 1.0 : -1.0;
        const double m = s * double(f(0, i));
        const double abs_m = std::fabs(m);
        const double t = std::exp(-abs_m);
        // l = log(1 + e^{-m}) = max(-m, 0) + log1p(e^{-|m|}).
        total += (m < 0 ? -m : 0.0) + std::log1p(t);
        // sigma(-m) from t alone, so it neither overflows nor rounds to 1 - 1.
        const double sigma_neg = m >= 0 ? t / (1.0 + t) : 1.0 / (1.0 + t);
        out.gradient(0, i) = T(-s * sigma_neg);
        // M = e^{-|m|/2} / (1 + e^{-|m|}).
        out.factor(0, i) = T(std::exp(-0.5 * abs_m) / (1.0 + t));
        // u = -s e^{-m/2}; it is Inf only where the true value exceeds the range of T.
        out.residual(0, i) = T(-s * std::exp(-0.5 * m));
        // rho = -s (1 + e^{-m}), formed directly instead of e / H.
        out.natural_residual(0, i) = T(-s * (1.0 + std::exp(-m)));
        // H^{-1} = (1 + e^{|m|})^2 / e^{|m|} = e^{|m|} + 2 + e^{-|m|}: Inf once e^{|m|} overflows
        // T.
        out.curvature_inverse(0, i) = T(std::exp(abs_m) + 2.0 + t);
    }
    out.value = n > 0 ? total / double(n) : 0.0;
}

// softmax cross-entropy: p = softmax(f), l = logsumexp(f) - f_y, e = p - onehot(y),
// M = diag(sqrt p) - p sqrt(p)^T, u = (p - onehot)/sqrt(p). For c != y, u_c = sqrt(p_c) exactly, so
// a p_c that underflows to 0 gives u_c = 0 (the limit) with no 0/0. For c = y,
// u_y = -(1 - p_y)/sqrt(p_y) with sqrt(p_y) = exp((f_y - lse)/2) from log space: finite until the
// true value leaves the range of double. 1 - p_c is summed from the other classes when p_c > 1/2
// (only one class can be), since 1 - p_c cancels there. natural_residual and curvature_inverse stay
// empty.
template <class T>
void softmax_factors(MatrixView<const T> f, MatrixView<const T> y, LossFactors<T>& out) {
    // f: k x n, y: 1 x n class indices. gradient, residual: k x n. factor: k x kn.
    const std::int64_t k = f.rows, n = f.cols;
    out.gradient = Matrix<T>(k, n);
    out.residual = Matrix<T>(k, n);
    out.factor = Matrix<T>(k, k * n);
    out.natural_residual = Matrix<T>();
    out.curvature_inverse = Matrix<T>();
    std::vector<double> p(k), sqrt_p(k), one_minus_p(k);
    double total = 0;
    for (std::int64_t i = 0; i < n; ++i) {
        const auto label = static_cast<std::int64_t>(y(0, i));
        // Max shift: lse = f_max + log sum_c e^{f_c - f_max}, with every exponent <= 0.
        double f_max = -std::numeric_limits<double>::infinity();
        for (std::int64_t c = 0; c < k; ++c) f_max = std::fmax(f_max, double(f(c, i)));
        double sum = 0;
        for (std::int64_t c = 0; c < k; ++c) sum += std::exp(double(f(c, i)) - f_max);
        const double lse = f_max + std::log(sum);
        // p_c = e^{f_c - lse}, sqrt(p_c) = e^{(f_c - lse)/2} (no sqrt of an underflowed p).
        for (std::int64_t c = 0; c < k; ++c) {
            const double log_p = double(f(c, i)) - lse;
            p[c] = std::exp(log_p);
            sqrt_p[c] = std::exp(0.5 * log_p);
        }
        // 1 - p_c: directly when p_c <= 1/2, else as the sum of the other classes.
        for (std::int64_t c = 0; c < k; ++c) {
            if (p[c] <= 0.5) {
                one_minus_p[c] = 1.0 - p[c];
            } else {
                double others = 0;
                for (std::int64_t o = 0; o < k; ++o) {
                    if (o != c) others += p[o];
                }
                one_minus_p[c] = others;
            }
        }
        // l = lse - f_y.
        total += lse - double(f(label, i));
        for (std::int64_t c = 0; c < k; ++c) {
            // e_c = p_c - [c == y], with e_y = -(1 - p_y).
            out.gradient(c, i) = T(c == label ? -one_minus_p[c] : p[c]);
            // u_c = sqrt(p_c) for c != y, u_y = -(1 - p_y)/sqrt(p_y).
            out.residual(c, i) = T(c == label ? -one_minus_p[c] / sqrt_p[c] : sqrt_p[c]);
        }
        // M_i[a, b] = [a == b] sqrt(p_a) - p_a sqrt(p_b); diagonal sqrt(p_a)(1 - p_a).
        T* block = out.factor.data() + i * k * k;
        for (std::int64_t b = 0; b < k; ++b) {
            for (std::int64_t a = 0; a < k; ++a) {
                const double m_ab = a == b ? sqrt_p[a] * one_minus_p[a] : -p[a] * sqrt_p[b];
                block[a + b * k] = T(m_ab);
            }
        }
    }
    out.value = n > 0 ? total / double(n) : 0.0;
}

}  // namespace

template <class T>
void loss_factors(Context& /*ctx*/, Loss loss, MatrixView<const T> f, MatrixView<const T> y,
                  LossFactors<T>& out) {
    switch (loss) {
        case Loss::squared:
            squared_factors(f, y, out);
            return;
        case Loss::logistic:
            logistic_factors(f, y, out);
            return;
        case Loss::softmax_cross_entropy:
            softmax_factors(f, y, out);
            return;
    }
}

template void loss_factors<float>(Context&, Loss, MatrixView<const float>, MatrixView<const float>,
                                  LossFactors<float>&);
template void loss_factors<double>(Context&, Loss, MatrixView<const double>,
                                   MatrixView<const double>, LossFactors<double>&);

}  // namespace ngd::reference
