// Contexts, enums, layers, models and presets. Constructors take enums or their names; a model's
// initial theta comes back as a 1-D NumPy array.
#include <nanobind/nanobind.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <string>
#include <utility>

#include "arrays.hpp"
#include "enums.hpp"
#include "ngd/ngd.hpp"

namespace ngd_python {
namespace {

template <class T>
nb::object init_theta(const ngd::Mlp& model, std::uint64_t seed) {
    ngd::Context host = ngd::Context::reference();
    ngd::Matrix<T> theta = model.init<T>(seed);
    const auto p = static_cast<size_t>(theta.rows());
    return to_python<T>(host, std::move(theta), {p}, {1});
}

}  // namespace

void bind_core(nb::module_& m) {
    nb::enum_<ngd::Backend>(m, "Backend", "Which backend runs the stages.")
        .value("reference", ngd::Backend::reference)
        .value("cpu", ngd::Backend::cpu)
        .value("cuda", ngd::Backend::cuda);
    nb::enum_<ngd::MemorySpace>(m, "MemorySpace")
        .value("host", ngd::MemorySpace::host)
        .value("device", ngd::MemorySpace::device);
    nb::enum_<ngd::Activation>(m, "Activation",
                               "relu'(0) = 0; softplus = log(1 + e^z); gelu is the exact z Phi(z).")
        .value("identity", ngd::Activation::identity)
        .value("relu", ngd::Activation::relu)
        .value("tanh", ngd::Activation::tanh)
        .value("softplus", ngd::Activation::softplus)
        .value("gelu", ngd::Activation::gelu);
    nb::enum_<ngd::Parameterization>(m, "Parameterization")
        .value("standard", ngd::Parameterization::standard)
        .value("ntk", ngd::Parameterization::ntk);
    nb::enum_<ngd::Init>(m, "Init", "gaussian: N(0, scale^2); sign: +-scale; zero: all zeros.")
        .value("gaussian", ngd::Init::gaussian)
        .value("sign", ngd::Init::sign)
        .value("zero", ngd::Init::zero);
    nb::enum_<ngd::Loss>(m, "Loss")
        .value("squared", ngd::Loss::squared)
        .value("logistic", ngd::Loss::logistic)
        .value("softmax_cross_entropy", ngd::Loss::softmax_cross_entropy);
    nb::enum_<ngd::GramMode>(m, "GramMode")
        .value("structured", ngd::GramMode::structured)
        .value("explicit_jacobian", ngd::GramMode::explicit_jacobian);
    nb::enum_<ngd::SolveForm>(m, "SolveForm")
        .value("automatic", ngd::SolveForm::automatic)
        .value("factor", ngd::SolveForm::factor)
        .value("natural_residual", ngd::SolveForm::natural_residual);
    nb::enum_<ngd::SolvePrecision>(
        m, "SolvePrecision",
        "The precision of the damped solve's Cholesky. working: the data's (the default); mixed: "
        "for float64 data, a float32 Cholesky refined in float64 to a float64 backward error, "
        "continued by conjugate gradients preconditioned with that factor where refinement "
        "stagnates, falling back to the float64 Cholesky when that fails (ill-conditioned "
        "systems); mixed_tf32: as mixed with a blocked float32 factor whose trailing updates run "
        "on TF32 tensor cores (sm_80+; emulated on the CPU backends); float32 data solves in "
        "working precision.")
        .value("working", ngd::SolvePrecision::working)
        .value("mixed", ngd::SolvePrecision::mixed)
        .value("mixed_tf32", ngd::SolvePrecision::mixed_tf32);
    nb::enum_<ngd::DampingPolicy>(m, "DampingPolicy")
        .value("fixed", ngd::DampingPolicy::fixed)
        .value("levenberg_marquardt", ngd::DampingPolicy::levenberg_marquardt);
    nb::enum_<ngd::DampingRule>(m, "DampingRule")
        .value("nielsen", ngd::DampingRule::nielsen)
        .value("martens", ngd::DampingRule::martens);
    nb::enum_<ngd::Fallback>(m, "Fallback")
        .value("none", ngd::Fallback::none)
        .value("pseudo_inverse", ngd::Fallback::pseudo_inverse);
    nb::enum_<ngd::Rung>(m, "Rung")
        .value("cholesky", ngd::Rung::cholesky)
        .value("raised_damping", ngd::Rung::raised_damping)
        .value("pseudo_inverse", ngd::Rung::pseudo_inverse);

    nb::class_<ngd::Context>(m, "Context", "Where the stages run: reference, cpu or CUDA.")
        .def_static(
            "reference", &ngd::Context::reference,
            "The CPU reference backend: plain loops, float64 accumulation. Always available.")
        .def_static(
            "cpu", &ngd::Context::cpu, nb::arg("n_threads") = 0,
            "The fast CPU backend (BLAS, LAPACK, OpenMP) with n_threads threads (0: OpenMP's "
            "default). "
            "Raises NotCompiled in a build without BLAS/LAPACK, InvalidArgument for n_threads < 0.")
        .def_static("cuda", &ngd::Context::cuda, nb::arg("device") = 0,
                    "The CUDA backend on `device`. Raises NotCompiled in a build without CUDA, "
                    "DeviceUnavailable when no usable device (or driver) is present.")
        .def_static("best", &ngd::Context::best,
                    "CUDA device 0 when usable, else the cpu backend when compiled, else the "
                    "reference one.")
        .def_static("cuda_available", &ngd::Context::cuda_available,
                    "True when this build has CUDA and a device can be used.")
        .def_static("cpu_available", &ngd::Context::cpu_available,
                    "True when this build has the cpu backend (BLAS and LAPACK were found).")
        .def_prop_ro("backend", &ngd::Context::backend)
        .def_prop_ro("memory_space", &ngd::Context::memory_space)
        .def_prop_ro("device", &ngd::Context::device)
        .def_prop_ro("n_threads", &ngd::Context::n_threads)
        .def_prop_ro("description", &ngd::Context::description)
        .def_prop_rw("memory_budget", &ngd::Context::memory_budget,
                     &ngd::Context::set_memory_budget)
        .def("synchronize", &ngd::Context::synchronize, nb::call_guard<nb::gil_scoped_release>(),
             "Waits until all work queued on this context is done.")
        .def_prop_ro("host_syncs", &ngd::Context::host_syncs,
                     "Debug counter: the points where ngd waited for this context's backend (a "
                     "result read back to the host, a copy into host memory, synchronize()); one "
                     "host synchronisation each on CUDA, counted the same way on the CPU backends.")
        .def("__repr__",
             [](const ngd::Context& c) { return "ngd.Context(" + c.description() + ")"; });

    nb::class_<ngd::Layer>(m, "Layer", "One dense layer: width (n_out), activation, bias, ...")
        .def(
            "__init__",
            [](ngd::Layer* self, std::int64_t width, nb::handle activation, bool bias,
               bool trainable, nb::handle init, double init_scale) {
                new (self)
                    ngd::Layer{width,
                               enum_arg<ngd::Activation>(activation, "ngd.Layer", "activation"),
                               bias,
                               trainable,
                               enum_arg<ngd::Init>(init, "ngd.Layer", "init"),
                               init_scale};
            },
            nb::arg("width"), nb::arg("activation") = "relu", nb::arg("bias") = true,
            nb::arg("trainable") = true, nb::arg("init") = "gaussian", nb::arg("init_scale") = -1.0,
            "width: n_out. init_scale < 0: 1/sqrt(n_in) (standard) or 1 (NTK); biases start at "
            "zero. A "
            "frozen layer (trainable=False) keeps its entries in theta with zero Jacobian columns.")
        .def_prop_ro("width", [](const ngd::Layer& l) { return l.n_out; })
        .def_rw("n_out", &ngd::Layer::n_out)
        .def_prop_rw(
            "activation", [](const ngd::Layer& l) { return l.activation; },
            [](ngd::Layer& l, nb::handle a) {
                l.activation = enum_arg<ngd::Activation>(a, "ngd.Layer", "activation");
            })
        .def_rw("bias", &ngd::Layer::bias)
        .def_rw("trainable", &ngd::Layer::trainable)
        .def_prop_rw(
            "init", [](const ngd::Layer& l) { return l.init; },
            [](ngd::Layer& l, nb::handle i) {
                l.init = enum_arg<ngd::Init>(i, "ngd.Layer", "init");
            })
        .def_rw("init_scale", &ngd::Layer::init_scale)
        .def("__repr__", [](const ngd::Layer& l) {
            std::string r = "ngd.Layer(" + std::to_string(l.n_out) + ", activation='" +
                            ngd::to_string(l.activation) +
                            "', bias=" + (l.bias ? "True" : "False") +
                            ", trainable=" + (l.trainable ? "True" : "False");
            const ngd::Layer defaults{};
            if (l.init != defaults.init) {
                r += ", init='" + nb::cast<std::string>(nb::cast(l.init).attr("name")) + "'";
            }
            if (l.init_scale != defaults.init_scale) {
                r += ", init_scale=" + nb::cast<std::string>(nb::repr(nb::float_(l.init_scale)));
            }
            return r + ")";
        });

    nb::class_<ngd::Mlp>(m, "Mlp", "A multilayer perceptron spec; parameters live in theta.")
        .def(
            "__init__",
            [](ngd::Mlp* self, std::int64_t n_inputs, std::vector<ngd::Layer> layers,
               nb::handle parameterization, double output_scale) {
                new (self) ngd::Mlp(n_inputs, std::move(layers),
                                    enum_arg<ngd::Parameterization>(parameterization, "ngd.Mlp",
                                                                    "parameterization"),
                                    output_scale);
            },
            nb::arg("n_inputs"), nb::arg("layers"), nb::arg("parameterization") = "standard",
            nb::arg("output_scale") = 1.0,
            "Raises InvalidArgument for n_inputs < 1, no layers, a layer with n_out < 1 or a "
            "non-finite "
            "or non-positive output_scale.")
        .def("select_output_row", &ngd::Mlp::select_output_row, nb::arg("on") = true,
             nb::rv_policy::reference_internal,
             "Matrix-factorization mode: the last layer has d outputs, the model one, and each "
             "sample "
             "names which row of the last layer is its output (output_rows). Returns the model.")
        .def_prop_ro("selects_output_row", &ngd::Mlp::selects_output_row)
        .def_prop_ro("n_inputs", &ngd::Mlp::n_inputs)
        .def_prop_ro("n_outputs", &ngd::Mlp::n_outputs)
        .def_prop_ro("n_last", &ngd::Mlp::n_last)
        .def_prop_ro("n_layers", &ngd::Mlp::n_layers)
        .def_prop_ro("n_params", &ngd::Mlp::n_params)
        .def_prop_ro("n_trainable_params", &ngd::Mlp::n_trainable_params)
        .def_prop_ro("output_scale", &ngd::Mlp::output_scale)
        .def_prop_ro("parameterization", &ngd::Mlp::parameterization)
        .def_prop_ro(
            "layers",
            [](const ngd::Mlp& model) {
                std::vector<ngd::Layer> layers;
                for (std::int64_t l = 0; l < model.n_layers(); ++l) {
                    layers.push_back(model.layer(l));
                }
                return layers;
            },
            "Copies of the layers (a model does not change: build a new Mlp).")
        .def("fan_in", &ngd::Mlp::fan_in, nb::arg("layer"), "n_in of `layer` (0-based).")
        .def("weight_offset", &ngd::Mlp::weight_offset, nb::arg("layer"),
             "Where W_l starts in theta (n_out x n_in, column-major).")
        .def("bias_offset", &ngd::Mlp::bias_offset, nb::arg("layer"),
             "Where b_l starts in theta; -1 without a bias.")
        .def("weight_multiplier", &ngd::Mlp::weight_multiplier, nb::arg("layer"),
             "1 (standard) or 1/sqrt(n_in) (NTK): z = multiplier W a + b.")
        .def("describe", &ngd::Mlp::describe,
             "One line: \"784-1024(relu)-10(identity), standard, 814090 params\".")
        .def(
            "init",
            [](const ngd::Mlp& model, std::uint64_t seed, nb::handle dtype) {
                // A PyTorch dtype (torch.float32) by its name: NumPy cannot interpret it.
                std::string n = nb::cast<std::string>(nb::str(dtype));
                if (n.rfind("torch.", 0) == 0) {
                    n = n.substr(6);
                } else {
                    nb::object np_dtype = nb::module_::import_("numpy").attr("dtype");
                    n = nb::cast<std::string>(np_dtype(dtype).attr("name"));
                }
                if (n == "float64") return init_theta<double>(model, seed);
                if (n == "float32") return init_theta<float>(model, seed);
                throw ngd::InvalidArgument(
                    "ngd.Mlp.init: argument 'dtype' must be float32 or "
                    "float64, got " +
                    n);
            },
            nb::arg("seed") = 0, nb::arg("dtype") = "float64",
            "theta drawn from each layer's Init with a fixed seed (the same on every platform): a "
            "writable 1-D NumPy array of n_params entries, float64 or float32 (dtype: anything "
            "numpy.dtype takes, or torch.float32 / torch.float64).")
        .def("__repr__", [](const ngd::Mlp& model) { return "ngd.Mlp(" + model.describe() + ")"; });

    m.def("two_layer_relu", &ngd::two_layer_relu, nb::arg("d"), nb::arg("m"),
          nb::arg("init_std") = 1.0,
          "Zhang et al.: f(x) = m^{-1/2} sum_r a_r relu(w_r . x), w_r ~ N(0, init_std^2 I), a_r = "
          "+-1 "
          "fixed; only W (m x d) is trained.");
    m.def("deep_linear", &ngd::deep_linear, nb::arg("d"), nb::arg("width"), nb::arg("depth"),
          nb::arg("n_out") = 1, nb::arg("init_scale") = -1.0,
          "W_depth ... W_1 x: identity activations, no biases, widths d -> width -> ... -> n_out.");
    m.def("matrix_factorization", &ngd::matrix_factorization, nb::arg("d"), nb::arg("depth"),
          nb::arg("init_scale") = 0.1,
          "Deep matrix factorization W = W_depth ... W_1 (d x d): a sample is an observed entry "
          "(i, j), "
          "input e_j (one-hot), output row i (output_rows).");
}

}  // namespace ngd_python
