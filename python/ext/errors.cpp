// ngd's exceptions as a Python hierarchy under ngd.Error: InvalidArgument and NonFiniteInput also
// derive from ValueError, OutOfMemory from MemoryError. The fields of the C++ exceptions (info,
// order, damping; requested, free; count, first_index; code, status) become attributes.
#include <nanobind/nanobind.h>

#include <exception>

#include "ngd/error.hpp"

namespace ngd_python {
namespace nb = nanobind;
namespace {

struct ErrorTypes {
    PyObject* error = nullptr;
    PyObject* invalid_argument = nullptr;
    PyObject* not_compiled = nullptr;
    PyObject* device_unavailable = nullptr;
    PyObject* non_finite_input = nullptr;
    PyObject* not_positive_definite = nullptr;
    PyObject* out_of_memory = nullptr;
    PyObject* cuda_error = nullptr;
    PyObject* cublas_error = nullptr;
    PyObject* cusolver_error = nullptr;
};

ErrorTypes types;  // owned by the module (strong references kept in its dict)

PyObject* make_type(nb::module_& m, const char* name, PyObject* base, PyObject* extra_base,
                    const char* doc) {
    const std::string qualified = std::string("ngd.") + name;
    nb::object bases = extra_base ? nb::make_tuple(nb::handle(base), nb::handle(extra_base))
                                  : nb::make_tuple(nb::handle(base));
    PyObject* type = PyErr_NewExceptionWithDoc(qualified.c_str(), doc, bases.ptr(), nullptr);
    if (!type) throw nb::python_error();
    m.attr(name) = nb::steal(type);
    return type;
}

// Raises `type` with `what` as its message and the given attributes.
template <class... Attrs>
void raise(PyObject* type, const char* what, Attrs&&... attrs) {
    nb::object exc = nb::steal(PyObject_CallOneArg(type, nb::str(what).ptr()));
    if (!exc.is_valid()) return;  // the call set an error already
    (nb::setattr(exc, attrs.first, attrs.second), ...);
    PyErr_SetObject(type, exc.ptr());
}

void translate(const std::exception_ptr& p, void*) {
    using A = std::pair<const char*, nb::object>;
    try {
        std::rethrow_exception(p);
    } catch (const ngd::InvalidArgument& e) {
        raise(types.invalid_argument, e.what());
    } catch (const ngd::NotCompiled& e) {
        raise(types.not_compiled, e.what());
    } catch (const ngd::DeviceUnavailable& e) {
        raise(types.device_unavailable, e.what());
    } catch (const ngd::NonFiniteInput& e) {
        raise(types.non_finite_input, e.what(), A("count", nb::int_(e.count)),
              A("first_index", nb::int_(e.first_index)));
    } catch (const ngd::NotPositiveDefinite& e) {
        raise(types.not_positive_definite, e.what(), A("info", nb::int_(e.info)),
              A("order", nb::int_(e.order)), A("damping", nb::float_(e.damping)));
    } catch (const ngd::OutOfMemory& e) {
        raise(types.out_of_memory, e.what(), A("requested", nb::int_(e.requested)),
              A("free", nb::int_(e.free)));
    } catch (const ngd::CublasError& e) {
        raise(types.cublas_error, e.what(), A("status", nb::int_(e.status)));
    } catch (const ngd::CusolverError& e) {
        raise(types.cusolver_error, e.what(), A("status", nb::int_(e.status)));
    } catch (const ngd::CudaError& e) {
        raise(types.cuda_error, e.what(), A("code", nb::int_(e.code)));
    } catch (const ngd::Error& e) {
        raise(types.error, e.what());
    }
}

}  // namespace

void bind_errors(nb::module_& m) {
    types.error = make_type(m, "Error", PyExc_RuntimeError, nullptr,
                            "Base class of every exception raised by ngd.");
    types.invalid_argument =
        make_type(m, "InvalidArgument", types.error, PyExc_ValueError,
                  "A shape, value, layout or option is outside what the function accepts.");
    types.not_compiled = make_type(m, "NotCompiled", types.error, nullptr,
                                   "The call needs a backend this build does not contain.");
    types.device_unavailable = make_type(m, "DeviceUnavailable", types.error, nullptr,
                                         "CUDA is compiled in, but no usable device is present.");
    types.non_finite_input =
        make_type(m, "NonFiniteInput", types.error, PyExc_ValueError,
                  "An input holds NaN or Inf: .count entries, the first at .first_index "
                  "(column-major linear index in ngd's layout).");
    types.not_positive_definite = make_type(
        m, "NotPositiveDefinite", types.error, nullptr,
        "Cholesky found the damped system not positive definite: .info is LAPACK's info (order "
        "of the failing leading minor, or -1), .order the system size, .damping the Gram-side "
        "shift (n lambda) last tried.");
    types.out_of_memory =
        make_type(m, "OutOfMemory", types.error, PyExc_MemoryError,
                  "An allocation failed: .requested bytes were asked for, .free were free.");
    types.cuda_error = make_type(m, "CudaError", types.error, nullptr,
                                 "A CUDA runtime call failed; .code is the cudaError_t value.");
    types.cublas_error = make_type(m, "CublasError", types.error, nullptr,
                                   "A cuBLAS call failed; .status is the cublasStatus_t value.");
    types.cusolver_error =
        make_type(m, "CusolverError", types.error, nullptr,
                  "A cuSOLVER call failed; .status is the cusolverStatus_t value.");
    nb::register_exception_translator(translate);
}

}  // namespace ngd_python
