// Enum arguments: every function that takes one of ngd's enums also takes its lowercase name as a
// string ("relu", "softmax_cross_entropy"); anything else is InvalidArgument naming the function
// and the argument and listing the names.
#pragma once

#include <nanobind/nanobind.h>

#include <string>

#include "ngd/error.hpp"

namespace ngd_python {

namespace nb = nanobind;

/// `value` as E: an E, or the name of one of its members (case-insensitive). `fn` and `name` (the
/// function and the argument) go into the message of the InvalidArgument for anything else.
template <class E>
E enum_arg(nb::handle value, const char* fn, const char* name) {
    if (nb::isinstance<E>(value)) return nb::cast<E>(value);
    nb::handle type = nb::type<E>();
    if (nb::isinstance<nb::str>(value)) {
        nb::object key = value.attr("lower")();
        nb::object members = type.attr("__members__");
        if (nb::cast<bool>(members.attr("__contains__")(key))) return nb::cast<E>(members[key]);
    }
    const std::string type_name = nb::cast<std::string>(type.attr("__name__"));
    const std::string names =
        nb::cast<std::string>(nb::str(", ").attr("join")(type.attr("__members__")));
    throw ngd::InvalidArgument(std::string(fn) + ": argument '" + name + "': expected ngd." +
                               type_name + " or one of the strings " + names + ", got " +
                               nb::cast<std::string>(nb::repr(value)));
}

}  // namespace ngd_python
