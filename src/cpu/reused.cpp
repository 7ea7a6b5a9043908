// The cpu backend's stages that run the reference code unchanged: the one place where that choice
// is made. The others mirror src/reference/ file by file on BLAS, LAPACK and OpenMP (forward.cpp,
// backprop.cpp, gram.cpp, solve.cpp, dense.cpp, elementwise.cpp, eigen.cpp). What stays here runs
// once per step on O(n k) data (loss factors, the label check, the ladder's trace and eigenvalue
// scaling) or only in explicit-Jacobian mode (jacobian_block, apply_factor), where the reference
// loops are adequate next to the SYRK that consumes their blocks.
#include <cstdint>
#include <vector>

#include "stages.hpp"

namespace ngd::cpu {

template <class T>
void loss_factors(Context& ctx, Loss loss, MatrixView<const T> f, MatrixView<const T> y,
                  LossFactors<T>& out) {
    reference::loss_factors<T>(ctx, loss, f, y, out);
}
template <class T>
void jacobian_block(Context& ctx, const Mlp& model, MatrixView<const T> x,
                    const ForwardState<T>& state, const std::vector<Matrix<T>>& seeds,
                    std::int64_t col_begin, MatrixView<T> block) {
    reference::jacobian_block<T>(ctx, model, x, state, seeds, col_begin, block);
}
template <class T>
void apply_factor(Context& ctx, MatrixView<const T> factor, MatrixView<const T> j,
                  MatrixView<T> a) {
    reference::apply_factor<T>(ctx, factor, j, a);
}
template <class T>
std::int64_t first_invalid_index(Context& ctx, MatrixView<const T> v, std::int64_t limit) {
    return reference::first_invalid_index<T>(ctx, v, limit);
}
template <class T>
double trace(Context& ctx, MatrixView<const T> g) {
    return reference::trace<T>(ctx, g);
}
template <class T>
void pseudo_inverse_scale(Context& ctx, std::int64_t n, const T* w, T cutoff, T* x) {
    reference::pseudo_inverse_scale<T>(ctx, n, w, cutoff, x);
}

#define NGD_CPU_REUSED(T)                                                                      \
    template void loss_factors<T>(Context&, Loss, MatrixView<const T>, MatrixView<const T>,    \
                                  LossFactors<T>&);                                            \
    template void jacobian_block<T>(Context&, const Mlp&, MatrixView<const T>,                 \
                                    const ForwardState<T>&, const std::vector<Matrix<T>>&,     \
                                    std::int64_t, MatrixView<T>);                              \
    template void apply_factor<T>(Context&, MatrixView<const T>, MatrixView<const T>,          \
                                  MatrixView<T>);                                              \
    template std::int64_t first_invalid_index<T>(Context&, MatrixView<const T>, std::int64_t); \
    template double trace<T>(Context&, MatrixView<const T>);                                   \
    template void pseudo_inverse_scale<T>(Context&, std::int64_t, const T*, T, T*);
NGD_CPU_REUSED(float)
NGD_CPU_REUSED(double)
#undef NGD_CPU_REUSED

#ifndef NGD_WITH_CPU
// ---- Reused only in a build without BLAS, where no cpu context can exist ----------------------
// Context::cpu() throws NotCompiled there, so the stages below are never reached; they are defined
// only so that the three-way dispatch of src/dispatch.hpp links the same way in every build. With
// BLAS they live in their own files of src/cpu/.

template <class T>
void forward(Context& ctx, const Mlp& model, const T* theta, MatrixView<const T> x,
             MatrixView<const T> rows, ForwardState<T>& state) {
    reference::forward<T>(ctx, model, theta, x, rows, state);
}
template <class T>
void backprop_seeds(Context& ctx, const Mlp& model, const T* theta, const ForwardState<T>& state,
                    MatrixView<const T> factor, MatrixView<const T> rows,
                    std::vector<Matrix<T>>& seeds) {
    reference::backprop_seeds<T>(ctx, model, theta, state, factor, rows, seeds);
}
template <class T>
void gram_structured(Context& ctx, const Mlp& model, MatrixView<const T> x,
                     const ForwardState<T>& state, const std::vector<Matrix<T>>& seeds,
                     MatrixView<T> g) {
    reference::gram_structured<T>(ctx, model, x, state, seeds, g);
}
template <class T>
void syrk_lower(Context& ctx, MatrixView<const T> a, T beta, MatrixView<T> g) {
    reference::syrk_lower<T>(ctx, a, beta, g);
}
template <class T>
std::int64_t cholesky_solve(Context& ctx, MatrixView<T> g, MatrixView<const T> shift,
                            MatrixView<T> rhs) {
    return reference::cholesky_solve<T>(ctx, g, shift, rhs);
}
template <class T>
void transpose_product(Context& ctx, const Mlp& model, const T* theta, MatrixView<const T> x,
                       const ForwardState<T>& state, MatrixView<const T> factor,
                       MatrixView<const T> rows, MatrixView<const T> c, T* out) {
    reference::transpose_product<T>(ctx, model, theta, x, state, factor, rows, c, out);
}
template <class T>
void gemv(Context& ctx, bool transpose, MatrixView<const T> a, const T* x, T* y) {
    reference::gemv<T>(ctx, transpose, a, x, y);
}
template <class T>
void symv_lower(Context& ctx, MatrixView<const T> g, const T* x, T* y) {
    reference::symv_lower<T>(ctx, g, x, y);
}
template <class T>
void symmetrize(Context& ctx, MatrixView<T> g) {
    reference::symmetrize<T>(ctx, g);
}
template <class T>
NonFiniteCount count_nonfinite(Context& ctx, MatrixView<const T> a) {
    return reference::count_nonfinite<T>(ctx, a);
}
template <class T>
void axpby(Context& ctx, std::int64_t n, T alpha, const T* x, T beta, T* y) {
    reference::axpby<T>(ctx, n, alpha, x, beta, y);
}
template <class T>
double dot(Context& ctx, std::int64_t n, const T* x, const T* y) {
    return reference::dot<T>(ctx, n, x, y);
}
template <class T>
void copy_vector(Context& ctx, std::int64_t n, const T* x, T* y) {
    reference::copy_vector<T>(ctx, n, x, y);
}
template <class T>
void copy_matrix(Context& ctx, MatrixView<const T> a, MatrixView<T> b) {
    reference::copy_matrix<T>(ctx, a, b);
}
template <class T>
void multiply(Context& ctx, std::int64_t n, const T* x, const T* y, T* z) {
    reference::multiply<T>(ctx, n, x, y, z);
}
template <class T>
void fill(Context& ctx, std::int64_t n, T value, T* y) {
    reference::fill<T>(ctx, n, value, y);
}
template <class T>
std::int64_t symmetric_eigen(Context& ctx, MatrixView<T> g, MatrixView<const T> shift, T* w) {
    return reference::symmetric_eigen<T>(ctx, g, shift, w);
}
template <class T>
double frobenius_norm_lower(Context& ctx, MatrixView<const T> g, MatrixView<const T> shift) {
    return reference::frobenius_norm_lower<T>(ctx, g, shift);
}
std::int64_t cholesky_factor_float(Context& ctx, MatrixView<const double> g,
                                   MatrixView<const double> shift, MatrixView<float> l,
                                   double* norm, FactorArithmetic* arithmetic) {
    return reference::cholesky_factor_float(ctx, g, shift, l, norm, arithmetic);
}
void cholesky_apply_float(Context& ctx, MatrixView<const float> l, double* x, float* work) {
    reference::cholesky_apply_float(ctx, l, x, work);
}
#define NGD_CPU_UNREACHABLE(T)                                                              \
    template void forward<T>(Context&, const Mlp&, const T*, MatrixView<const T>,           \
                             MatrixView<const T>, ForwardState<T>&);                        \
    template void backprop_seeds<T>(Context&, const Mlp&, const T*, const ForwardState<T>&, \
                                    MatrixView<const T>, MatrixView<const T>,               \
                                    std::vector<Matrix<T>>&);                               \
    template void gram_structured<T>(Context&, const Mlp&, MatrixView<const T>,             \
                                     const ForwardState<T>&, const std::vector<Matrix<T>>&, \
                                     MatrixView<T>);                                        \
    template void syrk_lower<T>(Context&, MatrixView<const T>, T, MatrixView<T>);           \
    template std::int64_t cholesky_solve<T>(Context&, MatrixView<T>, MatrixView<const T>,   \
                                            MatrixView<T>);                                 \
    template void transpose_product<T>(Context&, const Mlp&, const T*, MatrixView<const T>, \
                                       const ForwardState<T>&, MatrixView<const T>,         \
                                       MatrixView<const T>, MatrixView<const T>, T*);       \
    template void gemv<T>(Context&, bool, MatrixView<const T>, const T*, T*);               \
    template void symv_lower<T>(Context&, MatrixView<const T>, const T*, T*);               \
    template void symmetrize<T>(Context&, MatrixView<T>);                                   \
    template NonFiniteCount count_nonfinite<T>(Context&, MatrixView<const T>);              \
    template void axpby<T>(Context&, std::int64_t, T, const T*, T, T*);                     \
    template double dot<T>(Context&, std::int64_t, const T*, const T*);                     \
    template void copy_vector<T>(Context&, std::int64_t, const T*, T*);                     \
    template void copy_matrix<T>(Context&, MatrixView<const T>, MatrixView<T>);             \
    template void multiply<T>(Context&, std::int64_t, const T*, const T*, T*);              \
    template void fill<T>(Context&, std::int64_t, T, T*);                                   \
    template std::int64_t symmetric_eigen<T>(Context&, MatrixView<T>, MatrixView<const T>, T*);
NGD_CPU_UNREACHABLE(float)
NGD_CPU_UNREACHABLE(double)
#undef NGD_CPU_UNREACHABLE
template double frobenius_norm_lower<float>(Context&, MatrixView<const float>,
                                            MatrixView<const float>);
template double frobenius_norm_lower<double>(Context&, MatrixView<const double>,
                                             MatrixView<const double>);
#endif  // NGD_WITH_CPU

}  // namespace ngd::cpu
