// Kerekes, Meszaros & Huszar (2021), claims 5 and 8: logistic loss on linearly separable data with
// more dimensions than samples. Gradient descent on a deep linear network w = W_L ... W_1 turns
// towards the hard-margin SVM direction (slowly: like 1/log t); NGD's margins follow the closed
// form ln(1 + e^{m_i(t)}) = t + ln(1 + e^{m_i(0)}) for every depth, and its direction tends to the
// equal-margin interpolant X^+ s instead. --model tanh (or relu) checks the same closed form on a
// two-layer network as a function of its width. --n > --d, --inputs gaussian and --margin-gap
// (few support vectors) vary the data.
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
    "  method             ngd or gd; svm and min_norm rows (step 0, depth 0) hold the two\n"
    "                     reference directions' own figures\n"
    "  model              deep_linear, tanh or relu\n"
    "  depth, width       number of layers (tanh: 2) and hidden width\n"
    "  seed               data seed (teacher seed, inputs seed+1, test seed+2, theta0 seed+3)\n"
    "  lr, damping        the method's step size and damping lambda (0 for gd)\n"
    "  step, t            steps taken and t = lr * step\n"
    "  loss               training logistic loss (1/n) sum ln(1 + e^{-m_i})\n"
    "  min_margin         min_i m_i, m_i = s_i f(x_i), s_i = +-1\n"
    "  predicted_min_margin  ngd: min_i of the closed form's m_i(t); nan for gd\n"
    "  normalized_margin  min_margin / |w| (deep_linear only; the SVM's is the largest possible)\n"
    "  margin_law_error   ngd: max_i |ln(1+e^{m_i}) - ln(1+e^{m_i(0)}) - t|; nan for gd\n"
    "  cos_svm            cos(w, w_svm), w = W_L ... W_1 the end-to-end map (deep_linear only)\n"
    "  cos_minnorm        cos(w, X^+ s), the min-norm solution of s_i x_i.w = 1 for all i\n"
    "                     (nan when n > d: no w meets every margin)\n"
    "  test_accuracy      fraction of the held-out set (same teacher) classified correctly\n"
    "  ladder_steps       ngd steps so far whose Cholesky failed at the requested damping, so\n"
    "                     the library's ladder raised it or used its pseudo-inverse fallback\n"
    "  guarded_steps      ngd steps so far shortened by --max-step-norm";

const std::vector<std::string> kColumns{"method",
                                        "model",
                                        "depth",
                                        "width",
                                        "seed",
                                        "lr",
                                        "damping",
                                        "step",
                                        "t",
                                        "loss",
                                        "min_margin",
                                        "predicted_min_margin",
                                        "normalized_margin",
                                        "margin_law_error",
                                        "cos_svm",
                                        "cos_minnorm",
                                        "test_accuracy",
                                        "ladder_steps",
                                        "guarded_steps"};

void write_row(std::optional<examples::CsvWriter>& csv, const kk::LogisticRecord& r) {
    if (!csv) return;
    csv->row(r.method, r.model, r.depth, r.width, r.seed, r.lr, r.damping, r.step, r.t, r.loss,
             r.min_margin, r.predicted_min_margin, r.normalized_margin, r.margin_law_error,
             r.cos_svm, r.cos_min_norm, r.test_accuracy, r.ladder_steps, r.guarded_steps);
}

void print_record(const kk::LogisticRecord& r) {
    std::printf(
        "%-4s L=%lld w=%-4lld step %7lld t %9.3f  loss %.3e  min_m %9.3f  nmargin %8.4f"
        "  law_err %.2e  cos_svm %.4f  cos_mn %.4f  test_acc %.4f\n",
        r.method.c_str(), (long long)r.depth, (long long)r.width, (long long)r.step, r.t, r.loss,
        r.min_margin, r.normalized_margin, r.margin_law_error, r.cos_svm, r.cos_min_norm,
        r.test_accuracy);
    std::fflush(stdout);
}

// The SVM and min-norm directions' own figures, as CSV rows and a printed line.
void report_references(const kk::TeacherData& data, const kk::ReferenceDirections& refs,
                       std::uint64_t seed, std::optional<examples::CsvWriter>& csv) {
    std::printf("  hard-margin SVM: %d sweeps, KKT violation %.1e, %lld of %lld support vectors\n",
                refs.svm.sweeps, refs.svm.kkt_violation, (long long)refs.svm.n_support,
                (long long)data.x.cols());
    const double c = refs.min_norm.empty() ? NAN : kk::cosine(refs.svm.w, refs.min_norm);
    for (int k = 0; k < (refs.min_norm.empty() ? 1 : 2); ++k) {
        const std::vector<double>& w = k == 0 ? refs.svm.w : refs.min_norm;
        kk::LogisticRecord r;
        r.method = k == 0 ? "svm" : "min_norm";
        r.model = "linear";
        r.seed = seed;
        r.t = NAN;
        r.loss = NAN;
        const std::vector<double> f = kk::linear_outputs(data.x, w);
        r.min_margin = INFINITY;
        for (std::int64_t i = 0; i < data.x.cols(); ++i) {
            r.min_margin = std::min(r.min_margin, data.s[i] * f[i]);
        }
        r.normalized_margin = r.min_margin / kk::norm2(w);
        r.cos_svm = k == 0 ? 1.0 : c;
        r.cos_min_norm = k == 0 ? c : 1.0;
        const std::vector<double> ft = kk::linear_outputs(data.x_test, w);
        double correct = 0;
        for (std::size_t i = 0; i < ft.size(); ++i) correct += data.s_test[i] * ft[i] > 0;
        r.test_accuracy = correct / double(ft.size());
        std::printf("  %-8s normalized margin %.4f  cos(svm, min_norm) %.4f  test accuracy %.4f\n",
                    r.method.c_str(), r.normalized_margin, c, r.test_accuracy);
        write_row(csv, r);
    }
}

}  // namespace

int main(int argc, char** argv) {
    examples::Flags flags(
        "kerekes_logistic",
        "Kerekes, Meszaros & Huszar (2021): NGD vs gradient descent under the logistic loss on\n"
        "linearly separable data (labels sign(w*.x) of a Gaussian teacher; inputs on the unit\n"
        "sphere or Gaussian, optionally pushed away from the teacher's boundary by --margin-gap).\n"
        "--model deep_linear trains w = W_L ... W_1 for each depth and compares the direction of "
        "w\n"
        "with the hard-margin SVM and (d >= n) with the equal-margin interpolant X^+ s.\n"
        "--model tanh|relu trains d -> width -> 1 for each width. NGD's margins are compared\n"
        "with the closed form ln(1 + e^{m(t)}) = t + ln(1 + e^{m(0)}), t = lr * step.");
    flags.add("model", "deep_linear", "deep_linear, tanh or relu", "NAME")
        .add("n", "40",
             "training samples; n > d makes J J^T singular for deep_linear (NGD then needs\n"
             "--damping > 0 or the library's ladder) and X^+ s undefined",
             "N")
        .add("d", "auto",
             "input dimension; auto = 50 for deep_linear, 10 for tanh and relu (so that\n"
             "narrow networks have fewer parameters than samples)",
             "D")
        .add("inputs", "sphere", "sphere (unit norm) or gaussian (N(0, I/d))", "KIND")
        .add("margin-gap", "0",
             "push each point this far from the teacher's boundary (few support vectors)", "G")
        .add("n-test", "2000", "held-out samples from the same teacher", "N")
        .add("depths", "1,2,3", "deep_linear: depths L, comma-separated (tanh: ignored)", "LIST")
        .add("widths", "auto",
             "hidden widths, comma-separated; auto = d for deep_linear,\n"
             "2,4,8,16,32,128,512 for tanh and relu",
             "LIST")
        .add("methods", "auto",
             "optimizers: ngd, gd; auto = ngd,gd for deep_linear, ngd for tanh and relu", "LIST")
        .add("lr", "0.05,0.01",
             "NGD step sizes eta, comma-separated, one run each (the closed form is exact for\n"
             "the flow eta -> 0; its error in a discrete run is O(eta))",
             "LIST")
        .add("ngd-time", "20", "NGD flow time t per run: round(t / eta) steps", "T")
        .add("damping", "0",
             "NGD damping lambda >= 0; in the natural-residual form it enters as n lambda H^-1,\n"
             "which grows like e^{margin}: any lambda > 0 eventually stalls the margins",
             "LAMBDA")
        .add("max-step-norm", "inf",
             "NGD step guard: eta is cut so that |eta d| <= this (inf: off); the remedy when\n"
             "an ill-conditioned Gram matrix gives a huge step",
             "S")
        .add("gd-lr", "auto", "GD step size, or auto = 2 n / lambda_max(J J^T) at theta0", "ETA")
        .add("gd-steps", "20000", "GD steps (its direction converges like 1/log t)", "N")
        .add("init-scale", "-1", "initial weight scale (negative: 1/sqrt(fan_in))", "S")
        .add("seeds", "0", "data and initialisation seeds, comma-separated", "LIST")
        .add("log-factor", "1.15", "log steps 0, 1, then a geometric grid with this ratio", "R")
        .add("backend", "best", "reference, cpu, cuda, or best", "NAME")
        .add("csv", "", "write one row per run and logged step to PATH", "PATH")
        .add_section("CSV columns", kCsvColumns);
    flags.parse_or_exit(argc, argv);

    std::string model, gd_lr, backend, csv_path, inputs;
    double margin_gap = 0;
    std::int64_t n = 0, d = 0, n_test = 0, gd_steps = 0;
    std::vector<std::int64_t> depths, widths, seeds;
    std::vector<std::string> methods;
    std::vector<double> lrs;
    double max_step_norm = INFINITY, ngd_time = 0, damping = 0, init_scale = 0, log_factor = 0;
    try {
        model = flags.get_choice("model", {"deep_linear", "tanh", "relu"});
        const bool two_layer = model != "deep_linear";
        n = flags.get_int("n", 1);
        d = flags.get_string("d") == "auto" ? (two_layer ? 10 : 50) : flags.get_int("d", 1);
        inputs = flags.get_choice("inputs", {"sphere", "gaussian"});
        margin_gap = flags.get_double("margin-gap", 0);
        n_test = flags.get_int("n-test", 1);
        depths = two_layer ? std::vector<std::int64_t>{2} : flags.get_int_list("depths", 1);
        widths = flags.get_string("widths") != "auto"
                     ? flags.get_int_list("widths", 1)
                     : (two_layer ? std::vector<std::int64_t>{2, 4, 8, 16, 32, 128, 512}
                                  : std::vector<std::int64_t>{d});
        methods = flags.get_string("methods") != "auto"
                      ? flags.get_choice_list("methods", {"ngd", "gd"})
                      : (two_layer ? std::vector<std::string>{"ngd"}
                                   : std::vector<std::string>{"ngd", "gd"});
        lrs = flags.get_double_list("lr", 0);
        ngd_time = flags.get_double("ngd-time", 0);
        if (flags.get_string("max-step-norm") != "inf") {
            max_step_norm = flags.get_double("max-step-norm", 0);
        }
        damping = flags.get_double("damping", 0);
        gd_lr = flags.get_string("gd-lr");
        if (gd_lr != "auto") flags.get_double("gd-lr", 0);
        gd_steps = flags.get_int("gd-steps", 0);
        init_scale = flags.get_double("init-scale");
        seeds = flags.get_int_list("seeds", 0);
        log_factor = flags.get_double("log-factor", 1.0);
        backend = flags.get_choice("backend", examples::backend_choices());
        csv_path = flags.get_string("csv");
        for (const double v : lrs) {
            if (!(v > 0)) throw examples::FlagError("--lr: step sizes must be > 0");
        }
    } catch (const examples::FlagError& e) {
        std::fprintf(stderr, "kerekes_logistic: %s\n", e.what());
        return 2;
    }
    std::printf("kerekes_logistic (ngd %s): %s\n", ngd::version_string, flags.summary().c_str());

    try {
        ngd::Context ctx = examples::make_context(backend);
        std::printf("backend: %s\n", ctx.description().c_str());
        std::optional<examples::CsvWriter> csv;
        if (!csv_path.empty()) csv.emplace(csv_path, kColumns);
        bool ok = true;
        for (const std::int64_t seed : seeds) {
            const kk::TeacherData data =
                kk::make_teacher_data(d, n, n_test, std::uint64_t(seed), inputs, margin_gap);
            std::printf("\n== seed %lld: n = %lld, d = %lld, %lld test samples\n", (long long)seed,
                        (long long)n, (long long)d, (long long)n_test);
            std::optional<kk::ReferenceDirections> refs;
            if (model == "deep_linear") {
                refs = kk::reference_directions(data);
                report_references(data, *refs, std::uint64_t(seed), csv);
            }
            for (const std::int64_t depth : depths) {
                for (const std::int64_t width : widths) {
                    for (const std::string& method : methods) {
                        // ngd: one run per step size; gd: one run.
                        const std::size_t n_runs = method == "ngd" ? lrs.size() : 1;
                        for (std::size_t k = 0; k < n_runs; ++k) {
                            kk::LogisticRun run;
                            run.method = method;
                            run.model = model;
                            run.depth = depth;
                            run.width = width;
                            run.init_scale = init_scale;
                            run.seed = std::uint64_t(seed);
                            run.log_factor = log_factor;
                            if (method == "ngd") {
                                run.damping = damping;
                                run.max_step_norm = max_step_norm;
                                run.lr = lrs[k];
                                run.steps = std::int64_t(std::llround(ngd_time / run.lr));
                            } else {
                                run.lr = gd_lr == "auto" ? kk::gd_auto_lr_for(ctx, data, run)
                                                         : std::stod(gd_lr);
                                run.steps = gd_steps;
                            }
                            std::printf("-- %s, %s depth %lld width %lld, lr %.4g, %lld steps\n",
                                        method.c_str(), model.c_str(), (long long)depth,
                                        (long long)width, run.lr, (long long)run.steps);
                            const kk::LogisticResult res =
                                kk::run_logistic(ctx, data, refs ? &*refs : nullptr, run,
                                                 [&](const kk::LogisticRecord& r) {
                                                     print_record(r);
                                                     write_row(csv, r);
                                                 });
                            if (!res.error.empty()) {
                                std::printf("   %s stopped at %s\n", method.c_str(),
                                            res.error.c_str());
                                ok = false;
                            }
                        }
                    }
                }
            }
        }
        if (csv)
            std::printf("\nwrote %lld rows to %s\n", (long long)csv->rows_written(),
                        csv_path.c_str());
        return ok ? 0 : 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "kerekes_logistic: error: %s\n", e.what());
        return 1;
    }
}
