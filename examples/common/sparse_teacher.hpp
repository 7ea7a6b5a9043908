// Kerekes, Meszaros & Huszar (2021), claim 7: a sparse regression teacher fitted by a diagonal
// network w = u*u - v*v, a model ngd does not know, trained by GD (written out) and by NGD through
// the bring-your-own-Jacobian call ngd::direction_from_jacobian. Shared by examples/sparse_teacher
// and tests/repro_kerekes_test.cpp.
#pragma once

#include "common/kerekes.hpp"

namespace examples::kerekes {

/// Regression data y = w*.x with x ~ N(0, I_d) and w* holding n_nonzero entries +-1.
struct SparseData {
    ngd::Matrix<double> x, y, x_test, y_test;  ///< d x n, 1 x n, d x n_test, 1 x n_test
    std::vector<double> teacher;               ///< w*
};

inline SparseData make_sparse_data(std::int64_t d, std::int64_t n, std::int64_t n_test,
                                   std::int64_t n_nonzero, std::uint64_t seed) {
    if (n_nonzero < 1 || n_nonzero > d) throw std::invalid_argument("need 1 <= nonzeros <= d");
    SparseData data;
    data.teacher.assign(d, 0.0);
    Rng rng(seed);
    for (std::int64_t placed = 0; placed < n_nonzero;) {
        const std::int64_t j = rng.below(d);
        if (data.teacher[j] != 0) continue;
        data.teacher[j] = rng.sign();
        ++placed;
    }
    data.x = gaussian_matrix<double>(d, n, seed + 1);
    data.x_test = gaussian_matrix<double>(d, n_test, seed + 2);
    for (auto [x, y] : {std::pair{&data.x, &data.y}, std::pair{&data.x_test, &data.y_test}}) {
        const std::vector<double> f = linear_outputs(*x, data.teacher);
        *y = ngd::Matrix<double>(1, x->cols());
        for (std::int64_t i = 0; i < x->cols(); ++i) (*y)[i] = f[i];
    }
    return data;
}

/// The diagonal network's end-to-end weights: theta = [u; v] (2d), w = u*u - v*v, f(x) = w.x.
inline std::vector<double> diagonal_weights(const std::vector<double>& theta) {
    const std::size_t d = theta.size() / 2;
    std::vector<double> w(d);
    for (std::size_t j = 0; j < d; ++j) w[j] = theta[j] * theta[j] - theta[d + j] * theta[d + j];
    return w;
}

/// Its Jacobian J (n x 2d), row i = [df/du, df/dv] = [2 x_i*u, -2 x_i*v]: all a user has to write
/// to train their own model with ngd::direction_from_jacobian.
inline ngd::Matrix<double> diagonal_jacobian(const ngd::Matrix<double>& x,
                                             const std::vector<double>& theta) {
    const std::int64_t d = x.rows(), n = x.cols();
    ngd::Matrix<double> j(n, 2 * d);
    for (std::int64_t c = 0; c < d; ++c) {
        for (std::int64_t i = 0; i < n; ++i) {
            j(i, c) = 2 * x(c, i) * theta[c];
            j(i, d + c) = -2 * x(c, i) * theta[d + c];
        }
    }
    return j;
}

/// One logged state of a diagonal-network run (the columns of sparse_teacher's CSV).
struct RegressionRecord {
    std::string method;
    double lr = 0, init_scale = 0;
    std::uint64_t seed = 0;
    std::int64_t step = 0;
    double t = 0, loss = 0;
    double test_rel_error = 0;  ///< |f(X_test) - y_test| / |y_test|
    double test_r2 = 0;         ///< 1 - |f - y|^2 / |y - mean(y)|^2 on the test set
    double test_accuracy = 0;   ///< fraction of test points with sign(f) = sign(y)
    double dist_min_norm = 0;   ///< |w - X^+ y| / |X^+ y|
    double dist_teacher = 0;    ///< |w - w*| / |w*|
    double l1_norm = 0;         ///< |w|_1 (the teacher's is its number of nonzeros)
};

struct DiagonalRun {
    std::string method = "gd";  ///< gd or ngd
    double lr = 0.02, init_scale = 1e-3, damping = 0;
    std::int64_t steps = 1000;
    std::uint64_t seed = 0;
    double log_factor = 1.2;
};

struct DiagonalResult {
    std::vector<RegressionRecord> records;
    std::vector<double> w;  ///< the end-to-end weights at the end
    std::string error;      ///< set when an NGD step threw; the run stops there
};

/// The regression figures of weights w on the data.
inline RegressionRecord regression_record(const SparseData& data,
                                          const std::vector<double>& w_min_norm,
                                          const std::vector<double>& w) {
    RegressionRecord r;
    const std::vector<double> f = linear_outputs(data.x, w), ft = linear_outputs(data.x_test, w);
    for (std::size_t i = 0; i < f.size(); ++i) {
        r.loss += (f[i] - data.y[i]) * (f[i] - data.y[i]) / (2.0 * double(f.size()));
    }
    double err2 = 0, y2 = 0, mean = 0, var = 0;
    for (std::size_t i = 0; i < ft.size(); ++i) mean += data.y_test[i] / double(ft.size());
    for (std::size_t i = 0; i < ft.size(); ++i) {
        err2 += (ft[i] - data.y_test[i]) * (ft[i] - data.y_test[i]);
        y2 += data.y_test[i] * data.y_test[i];
        var += (data.y_test[i] - mean) * (data.y_test[i] - mean);
    }
    r.test_rel_error = std::sqrt(err2 / y2);
    r.test_r2 = 1 - err2 / var;
    for (std::size_t i = 0; i < ft.size(); ++i) {
        r.test_accuracy += ((ft[i] > 0) == (data.y_test[i] > 0)) / double(ft.size());
    }
    std::vector<double> diff(w.size());
    for (std::size_t j = 0; j < w.size(); ++j) diff[j] = w[j] - w_min_norm[j];
    r.dist_min_norm = norm2(diff) / norm2(w_min_norm);
    for (std::size_t j = 0; j < w.size(); ++j) diff[j] = w[j] - data.teacher[j];
    r.dist_teacher = norm2(diff) / norm2(data.teacher);
    for (double v : w) r.l1_norm += std::abs(v);
    return r;
}

/// Trains the diagonal network on the squared loss from the balanced start u = v = init_scale
/// (w = 0). gd: theta -= lr J^T (f - y) / n. ngd: theta -= lr d with
/// d = J^T (J J^T + n lambda I)^{-1} (f - y) from ngd::direction_from_jacobian on ctx.
inline DiagonalResult run_diagonal(
    ngd::Context& ctx, const SparseData& data, const std::vector<double>& w_min_norm,
    const DiagonalRun& run, const std::function<void(const RegressionRecord&)>& on_log = {}) {
    if (run.method != "ngd" && run.method != "gd") {
        throw std::invalid_argument("method must be ngd or gd: " + run.method);
    }
    const std::int64_t d = data.x.rows(), n = data.x.cols(), p = 2 * d;
    std::vector<double> theta(p, run.init_scale);
    DiagonalResult result;
    const std::vector<std::int64_t> logged = logged_steps(run.steps, run.log_factor);
    std::size_t next_log = 0;
    for (std::int64_t step = 0;; ++step) {
        result.w = diagonal_weights(theta);
        if (next_log < logged.size() && logged[next_log] == step) {
            ++next_log;
            RegressionRecord r = regression_record(data, w_min_norm, result.w);
            r.method = run.method;
            r.lr = run.lr;
            r.init_scale = run.init_scale;
            r.seed = run.seed;
            r.step = step;
            r.t = run.lr * double(step);
            result.records.push_back(r);
            if (on_log) on_log(r);
        }
        if (step == run.steps) break;
        const std::vector<double> f = linear_outputs(data.x, result.w);
        ngd::Matrix<double> residual(n, 1);
        for (std::int64_t i = 0; i < n; ++i) residual[i] = f[i] - data.y[i];
        const ngd::Matrix<double> jac = diagonal_jacobian(data.x, theta);
        std::vector<double> dir(p, 0.0);
        if (run.method == "gd") {
            for (std::int64_t c = 0; c < p; ++c) {
                for (std::int64_t i = 0; i < n; ++i) dir[c] += jac(i, c) * residual[i] / double(n);
            }
        } else {
            try {
                const ngd::Matrix<double> j_ctx = ngd::to_context(ctx, jac.const_view());
                const ngd::Matrix<double> r_ctx = ngd::to_context(ctx, residual.const_view());
                const ngd::Matrix<double> d_ctx = ngd::direction_from_jacobian<double>(
                    ctx, j_ctx.const_view(), r_ctx.const_view(), run.damping);
                const ngd::Matrix<double> d_host = ngd::to_host(ctx, d_ctx.const_view());
                dir.assign(d_host.data(), d_host.data() + p);
            } catch (const ngd::Error& e) {
                result.error = "step " + std::to_string(step + 1) + ": " + e.what();
                break;
            }
        }
        for (std::int64_t c = 0; c < p; ++c) theta[c] -= run.lr * dir[c];
        if (!std::all_of(theta.begin(), theta.end(), [](double v) { return std::isfinite(v); })) {
            result.error = "step " + std::to_string(step + 1) + ": parameters overflowed";
            break;
        }
    }
    return result;
}

}  // namespace examples::kerekes
