// Kerekes, Meszaros & Huszar (2021): NGD is (approximately) invariant to the parameterization when
// the Fisher of the function it parameterizes is invertible, which for logistic regression needs
// n > d. One sparse teacher, two parameterizations of the same linear predictor (w itself, and a
// diagonal network w = u*u - v*v), NGD and GD on each: NGD's two trajectories agree in function
// space to within a few per cent at every step size (the discrete step's error; they coincide in
// the flow); GD's do not, and only GD on the diagonal network finds the sparse teacher. The math
// lives in common/reparam.hpp.
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
#include "common/reparam.hpp"

namespace {

namespace kk = examples::kerekes;

const char* kCsvColumns =
    "  method          ngd or gd; an svm row (step 0) holds the l2 max-margin direction's\n"
    "                  own figures\n"
    "  model           linear (theta = w) or diagonal (theta = [u; v], w = u*u - v*v)\n"
    "  lr, damping     step size and NGD's damping lambda (0 for gd)\n"
    "  init_scale      diagonal: u = v = init_scale at the start (w = 0); linear starts at 0\n"
    "  seed            data seed (teacher seed, inputs seed+1, test inputs seed+2)\n"
    "  step, t         steps taken and t = lr * step\n"
    "  loss            training loss (1/n) sum ln(1 + e^{-m_i}), m_i = s_i w.x_i\n"
    "  min_margin      min_i m_i\n"
    "  test_accuracy   fraction of the test set classified as the teacher does\n"
    "  cos_teacher     cos(w, w*)\n"
    "  support_mass    |w_S|_1 / |w|_1 over the teacher's support S (1: as sparse as w*)\n"
    "  cos_svm         cos(w, w_svm), the l2 max-margin direction (GD's limit on the linear\n"
    "                  model)\n"
    "  pair_cos        diagonal rows: cos(w, w_pair), w_pair the linear model's w under the same\n"
    "                  method: ngd at the same lr and step, gd at the same training loss\n"
    "  pair_pred_diff  |f - f_pair| / |f_pair| on the test inputs\n"
    "  pair_disagree   fraction of test points that w and w_pair classify differently\n"
    "  uphill          1 when a step since the previous logged row raised the training loss\n"
    "  ladder_steps    ngd steps so far whose Cholesky failed at --damping, so lambda was\n"
    "                  raised x100 (up to 4 times) for that step";

const std::vector<std::string> kColumns{
    "method",       "model",   "lr",       "damping",        "init_scale",    "seed",
    "step",         "t",       "loss",     "min_margin",     "test_accuracy", "cos_teacher",
    "support_mass", "cos_svm", "pair_cos", "pair_pred_diff", "pair_disagree", "uphill",
    "ladder_steps"};

void write_row(std::optional<examples::CsvWriter>& csv, const kk::ReparamRecord& r) {
    if (!csv) return;
    csv->row(r.method, r.model, r.lr, r.damping, r.init_scale, r.seed, r.step, r.t, r.loss,
             r.min_margin, r.test_accuracy, r.cos_teacher, r.support_mass, r.cos_svm, r.pair_cos,
             r.pair_pred_diff, r.pair_disagree, int(r.uphill), r.ladder_steps);
}

void print_record(const kk::ReparamRecord& r) {
    std::printf(
        "%-4s %-8s step %7lld t %8.3f  loss %.3e  test_acc %.4f  support %.3f  cos_svm %.4f"
        "  pair_cos %.6f  pred_diff %.2e%s\n",
        r.method.c_str(), r.model.c_str(), (long long)r.step, r.t, r.loss, r.test_accuracy,
        r.support_mass, r.cos_svm, r.pair_cos, r.pair_pred_diff, r.uphill ? "  UPHILL" : "");
    std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
    examples::Flags flags(
        "kerekes_reparam",
        "Kerekes, Meszaros & Huszar (2021): logistic regression on a sparse teacher with n > d\n"
        "(x ~ N(0, I_d), labels sign(w*.x), w* with --nonzeros entries +-1). The same predictor\n"
        "f(x) = w.x is trained as a linear model (theta = w) and as a diagonal network\n"
        "(w = u*u - v*v from u = v = --init-scale), by NGD (the library's logistic factors;\n"
        "the primal p x p solve when n > p, ngd::direction_from_jacobian otherwise) and by GD.\n"
        "Each diagonal run is compared with the linear run of the same method: NGD's agree\n"
        "to within a few per cent (invariance, up to the discrete step's error), GD's do not.");
    flags.add("d", "30", "input dimension", "D")
        .add("n", "90", "training samples (n > d: the linear model's Fisher is invertible)", "N")
        .add("n-test", "2000", "test samples from the same teacher", "N")
        .add("nonzeros", "3", "nonzero entries of the teacher w*", "K")
        .add("models", "linear,diagonal", "linear, diagonal (diagonal runs need a linear run)",
             "LIST")
        .add("methods", "ngd,gd", "ngd, gd", "LIST")
        .add("lr", "1,0.3,0.1,0.03", "NGD step sizes eta, comma-separated, one run each", "LIST")
        .add("ngd-time", "8", "NGD time per run: round(t / eta) steps", "T")
        .add("damping", "1e-12",
             "NGD damping lambda > 0: with n > d, A A^T has rank <= 2d < n and needs a shift",
             "LAMBDA")
        .add("init-scale", "1e-3", "diagonal network: u = v = this at the start", "A")
        .add("gd-lr", "2", "GD step size", "ETA")
        .add("gd-steps", "100000", "GD steps", "N")
        .add("seeds", "0", "data seeds, comma-separated", "LIST")
        .add("log-factor", "1.1", "log steps 0, 1, then a geometric grid with this ratio", "R")
        .add("backend", "best", "reference, cpu, cuda, or best (for the NGD direction)", "NAME")
        .add("csv", "", "write one row per run and logged step to PATH", "PATH")
        .add_section("CSV columns", kCsvColumns);
    flags.parse_or_exit(argc, argv);

    std::int64_t d = 0, n = 0, n_test = 0, nonzeros = 0, gd_steps = 0;
    double init_scale = 0, gd_lr = 0, ngd_time = 0, damping = 0, log_factor = 0;
    std::vector<double> lrs;
    std::vector<std::int64_t> seeds;
    std::vector<std::string> methods, models;
    std::string backend, csv_path;
    try {
        d = flags.get_int("d", 1);
        n = flags.get_int("n", 1);
        n_test = flags.get_int("n-test", 1);
        nonzeros = flags.get_int("nonzeros", 1);
        models = flags.get_choice_list("models", {"linear", "diagonal"});
        methods = flags.get_choice_list("methods", {"ngd", "gd"});
        lrs = flags.get_double_list("lr", 0);
        for (const double v : lrs) {
            if (!(v > 0)) throw examples::FlagError("--lr: step sizes must be > 0");
        }
        ngd_time = flags.get_double("ngd-time", 0);
        damping = flags.get_double("damping", 0);
        init_scale = flags.get_double("init-scale", 0);
        gd_lr = flags.get_double("gd-lr", 0);
        gd_steps = flags.get_int("gd-steps", 0);
        seeds = flags.get_int_list("seeds", 0);
        log_factor = flags.get_double("log-factor", 1.0);
        backend = flags.get_choice("backend", examples::backend_choices());
        csv_path = flags.get_string("csv");
        if (nonzeros > d) throw examples::FlagError("--nonzeros must be <= --d");
        if (n <= d) throw examples::FlagError("need n > d (the setting where NGD is invariant)");
        if (!(damping > 0)) throw examples::FlagError("--damping must be > 0 when n > d");
    } catch (const examples::FlagError& e) {
        std::fprintf(stderr, "kerekes_reparam: %s\n", e.what());
        return 2;
    }
    std::printf("kerekes_reparam (ngd %s): %s\n", ngd::version_string, flags.summary().c_str());

    try {
        ngd::Context ctx = examples::make_context(backend);
        std::printf("backend: %s\n", ctx.description().c_str());
        std::optional<examples::CsvWriter> csv;
        if (!csv_path.empty()) csv.emplace(csv_path, kColumns);
        bool ok = true;
        for (const std::int64_t seed : seeds) {
            const kk::SparseLabels data =
                kk::make_sparse_labels(d, n, n_test, nonzeros, std::uint64_t(seed));
            const kk::SvmSolution svm = kk::hard_margin_svm(data.regression.x, data.s, 1e-9);
            std::printf(
                "\n== seed %lld: d = %lld, n = %lld, %lld nonzeros; l2 SVM: %lld support "
                "vectors\n",
                (long long)seed, (long long)d, (long long)n, (long long)nonzeros,
                (long long)svm.n_support);
            kk::ReparamRecord sv = kk::reparam_record(data, svm.w, svm.w);
            sv.method = "svm";
            sv.model = "linear";
            sv.seed = std::uint64_t(seed);
            sv.loss = NAN;
            print_record(sv);
            write_row(csv, sv);
            for (const std::string& method : methods) {
                for (std::size_t k = 0; k < (method == "ngd" ? lrs.size() : 1); ++k) {
                    std::vector<kk::ReparamRecord> linear;
                    for (const std::string& model : models) {
                        kk::ReparamRun run;
                        run.method = method;
                        run.model = model;
                        run.init_scale = init_scale;
                        run.seed = std::uint64_t(seed);
                        // GD is paired by training loss: log the linear run densely.
                        run.log_factor = method == "gd" && model == "linear" ? 1.01 : log_factor;
                        run.damping = damping;
                        run.lr = method == "ngd" ? lrs[k] : gd_lr;
                        run.steps = method == "ngd" ? std::int64_t(std::llround(ngd_time / run.lr))
                                                    : gd_steps;
                        std::printf("-- %s, %s, lr %g, %lld steps\n", method.c_str(), model.c_str(),
                                    run.lr, (long long)run.steps);
                        const bool pair = model == "diagonal" && !linear.empty();
                        const kk::ReparamResult res = kk::run_reparam(
                            ctx, data, svm.w, run, pair ? &linear : nullptr,
                            [&](const kk::ReparamRecord& r) {
                                if (run.log_factor == log_factor || r.step == run.steps) {
                                    print_record(r);
                                }
                                write_row(csv, r);
                            });
                        if (!res.error.empty()) {
                            std::printf("   %s stopped at %s\n", method.c_str(), res.error.c_str());
                            ok = false;
                        }
                        if (model == "linear") linear = res.records;
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
        std::fprintf(stderr, "kerekes_reparam: error: %s\n", e.what());
        return 1;
    }
}
