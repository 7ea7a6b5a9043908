// The mixed-precision damped solve of mixed_solve.hpp: classical iterative refinement with a float
// (or TF32) Cholesky factor and double residuals, continued by conjugate gradients preconditioned
// with that factor where it stagnates, on the context's backend through its stages.
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
    if (u != nullptr) NGD_STAGE(ctx, axpby<T>, ctx, n, T(-1), u, T(1), r);  // - u
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

enum class Refined { converged, stagnated, failed };

// Vectors of one column's refinement, N doubles each in the context's memory space.
struct Vectors {
    double* r;    // K alpha - u
    double* tmp;  // scratch of the residual and the preconditioner
    double* z;    // conjugate gradients: the preconditioned residual,
    double* p;    // the search direction,
    double* q;    // and K p
};

// One column of classical refinement; adds to `iterations` the corrections applied and sets
// `eta` to the last backward error. On `stagnated`, v.r holds K alpha - u of the returned alpha.
Refined refine_column(Context& ctx, MatrixView<const double> g, MatrixView<const double> shift,
                      MatrixView<const float> l, double norm_k, const double* u, double* x,
                      const Vectors& v, float* work, int& iterations, double& eta) {
    const std::int64_t n = g.rows;
    const double floor = refinement_floor();
    const double target = floor / std::sqrt(double(n));
    // alpha_0 = (L L^T)^{-1} u with the float factor.
    NGD_STAGE(ctx, copy_vector<double>, ctx, n, u, x);
    NGD_STAGE(ctx, cholesky_apply_float, ctx, l, x, work);
    std::vector<double> history;  // backward error after each correction
    for (int k = 0;; ++k) {
        // r = K alpha_k - u in double, and its normwise backward error.
        shifted_residual<double>(ctx, g, shift, x, u, v.r, v.tmp);
        eta = backward_error<double>(ctx, n, v.r, x, u, norm_k);
        history.push_back(eta);
        if (!std::isfinite(eta)) return Refined::failed;
        if (eta <= target) return Refined::converged;
        // At double's rounding floor the corrections stop paying: the last one gained less than
        // a factor of two below 2^-53. Above it, less than a factor of four over two corrections
        // means that kappa(K) eps_factor is near or beyond 1/2: refinement would crawl, or never
        // get there.
        if (k >= 1 && eta > history[k - 1] / 2 && eta <= floor) return Refined::converged;
        if (k >= 2 && eta > history[k - 2] / 4 && eta > floor) return Refined::stagnated;
        if (k == kMaxRefinements) return eta <= floor ? Refined::converged : Refined::stagnated;
        // alpha_{k+1} = alpha_k - (L L^T)^{-1} r: the correction solved with the float factor.
        NGD_STAGE(ctx, cholesky_apply_float, ctx, l, v.r, work);
        NGD_STAGE(ctx, axpby<double>, ctx, n, -1.0, v.r, 1.0, x);
        ++iterations;
    }
}

// z = (L L^T)^{-1} r, the preconditioner, with r scaled to unit norm before it is rounded to
// float and scaled back after (a converged residual may lie below float's normal range).
// r_norm = |r|_2 > 0.
void precondition(Context& ctx, MatrixView<const float> l, const double* r, double r_norm,
                  double* z, double* tmp, float* work) {
    const std::int64_t n = l.rows;
    NGD_STAGE(ctx, axpby<double>, ctx, n, 1.0 / r_norm, r, 0.0, tmp);
    NGD_STAGE(ctx, cholesky_apply_float, ctx, l, tmp, work);
    NGD_STAGE(ctx, axpby<double>, ctx, n, r_norm, tmp, 0.0, z);
}

// Conjugate gradients on K alpha = u preconditioned by the float factor, from the alpha where
// classical refinement stagnated (v.r = K alpha - u, its backward error eta). Residuals and
// products in double (symv_lower and the vector stages), the preconditioner in float; the sign
// convention follows v.r = K alpha - u, so alpha -= a p. Convergence is judged on the recursive
// residual and confirmed with the true one, as in classical refinement (target 2^-53 / sqrt(N),
// or 2^-53 with less than 2x gained); when the true residual is above it, CG restarts from the
// true residual (residual replacement), and fails when a restart gained less than 2x. Breakdown
// (p^T K p not > 0, or NaN) fails. Adds the iterations taken to `iterations`.
bool pcg_column(Context& ctx, MatrixView<const double> g, MatrixView<const double> shift,
                MatrixView<const float> l, double norm_k, const double* u, double* x,
                const Vectors& v, float* work, int& iterations, double& eta) {
    const std::int64_t n = g.rows;
    const double floor = refinement_floor();
    const double target = floor / std::sqrt(double(n));
    const double u_norm = std::sqrt(NGD_STAGE(ctx, dot<double>, ctx, n, u, u));
    double r_norm = std::sqrt(NGD_STAGE(ctx, dot<double>, ctx, n, v.r, v.r));
    double checked = eta;  // the true backward error of the last restart
    bool restart = true;
    double rz = 0;
    for (int k = 0;;) {
        if (restart) {
            // p = z = M^{-1} r from the true residual.
            if (!(r_norm > 0)) return r_norm == 0;
            precondition(ctx, l, v.r, r_norm, v.z, v.tmp, work);
            rz = NGD_STAGE(ctx, dot<double>, ctx, n, v.r, v.z);
            NGD_STAGE(ctx, copy_vector<double>, ctx, n, v.z, v.p);
            restart = false;
        }
        // q = K p, a = r^T z / p^T K p; alpha -= a p, r -= a q.
        shifted_residual<double>(ctx, g, shift, v.p, nullptr, v.q, v.tmp);
        const double pq = NGD_STAGE(ctx, dot<double>, ctx, n, v.p, v.q);
        if (!(pq > 0) || !std::isfinite(pq) || !(rz > 0) || !std::isfinite(rz)) return false;
        const double a = rz / pq;
        NGD_STAGE(ctx, axpby<double>, ctx, n, -a, v.p, 1.0, x);
        NGD_STAGE(ctx, axpby<double>, ctx, n, -a, v.q, 1.0, v.r);
        ++iterations;
        ++k;
        r_norm = std::sqrt(NGD_STAGE(ctx, dot<double>, ctx, n, v.r, v.r));
        const double x_norm = std::sqrt(NGD_STAGE(ctx, dot<double>, ctx, n, x, x));
        const double estimate = r_norm / (norm_k * x_norm + u_norm);
        if (!std::isfinite(estimate)) return false;
        if (estimate <= target || k == kMaxCgIterations) {
            // Confirm with the true residual of alpha.
            shifted_residual<double>(ctx, g, shift, x, u, v.r, v.tmp);
            eta = backward_error<double>(ctx, n, v.r, x, u, norm_k);
            if (!std::isfinite(eta)) return false;
            if (eta <= target) return true;
            if (eta <= floor && eta > checked / 2) return true;
            if (k == kMaxCgIterations || eta > checked / 2) return eta <= floor;
            checked = eta;
            r_norm = std::sqrt(NGD_STAGE(ctx, dot<double>, ctx, n, v.r, v.r));
            restart = true;
            continue;
        }
        // z = M^{-1} r, beta = r^T z / (r^T z)_old, p = z + beta p.
        precondition(ctx, l, v.r, r_norm, v.z, v.tmp, work);
        const double rz_new = NGD_STAGE(ctx, dot<double>, ctx, n, v.r, v.z);
        const double beta = rz_new / rz;
        rz = rz_new;
        NGD_STAGE(ctx, axpby<double>, ctx, n, 1.0, v.z, beta, v.p);
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
        report.cg_iterations = 0;
        report.backward_error = 0;
        // The float factor of K; a failed one (kappa(K) eps_factor beyond 1) falls back at once.
        Matrix<float> owned;
        MatrixView<float> l = factor;
        if (l.empty()) {
            owned = Matrix<float>(n, n, space);
            l = owned.view();
        }
        double norm_k = 0;  // |K|_F, read in the same pass
        FactorArithmetic arithmetic = report.requested == SolvePrecision::mixed_tf32
                                          ? FactorArithmetic::tf32
                                          : FactorArithmetic::float32;
        report.float_info =
            NGD_STAGE(ctx, cholesky_factor_float, ctx, g, shift, l, &norm_k, &arithmetic);
        if (report.float_info != 0) {
            report.mixed_fallback = true;
            return false;
        }
        Matrix<double> vectors(n, 5, space);
        double* base = vectors.data();
        const Vectors v{base, base + n, base + 2 * n, base + 3 * n, base + 4 * n};
        Matrix<float> work(n, 1, space);
        const MatrixView<const float> lc(l);
        for (std::int64_t c = 0; c < rhs.cols; ++c) {
            const double* u = rhs.data + c * rhs.ld;
            double* xc = x.data + c * x.ld;
            int iterations = 0, cg = 0;
            double eta = 0;
            const Refined refined =
                refine_column(ctx, g, shift, lc, norm_k, u, xc, v, work.data(), iterations, eta);
            // Where classical refinement stagnates, conjugate gradients carry on from its iterate.
            const bool ok = refined == Refined::converged ||
                            (refined == Refined::stagnated &&
                             pcg_column(ctx, g, shift, lc, norm_k, u, xc, v, work.data(), cg, eta));
            report.refinement_iterations = std::max(report.refinement_iterations, iterations);
            report.cg_iterations = std::max(report.cg_iterations, cg);
            report.backward_error = std::max(report.backward_error, eta);
            if (!ok) {
                report.mixed_fallback = true;
                return false;
            }
        }
        report.mixed_fallback = false;
        // The factor's arithmetic may have been float32 where tf32 was asked for (the CUDA
        // backend below sm_80): the report says which factor gave the solution.
        report.used = arithmetic == FactorArithmetic::tf32 ? SolvePrecision::mixed_tf32
                                                           : SolvePrecision::mixed;
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
