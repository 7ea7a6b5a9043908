// The stage functions (include/ngd/stages.hpp) over DLPack arrays: the dtype of theta (of the
// Gram matrix, of J) selects float or double, every other array must match it and lie where the
// context computes. Sample-major results ((n, k) outputs, (N, p) J) are views of ngd's column-major
// buffers, never copies. The GIL is released while a stage runs. The damped solves (damped_solve,
// direction, direction_from_jacobian) return (result, SolveReport); the package keeps the report
// only when asked for it.
#include <nanobind/nanobind.h>
#include <nanobind/stl/optional.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "arrays.hpp"
#include "enums.hpp"
#include "ngd/ngd.hpp"

namespace ngd_python {
namespace {

using Opt = std::optional<Input>;
using nb::arg;

template <class T>
ngd::Batch<T> batch(const ngd::Context& c, const char* fn, const Input& x, const Input& y,
                    const Opt& rows) {
    return ngd::Batch<T>{sample_view<T>(c, fn, "x", x), sample_view<T>(c, fn, "y", y),
                         optional_sample_view<T>(c, fn, "output_rows", rows)};
}

size_t size(std::int64_t v) { return static_cast<size_t>(v); }

template <class T>
nb::object vector_out(ngd::Context& c, ngd::Matrix<T>&& v) {
    const size_t p = size(v.rows());
    return to_python<T>(c, std::move(v), {p}, {1});
}

// An r x c column-major matrix as an (r, c) array in Fortran order.
template <class T>
nb::object fortran_out(ngd::Context& c, ngd::Matrix<T>&& m) {
    const auto r = m.rows(), cols = m.cols();
    return to_python<T>(c, std::move(m), {size(r), size(cols)}, {1, r > 0 ? r : 1});
}

// A k x n column-major matrix as an (n, k) array in C order.
template <class T>
nb::object samples_out(ngd::Context& c, ngd::Matrix<T>&& m) {
    const auto k = m.rows(), n = m.cols();
    return to_python<T>(c, std::move(m), {size(n), size(k)}, {k, 1});
}

template <class T>
nb::object forward(ngd::Context& c, const ngd::Mlp& model, const Input& theta, const Input& x,
                   const Opt& rows) {
    const char* fn = "ngd.forward";
    auto th = column_view<T>(c, fn, "theta", theta);
    auto xv = sample_view<T>(c, fn, "x", x);
    auto rv = optional_sample_view<T>(c, fn, "output_rows", rows);
    ngd::Matrix<T> f;
    {
        nb::gil_scoped_release release;
        f = ngd::forward<T>(c, model, th, xv, rv);
    }
    return samples_out<T>(c, std::move(f));
}

template <class T>
double loss(ngd::Context& c, const ngd::Mlp& model, const Input& theta, const Input& x,
            const Input& y, ngd::Loss l, const Opt& rows) {
    const char* fn = "ngd.loss";
    auto th = column_view<T>(c, fn, "theta", theta);
    const auto b = batch<T>(c, fn, x, y, rows);
    nb::gil_scoped_release release;
    return ngd::loss<T>(c, model, th, b, l);
}

template <class T>
nb::object gradient(ngd::Context& c, const ngd::Mlp& model, const Input& theta, const Input& x,
                    const Input& y, ngd::Loss l, const Opt& rows) {
    const char* fn = "ngd.gradient";
    auto th = column_view<T>(c, fn, "theta", theta);
    const auto b = batch<T>(c, fn, x, y, rows);
    ngd::Matrix<T> g;
    {
        nb::gil_scoped_release release;
        g = ngd::gradient<T>(c, model, th, b, l);
    }
    return vector_out<T>(c, std::move(g));
}

template <class T>
nb::object jacobian(ngd::Context& c, const ngd::Mlp& model, const Input& theta, const Input& x,
                    const Opt& rows) {
    const char* fn = "ngd.jacobian";
    auto th = column_view<T>(c, fn, "theta", theta);
    auto xv = sample_view<T>(c, fn, "x", x);
    auto rv = optional_sample_view<T>(c, fn, "output_rows", rows);
    ngd::Matrix<T> j;
    {
        nb::gil_scoped_release release;
        j = ngd::jacobian<T>(c, model, th, xv, rv);
    }
    return fortran_out<T>(c, std::move(j));
}

template <class T>
nb::object gram(ngd::Context& c, const ngd::Mlp& model, const Input& theta, const Input& x,
                const Opt& y, std::optional<ngd::Loss> l, const Opt& rows, ngd::GramMode mode) {
    const char* fn = "ngd.gram";
    auto th = column_view<T>(c, fn, "theta", theta);
    ngd::Matrix<T> g;
    if (y && l) {
        const auto b = batch<T>(c, fn, x, *y, rows);
        nb::gil_scoped_release release;
        g = ngd::gram<T>(c, model, th, b, *l, mode);
    } else {
        auto xv = sample_view<T>(c, fn, "x", x);
        auto rv = optional_sample_view<T>(c, fn, "output_rows", rows);
        nb::gil_scoped_release release;
        g = ngd::gram<T>(c, model, th, xv, rv, mode);
    }
    return fortran_out<T>(c, std::move(g));
}

template <class T>
nb::tuple damped_solve(ngd::Context& c, const Input& gram, double shift, const Input& rhs,
                       ngd::SolvePrecision precision) {
    const char* fn = "ngd.damped_solve";
    auto gv = column_view<T>(c, fn, "gram", gram);
    auto rv = column_view<T>(c, fn, "rhs", rhs);
    ngd::Matrix<T> xs;
    ngd::SolveReport report;
    {
        nb::gil_scoped_release release;
        xs = ngd::damped_solve<T>(c, gv, shift, rv, precision, &report);
    }
    nb::object x =
        rhs.ndim() == 1 ? vector_out<T>(c, std::move(xs)) : fortran_out<T>(c, std::move(xs));
    return nb::make_tuple(x, report);
}

template <class T>
nb::tuple direction(ngd::Context& c, const ngd::Mlp& model, const Input& theta, const Input& x,
                    const Input& y, ngd::Loss l, double damping, const Opt& rows,
                    const ngd::DirectionOptions& options) {
    const char* fn = "ngd.direction";
    auto th = column_view<T>(c, fn, "theta", theta);
    const auto b = batch<T>(c, fn, x, y, rows);
    ngd::Matrix<T> d;
    ngd::SolveReport report;
    {
        nb::gil_scoped_release release;
        d = ngd::direction<T>(c, model, th, b, l, damping, options, &report);
    }
    return nb::make_tuple(vector_out<T>(c, std::move(d)), report);
}

template <class T>
nb::tuple direction_from_jacobian(ngd::Context& c, const Input& jac, const Input& residual,
                                  double damping, const Opt& factor,
                                  ngd::SolvePrecision precision) {
    const char* fn = "ngd.direction_from_jacobian";
    auto jv = column_view<T>(c, fn, "jacobian", jac);
    auto uv = column_view<T>(c, fn, "residual", residual);
    auto mv = optional_sample_view<T>(c, fn, "factor", factor);
    ngd::Matrix<T> d;
    ngd::SolveReport report;
    {
        nb::gil_scoped_release release;
        d = ngd::direction_from_jacobian<T>(c, jv, uv, damping, mv, precision, &report);
    }
    return nb::make_tuple(vector_out<T>(c, std::move(d)), report);
}

template <class T>
nb::dict loss_factors(ngd::Context& c, ngd::Loss l, const Input& outputs, const Input& targets) {
    const char* fn = "ngd.loss_factors";
    auto fv = sample_view<T>(c, fn, "outputs", outputs);
    auto yv = sample_view<T>(c, fn, "targets", targets);
    ngd::LossFactors<T> r;
    {
        nb::gil_scoped_release release;
        r = ngd::loss_factors<T>(c, l, fv, yv);
    }
    nb::dict out;
    out["value"] = r.value;
    out["gradient"] = samples_out<T>(c, std::move(r.gradient));
    out["residual"] = samples_out<T>(c, std::move(r.residual));
    // M: k x (k n), block i = M_i; as (n, k, k) with [i, r, c] = M_i[r, c].
    const auto k = r.factor.rows(), n = k > 0 ? r.factor.cols() / k : 0;
    out["factor"] =
        to_python<T>(c, std::move(r.factor), {size(n), size(k), size(k)}, {k * k, 1, k});
    out["natural_residual"] =
        r.natural_residual.empty() ? nb::none() : samples_out<T>(c, std::move(r.natural_residual));
    out["curvature_inverse"] = r.curvature_inverse.empty()
                                   ? nb::none()
                                   : samples_out<T>(c, std::move(r.curvature_inverse));
    return out;
}

// Copies a dense float32/float64 array (its elements fill one block of memory in some axis order:
// C, Fortran, or the (n, k, k) factor view) between host memory and the context's memory; the copy
// keeps the shape and the strides.
template <class T>
nb::object copy_array(ngd::Context& c, const Input& a, ngd::MemorySpace to) {
    const char* fn = "ngd.copy_to";
    if (a.dtype() != nb::dtype<T>()) refuse(fn, "array", a, "unexpected dtype");
    const auto space = a.device_type() == nb::device::cpu::value ? ngd::MemorySpace::host
                                                                 : ngd::MemorySpace::device;
    const size_t nd = a.ndim();
    std::vector<size_t> shape(nd), axes;
    std::vector<std::int64_t> st(nd, 0);
    for (size_t i = 0; i < nd; ++i) {
        shape[i] = a.shape(i);
        st[i] = a.stride(i);
        if (a.shape(i) > 1) axes.push_back(i);
    }
    std::sort(axes.begin(), axes.end(), [&](size_t x, size_t y) { return st[x] < st[y]; });
    std::int64_t expected = 1;
    for (size_t i : axes) {
        if (st[i] != expected) refuse(fn, "array", a, "must be dense (C or Fortran order)");
        expected *= static_cast<std::int64_t>(a.shape(i));
    }
    const ngd::MatrixView<const T> v(static_cast<const T*>(a.data()),
                                     static_cast<std::int64_t>(a.size()), 1, space);
    ngd::Matrix<T> m;
    {
        nb::gil_scoped_release release;
        m = ngd::copy_to<T>(c, v, to);
    }
    auto owned = std::make_unique<ngd::Matrix<T>>(std::move(m));
    T* data = owned->data();
    nb::capsule owner(owned.get(),
                      [](void* p) noexcept { delete static_cast<ngd::Matrix<T>*>(p); });
    owned.release();
    if (to == ngd::MemorySpace::host) {
        return nb::ndarray<nb::numpy, T>(data, nd, shape.data(), owner, st.data()).cast();
    }
    return nb::ndarray<T>(data, nd, shape.data(), owner, st.data(), nb::dtype<T>(),
                          nb::device::cuda::value, c.device())
        .cast();
}

// Calls f(T{}) with T = double or float as the dtype of `a` says (is_double refuses any other,
// naming fn and the argument): each binding below writes its stage call once, for both types.
template <class F>
auto by_dtype(const char* fn, const char* name, const Input& a, F&& f) {
    return is_double(fn, name, a) ? f(double{}) : f(float{});
}

}  // namespace

void bind_stages(nb::module_& m) {
    auto nb_rows = arg("output_rows") = nb::none();
    m.def(
        "forward",
        [](ngd::Context& c, const ngd::Mlp& model, const Input& theta, const Input& x,
           const Opt& rows) {
            return by_dtype("ngd.forward", "theta", theta,
                            [&](auto t) { return forward<decltype(t)>(c, model, theta, x, rows); });
        },
        arg("ctx"), arg("model"), arg("theta"), arg("x"), nb_rows);
    m.def(
        "loss",
        [](ngd::Context& c, const ngd::Mlp& model, const Input& theta, const Input& x,
           const Input& y, nb::handle l, const Opt& rows) {
            const auto ls = enum_arg<ngd::Loss>(l, "ngd.loss", "loss");
            return by_dtype("ngd.loss", "theta", theta, [&](auto t) {
                return loss<decltype(t)>(c, model, theta, x, y, ls, rows);
            });
        },
        arg("ctx"), arg("model"), arg("theta"), arg("x"), arg("y"), arg("loss"), nb_rows);
    m.def(
        "gradient",
        [](ngd::Context& c, const ngd::Mlp& model, const Input& theta, const Input& x,
           const Input& y, nb::handle l, const Opt& rows) {
            const auto ls = enum_arg<ngd::Loss>(l, "ngd.gradient", "loss");
            return by_dtype("ngd.gradient", "theta", theta, [&](auto t) {
                return gradient<decltype(t)>(c, model, theta, x, y, ls, rows);
            });
        },
        arg("ctx"), arg("model"), arg("theta"), arg("x"), arg("y"), arg("loss"), nb_rows);
    m.def(
        "jacobian",
        [](ngd::Context& c, const ngd::Mlp& model, const Input& theta, const Input& x,
           const Opt& rows) {
            return by_dtype("ngd.jacobian", "theta", theta, [&](auto t) {
                return jacobian<decltype(t)>(c, model, theta, x, rows);
            });
        },
        arg("ctx"), arg("model"), arg("theta"), arg("x"), nb_rows);
    m.def(
        "gram",
        [](ngd::Context& c, const ngd::Mlp& model, const Input& theta, const Input& x, const Opt& y,
           nb::handle l, const Opt& rows, nb::handle mode) {
            std::optional<ngd::Loss> ls;
            if (!l.is_none()) ls = enum_arg<ngd::Loss>(l, "ngd.gram", "loss");
            if (ls.has_value() != y.has_value()) {
                throw ngd::InvalidArgument(
                    "ngd.gram: pass both y and loss (the loss-weighted Gram A A^T) or neither "
                    "(G = J J^T)");
            }
            const auto md = enum_arg<ngd::GramMode>(mode, "ngd.gram", "mode");
            return by_dtype("ngd.gram", "theta", theta, [&](auto t) {
                return gram<decltype(t)>(c, model, theta, x, y, ls, rows, md);
            });
        },
        arg("ctx"), arg("model"), arg("theta"), arg("x"), arg("y") = nb::none(),
        arg("loss") = nb::none(), nb_rows, arg("mode") = "structured");
    m.def(
        "damped_solve",
        [](ngd::Context& c, const Input& g, double shift, const Input& rhs, nb::handle precision) {
            const auto pr =
                enum_arg<ngd::SolvePrecision>(precision, "ngd.damped_solve", "precision");
            return by_dtype("ngd.damped_solve", "gram", g, [&](auto t) {
                return damped_solve<decltype(t)>(c, g, shift, rhs, pr);
            });
        },
        arg("ctx"), arg("gram"), arg("shift"), arg("rhs"), arg("precision") = "working");
    m.def(
        "direction",
        [](ngd::Context& c, const ngd::Mlp& model, const Input& theta, const Input& x,
           const Input& y, nb::handle l, double damping, const Opt& rows, nb::handle mode,
           nb::handle form, nb::handle precision) {
            const char* fn = "ngd.direction";
            const auto ls = enum_arg<ngd::Loss>(l, fn, "loss");
            ngd::DirectionOptions o;
            o.gram_mode = enum_arg<ngd::GramMode>(mode, fn, "gram_mode");
            o.form = enum_arg<ngd::SolveForm>(form, fn, "form");
            o.precision = enum_arg<ngd::SolvePrecision>(precision, fn, "precision");
            return by_dtype(fn, "theta", theta, [&](auto t) {
                return direction<decltype(t)>(c, model, theta, x, y, ls, damping, rows, o);
            });
        },
        arg("ctx"), arg("model"), arg("theta"), arg("x"), arg("y"), arg("loss"), arg("damping"),
        nb_rows, arg("gram_mode") = "structured", arg("form") = "automatic",
        arg("precision") = "working");
    m.def(
        "direction_from_jacobian",
        [](ngd::Context& c, const Input& j, const Input& u, double damping, const Opt& factor,
           nb::handle precision) {
            const char* fn = "ngd.direction_from_jacobian";
            const auto pr = enum_arg<ngd::SolvePrecision>(precision, fn, "precision");
            return by_dtype(fn, "jacobian", j, [&](auto t) {
                return direction_from_jacobian<decltype(t)>(c, j, u, damping, factor, pr);
            });
        },
        arg("ctx"), arg("jacobian"), arg("residual"), arg("damping"), arg("factor") = nb::none(),
        arg("precision") = "working");
    m.def(
        "loss_factors",
        [](ngd::Context& c, nb::handle l, const Input& f, const Input& y) {
            const auto ls = enum_arg<ngd::Loss>(l, "ngd.loss_factors", "loss");
            return by_dtype("ngd.loss_factors", "outputs", f,
                            [&](auto t) { return loss_factors<decltype(t)>(c, ls, f, y); });
        },
        arg("ctx"), arg("loss"), arg("outputs"), arg("targets"));
    m.def(
        "copy_to",
        [](ngd::Context& c, const Input& a, ngd::MemorySpace to) {
            return by_dtype("ngd.copy_to", "array", a,
                            [&](auto t) { return copy_array<decltype(t)>(c, a, to); });
        },
        arg("ctx"), arg("array"), arg("space"),
        "A copy of a C- or Fortran-contiguous array in `space` (host, or the context's device).");
}

}  // namespace ngd_python
