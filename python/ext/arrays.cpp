// Views of DLPack arrays as ngd matrices, and ngd matrices as Python arrays (see arrays.hpp).
#include "arrays.hpp"

#include <memory>
#include <sstream>
#include <utility>

namespace ngd_python {
namespace {

template <class T>
const char* dtype_name() {
    return sizeof(T) == 8 ? "float64" : "float32";
}

std::string dtype_text(nb::dlpack::dtype t) {
    const char* kind = "?";
    switch (static_cast<nb::dlpack::dtype_code>(t.code)) {
        case nb::dlpack::dtype_code::Int:
            kind = "int";
            break;
        case nb::dlpack::dtype_code::UInt:
            kind = "uint";
            break;
        case nb::dlpack::dtype_code::Float:
            kind = "float";
            break;
        case nb::dlpack::dtype_code::Bfloat:
            kind = "bfloat";
            break;
        case nb::dlpack::dtype_code::Complex:
            kind = "complex";
            break;
        case nb::dlpack::dtype_code::Bool:
            kind = "bool";
            break;
    }
    return std::string(kind) + std::to_string(t.bits);
}

// The leading dimension for an array whose other axis has `extent` entries and stride `stride`
// (elements); 0 when unusable. An axis of extent <= 1 has any stride.
std::int64_t leading_dim(std::int64_t rows, std::int64_t cols, std::int64_t stride) {
    const std::int64_t min_ld = rows > 0 ? rows : 1;
    if (cols <= 1) return min_ld;
    return stride >= min_ld ? stride : 0;
}

}  // namespace

std::string shape_text(const Input& a) {
    std::ostringstream s;
    s << '(';
    for (size_t i = 0; i < a.ndim(); ++i) s << (i ? ", " : "") << a.shape(i);
    s << (a.ndim() == 1 ? ",)" : ")");
    return s.str();
}

std::string strides_text(const Input& a) {
    std::ostringstream s;
    s << '(';
    for (size_t i = 0; i < a.ndim(); ++i) {
        s << (i ? ", " : "") << a.stride(i) * static_cast<std::int64_t>(a.itemsize());
    }
    s << (a.ndim() == 1 ? ",)" : ")") << " bytes";
    return s.str();
}

void refuse(const char* fn, const char* name, const Input& a, const std::string& what) {
    throw ngd::InvalidArgument(std::string(fn) + ": argument '" + name + "' with shape " +
                               shape_text(a) + ", strides " + strides_text(a) + ", dtype " +
                               dtype_text(a.dtype()) + ": " + what);
}

bool is_double(const char* fn, const char* name, const Input& a) {
    if (a.dtype() == nb::dtype<double>()) return true;
    if (a.dtype() == nb::dtype<float>()) return false;
    refuse(fn, name, a, "must be float32 or float64 (it sets the precision of the call)");
}

template <class T>
void check_array(const ngd::Context& ctx, const char* fn, const char* name, const Input& a) {
    if (a.dtype() != nb::dtype<T>()) {
        refuse(fn, name, a, std::string("must be ") + dtype_name<T>() + " like theta");
    }
    const bool on_cuda = a.device_type() == nb::device::cuda::value;
    if (ctx.backend() == ngd::Backend::cuda) {
        if (!on_cuda || a.device_id() != ctx.device()) {
            refuse(fn, name, a,
                   "must be on CUDA device " + std::to_string(ctx.device()) +
                       " like the context (device type " + std::to_string(a.device_type()) +
                       ", id " + std::to_string(a.device_id()) + ")");
        }
    } else if (a.device_type() != nb::device::cpu::value) {
        refuse(fn, name, a, "must be in host memory for a " + ctx.description() + " context");
    }
    for (size_t i = 0; i < a.ndim(); ++i) {
        if (a.stride(i) < 0) refuse(fn, name, a, "negative strides are not supported");
    }
}

template <class T>
ngd::MatrixView<const T> sample_view(const ngd::Context& ctx, const char* fn, const char* name,
                                     const Input& a) {
    check_array<T>(ctx, fn, name, a);
    auto* data = static_cast<const T*>(a.data());
    const auto space = ctx.memory_space();
    if (a.ndim() == 1) {
        const auto n = static_cast<std::int64_t>(a.shape(0));
        if (n > 1 && a.stride(0) != 1) refuse(fn, name, a, "a 1-D array needs unit stride");
        return ngd::MatrixView<const T>(data, 1, n, 1, space);
    }
    if (a.ndim() != 2) refuse(fn, name, a, "must be 1-D (n,) or 2-D (n, k), one sample per row");
    const auto n = static_cast<std::int64_t>(a.shape(0));
    const auto r = static_cast<std::int64_t>(a.shape(1));
    const std::int64_t ld = leading_dim(r, n, a.stride(0));
    if ((r > 1 && a.stride(1) != 1) || ld == 0) {
        refuse(fn, name, a,
               "needs rows stored one after another (C order, or a column slice of it)");
    }
    return ngd::MatrixView<const T>(data, r, n, ld, space);
}

template <class T>
ngd::MatrixView<const T> column_view(const ngd::Context& ctx, const char* fn, const char* name,
                                     const Input& a) {
    check_array<T>(ctx, fn, name, a);
    auto* data = static_cast<const T*>(a.data());
    const auto space = ctx.memory_space();
    if (a.ndim() == 1) {
        const auto r = static_cast<std::int64_t>(a.shape(0));
        if (r > 1 && a.stride(0) != 1) refuse(fn, name, a, "a 1-D array needs unit stride");
        return ngd::MatrixView<const T>(data, r, 1, r > 0 ? r : 1, space);
    }
    if (a.ndim() != 2) refuse(fn, name, a, "must be 1-D or 2-D");
    const auto r = static_cast<std::int64_t>(a.shape(0));
    const auto c = static_cast<std::int64_t>(a.shape(1));
    const std::int64_t ld = leading_dim(r, c, a.stride(1));
    if ((r > 1 && a.stride(0) != 1) || ld == 0) {
        refuse(fn, name, a, "needs columns stored one after another (Fortran order)");
    }
    return ngd::MatrixView<const T>(data, r, c, ld, space);
}

template <class T>
ngd::MatrixView<T> column_view_mut(const ngd::Context& ctx, const char* fn, const char* name,
                                   const Output& a) {
    const ngd::MatrixView<const T> v = column_view<T>(ctx, fn, name, Input(a));
    return ngd::MatrixView<T>(const_cast<T*>(v.data), v.rows, v.cols, v.ld, v.space);
}

template <class T>
nb::object to_python(const ngd::Context& ctx, ngd::Matrix<T>&& m,
                     std::initializer_list<size_t> shape,
                     std::initializer_list<std::int64_t> strides) {
    auto owned = std::make_unique<ngd::Matrix<T>>(std::move(m));
    T* data = owned->data();
    const bool host = owned->space() == ngd::MemorySpace::host;
    nb::capsule owner(owned.get(),
                      [](void* p) noexcept { delete static_cast<ngd::Matrix<T>*>(p); });
    owned.release();
    if (host) {
        return nb::ndarray<nb::numpy, T>(data, shape, owner, strides).cast();
    }
    return nb::ndarray<T>(data, shape, owner, strides, nb::dtype<T>(), nb::device::cuda::value,
                          ctx.device())
        .cast();
}

#define NGD_PYTHON_INSTANTIATE(T)                                                                 \
    template void check_array<T>(const ngd::Context&, const char*, const char*, const Input&);    \
    template ngd::MatrixView<const T> sample_view<T>(const ngd::Context&, const char*,            \
                                                     const char*, const Input&);                  \
    template ngd::MatrixView<const T> column_view<T>(const ngd::Context&, const char*,            \
                                                     const char*, const Input&);                  \
    template ngd::MatrixView<T> column_view_mut<T>(const ngd::Context&, const char*, const char*, \
                                                   const Output&);                                \
    template nb::object to_python<T>(const ngd::Context&, ngd::Matrix<T>&&,                       \
                                     std::initializer_list<size_t>,                               \
                                     std::initializer_list<std::int64_t>);
NGD_PYTHON_INSTANTIATE(float)
NGD_PYTHON_INSTANTIATE(double)
#undef NGD_PYTHON_INSTANTIATE

}  // namespace ngd_python
