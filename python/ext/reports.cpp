// The reports: SolveReport (what a damped solve did; the stage functions return it on request) and
// StepReport with its StepSeconds (what an optimizer step did). Read-only fields named as in C++;
// reprs write doubles as Python does (1e-17, not 0.000000).
#include <nanobind/nanobind.h>
#include <nanobind/stl/string.h>

#include <string>

#include "ngd/ngd.hpp"

namespace ngd_python {
namespace nb = nanobind;

namespace {

std::string num(double v) { return nb::cast<std::string>(nb::repr(nb::float_(v))); }
std::string boolean(bool v) { return v ? "True" : "False"; }
std::string quoted(const char* name) { return std::string("'") + name + "'"; }

}  // namespace

void bind_reports(nb::module_& m) {
    using S = ngd::SolveReport;
    nb::class_<S>(m, "SolveReport",
                  "What a damped solve did (include/ngd/stages.hpp): the precision asked for and "
                  "the one\nwhose factorization gave the solution, the mixed solve's fallback and "
                  "refinement, the\nbackward error and the equilibrated residual.")
        .def_ro("requested", &S::requested)
        .def_ro("used", &S::used)
        .def_ro("mixed_fallback", &S::mixed_fallback)
        .def_ro("refinement_iterations", &S::refinement_iterations)
        .def_ro("cg_iterations", &S::cg_iterations)
        .def_ro("float_info", &S::float_info)
        .def_ro("backward_error", &S::backward_error)
        .def_ro("solve_residual", &S::solve_residual)
        .def("__repr__", [](const S& r) {
            return "ngd.SolveReport(requested=" + quoted(ngd::to_string(r.requested)) +
                   ", used=" + quoted(ngd::to_string(r.used)) +
                   ", mixed_fallback=" + boolean(r.mixed_fallback) +
                   ", refinement_iterations=" + std::to_string(r.refinement_iterations) +
                   ", cg_iterations=" + std::to_string(r.cg_iterations) +
                   ", float_info=" + std::to_string(r.float_info) +
                   ", backward_error=" + num(r.backward_error) +
                   ", solve_residual=" + num(r.solve_residual) + ")";
        });

    using R = ngd::StepReport;
    nb::class_<R::Seconds>(m, "StepSeconds", "Wall-clock seconds per stage of a step.")
        .def_ro("forward", &R::Seconds::forward)
        .def_ro("gram", &R::Seconds::gram)
        .def_ro("solve", &R::Seconds::solve)
        .def_ro("direction", &R::Seconds::direction)
        .def_ro("total", &R::Seconds::total)
        .def("__repr__", [](const R::Seconds& t) {
            return "ngd.StepSeconds(forward=" + num(t.forward) + ", gram=" + num(t.gram) +
                   ", solve=" + num(t.solve) + ", direction=" + num(t.direction) +
                   ", total=" + num(t.total) + ")";
        });
    nb::class_<R>(m, "StepReport", "What one step did (include/ngd/optimizer.hpp).")
        .def_ro("loss_before", &R::loss_before)
        .def_ro("loss_after", &R::loss_after)
        .def_ro("predicted_reduction", &R::predicted_reduction)
        .def_ro("actual_reduction", &R::actual_reduction)
        .def_ro("gain_ratio", &R::gain_ratio)
        .def_ro("damping", &R::damping)
        .def_ro("next_damping", &R::next_damping)
        .def_ro("accepted", &R::accepted)
        .def_ro("rejections", &R::rejections)
        .def_ro("cholesky_tries", &R::cholesky_tries)
        .def_ro("cholesky_info", &R::cholesky_info)
        .def_ro("rung", &R::rung)
        .def_ro("fallback_used", &R::fallback_used)
        .def_ro("form", &R::form)
        .def_ro("gram_mode", &R::gram_mode)
        .def_ro("solve_residual", &R::solve_residual)
        .def_ro("precision", &R::precision)
        .def_ro("mixed_fallback", &R::mixed_fallback)
        .def_ro("refinement_iterations", &R::refinement_iterations)
        .def_ro("cg_iterations", &R::cg_iterations)
        .def_ro("backward_error", &R::backward_error)
        .def_ro("learning_rate", &R::learning_rate)
        .def_ro("step_limited", &R::step_limited)
        .def_ro("step_norm", &R::step_norm)
        .def_ro("output_change", &R::output_change)
        .def_ro("seconds", &R::seconds)
        .def("__repr__", [](const R& r) {
            std::string s = "ngd.StepReport(loss_before=" + num(r.loss_before) +
                            ", loss_after=" + num(r.loss_after) +
                            ", accepted=" + boolean(r.accepted) + ", damping=" + num(r.damping) +
                            ", rung=" + quoted(ngd::to_string(r.rung)) +
                            ", solve_residual=" + num(r.solve_residual) +
                            ", precision=" + quoted(ngd::to_string(r.precision));
            // The mixed solve's details only where one was tried (the working solve has none).
            if (r.precision != ngd::SolvePrecision::working || r.mixed_fallback) {
                s += ", mixed_fallback=" + boolean(r.mixed_fallback) +
                     ", refinement_iterations=" + std::to_string(r.refinement_iterations) +
                     ", cg_iterations=" + std::to_string(r.cg_iterations) +
                     ", backward_error=" + num(r.backward_error);
            }
            return s + ", learning_rate=" + num(r.learning_rate) + ")";
        });
}

}  // namespace ngd_python
