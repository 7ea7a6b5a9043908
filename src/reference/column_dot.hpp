// The inner product the reference backend's loops are built on: double accumulation of two
// contiguous columns, in a fixed order (so results are reproducible), shared by backprop and the
// Gram.
#pragma once

#include <cstdint>

namespace ngd::reference {

// Sum of x_r y_r over r < len in double; four partial sums keep independent multiply-adds in
// flight.
template <class T>
double column_dot(const T* x, const T* y, std::int64_t len) {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    std::int64_t r = 0;
    for (; r + 4 <= len; r += 4) {
        s0 += double(x[r]) * double(y[r]);
        s1 += double(x[r + 1]) * double(y[r + 1]);
        s2 += double(x[r + 2]) * double(y[r + 2]);
        s3 += double(x[r + 3]) * double(y[r + 3]);
    }
    for (; r < len; ++r) s0 += double(x[r]) * double(y[r]);
    return (s0 + s1) + (s2 + s3);
}

}  // namespace ngd::reference
