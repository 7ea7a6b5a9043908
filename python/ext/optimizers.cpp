// NaturalGradient and GradientDescent with keyword options, and step() over a writable theta
// (updated in place; a step that raises leaves it as it was; ext/reports.cpp binds the StepReport).
// One optimizer object serves float32 and float64 theta: it holds the C++ optimizer of each
// precision.
#include <nanobind/nanobind.h>
#include <nanobind/stl/optional.h>

#include <optional>

#include "arrays.hpp"
#include "enums.hpp"
#include "ngd/ngd.hpp"

namespace ngd_python {
namespace {

using nb::arg;

// The float optimizer's options from the double one's (the same fields in two distinct types).
ngd::NaturalGradient<float>::Options to_float(const ngd::NaturalGradient<double>::Options& o) {
    ngd::NaturalGradient<float>::Options f;
    f.learning_rate = o.learning_rate;
    f.damping = o.damping;
    f.gram_mode = o.gram_mode;
    f.form = o.form;
    f.precision = o.precision;
    f.evaluate_after = o.evaluate_after;
    f.time_stages = o.time_stages;
    f.deferred_checks = o.deferred_checks;
    f.policy = o.policy;
    f.rule = o.rule;
    f.damping_min = o.damping_min;
    f.damping_max = o.damping_max;
    f.max_rejections = o.max_rejections;
    f.damping_raises = o.damping_raises;
    f.raise_factor = o.raise_factor;
    f.fallback = o.fallback;
    f.max_solve_residual = o.max_solve_residual;
    f.max_step_norm = o.max_step_norm;
    f.max_output_change = o.max_output_change;
    return f;
}
ngd::GradientDescent<float>::Options to_float(const ngd::GradientDescent<double>::Options& o) {
    ngd::GradientDescent<float>::Options f;
    f.learning_rate = o.learning_rate;
    f.evaluate_after = o.evaluate_after;
    f.deferred_checks = o.deferred_checks;
    return f;
}

template <template <class> class Optimizer>
struct Both {
    explicit Both(const typename Optimizer<double>::Options& o)
        : f64(o), f32(to_float(o)), last_double(true) {}
    Optimizer<double> f64;
    Optimizer<float> f32;
    bool last_double;

    ngd::StepReport step(ngd::Context& c, const ngd::Mlp& model, const Output& theta,
                         const Input& x, const Input& y, nb::handle l,
                         const std::optional<Input>& rows, const char* fn) {
        const auto ls = enum_arg<ngd::Loss>(l, fn, "loss");
        last_double = is_double(fn, "theta", Input(theta));
        return last_double ? run(f64, c, model, theta, x, y, ls, rows, fn)
                           : run(f32, c, model, theta, x, y, ls, rows, fn);
    }

    template <class T>
    static ngd::StepReport run(Optimizer<T>& opt, ngd::Context& c, const ngd::Mlp& model,
                               const Output& theta, const Input& x, const Input& y, ngd::Loss l,
                               const std::optional<Input>& rows, const char* fn) {
        auto th = column_view_mut<T>(c, fn, "theta", theta);
        const ngd::Batch<T> b{sample_view<T>(c, fn, "x", x), sample_view<T>(c, fn, "y", y),
                              optional_sample_view<T>(c, fn, "output_rows", rows)};
        nb::gil_scoped_release release;
        return opt.step(c, model, th, b, l);
    }
};

using NaturalGradientBoth = Both<ngd::NaturalGradient>;
using GradientDescentBoth = Both<ngd::GradientDescent>;

}  // namespace

void bind_optimizers(nb::module_& m) {
    using O = ngd::NaturalGradient<double>::Options;
    const O d;
    nb::class_<NaturalGradientBoth>(m, "NaturalGradient",
                                    "Damped natural gradient through the Gram matrix.")
        .def(
            "__init__",
            [](NaturalGradientBoth* self, double learning_rate, double damping, nb::handle policy,
               nb::handle gram_mode, nb::handle form, bool evaluate_after, bool time_stages,
               nb::handle rule, double damping_min, double damping_max, int max_rejections,
               int damping_raises, double raise_factor, nb::handle fallback,
               double max_solve_residual, double max_step_norm, double max_output_change,
               nb::handle precision, bool deferred_checks) {
                O o;
                o.learning_rate = learning_rate;
                o.damping = damping;
                o.policy = enum_arg<ngd::DampingPolicy>(policy, "ngd.NaturalGradient", "policy");
                o.gram_mode =
                    enum_arg<ngd::GramMode>(gram_mode, "ngd.NaturalGradient", "gram_mode");
                o.form = enum_arg<ngd::SolveForm>(form, "ngd.NaturalGradient", "form");
                o.evaluate_after = evaluate_after;
                o.time_stages = time_stages;
                o.rule = enum_arg<ngd::DampingRule>(rule, "ngd.NaturalGradient", "rule");
                o.damping_min = damping_min;
                o.damping_max = damping_max;
                o.max_rejections = max_rejections;
                o.damping_raises = damping_raises;
                o.raise_factor = raise_factor;
                o.fallback = enum_arg<ngd::Fallback>(fallback, "ngd.NaturalGradient", "fallback");
                o.max_solve_residual = max_solve_residual;
                o.max_step_norm = max_step_norm;
                o.max_output_change = max_output_change;
                o.precision =
                    enum_arg<ngd::SolvePrecision>(precision, "ngd.NaturalGradient", "precision");
                o.deferred_checks = deferred_checks;
                new (self) NaturalGradientBoth(o);
            },
            nb::kw_only(), arg("learning_rate") = d.learning_rate, arg("damping") = d.damping,
            arg("policy") = "fixed", arg("gram_mode") = "structured", arg("form") = "automatic",
            arg("evaluate_after") = d.evaluate_after, arg("time_stages") = d.time_stages,
            arg("rule") = "nielsen", arg("damping_min") = d.damping_min,
            arg("damping_max") = d.damping_max, arg("max_rejections") = d.max_rejections,
            arg("damping_raises") = d.damping_raises, arg("raise_factor") = d.raise_factor,
            arg("fallback") = "pseudo_inverse", arg("max_solve_residual") = d.max_solve_residual,
            arg("max_step_norm") = d.max_step_norm, arg("max_output_change") = d.max_output_change,
            arg("precision") = "working", arg("deferred_checks") = d.deferred_checks)
        .def_prop_ro("damping",
                     [](const NaturalGradientBoth& o) {
                         return o.last_double ? o.f64.damping() : o.f32.damping();
                     })
        .def_prop_ro("learning_rate",
                     [](const NaturalGradientBoth& o) { return o.f64.options().learning_rate; })
        .def_prop_ro("policy", [](const NaturalGradientBoth& o) { return o.f64.options().policy; })
        .def(
            "step",
            [](NaturalGradientBoth& o, ngd::Context& c, const ngd::Mlp& model, const Output& theta,
               const Input& x, const Input& y, nb::handle l, const std::optional<Input>& rows) {
                return o.step(c, model, theta, x, y, l, rows, "ngd.NaturalGradient.step");
            },
            arg("ctx"), arg("model"), arg("theta"), arg("x"), arg("y"), arg("loss"),
            arg("output_rows") = nb::none());

    nb::class_<GradientDescentBoth>(m, "GradientDescent", "Plain gradient descent.")
        .def(
            "__init__",
            [](GradientDescentBoth* self, double learning_rate, bool evaluate_after,
               bool deferred_checks) {
                ngd::GradientDescent<double>::Options o;
                o.learning_rate = learning_rate;
                o.evaluate_after = evaluate_after;
                o.deferred_checks = deferred_checks;
                new (self) GradientDescentBoth(o);
            },
            nb::kw_only(), arg("learning_rate") = 0.1, arg("evaluate_after") = true,
            arg("deferred_checks") = true)
        .def_prop_ro("learning_rate",
                     [](const GradientDescentBoth& o) { return o.f64.options().learning_rate; })
        .def(
            "step",
            [](GradientDescentBoth& o, ngd::Context& c, const ngd::Mlp& model, const Output& theta,
               const Input& x, const Input& y, nb::handle l, const std::optional<Input>& rows) {
                return o.step(c, model, theta, x, y, l, rows, "ngd.GradientDescent.step");
            },
            arg("ctx"), arg("model"), arg("theta"), arg("x"), arg("y"), arg("loss"),
            arg("output_rows") = nb::none());
}

}  // namespace ngd_python
