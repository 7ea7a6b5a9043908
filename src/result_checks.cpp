// The acceptance test of a solve and the overflow checks of results (see result_checks.hpp). The
// sums run on the host in double over N-vectors copied from the backend: O(N) next to the O(N^3)
// factorization, and the same arithmetic for every backend.
#include "result_checks.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <type_traits>

#include "check.hpp"
#include "dispatch.hpp"
#include "ngd/error.hpp"

namespace ngd::detail {

double max_solve_residual(bool is_double) { return is_double ? 1e-3 : 1e-2; }

template <class T>
std::vector<double> diagonal(Context& ctx, MatrixView<const T> g) {
    // The diagonal of a column-major matrix is a 1 x N view whose columns are ld + 1 apart.
    const MatrixView<const T> diag(g.data, 1, g.rows, g.ld + 1, g.space);
    const Matrix<T> host = to_host<T>(ctx, diag);
    return std::vector<double>(host.data(), host.data() + host.size());
}

namespace {

// |v| for v_i = x_i / sqrt(w_i), scaled by the largest |v_i| so that no square overflows or
// underflows (x can hold 1e200 and w 1e-300 where the ratio of two such norms is still sensible).
double weighted_norm(const std::vector<double>& x, const std::vector<double>& w) {
    double largest = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
        largest = std::max(largest, std::fabs(x[i] / std::sqrt(w[i])));
    }
    if (largest == 0 || !std::isfinite(largest)) return largest;
    double s = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
        const double v = x[i] / std::sqrt(w[i]) / largest;
        s += v * v;
    }
    return largest * std::sqrt(s);
}

}  // namespace

template <class T>
double equilibrated_residual(Context& ctx, std::int64_t n, const T* r, const T* u,
                             const std::vector<double>& diagonal) {
    const MemorySpace space = ctx.memory_space();
    const Matrix<T> r_host = to_host<T>(ctx, MatrixView<const T>(r, n, 1, space));
    const Matrix<T> u_host = to_host<T>(ctx, MatrixView<const T>(u, n, 1, space));
    std::vector<double> rv(r_host.data(), r_host.data() + n), uv(u_host.data(), u_host.data() + n);
    for (double v : rv) {
        if (!std::isfinite(v)) return std::numeric_limits<double>::infinity();
    }
    // D = diag(K); where it is not > 0 the row carries no scale of its own: weigh it with the
    // smallest positive entry, so that an inconsistent zero row dominates both norms.
    double smallest = std::numeric_limits<double>::infinity();
    for (double d : diagonal) {
        if (d > 0 && std::isfinite(d)) smallest = std::min(smallest, d);
    }
    if (!std::isfinite(smallest)) smallest = 1;
    std::vector<double> w(diagonal.size());
    for (std::size_t i = 0; i < w.size(); ++i) {
        w[i] = diagonal[i] > 0 && std::isfinite(diagonal[i]) ? diagonal[i] : smallest;
    }
    const double res = weighted_norm(rv, w), rhs = weighted_norm(uv, w);
    const double rel = rhs > 0 ? res / rhs : res;
    return std::isfinite(rel) ? rel : std::numeric_limits<double>::infinity();
}

void throw_not_positive_definite(const char* fn, std::int64_t info, std::int64_t order,
                                 double shift, double residual, double limit) {
    const std::string head = std::string(fn) + ": the damped system (order " +
                             std::to_string(order) +
                             ", diagonal shift n*lambda = " + number(shift) + ") ";
    if (info > 0) {
        throw NotPositiveDefinite(
            head + "is not positive definite: Cholesky failed at leading minor " +
                std::to_string(info),
            info, order, shift);
    }
    if (residual >= 0 && std::isfinite(residual)) {
        throw NotPositiveDefinite(
            head +
                "gave an inaccurate solution: its equilibrated residual |D^-1/2 (K alpha - u)| "
                "/ |D^-1/2 u| (D = diag(K)) is " +
                number(residual) + " > " + number(limit) +
                " (singular to working precision: raise the damping)",
            info, order, shift);
    }
    throw NotPositiveDefinite(head +
                                  "gave a non-finite solution (singular to working precision, "
                                  "or overflow)",
                              info, order, shift);
}

namespace {

template <class T>
const char* type_name() {
    return std::is_same_v<T, double> ? "double" : "float";
}

}  // namespace

template <class T>
void check_overflow(Context& ctx, const char* fn, const char* quantity, MatrixView<const T> v,
                    const std::string& hint) {
    if (v.empty()) return;
    const NonFiniteCount c = NGD_STAGE(ctx, count_nonfinite<T>, ctx, v);
    if (c.count == 0) return;
    const std::int64_t r = c.first % v.rows, col = c.first / v.rows;
    throw NonFiniteInput(std::string(fn) + ": the " + quantity + " (" + shape(v.rows, v.cols) +
                             ") holds " + std::to_string(c.count) +
                             " NaN/Inf entries, the first at (" + std::to_string(r) + ", " +
                             std::to_string(col) +
                             "), although every input is finite: it overflows the range of " +
                             type_name<T>() + "; " + hint,
                         c.count, c.first);
}

template <class T>
void check_gram_overflow(Context& ctx, const char* fn, const Mlp& model, MatrixView<const T> x,
                         const ForwardState<T>& state, GramMode mode,
                         const std::vector<double>& gram_diagonal) {
    const std::int64_t n_rows = std::int64_t(gram_diagonal.size());
    std::int64_t count = 0, first = -1;
    for (std::int64_t i = 0; i < n_rows; ++i) {
        if (std::isfinite(gram_diagonal[i])) continue;
        if (count++ == 0) first = i;
    }
    if (count == 0) return;
    const std::string head = std::string(fn) + ": the Gram matrix (" + shape(n_rows, n_rows) +
                             ") has " + std::to_string(count) +
                             " NaN/Inf diagonal entries, the first at row " +
                             std::to_string(first) + ", although every input is finite: ";
    const double limit = double(std::numeric_limits<T>::max());
    if (mode == GramMode::structured) {
        // Which layer's input Gram w^2 a_i . a_j + b^2 leaves the range of T (one dot per sample,
        // only on this failure path).
        for (std::int64_t l = 0; l < model.n_layers(); ++l) {
            if (!model.layer(l).trainable) continue;
            const std::int64_t n_in = model.fan_in(l);
            const T* a = l == 0 ? x.data : state.act[l - 1].data();
            const std::int64_t ld = l == 0 ? x.ld : n_in;
            const double w2 = model.weight_multiplier(l) * model.weight_multiplier(l);
            for (std::int64_t i = 0; i < x.cols; ++i) {
                const double sq = w2 * NGD_STAGE(ctx, dot<T>, ctx, n_in, a + i * ld, a + i * ld);
                if (std::isfinite(sq) && sq <= limit) continue;
                throw NonFiniteInput(
                    head + "the input Gram of layer " + std::to_string(l) +
                        " overflows the range of " + type_name<T>() +
                        " (w^2 |a_i|^2 = " + number(sq) + " for sample " + std::to_string(i) +
                        ", largest " + number(limit) + "); rescale the " +
                        (l == 0 ? "inputs" : "activations (weights)") +
                        ", or use GramMode::explicit_jacobian, which never forms a_i . a_j",
                    count, first * (n_rows + 1));
            }
        }
    }
    throw NonFiniteInput(head + "the products of the rows of A = M^T J overflow the range of " +
                             type_name<T>() + "; rescale the inputs or the parameters",
                         count, first * (n_rows + 1));
}

#define NGD_INSTANTIATE_RESULT_CHECKS(T)                                                         \
    template std::vector<double> diagonal<T>(Context&, MatrixView<const T>);                     \
    template double equilibrated_residual<T>(Context&, std::int64_t, const T*, const T*,         \
                                             const std::vector<double>&);                        \
    template void check_overflow<T>(Context&, const char*, const char*, MatrixView<const T>,     \
                                    const std::string&);                                         \
    template void check_gram_overflow<T>(Context&, const char*, const Mlp&, MatrixView<const T>, \
                                         const ForwardState<T>&, GramMode,                       \
                                         const std::vector<double>&);
NGD_INSTANTIATE_RESULT_CHECKS(float)
NGD_INSTANTIATE_RESULT_CHECKS(double)

}  // namespace ngd::detail
