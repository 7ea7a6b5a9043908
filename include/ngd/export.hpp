// Symbol visibility for the ngd shared library. The library is built with hidden visibility; only
// what is marked NGD_API (types whose typeinfo crosses the boundary, such as exceptions, and the
// explicit instantiations of the stage functions) is exported.
#pragma once

#if defined(_WIN32)
#if defined(NGD_BUILDING_LIBRARY)
#define NGD_API __declspec(dllexport)
#else
#define NGD_API __declspec(dllimport)
#endif
#else
#define NGD_API __attribute__((visibility("default")))
#endif
