// The error model: every failure the library reports is an ngd::Error subclass, with the function,
// the argument and the sizes in its message. A failed call leaves the caller's data as it was.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

#include "ngd/export.hpp"

namespace ngd {

/// Base class of every exception thrown by ngd.
class NGD_API Error : public std::runtime_error {
  public:
    explicit Error(const std::string& what) : std::runtime_error(what) {}
};

/// A shape, a value or an option is outside what the function accepts.
class NGD_API InvalidArgument : public Error {
  public:
    using Error::Error;
};

/// The call needs a backend (CUDA) that this build of the library does not contain.
class NGD_API NotCompiled : public Error {
  public:
    using Error::Error;
};

/// CUDA is compiled in, but no usable device (or driver) is present.
class NGD_API DeviceUnavailable : public Error {
  public:
    using Error::Error;
};

/// An input holds NaN or Inf. `count` entries are non-finite; the first one is at `first_index`
/// (column-major linear index) of the argument named in the message.
class NGD_API NonFiniteInput : public Error {
  public:
    NonFiniteInput(const std::string& what, std::int64_t count, std::int64_t first_index)
        : Error(what), count(count), first_index(first_index) {}
    std::int64_t count;
    std::int64_t first_index;
};

/// Cholesky found the damped system not positive definite: the leading minor of order `info` is
/// not positive (LAPACK convention, 1-based), or info = -1: the factor or solution was not finite,
/// or the solution's equilibrated residual |D^-1/2 (K alpha - u)| / |D^-1/2 u| (D = diag(K)) showed
/// the system singular to working precision (docs/errors.md). `order` is
/// the system's size and `damping` its diagonal shift (the last one tried, on the Gram side: n
/// lambda).
class NGD_API NotPositiveDefinite : public Error {
  public:
    NotPositiveDefinite(const std::string& what, std::int64_t info, std::int64_t order,
                        double damping)
        : Error(what), info(info), order(order), damping(damping) {}
    std::int64_t info;
    std::int64_t order;
    double damping;
};

/// An allocation failed: `requested` bytes were asked for, `free` bytes were free (0 if unknown).
class NGD_API OutOfMemory : public Error {
  public:
    OutOfMemory(const std::string& what, std::int64_t requested, std::int64_t free)
        : Error(what), requested(requested), free(free) {}
    std::int64_t requested;
    std::int64_t free;
};

/// A CUDA runtime call failed; `code` is the cudaError_t value.
class NGD_API CudaError : public Error {
  public:
    CudaError(const std::string& what, int code) : Error(what), code(code) {}
    int code;
};

/// A cuBLAS call failed; `status` is the cublasStatus_t value.
class NGD_API CublasError : public Error {
  public:
    CublasError(const std::string& what, int status) : Error(what), status(status) {}
    int status;
};

/// A cuSOLVER call failed; `status` is the cusolverStatus_t value.
class NGD_API CusolverError : public Error {
  public:
    CusolverError(const std::string& what, int status) : Error(what), status(status) {}
    int status;
};

}  // namespace ngd
