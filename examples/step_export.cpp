// step_export: one damped NGD direction on a DESIGN.md section 6 configuration (Z, M, L, F, sizes
// overridable), written to a folder as raw little-endian binaries plus meta.json, so that the
// PyTorch/JAX peers in bench/peers can recompute the same step and compare. It can also time
// ngd::direction (device-synchronised wall clock) with the same method the peers use, and the
// step per stage (scripts/gpu-scaling runs it with --export false for the scaling sweeps).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <new>
#include <ngd/ngd.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "common/backend.hpp"
#include "common/data.hpp"
#include "common/flags.hpp"

namespace {

struct Setup {
    ngd::Mlp model;
    ngd::Loss loss = ngd::Loss::squared;
    std::int64_t n = 0;
};

// The section 6 configurations; every size can be overridden so the CPU can run them small.
Setup make_setup(const examples::Flags& flags) {
    const std::string config = flags.get_choice("config", {"Z", "M", "L", "F"});
    auto size = [&](const char* name, std::int64_t full) {
        return flags.given(name) ? flags.get_int(name, 1) : full;
    };
    if (config == "Z") {
        return {ngd::two_layer_relu(size("d", 784), size("m", 16384)), ngd::Loss::squared,
                size("n", 4096)};
    }
    if (config == "M") {
        std::vector<ngd::Layer> layers;
        const auto widths = flags.given("widths") ? flags.get_int_list("widths", 1)
                                                  : std::vector<std::int64_t>{1024, 1024};
        for (std::int64_t w : widths) layers.push_back(ngd::Layer{w, ngd::Activation::relu});
        layers.push_back(ngd::Layer{size("k", 10), ngd::Activation::identity});
        return {ngd::Mlp(size("d", 784), std::move(layers)), ngd::Loss::softmax_cross_entropy,
                size("n", 1024)};
    }
    if (config == "L") {
        return {ngd::deep_linear(size("d", 256), size("width", 256), size("depth", 4)),
                ngd::Loss::logistic, size("n", 2048)};
    }
    return {ngd::matrix_factorization(size("d", 512), size("depth", 3)), ngd::Loss::squared,
            size("n", 20000)};
}

template <class T>
struct Data {
    ngd::Matrix<T> theta, inputs, targets, rows;
    ngd::Batch<T> batch() const {
        return {inputs.const_view(), targets.const_view(), rows.const_view()};
    }
};

// Matrix factorization: n distinct observed entries (row i, column j) of the d x d product, drawn
// by a partial Fisher-Yates shuffle; input e_j, output row i.
template <class T>
void observed_entries(std::int64_t d, std::int64_t n, std::uint64_t seed, Data<T>& data) {
    if (n > d * d) {
        throw std::invalid_argument("F: n = " + std::to_string(n) +
                                    " entries exceed d^2 = " + std::to_string(d * d));
    }
    std::vector<std::int64_t> cells(static_cast<std::size_t>(d * d));
    for (std::int64_t c = 0; c < d * d; ++c) cells[c] = c;
    examples::Rng rng(seed);
    data.inputs = ngd::Matrix<T>(d, n);
    data.rows = ngd::Matrix<T>(1, n);
    for (std::int64_t s = 0; s < n; ++s) {
        std::swap(cells[s], cells[s + rng.below(d * d - s)]);
        data.inputs(cells[s] / d, s) = T(1);  // column j = cell / d
        data.rows[s] = T(cells[s] % d);       // row i = cell % d
    }
}

// Host data with fixed seeds: unit-norm inputs (one-hot for F), targets that fit the loss.
template <class T>
Data<T> make_data(const Setup& s, std::uint64_t data_seed, std::uint64_t theta_seed) {
    Data<T> data;
    const std::int64_t d = s.model.n_inputs(), k = s.model.n_outputs();
    if (s.model.selects_output_row()) {
        observed_entries(d, s.n, data_seed, data);
    } else {
        data.inputs = examples::unit_norm_inputs<T>(d, s.n, data_seed);
    }
    switch (s.loss) {
        case ngd::Loss::squared:
            data.targets = examples::random_targets<T>(k, s.n, "gaussian", data_seed + 1);
            break;
        case ngd::Loss::logistic:
            data.targets = examples::random_labels<T>(s.n, 2, data_seed + 1);
            break;
        case ngd::Loss::softmax_cross_entropy:
            data.targets = examples::random_labels<T>(s.n, k, data_seed + 1);
            break;
    }
    data.theta = s.model.template init<T>(theta_seed);
    return data;
}

template <class T>
Data<T> to_context(ngd::Context& ctx, const Data<T>& host) {
    auto put = [&ctx](const ngd::Matrix<T>& m) {
        return m.empty() ? ngd::Matrix<T>() : ngd::to_context(ctx, m.const_view());
    };
    return {put(host.theta), put(host.inputs), put(host.targets), put(host.rows)};
}

// Raw bytes of a host matrix in column-major order; the JSON says the dtype and shape.
template <class T>
void write_binary(const std::filesystem::path& path, const ngd::Matrix<T>& m) {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(m.data()), std::streamsize(m.size() * sizeof(T)));
    if (!out) throw std::runtime_error("cannot write " + path.string());
}

std::string quoted(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + "\"";
}

std::string number(double x) {
    if (!std::isfinite(x)) return "null";
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.17g", x);
    return buf;
}

// `warmup` untimed calls, then `repeats` timed ones; each waits for the device before its clock
// stops, so the figure is the step's latency, not its launch time.
template <class T>
std::vector<double> time_direction(ngd::Context& ctx, const Setup& s, const Data<T>& d,
                                   double damping, ngd::DirectionOptions options, int warmup,
                                   int repeats) {
    std::vector<double> seconds;
    for (int r = 0; r < warmup + repeats; ++r) {
        ctx.synchronize();
        const auto start = std::chrono::steady_clock::now();
        ngd::Matrix<T> dir = ngd::direction<T>(ctx, s.model, d.theta.const_view(), d.batch(),
                                               s.loss, damping, options);
        ctx.synchronize();
        const double t =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (r >= warmup) seconds.push_back(t);
    }
    return seconds;
}

// The step again through NaturalGradient with Options::time_stages (it synchronises per stage):
// meta.json's "stage_seconds", a list of StepReport::seconds per stage. eta = 0 keeps theta, so
// each call times the same step. A step needs a theta-sized buffer more than a direction: where
// only the step runs out of memory, the direction's times stand and the stages say why they are
// missing.
template <class T>
std::string stage_seconds(ngd::Context& ctx, const Setup& s, Data<T>& d, double damping,
                          ngd::DirectionOptions options, int warmup, int repeats) {
    typename ngd::NaturalGradient<T>::Options o;
    o.learning_rate = 0, o.damping = damping, o.evaluate_after = false, o.time_stages = true;
    o.gram_mode = options.gram_mode, o.form = options.form;
    const std::string head =
        "{\"what\": \"NaturalGradient::step, Options::time_stages (synchronised per stage), "
        "learning rate 0\", \"warmup\": " +
        std::to_string(warmup);
    std::vector<ngd::StepReport::Seconds> seconds;
    try {
        ngd::NaturalGradient<T> optimizer(o);
        for (int r = 0; r < warmup + repeats; ++r) {
            const ngd::StepReport report =
                optimizer.step(ctx, s.model, d.theta.view(), d.batch(), s.loss);
            if (r >= warmup) seconds.push_back(report.seconds);
        }
    } catch (const ngd::OutOfMemory& e) {
        return head + ", \"out_of_memory\": " + quoted(e.what()) + "}";
    }
    using S = ngd::StepReport::Seconds;
    std::ostringstream j;
    j << head;
    for (const auto& [name, member] : {std::pair<const char*, double S::*>{"forward", &S::forward},
                                       {"gram", &S::gram},
                                       {"solve", &S::solve},
                                       {"direction", &S::direction},
                                       {"total", &S::total}}) {
        j << ", \"" << name << "\": [";
        for (std::size_t i = 0; i < seconds.size(); ++i) {
            j << (i ? ", " : "") << number(seconds[i].*member);
        }
        j << "]";
    }
    return j.str() + "}";
}

std::string layers_json(const ngd::Mlp& model) {
    std::ostringstream j;
    j << "[";
    for (std::int64_t l = 0; l < model.n_layers(); ++l) {
        const ngd::Layer& layer = model.layer(l);
        j << (l ? ",\n    " : "\n    ") << "{\"n_in\": " << model.fan_in(l)
          << ", \"n_out\": " << layer.n_out
          << ", \"activation\": " << quoted(ngd::to_string(layer.activation))
          << ", \"bias\": " << (layer.bias ? "true" : "false")
          << ", \"trainable\": " << (layer.trainable ? "true" : "false")
          << ", \"weight_offset\": " << model.weight_offset(l)
          << ", \"bias_offset\": " << model.bias_offset(l)
          << ", \"weight_multiplier\": " << number(model.weight_multiplier(l))
          << ", \"bias_multiplier\": " << number(model.bias_multiplier(l)) << "}";
    }
    return j.str() + "\n  ]";
}

template <class T>
int run(const examples::Flags& flags) {
    const Setup s = make_setup(flags);
    const double damping = flags.get_double("damping", 0.0);
    ngd::DirectionOptions options;
    options.gram_mode = flags.get_choice("gram-mode", {"structured", "explicit"}) == "structured"
                            ? ngd::GramMode::structured
                            : ngd::GramMode::explicit_jacobian;
    const std::string form = flags.get_choice("form", {"automatic", "factor", "natural_residual"});
    options.form = form == "factor"             ? ngd::SolveForm::factor
                   : form == "natural_residual" ? ngd::SolveForm::natural_residual
                                                : ngd::SolveForm::automatic;
    const auto data_seed = std::uint64_t(flags.get_int("data-seed", 0));
    const auto theta_seed = std::uint64_t(flags.get_int("theta-seed", 0));
    const std::filesystem::path dir = flags.get_string("out");
    if (dir.empty()) throw examples::FlagError("--out: a folder is required");
    std::filesystem::create_directories(dir);

    ngd::Context ctx = examples::make_context(flags.get_string("backend"));
    if (flags.given("memory-budget")) {
        ctx.set_memory_budget(std::size_t(flags.get_int("memory-budget", 1)));
    }
    // Without the export (timing runs), nothing is computed but the loss and the timed calls.
    const bool exported = flags.get_choice("export", {"true", "false"}) == "true";
    const Data<T> host = make_data<T>(s, data_seed, theta_seed);
    Data<T> data = to_context(ctx, host);
    const ngd::Batch<T> batch = data.batch();
    const double loss_value = ngd::loss<T>(ctx, s.model, data.theta.const_view(), batch, s.loss);
    if (exported) {
        const ngd::Matrix<T> outputs = ngd::to_host<T>(
            ctx,
            ngd::forward<T>(ctx, s.model, data.theta.const_view(), batch.inputs, batch.output_rows)
                .const_view());
        const ngd::Matrix<T> direction =
            ngd::to_host<T>(ctx, ngd::direction<T>(ctx, s.model, data.theta.const_view(), batch,
                                                   s.loss, damping, options)
                                     .const_view());
        write_binary(dir / "inputs.bin", host.inputs);
        write_binary(dir / "targets.bin", host.targets);
        if (!host.rows.empty()) write_binary(dir / "output_rows.bin", host.rows);
        write_binary(dir / "theta.bin", host.theta);
        write_binary(dir / "outputs.bin", outputs);
        write_binary(dir / "direction.bin", direction);
    }

    // In float32 the peers' agreement with ngd is limited by both sides' rounding; the float64
    // direction from the same (float32-valued) data tells each side's own error.
    const bool f64_check = exported && std::is_same_v<T, float> &&
                           flags.get_choice("f64-check", {"true", "false"}) == "true";
    if (f64_check) {
        ngd::Matrix<double> theta64(host.theta.rows(), 1),
            x64(host.inputs.rows(), host.inputs.cols()),
            y64(host.targets.rows(), host.targets.cols()),
            rows64(host.rows.rows(), host.rows.cols());
        auto up = [](const ngd::Matrix<T>& a, ngd::Matrix<double>& b) {
            for (std::int64_t i = 0; i < a.size(); ++i) b[i] = double(a[i]);
        };
        up(host.theta, theta64), up(host.inputs, x64), up(host.targets, y64), up(host.rows, rows64);
        const Data<double> d64 = to_context(ctx, Data<double>{std::move(theta64), std::move(x64),
                                                              std::move(y64), std::move(rows64)});
        write_binary(
            dir / "direction_f64.bin",
            ngd::to_host<double>(ctx, ngd::direction<double>(ctx, s.model, d64.theta.const_view(),
                                                             d64.batch(), s.loss, damping, options)
                                          .const_view()));
    }

    const int repeats = int(flags.get_int("repeats", 0)), warmup = int(flags.get_int("warmup", 0));
    std::vector<double> seconds;
    if (repeats > 0) seconds = time_direction(ctx, s, data, damping, options, warmup, repeats);
    std::string stages;
    if (repeats > 0 && flags.get_choice("time-stages", {"true", "false"}) == "true") {
        stages = stage_seconds(ctx, s, data, damping, options, warmup, repeats);
    }

    const std::int64_t n = s.n, k = s.model.n_outputs(), d = s.model.n_inputs();
    std::ostringstream j;
    j << "{\n  \"format\": \"ngd-step-export/1\",\n"
      << "  \"ngd_version\": " << quoted(ngd::version_string) << ",\n"
      << "  \"config\": " << quoted(flags.get_string("config")) << ",\n"
      << "  \"model\": " << quoted(s.model.describe()) << ",\n"
      << "  \"backend\": " << quoted(examples::backend_name(ctx)) << ",\n"
      << "  \"device\": " << quoted(ctx.description()) << ",\n"
      << "  \"precision\": " << quoted(std::is_same_v<T, double> ? "f64" : "f32") << ",\n"
      << "  \"dtype\": " << quoted(std::is_same_v<T, double> ? "<f8" : "<f4") << ",\n"
      << "  \"loss\": " << quoted(ngd::to_string(s.loss)) << ",\n"
      << "  \"damping\": " << number(damping) << ",\n"
      << "  \"gram_shift\": " << number(double(n) * damping) << ",\n"
      << "  \"gram_mode\": " << quoted(ngd::to_string(options.gram_mode)) << ",\n"
      << "  \"solve_form\": " << quoted(ngd::to_string(options.form)) << ",\n"
      << "  \"memory_budget\": " << ctx.memory_budget() << ",\n"
      << "  \"n\": " << n << ", \"d\": " << d << ", \"k\": " << k << ", \"N\": " << n * k
      << ", \"p\": " << s.model.n_params() << ", \"p_trainable\": " << s.model.n_trainable_params()
      << ",\n"
      << "  \"parameterization\": "
      << quoted(s.model.parameterization() == ngd::Parameterization::ntk ? "ntk" : "standard")
      << ",\n  \"output_scale\": " << number(s.model.output_scale()) << ",\n"
      << "  \"selects_output_row\": " << (s.model.selects_output_row() ? "true" : "false") << ",\n"
      << "  \"layers\": " << layers_json(s.model) << ",\n"
      << "  \"conventions\": {\n"
      << "    \"matrices\": \"column-major; inputs d x n, one sample per column\",\n"
      << "    \"theta\": \"per layer: W_l (n_out x n_in, column-major, entry (r, c) at "
         "weight_offset + r + c * n_out), then b_l; frozen layers stay in theta with zero "
         "Jacobian columns and zero direction\",\n"
      << "    \"forward\": \"z_l = weight_multiplier * W_l a_(l-1) + bias_multiplier * b_l; "
         "f = output_scale * a_L; selects_output_row: f_i = output_scale * a_L[output_rows_i, "
         "i]\",\n"
      << "    \"rows_of_J\": \"sample-major: row i k + c is d f_c(x_i) / d theta\",\n"
      << "    \"direction\": \"d = A^T (A A^T + n damping I)^-1 u, A = M^T J (DESIGN.md section "
         "1)\",\n"
      << "    \"targets\": \"squared: k x n values; logistic: 1 x n labels 0/1; softmax: 1 x n "
         "class indices, all stored in dtype\"\n  },\n"
      << "  \"seeds\": {\"data\": " << data_seed << ", \"theta\": " << theta_seed << "},\n"
      << "  \"loss_value\": " << number(loss_value) << ",\n"
      << "  \"exported\": " << (exported ? "true" : "false") << ",\n"
      << "  \"files\": {";
    if (exported) {
        j << "\n"
          << "    \"inputs\": {\"file\": \"inputs.bin\", \"rows\": " << d << ", \"cols\": " << n
          << "},\n"
          << "    \"targets\": {\"file\": \"targets.bin\", \"rows\": " << host.targets.rows()
          << ", \"cols\": " << n << "},\n";
        if (!host.rows.empty()) {
            j << "    \"output_rows\": {\"file\": \"output_rows.bin\", \"rows\": 1, \"cols\": " << n
              << "},\n";
        }
        j << "    \"theta\": {\"file\": \"theta.bin\", \"rows\": " << s.model.n_params()
          << ", \"cols\": 1},\n"
          << "    \"outputs\": {\"file\": \"outputs.bin\", \"rows\": " << k << ", \"cols\": " << n
          << "},\n"
          << "    \"direction\": {\"file\": \"direction.bin\", \"rows\": " << s.model.n_params()
          << ", \"cols\": 1}";
        if (f64_check) {
            j << ",\n    \"direction_f64\": {\"file\": \"direction_f64.bin\", \"dtype\": \"<f8\", "
                 "\"rows\": "
              << s.model.n_params() << ", \"cols\": 1}";
        }
        j << "\n  ";
    }
    j << "},\n  \"ngd_seconds\": {\"what\": \"ngd::direction, device-synchronised wall "
         "clock\", "
         "\"warmup\": "
      << (repeats > 0 ? warmup : 0) << ", \"repeats\": [";
    for (std::size_t i = 0; i < seconds.size(); ++i) j << (i ? ", " : "") << number(seconds[i]);
    j << "]}";
    if (!stages.empty()) j << ",\n  \"stage_seconds\": " << stages;
    j << "\n}\n";
    std::ofstream meta(dir / "meta.json");
    meta << j.str();
    if (!meta) throw std::runtime_error("cannot write " + (dir / "meta.json").string());

    std::printf("%s: %s, %s, n = %lld, N = %lld, p = %lld, loss %.6g, direction on %s\n",
                flags.get_string("config").c_str(), s.model.describe().c_str(),
                ngd::to_string(s.loss), (long long)n, (long long)(n * k),
                (long long)s.model.n_params(), loss_value, ctx.description().c_str());
    if (!seconds.empty()) {
        std::sort(seconds.begin(), seconds.end());
        std::printf("ngd::direction median %.6f s over %zu repeats\n", seconds[seconds.size() / 2],
                    seconds.size());
    }
    std::printf("wrote %s\n", dir.string().c_str());
    return 0;
}

// Allocation failures, whichever layer saw them: ngd's allocator, the host, or a CUDA library's
// own workspace (cudaErrorMemoryAllocation = 2, CUBLAS_STATUS_ALLOC_FAILED = 3,
// CUSOLVER_STATUS_ALLOC_FAILED = 2).
bool out_of_memory(const std::exception& e) {
    if (dynamic_cast<const ngd::OutOfMemory*>(&e) || dynamic_cast<const std::bad_alloc*>(&e)) {
        return true;
    }
    if (const auto* c = dynamic_cast<const ngd::CudaError*>(&e)) return c->code == 2;
    if (const auto* b = dynamic_cast<const ngd::CublasError*>(&e)) return b->status == 3;
    if (const auto* s = dynamic_cast<const ngd::CusolverError*>(&e)) return s->status == 2;
    return false;
}

}  // namespace

int main(int argc, char** argv) {
    examples::Flags flags("step_export",
                          "Computes one damped NGD direction d with ngd on a DESIGN.md section 6\n"
                          "configuration and writes the batch, theta, f and d to a folder for the\n"
                          "peers in bench/peers (raw little-endian binaries + meta.json).");
    flags
        .add("config", "Z",
             "Z (two-layer ReLU, squared), M (ReLU MLP, softmax), L (deep linear,\n"
             "logistic) or F (matrix factorization, squared)",
             "NAME")
        .add("n", "", "samples (default per config: Z 4096, M 1024, L 2048, F 20000)", "N")
        .add("d", "", "input dimension (F: the matrix size); default 784, 784, 256, 512", "N")
        .add("m", "", "Z: hidden width (default 16384)", "N")
        .add("widths", "", "M: hidden widths (default 1024,1024)", "LIST")
        .add("k", "", "M: classes (default 10)", "N")
        .add("width", "", "L: hidden width (default 256)", "N")
        .add("depth", "", "L: layers (default 4); F: factors (default 3)", "N")
        .add("precision", "f64", "f64 or f32", "P")
        .add("damping", "1e-3", "lambda (parameter space; n lambda on the Gram side)", "X")
        .add("gram-mode", "structured", "structured or explicit", "MODE")
        .add("form", "automatic", "automatic, factor or natural_residual", "FORM")
        .add("backend", "best", "reference, cpu, cuda or best", "NAME")
        .add("data-seed", "2024", "seed of inputs and targets", "S")
        .add("theta-seed", "7", "seed of Mlp::init", "S")
        .add("f64-check", "true", "f32 only: also write direction_f64.bin (same data, float64)",
             "BOOL")
        .add("repeats", "0", "time ngd::direction this many times (0: no timing)", "R")
        .add("warmup", "1", "untimed calls before the timed ones", "W")
        .add("time-stages", "false",
             "with --repeats: also time that many steps per stage (StepReport::seconds)", "BOOL")
        .add("export", "true", "false: write meta.json only (no binaries, no f64 check)", "BOOL")
        .add("memory-budget", "", "Context::set_memory_budget (explicit Gram scratch; 256 MiB)",
             "BYTES")
        .add("out", "", "folder to write (created if missing)", "PATH")
        .add_section("Exit status",
                     "0 done, 1 error, 2 bad flags, 3 out of memory (host or device)");
    flags.parse_or_exit(argc, argv);
    // The binaries are raw memory; the peers read them as little-endian.
    const std::uint16_t probe = 1;
    if (*reinterpret_cast<const unsigned char*>(&probe) != 1) {
        std::fprintf(stderr, "step_export: this host is big-endian; the export format is not\n");
        return 1;
    }
    try {
        if (flags.get_choice("precision", {"f64", "f32"}) == "f32") return run<float>(flags);
        return run<double>(flags);
    } catch (const examples::FlagError& e) {
        std::fprintf(stderr, "step_export: %s\n", e.what());
        return 2;
    } catch (const std::exception& e) {
        if (out_of_memory(e)) {
            std::fprintf(stderr, "step_export: out of memory: %s\n", e.what());
            return 3;
        }
        std::fprintf(stderr, "step_export: %s\n", e.what());
        return 1;
    }
}
