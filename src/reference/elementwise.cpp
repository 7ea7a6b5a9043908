// Reference backend: the elementwise vector stages used by the pipeline's bookkeeping (the damping
// vector of the natural-residual form, the Gauss-Newton model of the predicted reduction).
#include <cstdint>

#include "stages.hpp"

namespace ngd::reference {

template <class T>
void multiply(Context&, std::int64_t n, const T* x, const T* y, T* z) {
    for (std::int64_t i = 0; i < n; ++i) z[i] = x[i] * y[i];
}

template <class T>
void fill(Context&, std::int64_t n, T value, T* y) {
    for (std::int64_t i = 0; i < n; ++i) y[i] = value;
}

template void multiply<float>(Context&, std::int64_t, const float*, const float*, float*);
template void multiply<double>(Context&, std::int64_t, const double*, const double*, double*);
template void fill<float>(Context&, std::int64_t, float, float*);
template void fill<double>(Context&, std::int64_t, double, double*);

}  // namespace ngd::reference
