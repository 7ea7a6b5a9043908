// Zhang, Martens & Grosse (2019), claims 2-4 on ngd::two_layer_relu (claim 1, the convergence
// rates, is examples/zhang_convergence.cpp): the Jacobian stays near its initial value, more so as
// the width grows, checked against Condition 2 of the theorem (--claim stability); NGD and GD
// reach the same predictor on fresh inputs as the width grows (--claim lazy); damped NGD contracts
// each eigendirection of the Gram matrix by n lambda / (sigma_i + n lambda) (--claim damping);
// K-FAC converges linearly at a rate that degrades with cond(X^T X) while NGD's does not (--claim
// kfac). The math lives in common/zhang.hpp common/zhang_stability.hpp and common/kfac.hpp.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <ngd/ngd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/backend.hpp"
#include "common/csv.hpp"
#include "common/flags.hpp"
#include "common/kfac.hpp"
#include "common/zhang.hpp"
#include "common/zhang_stability.hpp"

namespace {

using examples::CsvWriter;
namespace zhang = examples::zhang;

const char* kColumns =
    "  --claim stability: width, n, d, targets, lr, damping, seed, step, residual_sq\n"
    "    (|f - y|^2), jacobian_change (|J_t - J_0|_F / |J_0|_F, library Jacobians), flipped\n"
    "    (fraction of the m n ReLU patterns that differ from theta0), jacobian_change_patterns\n"
    "    (sqrt(flips / active patterns at theta0), the same number derived from the patterns),\n"
    "    jacobian_change_spectral (|J_t - J_0|_2), distance (|theta_t - theta_0|), and per\n"
    "    width (repeated on each row): lambda_min_g0, lambda_0 (the limit kernel's, closed\n"
    "    form), radius (3 |y - u0| / sqrt(lambda_min_g0)), bound (sqrt(lambda_min_g0) / 6,\n"
    "    Condition 2's (C/3) sqrt(lambda_min_g0) at C = 1/2), probe (max |J(w) - J_0|_2 over\n"
    "    --probes random w on the ball's surface), c_needed (3 max(trajectory, probe) /\n"
    "    sqrt(lambda_min_g0): Condition 2 needs C < 1/2)\n"
    "  --claim lazy: width, n, d, targets, seed, ngd_steps, gd_steps, ngd_residual_sq,\n"
    "    gd_residual_sq, test_change (rms change of the test predictions under NGD),\n"
    "    ngd_vs_gd, ngd_vs_linear, gd_vs_linear (rms differences of test predictions over\n"
    "    test_change; linear = the kernel predictor f0 + J0 J0^T G0^-1 (y - f0)), theta_gap\n"
    "    (|theta_ngd - theta_gd| / |theta_ngd - theta0|)\n"
    "  --claim damping: width, n, d, lr, damping (lambda), gram_shift (n lambda), seed,\n"
    "    direction (0 = smallest eigenvalue of G = J J^T at theta0), eigenvalue, predicted\n"
    "    (1 - lr sigma / (sigma + n lambda)), step, coefficient (v . (f_t - y)), ratio\n"
    "    (coefficient / previous step's; nan at step 0)\n"
    "  --claim kfac: method (ngd, kfac, gd), cond_target, cond_xtx (measured cond(X^T X)),\n"
    "    cond_gram (cond(J J^T) at theta0), width,\n"
    "    n, d, lr (step size actually used), seed, step, loss, residual_sq, ratio (residual_sq /\n"
    "    previous), linearised_residual_sq (the linear model r <- (I - lr K) r from the same r0,\n"
    "    K the method's sample-space map at theta0)";

struct Config {
    std::string claim, backend, csv, targets;
    std::int64_t n = 0, d = 0, width = 0, steps = 0, probes = 0, n_test = 0, gd_max_steps = 0;
    std::vector<std::int64_t> seeds;
    std::vector<std::int64_t> widths;
    std::vector<double> dampings, conds;
    std::vector<std::string> methods;
    double lr = 0, damping = 0;
    examples::kfac::Options kfac;
    std::uint64_t seed = 0;
};

int run_stability(const Config& c, ngd::Context& ctx, std::optional<CsvWriter>& csv) {
    std::printf("%7s %5s %12s %14s %12s %10s %14s\n", "width", "step", "|f-y|^2", "|J-J0|/|J0|",
                "|J-J0|_2", "flipped", "from patterns");
    for (const std::int64_t m : c.widths) {
        const zhang::Problem p = zhang::make_problem(c.d, c.n, m, c.seed, 1.0, c.targets);
        const auto recs = zhang::jacobian_stability(ctx, p, c.lr, c.damping, c.steps);
        const zhang::Condition2 c2 = zhang::condition2(ctx, p, recs, int(c.probes), c.seed + 7);
        double worst_j = 0, worst_f = 0;
        for (const auto& r : recs) {
            std::printf("%7lld %5lld %12.4e %14.4e %12.4e %10.4e %14.4e\n", (long long)m,
                        (long long)r.step, r.residual_sq, r.jacobian_change,
                        r.jacobian_change_spectral, r.flipped, r.jacobian_change_from_patterns);
            if (csv) {
                csv->row(m, c.n, c.d, c.targets, c.lr, c.damping, c.seed, r.step, r.residual_sq,
                         r.jacobian_change, r.flipped, r.jacobian_change_from_patterns,
                         r.jacobian_change_spectral, r.distance, c2.lambda_min_g0, c2.lambda_0,
                         c2.radius, c2.bound, c2.probe, c2.c_needed());
            }
            worst_j = std::max(worst_j, r.jacobian_change);
            worst_f = std::max(worst_f, r.flipped);
        }
        std::printf("  m = %lld: max |J_t - J_0|_F / |J_0|_F = %.4e, max flipped = %.4e\n",
                    (long long)m, worst_j, worst_f);
        std::printf(
            "  Condition 2: lambda_min(G0) = %.4g (limit kernel lambda_0 = %.4g), ball radius "
            "%.4g (NGD went %.4g),\n  bound (C/3) sqrt(lambda_min) at C = 1/2: %.4g; max "
            "|J_t - J_0|_2 on the trajectory %.4g, on %lld random points of the sphere %.4g\n"
            "  => C >= %.3g needed: %s\n",
            c2.lambda_min_g0, c2.lambda_0, c2.radius, c2.max_distance, c2.bound, c2.trajectory,
            (long long)c.probes, c2.probe, c2.c_needed(),
            c2.refuted() ? "Condition 2 is NOT met at this width (C must be < 1/2)"
                         : "not refuted (C < 1/2 fits the measured points)");
        std::fflush(stdout);
    }
    return 0;
}

int run_lazy(const Config& c, ngd::Context& ctx, std::optional<CsvWriter>& csv) {
    const zhang::HostMatrix x_test = examples::unit_norm_inputs<double>(c.d, c.n_test, c.seed + 3);
    for (const std::int64_t m : c.widths) {
        const zhang::Problem p = zhang::make_problem(c.d, c.n, m, c.seed, 1.0, c.targets);
        const zhang::LazyRecord r =
            zhang::lazy_predictions(ctx, p, x_test, c.damping, c.steps, c.gd_max_steps, 1e-12);
        std::printf(
            "m = %6lld: NGD %lld steps (|f-y|^2 %.2e), GD %lld steps (%.2e); test predictions "
            "moved %.4g rms;\n  |f_ngd - f_gd| %.4e, |f_ngd - f_lin| %.4e, |f_gd - f_lin| %.4e "
            "(relative), theta gap %.4e\n",
            (long long)m, (long long)r.ngd_steps, r.ngd_residual_sq, (long long)r.gd_steps,
            r.gd_residual_sq, r.test_change, r.ngd_vs_gd, r.ngd_vs_linear, r.gd_vs_linear,
            r.theta_gap);
        std::fflush(stdout);
        if (csv) {
            csv->row(m, c.n, c.d, c.targets, c.seed, r.ngd_steps, r.gd_steps, r.ngd_residual_sq,
                     r.gd_residual_sq, r.test_change, r.ngd_vs_gd, r.ngd_vs_linear, r.gd_vs_linear,
                     r.theta_gap);
        }
    }
    return 0;
}

int run_damping(const Config& c, ngd::Context& ctx, std::optional<CsvWriter>& csv) {
    const zhang::Problem p = zhang::make_problem(c.d, c.n, c.width, c.seed);
    for (const double lambda : c.dampings) {
        const auto dirs = zhang::damped_contraction(ctx, p, c.lr, lambda, c.steps);
        const double shift = double(c.n) * lambda;
        std::printf("\nlambda = %.3e (Gram shift n lambda = %.3e), lr %g, m = %lld\n", lambda,
                    shift, c.lr, (long long)c.width);
        std::printf("%4s %12s %11s %10s %12s %12s\n", "dir", "sigma_i", "c_0", "predicted",
                    "step 1", "mean");
        for (const auto& dr : dirs) {
            std::printf("%4lld %12.4e %11.3e %10.4f %12.4f %12.4f\n", (long long)dr.index,
                        dr.eigenvalue, dr.coefficient[0], dr.predicted, dr.measured_first(),
                        dr.measured_mean());
            if (!csv) continue;
            for (std::size_t t = 0; t < dr.coefficient.size(); ++t) {
                const double ratio = t == 0 ? NAN : dr.coefficient[t] / dr.coefficient[t - 1];
                csv->row(c.width, c.n, c.d, c.lr, lambda, shift, c.seed, dr.index, dr.eigenvalue,
                         dr.predicted, std::int64_t(t), dr.coefficient[t], ratio);
            }
        }
        const zhang::ContractionSummary sum = zhang::summarize(dirs);
        std::printf(
            "  max |measured - predicted| at step 1 over the %lld of %lld directions with |c_0| >= "
            "rms/4: %.4f;\n  |c_1 - D c_0| / |c_0| over all directions: %.4f\n",
            (long long)sum.resolved, (long long)c.n, sum.max_error, sum.vector_error);
        std::fflush(stdout);
    }
    return 0;
}

// Runs one method on one problem, printing and logging |f - y|^2 per step next to the linearised
// model's prediction r <- (I - lr K) r from the same r0.
template <class StepFn, class ResidualFn>
double log_run(const Config& c, std::optional<CsvWriter>& csv, const std::string& method,
               double cond, double cond_xtx, double cond_gram, double lr,
               const zhang::HostMatrix& kernel, StepFn step, ResidualFn residual) {
    const std::vector<double> r0 = residual();
    const std::vector<double> lin = zhang::linear_residual_sq(kernel, lr, r0, c.steps);
    std::vector<double> rs{zhang::squared_norm(r0)};
    for (std::int64_t t = 1; t <= c.steps; ++t) {
        step();
        rs.push_back(zhang::squared_norm(residual()));
    }
    for (std::size_t t = 0; t < rs.size(); ++t) {
        if (!csv) break;
        csv->row(method, cond, cond_xtx, cond_gram, c.width, c.n, c.d, lr, c.seed, std::int64_t(t),
                 rs[t] / (2.0 * double(c.n)), rs[t], t == 0 ? NAN : rs[t] / rs[t - 1], lin[t]);
    }
    const double rate = zhang::late_rate(rs);
    std::printf("  %-5s lr %-10.4g |f-y|^2 %.3e -> %.3e, late rate %.4f, linearised %.4f\n",
                method.c_str(), lr, rs.front(), rs.back(), rate, zhang::late_rate(lin));
    std::fflush(stdout);
    return rate;
}

int run_kfac(const Config& c, ngd::Context& ctx, std::optional<CsvWriter>& csv) {
    for (const double cond : c.conds) {
        const zhang::Problem p = zhang::make_problem(c.d, c.n, c.width, c.seed, cond);
        const double cx = zhang::input_condition(p.x);
        std::printf("\ninputs with E[z z^T] condition %g -> cond(X^T X) = %.4g after normalising\n",
                    cond, cx);
        const zhang::HostMatrix g0 = zhang::gram_host(ctx, p, p.theta0);
        const auto g_eig = zhang::symmetric_eigen(g0.const_view());
        const double cond_gram = g_eig.values.back() / g_eig.values.front();
        std::printf("  G = J J^T at theta0: eigenvalues %.4g .. %.4g, condition %.4g\n",
                    g_eig.values.front(), g_eig.values.back(), cond_gram);
        for (const auto& method : c.methods) {
            if (method == "kfac") {
                examples::kfac::Trainer t(ctx, p, c.lr, c.kfac);
                log_run(
                    c, csv, method, cond, cx, cond_gram, t.lr(), t.kernel(), [&] { t.step(); },
                    [&] { return t.residual(); });
                continue;
            }
            // GD's map is (lr / n) G: lr = fraction * n / lambda_max(G), as for K-FAC.
            const bool is_ngd = method == "ngd";
            zhang::HostMatrix k = zhang::ngd_kernel(g0, double(c.n) * c.damping);
            double lr = c.lr;
            if (!is_ngd) {
                for (std::int64_t i = 0; i < k.size(); ++i) k[i] = g0[i] / double(c.n);
                lr = c.lr / zhang::symmetric_eigen(k.const_view()).values.back();
            }
            zhang::Trainer t(ctx, p, is_ngd ? zhang::Method::ngd : zhang::Method::gd, lr,
                             c.damping);
            log_run(
                c, csv, method, cond, cx, cond_gram, lr, k, [&] { t.step(); },
                [&] { return t.residual(); });
        }
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    examples::Flags flags(
        "zhang_properties",
        "Claims 2-4 of Zhang, Martens & Grosse (2019) on f(x) = m^-1/2 sum_r a_r relu(w_r . x)\n"
        "(a_r = +-1 fixed, only W trained, squared loss, n unit-norm inputs in R^d):\n"
        "  stability  max over NGD training of |J_t - J_0|_F / |J_0|_F and of the fraction of\n"
        "             flipped ReLU patterns, per width (both shrink as m grows), and Condition 2\n"
        "             of the theorem: |J_t - J_0|_2 against (C/3) sqrt(lambda_min(G0)), C < 1/2\n"
        "  lazy       NGD and GD trained to interpolation from the same theta0: their\n"
        "             predictions on fresh inputs, which both tend to the kernel predictor\n"
        "  damping    damped NGD projects f - y on the eigenvectors v_i of G = J J^T (at theta0)\n"
        "             and compares each direction's ratio per step with 1 - lr sigma_i/(sigma_i +\n"
        "             n lambda) (n lambda / (sigma_i + n lambda) at lr = 1)\n"
        "  kfac       K-FAC vs NGD (and GD) on inputs whose covariance has condition --conds:\n"
        "             K-FAC's rate degrades with cond(X^T X), NGD's does not");
    flags.add("claim", "stability", "stability, lazy, damping or kfac", "NAME")
        .add("n", "64", "number of samples", "N")
        .add("d", "16", "input dimension", "D")
        .add("widths", "256,1024,4096,16384", "stability, lazy: hidden widths m", "LIST")
        .add("targets", "sign", "sign (+-1) or gaussian (N(0, 1)) targets", "KIND")
        .add("probes", "3", "stability: random points on the ball's surface per width", "K")
        .add("n-test", "200", "lazy: fresh unit-norm inputs (seed + 3)", "N")
        .add("gd-max-steps", "3000",
             "lazy: GD steps at most (it stops at |f - y|^2 <= 1e-12 of the start)", "N")
        .add("width", "8192", "damping, kfac: hidden width m", "M")
        .add("steps", "auto",
             "steps per run; auto: stability and lazy (NGD) 10, damping 3, kfac 30", "N")
        .add("lr", "auto",
             "NGD step size eta; kfac and gd use this fraction of their largest\n"
             "non-overshooting step (1 / lambda_max of their linearised sample-space map);\n"
             "auto: 1 for stability, lazy and damping, 0.5 for kfac",
             "ETA")
        .add("damping", "1e-10", "NGD damping lambda (parameter space; Gram side n lambda)", "L")
        .add("dampings", "1e-4,1e-3,1e-2,1e-1", "damping: the lambdas to test", "LIST")
        .add("conds", "1,10,100,1000,10000", "kfac: condition numbers of the input covariance",
             "LIST")
        .add("methods", "ngd,kfac,gd", "kfac: methods to compare", "LIST")
        .add("kfac-damping-a", "1e-3", "kfac: A + gamma (tr A / d) I", "GAMMA")
        .add("kfac-damping-s", "1e-6", "kfac: S + gamma (tr S / n) I (0: pseudo-inverse)", "GAMMA")
        .add("seed", "0",
             "inputs (seed), targets (seed+1), theta0 (seed+2); a comma-separated list runs\n"
             "each seed in turn",
             "LIST")
        .add("backend", "best", "reference, cpu, cuda or best", "NAME")
        .add("csv", "", "write one row per logged step to PATH", "PATH")
        .add_section("CSV columns", kColumns);
    flags.parse_or_exit(argc, argv);

    Config c;
    try {
        c.claim = flags.get_choice("claim", {"stability", "lazy", "damping", "kfac"});
        c.n = flags.get_int("n", 1);
        c.d = flags.get_int("d", 2);
        c.widths = flags.get_int_list("widths", 1);
        c.width = flags.get_int("width", 1);
        const bool kfac_claim = c.claim == "kfac";
        c.steps = flags.get_string("steps") == "auto" ? (kfac_claim             ? 30
                                                         : c.claim == "damping" ? 3
                                                                                : 10)
                                                      : flags.get_int("steps", 1);
        c.lr =
            flags.get_string("lr") == "auto" ? (kfac_claim ? 0.5 : 1.0) : flags.get_double("lr", 0);
        c.damping = flags.get_double("damping", 0);
        c.dampings = flags.get_double_list("dampings", 0);
        c.conds = flags.get_double_list("conds", 1);
        c.methods = flags.get_choice_list("methods", {"ngd", "kfac", "gd"});
        c.kfac.damping_a = flags.get_double("kfac-damping-a", 0);
        c.kfac.damping_s = flags.get_double("kfac-damping-s", 0);
        c.seeds = flags.get_int_list("seed", 0);
        c.targets = flags.get_choice("targets", {"sign", "gaussian"});
        c.probes = flags.get_int("probes", 0);
        c.n_test = flags.get_int("n-test", 1);
        c.gd_max_steps = flags.get_int("gd-max-steps", 0);
        c.backend = flags.get_choice("backend", examples::backend_choices());
        c.csv = flags.get_string("csv");
    } catch (const examples::FlagError& e) {
        std::fprintf(stderr, "zhang_properties: %s\n", e.what());
        return 2;
    }

    std::printf("zhang_properties (ngd %s): %s\n", ngd::version_string, flags.summary().c_str());
    try {
        ngd::Context ctx = examples::make_context(c.backend);
        std::printf("backend: %s\n", ctx.description().c_str());
        std::optional<CsvWriter> csv;
        std::vector<std::string> columns;
        if (c.claim == "stability") {
            columns = {"width",
                       "n",
                       "d",
                       "targets",
                       "lr",
                       "damping",
                       "seed",
                       "step",
                       "residual_sq",
                       "jacobian_change",
                       "flipped",
                       "jacobian_change_patterns",
                       "jacobian_change_spectral",
                       "distance",
                       "lambda_min_g0",
                       "lambda_0",
                       "radius",
                       "bound",
                       "probe",
                       "c_needed"};
        } else if (c.claim == "lazy") {
            columns = {"width",          "n",           "d",         "targets",
                       "seed",           "ngd_steps",   "gd_steps",  "ngd_residual_sq",
                       "gd_residual_sq", "test_change", "ngd_vs_gd", "ngd_vs_linear",
                       "gd_vs_linear",   "theta_gap"};
        } else if (c.claim == "damping") {
            columns = {"width",      "n",           "d",         "lr",         "damping",
                       "gram_shift", "seed",        "direction", "eigenvalue", "predicted",
                       "step",       "coefficient", "ratio"};
        } else {
            columns = {"method",   "cond_target",
                       "cond_xtx", "cond_gram",
                       "width",    "n",
                       "d",        "lr",
                       "seed",     "step",
                       "loss",     "residual_sq",
                       "ratio",    "linearised_residual_sq"};
        }
        if (!c.csv.empty()) csv.emplace(c.csv, columns);
        for (const std::int64_t seed : c.seeds) {
            c.seed = std::uint64_t(seed);
            std::printf("\n== seed %lld\n", (long long)seed);
            if (c.claim == "stability") run_stability(c, ctx, csv);
            if (c.claim == "lazy") run_lazy(c, ctx, csv);
            if (c.claim == "damping") run_damping(c, ctx, csv);
            if (c.claim == "kfac") run_kfac(c, ctx, csv);
        }
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "zhang_properties: error: %s\n", e.what());
        return 1;
    }
}
