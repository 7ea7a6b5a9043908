// Zhang, Martens & Grosse (2019), "Fast convergence of natural gradient descent for
// overparameterized neural networks": on a wide two-layer ReLU net with squared loss and unit-norm,
// pairwise non-parallel inputs, NGD with step size eta shrinks |f - y|^2 by about (1 - eta)^2 per
// step, while gradient descent is held back by the condition number of the Gram matrix. This
// program runs both from the same initial parameters, prints one line per step and optionally
// writes a CSV.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <ngd/ngd.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/backend.hpp"
#include "common/csv.hpp"
#include "common/data.hpp"
#include "common/flags.hpp"
#include "common/linalg.hpp"

namespace {

const char* kCsvColumns =
    "  method       ngd or gd\n"
    "  width        hidden width m\n"
    "  n, d         samples and input dimension\n"
    "  lr           step size used by the method (gd: the value chosen by --gd-lr)\n"
    "  damping      lambda used by the step (parameter space; 0 for gd)\n"
    "  seed         --seed\n"
    "  precision    double or float\n"
    "  backend      reference or cuda (what --backend resolved to)\n"
    "  step         0 = initial parameters, t = after t steps\n"
    "  loss         L = |f - y|^2 / (2 n)\n"
    "  residual_sq  |f - y|^2 = 2 n L\n"
    "  ratio        residual_sq / residual_sq of the previous step (nan at step 0)\n"
    "  seconds      wall time of the step (0 at step 0)";

struct Config {
    std::int64_t n = 0, d = 0, steps = 0;
    std::vector<std::int64_t> widths;
    double lr = 0, damping = 0, threshold = 0;
    std::string gd_lr, backend, targets, precision, csv;
    std::uint64_t seed = 0;
    std::vector<std::string> methods;
};

// One optimizer's run from theta0: its own parameters and its loss after each step.
template <class T>
struct Run {
    std::string name;
    double lr = 0;
    std::function<ngd::StepReport(ngd::MatrixView<T>)> step;
    ngd::Matrix<T> theta;
    std::vector<double> loss, seconds, damping;
    std::string error;  // set when a step threw; the run stops there
};

double ratio(const std::vector<double>& loss, std::size_t t) {
    return t == 0 || t >= loss.size() ? NAN : loss[t] / loss[t - 1];
}

// gradient descent's step size: 1 / lambda_max of the Gauss-Newton matrix J^T J / n at theta0,
// i.e. n / lambda_max(J J^T). Larger than 2 / lambda_max diverges on the linearised model.
template <class T>
double auto_gd_lr(ngd::Context& ctx, const ngd::Mlp& model, ngd::MatrixView<const T> theta,
                  ngd::MatrixView<const T> x) {
    const ngd::Matrix<T> g = ngd::gram<T>(ctx, model, theta, x);
    const ngd::Matrix<T> g_host = ngd::to_host(ctx, g.const_view());
    const double lambda_max = examples::largest_eigenvalue(g_host.const_view());
    std::printf(
        "  lambda_max(J J^T) at theta0 = %.6e (power iteration); gd lr = n / lambda_max = %.6g\n",
        lambda_max, double(x.cols) / lambda_max);
    return double(x.cols) / lambda_max;
}

template <class T>
void print_errors(const std::vector<Run<T>>& runs) {
    for (const auto& r : runs) {
        if (!r.error.empty()) std::printf("  %s stopped: %s\n", r.name.c_str(), r.error.c_str());
    }
}

template <class T>
void print_summary(const Config& cfg, const std::vector<Run<T>>& runs) {
    const Run<T>* ngd_run = nullptr;
    const Run<T>* gd_run = nullptr;
    for (const auto& r : runs) {
        if (r.name == "ngd") ngd_run = &r;
        if (r.name == "gd") gd_run = &r;
    }
    std::printf("summary:\n");
    std::size_t hit = 0;
    if (ngd_run) {
        const auto& l = ngd_run->loss;
        for (std::size_t t = 1; t < l.size() && hit == 0; ++t) {
            if (l[t] < cfg.threshold * l[0]) hit = t;
        }
        if (hit) {
            std::printf("  ngd reached loss < %.0e x initial after %zu step(s): %.3e -> %.3e\n",
                        cfg.threshold, hit, l[0], l[hit]);
        } else {
            std::printf("  ngd did not reach loss < %.0e x initial in %zu step(s): %.3e -> %.3e\n",
                        cfg.threshold, l.size() - 1, l[0], l.back());
        }
        // Past the threshold the ratios only measure rounding noise: stop the contraction there.
        const std::size_t last = hit ? hit : l.size() - 1;
        if (last == 0) return print_errors(runs);
        double log_sum = 0;
        std::size_t count = 0;
        std::printf("  ngd |f - y|^2 ratio per step:");
        for (std::size_t t = 1; t <= last; ++t) {
            std::printf(" %.3e", ratio(l, t));
            if (l[t] > 0 && l[t - 1] > 0) {
                log_sum += std::log(ratio(l, t));
                ++count;
            }
        }
        const double mean = count ? std::exp(log_sum / double(count)) : NAN;
        const double ref = (1 - ngd_run->lr) * (1 - ngd_run->lr);
        // At eta = 1 the theory's rate (1 - eta)^2 is 0 (the fit is exact in one step up to the
        // damping and the nonlinearity): a ratio set against 0 reads as a failure and says nothing.
        if (ref > 0) {
            std::printf("\n  ngd geometric-mean ratio %.3e vs (1 - eta)^2 = %.3e (eta = %g)\n",
                        mean, ref, ngd_run->lr);
        } else {
            std::printf("\n  ngd geometric-mean ratio %.3e (eta = %g)\n", mean, ngd_run->lr);
        }
    }
    if (gd_run) {
        const auto& l = gd_run->loss;
        const std::size_t at = hit && hit < l.size() ? hit : l.size() - 1;
        std::printf("  gd (lr %.4g) after %zu step(s): loss %.3e = %.3e x initial", gd_run->lr, at,
                    l[at], l[at] / l[0]);
        if (at + 1 < l.size()) {
            std::printf("; after %zu: %.3e x initial", l.size() - 1, l.back() / l[0]);
        }
        std::printf("\n");
    }
    print_errors(runs);
}

// One width: data, theta0, one run per method, the per-step table, CSV rows and the summary.
// Returns false when a method's step threw.
template <class T>
bool run_width(const Config& cfg, ngd::Context& ctx, std::int64_t width,
               std::optional<examples::CsvWriter>& csv) {
    const ngd::Mlp model = ngd::two_layer_relu(cfg.d, width);
    // Inputs, targets and theta0 come from three streams derived from --seed; every width sees the
    // same data.
    const ngd::Matrix<T> x_host = examples::unit_norm_inputs<T>(cfg.d, cfg.n, cfg.seed, 1 - 1e-6);
    const ngd::Matrix<T> y_host = examples::random_targets<T>(1, cfg.n, cfg.targets, cfg.seed + 1);
    const ngd::Matrix<T> theta0 = model.init<T>(cfg.seed + 2);
    const ngd::Matrix<T> x = ngd::to_context(ctx, x_host.const_view());
    const ngd::Matrix<T> y = ngd::to_context(ctx, y_host.const_view());
    const ngd::Matrix<T> theta0_ctx = ngd::to_context(ctx, theta0.const_view());
    const ngd::Batch<T> batch{x.const_view(), y.const_view(), {}};

    std::printf(
        "\n== %s\n  n = %lld samples on the unit sphere of R^%lld (max |cos| %.3f), "
        "%s targets, squared loss, %s, %s\n",
        model.describe().c_str(), static_cast<long long>(cfg.n), static_cast<long long>(cfg.d),
        examples::max_abs_cosine(x_host), cfg.targets.c_str(), cfg.precision.c_str(),
        ctx.description().c_str());

    std::vector<Run<T>> runs;
    for (const auto& name : cfg.methods) {
        Run<T> r;
        r.name = name;
        if (name == "ngd") {
            typename ngd::NaturalGradient<T>::Options o;
            o.learning_rate = cfg.lr;
            o.damping = cfg.damping;
            auto opt = std::make_shared<ngd::NaturalGradient<T>>(o);
            r.lr = cfg.lr;
            r.step = [&, opt](ngd::MatrixView<T> th) {
                return opt->step(ctx, model, th, batch, ngd::Loss::squared);
            };
        } else if (name == "gd") {
            typename ngd::GradientDescent<T>::Options o;
            o.learning_rate = cfg.gd_lr == "auto"
                                  ? auto_gd_lr<T>(ctx, model, theta0_ctx.const_view(), batch.inputs)
                                  : std::stod(cfg.gd_lr);
            auto opt = std::make_shared<ngd::GradientDescent<T>>(o);
            r.lr = o.learning_rate;
            r.step = [&, opt](ngd::MatrixView<T> th) {
                return opt->step(ctx, model, th, batch, ngd::Loss::squared);
            };
        } else {
            throw std::logic_error("zhang_convergence: no optimizer for method '" + name + "'");
        }
        r.theta = ngd::to_context(ctx, theta0.const_view());
        r.loss.push_back(ngd::loss<T>(ctx, model, r.theta.const_view(), batch, ngd::Loss::squared));
        r.seconds.push_back(0);
        r.damping.push_back(name == "ngd" ? cfg.damping : 0);
        runs.push_back(std::move(r));
    }

    std::printf("%5s", "step");
    for (const auto& r : runs) {
        std::printf("  %11s %9s %9s", (r.name + " loss").c_str(), "ratio", "ms/step");
    }
    const bool has_ngd =
        std::find(cfg.methods.begin(), cfg.methods.end(), "ngd") != cfg.methods.end();
    std::printf(has_ngd ? "  %9s\n" : "%s\n", has_ngd ? "damping" : "");
    for (std::int64_t t = 0; t <= cfg.steps; ++t) {
        double damping_used = NAN;
        for (auto& r : runs) {
            if (t > 0 && r.error.empty()) {
                try {
                    const ngd::StepReport rep = r.step(r.theta.view());
                    r.loss.push_back(rep.loss_after);
                    r.seconds.push_back(rep.seconds.total);
                    r.damping.push_back(r.name == "ngd" ? rep.damping : 0);
                } catch (const ngd::Error& e) {
                    r.error = "step " + std::to_string(t) + ": " + e.what();
                }
            }
            if (r.name == "ngd" && std::size_t(t) < r.damping.size()) damping_used = r.damping[t];
        }
        std::printf("%5lld", static_cast<long long>(t));
        for (const auto& r : runs) {
            if (std::size_t(t) >= r.loss.size()) {
                std::printf("  %11s %9s %9s", "failed", "", "");
                continue;
            }
            std::printf("  %11.4e %9.2e %9.3f", r.loss[t], ratio(r.loss, t), 1e3 * r.seconds[t]);
            if (csv) {
                csv->row(r.name, width, cfg.n, cfg.d, r.lr, r.damping[t], cfg.seed, cfg.precision,
                         examples::backend_name(ctx), t, r.loss[t], 2.0 * double(cfg.n) * r.loss[t],
                         ratio(r.loss, t), r.seconds[t]);
            }
        }
        if (has_ngd) std::printf("  %9.2e", damping_used);
        std::printf("\n");
        std::fflush(stdout);
    }
    print_summary(cfg, runs);
    for (const auto& r : runs) {
        if (!r.error.empty()) return false;
    }
    return true;
}

template <class T>
int run_all(const Config& cfg) {
    ngd::Context ctx = examples::make_context(cfg.backend);
    std::optional<examples::CsvWriter> csv;
    if (!cfg.csv.empty()) {
        csv.emplace(cfg.csv, std::vector<std::string>{"method", "width", "n", "d", "lr", "damping",
                                                      "seed", "precision", "backend", "step",
                                                      "loss", "residual_sq", "ratio", "seconds"});
    }
    bool ok = true;
    for (const std::int64_t width : cfg.widths) ok = run_width<T>(cfg, ctx, width, csv) && ok;
    if (csv)
        std::printf("\nwrote %lld rows to %s\n", (long long)csv->rows_written(), cfg.csv.c_str());
    return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    examples::Flags flags(
        "zhang_convergence",
        "NGD vs gradient descent on a wide two-layer ReLU network (Zhang, Martens & Grosse 2019):\n"
        "f(x) = m^-1/2 sum_r a_r relu(w_r . x), a_r = +-1 fixed, only W trained, squared loss\n"
        "L = |f - y|^2 / (2n) on n unit-norm inputs. NGD takes exact damped steps\n"
        "theta <- theta - lr J^T (J J^T + n lambda I)^-1 (f - y); gradient descent starts from "
        "the\n"
        "same theta0. Prints one line per step and a summary; --csv writes every step.");
    flags.add("n", "64", "number of samples", "N")
        .add("d", "16", "input dimension (inputs are unit vectors in R^d, no two parallel)", "D")
        .add("widths", "4096", "hidden widths m, comma-separated; one run per width", "LIST")
        .add("steps", "10", "optimizer steps per method", "N")
        .add("lr", "1", "NGD step size eta", "ETA")
        .add("gd-lr", "auto",
             "gradient-descent step size, or auto = n / lambda_max(J J^T) at theta0\n"
             "(1 / lambda_max of the Gauss-Newton matrix, by power iteration on ngd::gram)",
             "ETA")
        .add("damping", "1e-10",
             "NGD damping lambda >= 0 (parameter space: the Gram side is J J^T + n lambda I)",
             "LAMBDA")
        .add("seed", "0", "seed for inputs (seed), targets (seed+1) and theta0 (seed+2)", "S")
        .add("targets", "sign", "targets y: sign (+-1) or gaussian (N(0,1))", "KIND")
        .add("backend", "best",
             "reference, cpu, cuda, or best (cuda when a device is usable, else cpu)", "NAME")
        .add("methods", "ngd,gd", "optimizers to run, comma-separated: ngd, gd", "LIST")
        .add("precision", "double", "floating-point type of data and parameters: double or float",
             "TYPE")
        .add("threshold", "1e-10", "summary: steps NGD needs to reach loss < threshold x initial",
             "R")
        .add("csv", "", "write one row per method and step to PATH", "PATH")
        .add_section("CSV columns", kCsvColumns);
    flags.parse_or_exit(argc, argv);

    Config cfg;
    try {
        cfg.n = flags.get_int("n", 1);
        cfg.d = flags.get_int("d", 1);
        cfg.widths = flags.get_int_list("widths", 1);
        cfg.steps = flags.get_int("steps", 0);
        cfg.lr = flags.get_double("lr", 0);
        cfg.gd_lr = flags.get_string("gd-lr");
        if (cfg.gd_lr != "auto") flags.get_double("gd-lr", 0);  // validates the number
        cfg.damping = flags.get_double("damping", 0);
        cfg.seed = static_cast<std::uint64_t>(flags.get_int("seed", 0));
        cfg.targets = flags.get_choice("targets", {"sign", "gaussian"});
        cfg.backend = flags.get_choice("backend", examples::backend_choices());
        cfg.methods = flags.get_choice_list("methods", {"ngd", "gd"});
        cfg.precision = flags.get_choice("precision", {"double", "float"});
        cfg.threshold = flags.get_double("threshold", 0);
        cfg.csv = flags.get_string("csv");
        if (cfg.widths.empty() || cfg.methods.empty()) {
            throw examples::FlagError("--widths and --methods must not be empty");
        }
    } catch (const examples::FlagError& e) {
        std::fprintf(stderr, "zhang_convergence: %s\n", e.what());
        return 2;
    }

    std::printf("zhang_convergence (ngd %s): %s\n", ngd::version_string, flags.summary().c_str());
    try {
        return cfg.precision == "double" ? run_all<double>(cfg) : run_all<float>(cfg);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "zhang_convergence: error: %s\n", e.what());
        return 1;
    }
}
