// The mixed-precision damped solve of mixed_solve.hpp: classical iterative refinement with a float
// Cholesky factor and double residuals, on the context's backend through its stages.
#include "mixed_solve.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "dispatch.hpp"

namespace ngd::detail {

double refinement_floor() { return std::numeric_limits<double>::epsilon() / 2; }

template <class T>
void shifted_residual(Context& ctx, MatrixView<const T> g, MatrixView<const T> shift, const T* x,
                      const T* u, T* r, T* tmp) {
    const std::int64_t n = g.rows;
    NGD_STAGE(ctx, symv_lower<T>, ctx, g, x, r);  // r = G x
    if (!shift.empty()) {
        NGD_STAGE(ctx, multiply<T>, ctx, n, shift.data, x, tmp);  // + shift .* x
        NGD_STAGE(ctx, axpby<T>, ctx, n, T(1), tmp, T(1), r);
    }
    NGD_STAGE(ctx, axpby<T>, ctx, n, T(-1), u, T(1), r);  // - u
}

template <class T>
double backward_error(Context& ctx, std::int64_t n, const T* r, const T* x, const T* u,
                      double norm_k) {
    const double r_norm = std::sqrt(NGD_STAGE(ctx, dot<T>, ctx, n, r, r));
    const double x_norm = std::sqrt(NGD_STAGE(ctx, dot<T>, ctx, n, x, x));
    const double u_norm = std::sqrt(NGD_STAGE(ctx, dot<T>, ctx, n, u, u));
    const double eta = r_norm / (norm_k * x_norm + u_norm);
    return std::isfinite(eta) ? eta : std::numeric_limits<double>::infinity();
}

namespace {

// One column of the refinement; returns whether it converged and adds to `iterations` the
// corrections applied, `eta` the final backward error.
bool refine_column(Context& ctx, MatrixView<const double> g, MatrixView<const double> shift,
                   MatrixView<const float> l, double norm_k, const double* u, double* x, double* r,
                   double* tmp, float* work, int& iterations, double& eta) {
    const std::int64_t n = g.rows;
    const double floor = refinement_floor();
    const double target = floor / std::sqrt(double(n));
    // alpha_0 = (L L^T)^{-1} u with the float factor.
    NGD_STAGE(ctx, copy_vector<double>, ctx, n, u, x);
    NGD_STAGE(ctx, cholesky_apply_float, ctx, l, x, work);
    std::vector<double> history;  // backward error after each correction
    for (int k = 0;; ++k) {
        // r = K alpha_k - u in double, and its normwise backward error.
        shifted_residual<double>(ctx, g, shift, x, u, r, tmp);
        eta = backward_error<double>(ctx, n, r, x, u, norm_k);
        history.push_back(eta);
        if (!std::isfinite(eta)) return false;
        if (eta <= target) return true;
        // At double's rounding floor the corrections stop paying: the last one gained less than
        // a factor of two below 2^-53. Above it, less than a factor of four over two corrections
        // means that kappa(K) eps_float is near or beyond 1/2: refinement would crawl, or never
        // get there.
        if (k >= 1 && eta > history[k - 1] / 2 && eta <= floor) return true;
        if (k >= 2 && eta > history[k - 2] / 4 && eta > floor) return false;
        if (k == kMaxRefinements) return eta <= floor;
        // alpha_{k+1} = alpha_k - (L L^T)^{-1} r: the correction solved with the float factor.
        NGD_STAGE(ctx, cholesky_apply_float, ctx, l, r, work);
        NGD_STAGE(ctx, axpby<double>, ctx, n, -1.0, r, 1.0, x);
        ++iterations;
    }
}

}  // namespace

template <class T>
bool mixed_solve(Context& ctx, MatrixView<const T> g, MatrixView<const T> shift,
                 MatrixView<const T> rhs, MatrixView<T> x, SolveReport& report,
                 MatrixView<float> factor) {
    if constexpr (!std::is_same_v<T, double>) {
        return false;
    } else {
        const std::int64_t n = g.rows;
        const MemorySpace space = ctx.memory_space();
        report.refinement_iterations = 0;
        report.backward_error = 0;
        // The float factor of K; a failed one (kappa(K) eps_float beyond 1) falls back at once.
        Matrix<float> owned;
        MatrixView<float> l = factor;
        if (l.empty()) {
            owned = Matrix<float>(n, n, space);
            l = owned.view();
        }
        double norm_k = 0;  // |K|_F, read in the same pass
        report.float_info = NGD_STAGE(ctx, cholesky_factor_float, ctx, g, shift, l, &norm_k);
        if (report.float_info != 0) {
            report.mixed_fallback = true;
            return false;
        }
        Matrix<double> r(n, 1, space), tmp(n, 1, space);
        Matrix<float> work(n, 1, space);
        for (std::int64_t c = 0; c < rhs.cols; ++c) {
            int iterations = 0;
            double eta = 0;
            const bool ok = refine_column(ctx, g, shift, MatrixView<const float>(l), norm_k,
                                          rhs.data + c * rhs.ld, x.data + c * x.ld, r.data(),
                                          tmp.data(), work.data(), iterations, eta);
            report.refinement_iterations = std::max(report.refinement_iterations, iterations);
            report.backward_error = std::max(report.backward_error, eta);
            if (!ok) {
                report.mixed_fallback = true;
                return false;
            }
        }
        report.mixed_fallback = false;
        return true;
    }
}

#define NGD_INSTANTIATE_MIXED(T)                                                            \
    template void shifted_residual<T>(Context&, MatrixView<const T>, MatrixView<const T>,   \
                                      const T*, const T*, T*, T*);                          \
    template double backward_error<T>(Context&, std::int64_t, const T*, const T*, const T*, \
                                      double);                                              \
    template bool mixed_solve<T>(Context&, MatrixView<const T>, MatrixView<const T>,        \
                                 MatrixView<const T>, MatrixView<T>, SolveReport&,          \
                                 MatrixView<float>);
NGD_INSTANTIATE_MIXED(float)
NGD_INSTANTIATE_MIXED(double)
#undef NGD_INSTANTIATE_MIXED

}  // namespace ngd::detail
