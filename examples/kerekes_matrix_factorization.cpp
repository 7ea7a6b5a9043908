// Kerekes, Meszaros & Huszar (2021), "Depth without the magic": in deep matrix completion, GD from
// a small initialisation finds a low-rank completion (low error on the unobserved entries, more so
// with depth), while NGD, invariant to the parameterization, does not; at depth 1 both leave the
// unobserved entries exactly at their initial values. Also shows where the discrete NGD step
// misbehaves (tiny initialisation: huge steps through a near-zero Jacobian) and its remedies.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <ngd/ngd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/backend.hpp"
#include "common/csv.hpp"
#include "common/flags.hpp"
#include "common/matrix_factorization.hpp"

namespace {

const char* kColumns =
    "  method          gd, ngd or ngd_full\n"
    "  depth           number of d x d factors\n"
    "  init_scale      standard deviation of every factor's initial entries\n"
    "  lr, damping     step size; NGD damping lambda (parameter space; 0 for gd)\n"
    "  max_step_norm   ngd: the step guard's bound on |lr d| (inf: off)\n"
    "  seed            the --seeds entry of this run\n"
    "  step            0 = initial parameters\n"
    "  loss            training loss on the observed entries, sum (f - y)^2 / (2 n)\n"
    "  test_rel_error  |W - M|_F / |M|_F over the unobserved entries (M the ground truth)\n"
    "  effective_rank  exp(entropy of s / sum s), s the singular values of W (Roy & Vetterli)\n"
    "  unobserved_change  max |W_ij(t) - W_ij(0)| over unobserved (i, j)\n"
    "  ladder_steps    NGD steps so far whose Cholesky failed, so the library raised the damping\n"
    "                  or used its pseudo-inverse fallback (0: every step was the one asked for)\n"
    "  uphill_steps    steps so far that raised the training loss (a warning is printed)\n"
    "  max_rise        the largest loss_after / loss_before over those steps (1: none)";

struct Config {
    std::int64_t d = 0, rank = 0, n_observed = 0, gd_steps = 0, log_every = 0;
    double ngd_time = 0, full_lr = 0, full_damping = 0, full_time = 0;
    std::vector<std::int64_t> depths;
    std::vector<double> init_scales, ngd_lrs, ngd_dampings, ngd_max_steps;
    std::vector<std::string> methods;
    std::string gd_lr, backend, csv;
    std::vector<std::int64_t> seeds;
};

// Steps that cover flow time T at step size lr (at least one).
std::int64_t flow_steps(double time, double lr) {
    return std::max<std::int64_t>(1, std::int64_t(std::ceil(time / lr - 1e-9)));
}

// The runs one (depth, method) asks for: GD once, NGD once per (lr, damping).
std::vector<examples::mf::RunOptions> runs_for(const Config& c, std::int64_t depth,
                                               const std::string& method) {
    std::vector<examples::mf::RunOptions> runs;
    examples::mf::RunOptions o;
    o.method = method;
    if (method == "gd") {
        o.lr =
            c.gd_lr == "auto" ? double(c.n_observed) / (2.0 * double(depth)) : std::stod(c.gd_lr);
        o.steps = c.gd_steps;
        runs.push_back(o);
    } else if (method == "ngd_full") {
        o.lr = c.full_lr;
        o.damping = c.full_damping;
        o.steps = flow_steps(c.full_time, c.full_lr);
        runs.push_back(o);
    } else {
        for (const double lr : c.ngd_lrs) {
            for (const double lambda : c.ngd_dampings) {
                for (const double guard : c.ngd_max_steps) {
                    o.lr = lr;
                    o.damping = lambda;
                    o.max_step_norm = guard;
                    o.steps = flow_steps(c.ngd_time, lr);
                    runs.push_back(o);
                }
            }
        }
    }
    for (auto& r : runs) {
        r.log_every = c.log_every > 0 ? c.log_every : std::max<std::int64_t>(1, r.steps / 100);
    }
    return runs;
}

void run_seed(const Config& c, ngd::Context& ctx, const examples::mf::Problem& p,
              std::uint64_t seed, std::optional<examples::CsvWriter>& csv) {
    for (const std::int64_t depth : c.depths) {
        for (const double scale : c.init_scales) {
            for (const auto& method : c.methods) {
                for (const auto& o : runs_for(c, depth, method)) {
                    std::printf(
                        "\n%s, depth %lld, init scale %g, lr %g, damping %g, max step %g, %lld "
                        "steps\n",
                        o.method.c_str(), (long long)depth, scale, o.lr, o.damping, o.max_step_norm,
                        (long long)o.steps);
                    std::printf("%7s %12s %12s %10s %14s\n", "step", "loss", "test error",
                                "eff. rank", "unobs. change");
                    examples::mf::Record last;
                    const std::string err = examples::mf::train(
                        ctx, p, depth, scale, seed + 3, o, [&](const examples::mf::Record& r) {
                            std::printf("%7lld %12.4e %12.4e %10.4f %14.4e\n", (long long)r.step,
                                        r.loss, r.test_rel_error, r.effective_rank,
                                        r.unobserved_change);
                            if (csv) {
                                csv->row(o.method, depth, scale, o.lr, o.damping, o.max_step_norm,
                                         seed, r.step, r.loss, r.test_rel_error, r.effective_rank,
                                         r.unobserved_change, r.ladder_steps, r.uphill_steps,
                                         r.max_rise);
                            }
                            last = r;
                        });
                    if (!err.empty()) std::printf("  stopped at %s\n", err.c_str());
                    if (last.ladder_steps > 0) {
                        std::printf(
                            "  %lld step(s) needed the failure ladder (raised damping or "
                            "pseudo-inverse fallback)\n",
                            (long long)last.ladder_steps);
                    }
                    if (last.uphill_steps > 0) {
                        std::printf(
                            "  WARNING: %lld step(s) raised the training loss; the largest rise "
                            "was x%.3g at step %lld\n",
                            (long long)last.uphill_steps, last.max_rise,
                            (long long)last.max_rise_step);
                    }
                    std::printf(
                        "  => %s depth %lld init %g lr %g damping %g: test error %.4g, "
                        "effective rank %.3f\n",
                        o.method.c_str(), (long long)depth, scale, o.lr, o.damping,
                        last.test_rel_error, last.effective_rank);
                    std::fflush(stdout);
                }
            }
        }
    }
}

}  // namespace

int main(int argc, char** argv) {
    examples::Flags flags(
        "kerekes_matrix_factorization",
        "Deep matrix completion, GD vs NGD (Kerekes, Meszaros & Huszar 2021; Arora et al. 2019).\n"
        "A rank-r d x d matrix M (|M|_F = 1) is observed on n entries; the model is\n"
        "W = W_depth ... W_1 (ngd::matrix_factorization), a sample is an observed entry (i, j) "
        "with\n"
        "input e_j and output row i, squared loss. Every (depth, init scale, method[, lr, "
        "damping])\n"
        "runs from the same initialisation; prints one line per logged step.");
    flags.add("d", "20", "matrix size", "D")
        .add("rank", "1", "rank of the ground truth", "R")
        .add("observed", "120", "number of observed entries n", "N")
        .add("depths", "1,2,3", "depths to run", "LIST")
        .add("init-scales", "1e-2", "standard deviations of the initial factor entries", "LIST")
        .add("methods", "gd,ngd,ngd_full",
             "gd; ngd (the library's NaturalGradient: Fisher over the observed entries);\n"
             "ngd_full (Fisher over all d^2 entries, through ngd::direction_from_jacobian)",
             "LIST")
        .add("gd-lr", "auto", "GD step size; auto = n / (2 depth)", "ETA")
        .add("gd-steps", "4000", "GD steps", "N")
        .add("ngd-lrs", "0.003", "NGD step sizes (each combined with each damping)", "LIST")
        .add("ngd-dampings", "0",
             "NGD dampings lambda (Gram side n lambda; d^2 lambda for ngd_full)", "LIST")
        .add("ngd-max-step-norms", "inf",
             "ngd: the library's step guard |lr d| <= this (one run per value; inf = off)", "LIST")
        .add("ngd-time", "20", "NGD runs ceil(T / lr) steps: the same flow time T for every lr",
             "T")
        .add("full-lr", "0.1", "ngd_full step size", "ETA")
        .add("full-damping", "1e-6", "ngd_full damping lambda", "L")
        .add("full-time", "10", "ngd_full runs ceil(T / lr) steps", "T")
        .add("log-every", "0", "log every N steps; 0: 1/100 of the run (at least 1)", "N")
        .add("seeds", "0",
             "one run per seed: ground truth and mask (seed .. seed+2), init (seed+3)", "LIST")
        .add("backend", "best", "reference, cpu, cuda or best", "NAME")
        .add("csv", "", "write one row per logged step to PATH", "PATH")
        .add_section("CSV columns", kColumns);
    flags.parse_or_exit(argc, argv);

    Config c;
    try {
        c.d = flags.get_int("d", 2);
        c.rank = flags.get_int("rank", 1);
        c.n_observed = flags.get_int("observed", 1);
        c.depths = flags.get_int_list("depths", 1);
        c.init_scales = flags.get_double_list("init-scales", 0);
        c.methods = flags.get_choice_list("methods", {"gd", "ngd", "ngd_full"});
        c.gd_lr = flags.get_string("gd-lr");
        if (c.gd_lr != "auto") flags.get_double("gd-lr", 0);
        c.gd_steps = flags.get_int("gd-steps", 1);
        c.ngd_lrs = flags.get_double_list("ngd-lrs", 0);
        c.ngd_dampings = flags.get_double_list("ngd-dampings", 0);
        for (const auto& v : flags.get_list("ngd-max-step-norms")) {
            char* end = nullptr;
            const double x = v == "inf" ? HUGE_VAL : std::strtod(v.c_str(), &end);
            if ((v != "inf" && *end != '\0') || !(x > 0)) {
                throw examples::FlagError(
                    "--ngd-max-step-norms: expected positive numbers or inf, got '" + v + "'");
            }
            c.ngd_max_steps.push_back(x);
        }
        c.ngd_time = flags.get_double("ngd-time", 0);
        c.full_lr = flags.get_double("full-lr", 0);
        c.full_damping = flags.get_double("full-damping", 0);
        c.full_time = flags.get_double("full-time", 0);
        c.log_every = flags.get_int("log-every", 0);
        c.seeds = flags.get_int_list("seeds", 0);
        c.backend = flags.get_choice("backend", examples::backend_choices());
        c.csv = flags.get_string("csv");
        if (c.rank > c.d || c.n_observed > c.d * c.d) {
            throw examples::FlagError("need --rank <= --d and --observed <= d^2");
        }
    } catch (const examples::FlagError& e) {
        std::fprintf(stderr, "kerekes_matrix_factorization: %s\n", e.what());
        return 2;
    }
    std::printf("kerekes_matrix_factorization (ngd %s): %s\n", ngd::version_string,
                flags.summary().c_str());

    try {
        ngd::Context ctx = examples::make_context(c.backend);
        std::printf("backend: %s\n", ctx.description().c_str());
        std::optional<examples::CsvWriter> csv;
        if (!c.csv.empty()) {
            csv.emplace(c.csv, std::vector<std::string>{"method", "depth", "init_scale", "lr",
                                                        "damping", "max_step_norm", "seed", "step",
                                                        "loss", "test_rel_error", "effective_rank",
                                                        "unobserved_change", "ladder_steps",
                                                        "uphill_steps", "max_rise"});
        }
        for (const std::int64_t seed_flag : c.seeds) {
            const auto seed = static_cast<std::uint64_t>(seed_flag);
            const examples::mf::Problem p =
                examples::mf::make_problem(c.d, c.rank, c.n_observed, seed);
            std::printf(
                "\n=== seed %llu: %lld x %lld ground truth of rank %lld, %lld of %lld entries "
                "observed\n",
                (unsigned long long)seed, (long long)c.d, (long long)c.d, (long long)c.rank,
                (long long)c.n_observed, (long long)(c.d * c.d));
            run_seed(c, ctx, p, seed, csv);
        }
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "kerekes_matrix_factorization: error: %s\n", e.what());
        return 1;
    }
}
