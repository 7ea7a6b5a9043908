// Kerekes, Meszaros & Huszar (2021), claim 7: a sparse linear teacher (y = w*.x, few nonzeros,
// fewer samples than dimensions) fitted by a diagonal network w = u*u - v*v. Gradient descent from
// a small balanced start is biased towards sparse (l1-like) interpolants and generalizes; NGD is
// (nearly) invariant to the parameterization and lands on the min-l2-norm interpolant X^+ y, which
// does not. The diagonal network is not an ngd::Mlp: NGD goes through the bring-your-own-Jacobian
// call ngd::direction_from_jacobian, and gradient descent is written out (common/kerekes.hpp).
#include "common/sparse_teacher.hpp"

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
#include "common/kerekes.hpp"

namespace {

namespace kk = examples::kerekes;

const char* kCsvColumns =
    "  method          gd or ngd; a min_norm row (step 0) holds X^+ y's own figures\n"
    "  lr              step size (ngd: eta of theta <- theta - eta d)\n"
    "  init_scale      alpha of the balanced start u = v = alpha (w = 0)\n"
    "  seed            data seed (teacher seed, inputs seed+1, test inputs seed+2)\n"
    "  step, t         steps taken and t = lr * step\n"
    "  loss            training loss |f - y|^2 / (2n)\n"
    "  test_rel_error  |f(X_test) - y_test| / |y_test| (regression: this replaces accuracy)\n"
    "  test_r2         1 - |f - y|^2 / |y - mean y|^2 on the test set\n"
    "  dist_minnorm    |w - X^+ y| / |X^+ y|: 0 when w is the min-l2-norm interpolant\n"
    "  dist_teacher    |w - w*| / |w*|\n"
    "  l1_norm         |w|_1 (the teacher's equals its number of nonzeros)\n"
    "  test_accuracy   fraction of test points with sign(f) = sign(y): the regression's\n"
    "                  accuracy as a sign classifier (test_rel_error is the main figure)";

void write_row(std::optional<examples::CsvWriter>& csv, const kk::RegressionRecord& r) {
    if (csv) {
        csv->row(r.method, r.lr, r.init_scale, r.seed, r.step, r.t, r.loss, r.test_rel_error,
                 r.test_r2, r.dist_min_norm, r.dist_teacher, r.l1_norm, r.test_accuracy);
    }
}

void print_record(const kk::RegressionRecord& r) {
    std::printf(
        "%-8s lr %-6g step %6lld t %8.3f  loss %.3e  test_rel_err %.4f  test_r2 %7.4f  "
        "dist_minnorm %.4f  dist_teacher %.4f  l1 %.3f\n",
        r.method.c_str(), r.lr, (long long)r.step, r.t, r.loss, r.test_rel_error, r.test_r2,
        r.dist_min_norm, r.dist_teacher, r.l1_norm);
    std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
    examples::Flags flags(
        "sparse_teacher",
        "Kerekes, Meszaros & Huszar (2021): a sparse linear teacher y = w*.x (x ~ N(0, I_d), w*\n"
        "with --nonzeros entries +-1) and n < d samples, fitted by a diagonal network\n"
        "f(x) = (u*u - v*v).x from u = v = alpha. GD (written out) vs NGD (through\n"
        "ngd::direction_from_jacobian with the network's own Jacobian [2 x*u, -2 x*v]) on the\n"
        "squared loss; both are compared with the min-norm interpolant X^+ y on a test set.");
    flags.add("d", "100", "input dimension", "D")
        .add("n", "40", "training samples (n < d: many interpolants)", "N")
        .add("n-test", "2000", "test samples from the same teacher", "N")
        .add("nonzeros", "3", "nonzero entries of the teacher w*", "K")
        .add("init-scale", "1e-3", "alpha: the balanced start u = v = alpha", "A")
        .add("methods", "gd,ngd", "gd, ngd", "LIST")
        .add("gd-lr", "0.02", "GD step size", "ETA")
        .add("gd-steps", "20000", "GD steps", "N")
        .add("lr", "1,0.1,0.01,0.001",
             "NGD step sizes eta, comma-separated, one run each: eta = 1 is the exact NGD\n"
             "step (Zhang et al.); small eta approaches the natural gradient flow",
             "LIST")
        .add("ngd-time", "20", "NGD flow time per run: round(t / eta) steps", "T")
        .add("damping", "0", "NGD damping lambda >= 0 (the Gram side is J J^T + n lambda I)",
             "LAMBDA")
        .add("seeds", "0", "data seeds, comma-separated", "LIST")
        .add("log-factor", "1.2", "log steps 0, 1, then a geometric grid with this ratio", "R")
        .add("backend", "best", "reference, cpu, cuda, or best (for the NGD direction)", "NAME")
        .add("csv", "", "write one row per run and logged step to PATH", "PATH")
        .add_section("CSV columns", kCsvColumns);
    flags.parse_or_exit(argc, argv);

    std::int64_t d = 0, n = 0, n_test = 0, nonzeros = 0, gd_steps = 0;
    double init_scale = 0, gd_lr = 0, ngd_time = 0, damping = 0, log_factor = 0;
    std::vector<double> lrs;
    std::vector<std::int64_t> seeds;
    std::vector<std::string> methods;
    std::string backend, csv_path;
    try {
        d = flags.get_int("d", 1);
        n = flags.get_int("n", 1);
        n_test = flags.get_int("n-test", 1);
        nonzeros = flags.get_int("nonzeros", 1);
        init_scale = flags.get_double("init-scale", 0);
        methods = flags.get_choice_list("methods", {"gd", "ngd"});
        gd_lr = flags.get_double("gd-lr", 0);
        gd_steps = flags.get_int("gd-steps", 0);
        lrs = flags.get_double_list("lr", 0);
        for (const double v : lrs) {
            if (!(v > 0)) throw examples::FlagError("--lr: step sizes must be > 0");
        }
        ngd_time = flags.get_double("ngd-time", 0);
        damping = flags.get_double("damping", 0);
        seeds = flags.get_int_list("seeds", 0);
        log_factor = flags.get_double("log-factor", 1.0);
        backend = flags.get_choice("backend", examples::backend_choices());
        csv_path = flags.get_string("csv");
        if (nonzeros > d) throw examples::FlagError("--nonzeros must be <= --d");
        if (d < n) throw examples::FlagError("need d >= n (X^+ y, an interpolating problem)");
    } catch (const examples::FlagError& e) {
        std::fprintf(stderr, "sparse_teacher: %s\n", e.what());
        return 2;
    }
    std::printf("sparse_teacher (ngd %s): %s\n", ngd::version_string, flags.summary().c_str());

    try {
        ngd::Context ctx = examples::make_context(backend);
        std::printf("backend: %s\n", ctx.description().c_str());
        std::optional<examples::CsvWriter> csv;
        if (!csv_path.empty()) {
            csv.emplace(csv_path, std::vector<std::string>{
                                      "method", "lr", "init_scale", "seed", "step", "t", "loss",
                                      "test_rel_error", "test_r2", "dist_minnorm", "dist_teacher",
                                      "l1_norm", "test_accuracy"});
        }
        bool ok = true;
        for (const std::int64_t seed : seeds) {
            const kk::SparseData data =
                kk::make_sparse_data(d, n, n_test, nonzeros, std::uint64_t(seed));
            const std::vector<double> w_mn = kk::min_norm_interpolant(
                data.x, std::vector<double>(data.y.data(), data.y.data() + n));
            std::printf("\n== seed %lld: d = %lld, n = %lld, %lld nonzeros, %lld test samples\n",
                        (long long)seed, (long long)d, (long long)n, (long long)nonzeros,
                        (long long)n_test);
            kk::RegressionRecord mn = kk::regression_record(data, w_mn, w_mn);
            mn.method = "min_norm";
            mn.seed = std::uint64_t(seed);
            print_record(mn);
            write_row(csv, mn);
            for (const std::string& method : methods) {
                for (std::size_t k = 0; k < (method == "ngd" ? lrs.size() : 1); ++k) {
                    kk::DiagonalRun run;
                    run.method = method;
                    run.init_scale = init_scale;
                    run.seed = std::uint64_t(seed);
                    run.log_factor = log_factor;
                    run.damping = method == "ngd" ? damping : 0.0;
                    run.lr = method == "ngd" ? lrs[k] : gd_lr;
                    run.steps =
                        method == "ngd" ? std::int64_t(std::llround(ngd_time / run.lr)) : gd_steps;
                    std::printf("-- %s, lr %g, %lld steps\n", method.c_str(), run.lr,
                                (long long)run.steps);
                    const kk::DiagonalResult res =
                        kk::run_diagonal(ctx, data, w_mn, run, [&](const kk::RegressionRecord& r) {
                            print_record(r);
                            write_row(csv, r);
                        });
                    if (!res.error.empty()) {
                        std::printf("   %s stopped at %s\n", method.c_str(), res.error.c_str());
                        ok = false;
                    }
                }
            }
        }
        if (csv) {
            std::printf("\nwrote %lld rows to %s\n", (long long)csv->rows_written(),
                        csv_path.c_str());
        }
        return ok ? 0 : 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "sparse_teacher: error: %s\n", e.what());
        return 1;
    }
}
