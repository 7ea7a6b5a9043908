// The extension module ngd._ngd: conversions only (arrays, enums, errors) around the C++ API. The
// public Python API is the package ngd (python/src/ngd/), which prepares arrays and streams.
#include <nanobind/nanobind.h>
#include <nanobind/stl/string.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "ngd/ngd.hpp"

#if defined(NGD_PYTHON_WITH_CUDA)
#include <cuda_runtime.h>
#endif

namespace ngd_python {
namespace nb = nanobind;
void bind_errors(nb::module_& m);
void bind_core(nb::module_& m);
void bind_stages(nb::module_& m);
void bind_optimizers(nb::module_& m);
void bind_reports(nb::module_& m);

namespace {
// Waits (on the host) until the work queued on a caller's CUDA stream is done, so that ngd's own
// stream reads finished inputs. `stream` is a cudaStream_t as an integer (0: legacy default).
void wait_stream(std::uintptr_t stream) {
#if defined(NGD_PYTHON_WITH_CUDA)
    cudaError_t status;
    {
        nb::gil_scoped_release release;
        status = cudaStreamSynchronize(reinterpret_cast<cudaStream_t>(stream));
    }
    if (status != cudaSuccess) {
        throw ngd::CudaError(std::string("ngd: cudaStreamSynchronize(caller's stream) failed: ") +
                                 cudaGetErrorString(status),
                             static_cast<int>(status));
    }
#else
    (void)stream;
    throw ngd::NotCompiled("ngd: this build has no CUDA backend (waiting on a CUDA stream)");
#endif
}
// Throws the named ngd exception, so that tests check the translation of every type (some, such as
// CublasError, cannot be provoked on a machine without a GPU).
void throw_for_test(const std::string& kind) {
    const std::string what = "ngd._throw_for_test: " + kind;
    if (kind == "Error") throw ngd::Error(what);
    if (kind == "InvalidArgument") throw ngd::InvalidArgument(what);
    if (kind == "NotCompiled") throw ngd::NotCompiled(what);
    if (kind == "DeviceUnavailable") throw ngd::DeviceUnavailable(what);
    if (kind == "NonFiniteInput") throw ngd::NonFiniteInput(what, 3, 7);
    if (kind == "NotPositiveDefinite") throw ngd::NotPositiveDefinite(what, 2, 5, 0.25);
    if (kind == "OutOfMemory") throw ngd::OutOfMemory(what, 1024, 512);
    if (kind == "CudaError") throw ngd::CudaError(what, 2);
    if (kind == "CublasError") throw ngd::CublasError(what, 3);
    if (kind == "CusolverError") throw ngd::CusolverError(what, 7);
    throw std::runtime_error("unknown kind " + kind);
}
}  // namespace

}  // namespace ngd_python

NB_MODULE(_ngd, m) {
    m.doc() = "ngd's C++ API (conversions only); use the package ngd.";
    m.attr("__version__") = ngd::version_string;
#if defined(NGD_PYTHON_WITH_CUDA)
    m.attr("with_cuda") = true;
#else
    m.attr("with_cuda") = false;
#endif
    ngd_python::bind_errors(m);
    ngd_python::bind_core(m);
    ngd_python::bind_reports(m);
    ngd_python::bind_stages(m);
    ngd_python::bind_optimizers(m);
    m.def("_throw_for_test", &ngd_python::throw_for_test, nanobind::arg("kind"));
    m.def("wait_stream", &ngd_python::wait_stream, nanobind::arg("stream"));
}
