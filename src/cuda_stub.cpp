// Stand-in for the CUDA backend in a build without CUDA (NGD_WITH_CUDA=OFF): every entry point
// throws ngd::NotCompiled, so the library links and behaves the same way, and Context::cuda() says
// why. No CUDA context can be created in such a build, so the stages below are never reached in
// practice.
#include <cstdint>
#include <string>
#include <vector>

#include "device.hpp"
#include "ngd/error.hpp"
#include "stages.hpp"

namespace ngd::cuda {
namespace {
[[noreturn]] void not_compiled(const char* what) {
    throw NotCompiled(std::string(what) +
                      ": this build of ngd has no CUDA backend (configure with -DNGD_WITH_CUDA=ON "
                      "and a CUDA toolkit)");
}
}  // namespace

bool device_usable(int) noexcept { return false; }
detail::CudaState* create_state(int) { not_compiled("ngd::Context::cuda"); }
void destroy_state(detail::CudaState*) noexcept {}
std::string describe(const detail::CudaState*) { not_compiled("ngd::Context::description"); }
void synchronize(detail::CudaState*) { not_compiled("ngd::Context::synchronize"); }
void* allocate(std::size_t) { not_compiled("ngd::Matrix (device memory)"); }
void deallocate(void*) noexcept {}
void copy_2d(const void*, std::int64_t, void*, std::int64_t, std::int64_t, std::int64_t) {
    not_compiled("ngd::copy (device memory)");
}

template <class T>
void forward(Context&, const Mlp&, const T*, MatrixView<const T>, MatrixView<const T>,
             ForwardState<T>&) {
    not_compiled("forward");
}
template <class T>
void loss_factors(Context&, Loss, MatrixView<const T>, MatrixView<const T>, LossFactors<T>&) {
    not_compiled("loss_factors");
}
template <class T>
void backprop_seeds(Context&, const Mlp&, const T*, const ForwardState<T>&, MatrixView<const T>,
                    MatrixView<const T>, std::vector<Matrix<T>>&) {
    not_compiled("backprop_seeds");
}
template <class T>
void gram_structured(Context&, const Mlp&, MatrixView<const T>, const ForwardState<T>&,
                     const std::vector<Matrix<T>>&, MatrixView<T>) {
    not_compiled("gram_structured");
}
template <class T>
void jacobian_block(Context&, const Mlp&, MatrixView<const T>, const ForwardState<T>&,
                    const std::vector<Matrix<T>>&, std::int64_t, MatrixView<T>) {
    not_compiled("jacobian_block");
}
template <class T>
void syrk_lower(Context&, MatrixView<const T>, T, MatrixView<T>) {
    not_compiled("syrk_lower");
}
template <class T>
std::int64_t cholesky_solve(Context&, MatrixView<T>, MatrixView<const T>, MatrixView<T>) {
    not_compiled("cholesky_solve");
}
template <class T>
void transpose_product(Context&, const Mlp&, const T*, MatrixView<const T>, const ForwardState<T>&,
                       MatrixView<const T>, MatrixView<const T>, MatrixView<const T>, T*) {
    not_compiled("transpose_product");
}
template <class T>
void apply_factor(Context&, MatrixView<const T>, MatrixView<const T>, MatrixView<T>) {
    not_compiled("apply_factor");
}
template <class T>
void gemv(Context&, bool, MatrixView<const T>, const T*, T*) {
    not_compiled("gemv");
}
template <class T>
void symv_lower(Context&, MatrixView<const T>, const T*, T*) {
    not_compiled("symv_lower");
}
template <class T>
void symmetrize(Context&, MatrixView<T>) {
    not_compiled("symmetrize");
}
template <class T>
NonFiniteCount count_nonfinite(Context&, MatrixView<const T>) {
    not_compiled("count_nonfinite");
}
template <class T>
std::int64_t first_invalid_index(Context&, MatrixView<const T>, std::int64_t) {
    not_compiled("first_invalid_index");
}
template <class T>
void axpby(Context&, std::int64_t, T, const T*, T, T*) {
    not_compiled("axpby");
}
template <class T>
double dot(Context&, std::int64_t, const T*, const T*) {
    not_compiled("dot");
}
template <class T>
void copy_vector(Context&, std::int64_t, const T*, T*) {
    not_compiled("copy_vector");
}
template <class T>
void copy_matrix(Context&, MatrixView<const T>, MatrixView<T>) {
    not_compiled("copy_matrix");
}
template <class T>
void multiply(Context&, std::int64_t, const T*, const T*, T*) {
    not_compiled("multiply");
}
template <class T>
void fill(Context&, std::int64_t, T, T*) {
    not_compiled("fill");
}
template <class T>
double trace(Context&, MatrixView<const T>) {
    not_compiled("trace");
}
template <class T>
std::int64_t symmetric_eigen(Context&, MatrixView<T>, MatrixView<const T>, T*) {
    not_compiled("symmetric_eigen");
}
template <class T>
void pseudo_inverse_scale(Context&, std::int64_t, const T*, T, T*) {
    not_compiled("pseudo_inverse_scale");
}
template <class T>
double frobenius_norm_lower(Context&, MatrixView<const T>, MatrixView<const T>) {
    not_compiled("frobenius_norm_lower");
}
std::int64_t cholesky_factor_float(Context&, MatrixView<const double>, MatrixView<const double>,
                                   MatrixView<float>, double*, FactorArithmetic*) {
    not_compiled("cholesky_factor_float");
}
void cholesky_apply_float(Context&, MatrixView<const float>, double*, float*) {
    not_compiled("cholesky_apply_float");
}

template <class T>
void count_nonfinite_into(Context&, MatrixView<const T>, double*) {
    not_compiled("count_nonfinite_into");
}
template <class T>
void sanitize_indices_into(Context&, MatrixView<const T>, std::int64_t, MatrixView<T>, double*) {
    not_compiled("sanitize_indices_into");
}
template <class T>
void dot_into(Context&, std::int64_t, const T*, const T*, double*) {
    not_compiled("dot_into");
}
template <class T>
void frobenius_norm_lower_into(Context&, MatrixView<const T>, MatrixView<const T>, double*) {
    not_compiled("frobenius_norm_lower_into");
}
template <class T>
void loss_factors_into(Context&, Loss, MatrixView<const T>, MatrixView<const T>, LossFactors<T>&,
                       double*) {
    not_compiled("loss_factors_into");
}
template <class T>
void cholesky_solve_into(Context&, MatrixView<T>, MatrixView<const T>, MatrixView<T>, double*) {
    not_compiled("cholesky_solve_into");
}
template <class T>
void equilibrated_sums_into(Context&, MatrixView<const T>, MatrixView<const T>, const T*, const T*,
                            double*) {
    not_compiled("equilibrated_sums_into");
}
template <class T>
void guarded_step_into(Context&, std::int64_t, const T*, const T*, const double*, double, StepGuard,
                       T*, double*) {
    not_compiled("guarded_step_into");
}

// Explicit instantiations, float and double, in the order of stage_signatures.inc.
#define NGD_STUB_INSTANTIATE(T)                                                                 \
    template void forward<T>(Context&, const Mlp&, const T*, MatrixView<const T>,               \
                             MatrixView<const T>, ForwardState<T>&);                            \
    template void loss_factors<T>(Context&, Loss, MatrixView<const T>, MatrixView<const T>,     \
                                  LossFactors<T>&);                                             \
    template void backprop_seeds<T>(Context&, const Mlp&, const T*, const ForwardState<T>&,     \
                                    MatrixView<const T>, MatrixView<const T>,                   \
                                    std::vector<Matrix<T>>&);                                   \
    template void gram_structured<T>(Context&, const Mlp&, MatrixView<const T>,                 \
                                     const ForwardState<T>&, const std::vector<Matrix<T>>&,     \
                                     MatrixView<T>);                                            \
    template void jacobian_block<T>(Context&, const Mlp&, MatrixView<const T>,                  \
                                    const ForwardState<T>&, const std::vector<Matrix<T>>&,      \
                                    std::int64_t, MatrixView<T>);                               \
    template void syrk_lower<T>(Context&, MatrixView<const T>, T, MatrixView<T>);               \
    template std::int64_t cholesky_solve<T>(Context&, MatrixView<T>, MatrixView<const T>,       \
                                            MatrixView<T>);                                     \
    template void transpose_product<T>(Context&, const Mlp&, const T*, MatrixView<const T>,     \
                                       const ForwardState<T>&, MatrixView<const T>,             \
                                       MatrixView<const T>, MatrixView<const T>, T*);           \
    template void apply_factor<T>(Context&, MatrixView<const T>, MatrixView<const T>,           \
                                  MatrixView<T>);                                               \
    template void gemv<T>(Context&, bool, MatrixView<const T>, const T*, T*);                   \
    template void symv_lower<T>(Context&, MatrixView<const T>, const T*, T*);                   \
    template void symmetrize<T>(Context&, MatrixView<T>);                                       \
    template NonFiniteCount count_nonfinite<T>(Context&, MatrixView<const T>);                  \
    template std::int64_t first_invalid_index<T>(Context&, MatrixView<const T>, std::int64_t);  \
    template void axpby<T>(Context&, std::int64_t, T, const T*, T, T*);                         \
    template double dot<T>(Context&, std::int64_t, const T*, const T*);                         \
    template void copy_vector<T>(Context&, std::int64_t, const T*, T*);                         \
    template void copy_matrix<T>(Context&, MatrixView<const T>, MatrixView<T>);                 \
    template void multiply<T>(Context&, std::int64_t, const T*, const T*, T*);                  \
    template void fill<T>(Context&, std::int64_t, T, T*);                                       \
    template double trace<T>(Context&, MatrixView<const T>);                                    \
    template std::int64_t symmetric_eigen<T>(Context&, MatrixView<T>, MatrixView<const T>, T*); \
    template void pseudo_inverse_scale<T>(Context&, std::int64_t, const T*, T, T*);
NGD_STUB_INSTANTIATE(float)
NGD_STUB_INSTANTIATE(double)
template double frobenius_norm_lower<float>(Context&, MatrixView<const float>,
                                            MatrixView<const float>);
#define NGD_STUB_INSTANTIATE_DEFERRED(T)                                                           \
    template void count_nonfinite_into<T>(Context&, MatrixView<const T>, double*);                 \
    template void sanitize_indices_into<T>(Context&, MatrixView<const T>, std::int64_t,            \
                                           MatrixView<T>, double*);                                \
    template void dot_into<T>(Context&, std::int64_t, const T*, const T*, double*);                \
    template void frobenius_norm_lower_into<T>(Context&, MatrixView<const T>, MatrixView<const T>, \
                                               double*);                                           \
    template void loss_factors_into<T>(Context&, Loss, MatrixView<const T>, MatrixView<const T>,   \
                                       LossFactors<T>&, double*);                                  \
    template void cholesky_solve_into<T>(Context&, MatrixView<T>, MatrixView<const T>,             \
                                         MatrixView<T>, double*);                                  \
    template void equilibrated_sums_into<T>(Context&, MatrixView<const T>, MatrixView<const T>,    \
                                            const T*, const T*, double*);                          \
    template void guarded_step_into<T>(Context&, std::int64_t, const T*, const T*, const double*,  \
                                       double, StepGuard, T*, double*);
NGD_STUB_INSTANTIATE_DEFERRED(float)
NGD_STUB_INSTANTIATE_DEFERRED(double)
#undef NGD_STUB_INSTANTIATE_DEFERRED
template double frobenius_norm_lower<double>(Context&, MatrixView<const double>,
                                             MatrixView<const double>);

}  // namespace ngd::cuda
