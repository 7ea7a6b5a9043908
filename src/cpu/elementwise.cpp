// cpu elementwise vector stages (mirrors src/reference/elementwise.cpp): the damping vector of the
// natural-residual form and the Gauss-Newton model's products, as OpenMP loops over N entries.
#include <cstdint>

#include "cpu/threads.hpp"
#include "stages.hpp"

namespace ngd::cpu {

template <class T>
void multiply(Context& ctx, std::int64_t n, const T* x, const T* y, T* z) {
    ThreadScope threads(ctx);
#pragma omp parallel for schedule(static) if (n > kParallelMinEntries)
    for (std::int64_t i = 0; i < n; ++i) z[i] = x[i] * y[i];
}

template <class T>
void fill(Context& ctx, std::int64_t n, T value, T* y) {
    ThreadScope threads(ctx);
#pragma omp parallel for schedule(static) if (n > kParallelMinEntries)
    for (std::int64_t i = 0; i < n; ++i) y[i] = value;
}

template void multiply<float>(Context&, std::int64_t, const float*, const float*, float*);
template void multiply<double>(Context&, std::int64_t, const double*, const double*, double*);
template void fill<float>(Context&, std::int64_t, float, float*);
template void fill<double>(Context&, std::int64_t, double, double*);

}  // namespace ngd::cpu
