// The library's version, matching the CMake project version and the shared library's SONAME.
#pragma once

#define NGD_VERSION_MAJOR 0
#define NGD_VERSION_MINOR 1
#define NGD_VERSION_PATCH 0

namespace ngd {
constexpr const char* version_string = "0.1.0";
}
