// Typed bindings to the BLAS and LAPACK routines the cpu backend uses (gemm, syrk, gemv, symv,
// potrf, potrs, syevd for float and double), declared here against the Fortran ABI that every
// FindBLAS/FindLAPACK vendor exports (OpenBLAS, BLIS, MKL, netlib), so that stage code reads as
// math and no vendor header is needed. 32-bit integers (LP64); sizes beyond them are rejected.
#pragma once

#include <climits>
#include <cstddef>
#include <cstdint>
#include <string>

#include "ngd/error.hpp"

extern "C" {
// Fortran character arguments carry a hidden length (size_t with gfortran) after the others.
using ngd_fortran_len = std::size_t;
void sgemm_(const char*, const char*, const int*, const int*, const int*, const float*,
            const float*, const int*, const float*, const int*, const float*, float*, const int*,
            ngd_fortran_len, ngd_fortran_len);
void dgemm_(const char*, const char*, const int*, const int*, const int*, const double*,
            const double*, const int*, const double*, const int*, const double*, double*,
            const int*, ngd_fortran_len, ngd_fortran_len);
void ssyrk_(const char*, const char*, const int*, const int*, const float*, const float*,
            const int*, const float*, float*, const int*, ngd_fortran_len, ngd_fortran_len);
void dsyrk_(const char*, const char*, const int*, const int*, const double*, const double*,
            const int*, const double*, double*, const int*, ngd_fortran_len, ngd_fortran_len);
void sgemv_(const char*, const int*, const int*, const float*, const float*, const int*,
            const float*, const int*, const float*, float*, const int*, ngd_fortran_len);
void dgemv_(const char*, const int*, const int*, const double*, const double*, const int*,
            const double*, const int*, const double*, double*, const int*, ngd_fortran_len);
void ssymv_(const char*, const int*, const float*, const float*, const int*, const float*,
            const int*, const float*, float*, const int*, ngd_fortran_len);
void dsymv_(const char*, const int*, const double*, const double*, const int*, const double*,
            const int*, const double*, double*, const int*, ngd_fortran_len);
void spotrf_(const char*, const int*, float*, const int*, int*, ngd_fortran_len);
void dpotrf_(const char*, const int*, double*, const int*, int*, ngd_fortran_len);
void spotrs_(const char*, const int*, const int*, const float*, const int*, float*, const int*,
             int*, ngd_fortran_len);
void dpotrs_(const char*, const int*, const int*, const double*, const int*, double*, const int*,
             int*, ngd_fortran_len);
void strsv_(const char*, const char*, const char*, const int*, const float*, const int*, float*,
            const int*, ngd_fortran_len, ngd_fortran_len, ngd_fortran_len);
void strsm_(const char*, const char*, const char*, const char*, const int*, const int*,
            const float*, const float*, const int*, float*, const int*, ngd_fortran_len,
            ngd_fortran_len, ngd_fortran_len, ngd_fortran_len);
void ssyevd_(const char*, const char*, const int*, float*, const int*, float*, float*, const int*,
             int*, const int*, int*, ngd_fortran_len, ngd_fortran_len);
void dsyevd_(const char*, const char*, const int*, double*, const int*, double*, double*,
             const int*, int*, const int*, int*, ngd_fortran_len, ngd_fortran_len);
}

namespace ngd::cpu::blas {

/// A size or leading dimension as BLAS's int; InvalidArgument beyond 2^31 - 1.
inline int to_int(std::int64_t v, const char* what) {
    if (v < 0 || v > INT_MAX) {
        throw InvalidArgument(std::string("ngd cpu backend: ") + what + " = " + std::to_string(v) +
                              " exceeds the 32-bit BLAS/LAPACK interface");
    }
    return static_cast<int>(v);
}

/// C (m x n) = alpha op(A) op(B) + beta C; beta = 0 does not read C.
inline void gemm(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
                 const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float beta,
                 float* c, std::int64_t ldc) {
    const int im = to_int(m, "m"), in = to_int(n, "n"), ik = to_int(k, "k");
    const int ia = to_int(lda, "lda"), ib = to_int(ldb, "ldb"), ic = to_int(ldc, "ldc");
    sgemm_(ta ? "T" : "N", tb ? "T" : "N", &im, &in, &ik, &alpha, a, &ia, b, &ib, &beta, c, &ic, 1,
           1);
}
inline void gemm(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, double alpha,
                 const double* a, std::int64_t lda, const double* b, std::int64_t ldb, double beta,
                 double* c, std::int64_t ldc) {
    const int im = to_int(m, "m"), in = to_int(n, "n"), ik = to_int(k, "k");
    const int ia = to_int(lda, "lda"), ib = to_int(ldb, "ldb"), ic = to_int(ldc, "ldc");
    dgemm_(ta ? "T" : "N", tb ? "T" : "N", &im, &in, &ik, &alpha, a, &ia, b, &ib, &beta, c, &ic, 1,
           1);
}

/// Lower triangle of C (n x n) = alpha op(A) op(A)^T + beta C, op(A) n x k (trans: A is k x n).
inline void syrk_lower(bool trans, std::int64_t n, std::int64_t k, float alpha, const float* a,
                       std::int64_t lda, float beta, float* c, std::int64_t ldc) {
    const int in = to_int(n, "n"), ik = to_int(k, "k"), ia = to_int(lda, "lda"),
              ic = to_int(ldc, "ldc");
    ssyrk_("L", trans ? "T" : "N", &in, &ik, &alpha, a, &ia, &beta, c, &ic, 1, 1);
}
inline void syrk_lower(bool trans, std::int64_t n, std::int64_t k, double alpha, const double* a,
                       std::int64_t lda, double beta, double* c, std::int64_t ldc) {
    const int in = to_int(n, "n"), ik = to_int(k, "k"), ia = to_int(lda, "lda"),
              ic = to_int(ldc, "ldc");
    dsyrk_("L", trans ? "T" : "N", &in, &ik, &alpha, a, &ia, &beta, c, &ic, 1, 1);
}

/// y = alpha op(A) x + beta y, A m x n.
inline void gemv(bool trans, std::int64_t m, std::int64_t n, float alpha, const float* a,
                 std::int64_t lda, const float* x, float beta, float* y) {
    const int im = to_int(m, "m"), in = to_int(n, "n"), ia = to_int(lda, "lda"), one = 1;
    sgemv_(trans ? "T" : "N", &im, &in, &alpha, a, &ia, x, &one, &beta, y, &one, 1);
}
inline void gemv(bool trans, std::int64_t m, std::int64_t n, double alpha, const double* a,
                 std::int64_t lda, const double* x, double beta, double* y) {
    const int im = to_int(m, "m"), in = to_int(n, "n"), ia = to_int(lda, "lda"), one = 1;
    dgemv_(trans ? "T" : "N", &im, &in, &alpha, a, &ia, x, &one, &beta, y, &one, 1);
}

/// y = alpha A x + beta y for symmetric A (n x n) stored in its lower triangle.
inline void symv_lower(std::int64_t n, float alpha, const float* a, std::int64_t lda,
                       const float* x, float beta, float* y) {
    const int in = to_int(n, "n"), ia = to_int(lda, "lda"), one = 1;
    ssymv_("L", &in, &alpha, a, &ia, x, &one, &beta, y, &one, 1);
}
inline void symv_lower(std::int64_t n, double alpha, const double* a, std::int64_t lda,
                       const double* x, double beta, double* y) {
    const int in = to_int(n, "n"), ia = to_int(lda, "lda"), one = 1;
    dsymv_("L", &in, &alpha, a, &ia, x, &one, &beta, y, &one, 1);
}

/// Lower Cholesky factor of A (n x n) in place; returns LAPACK's info.
inline int potrf_lower(std::int64_t n, float* a, std::int64_t lda) {
    const int in = to_int(n, "n"), ia = to_int(lda, "lda");
    int info = 0;
    spotrf_("L", &in, a, &ia, &info, 1);
    return info;
}
inline int potrf_lower(std::int64_t n, double* a, std::int64_t lda) {
    const int in = to_int(n, "n"), ia = to_int(lda, "lda");
    int info = 0;
    dpotrf_("L", &in, a, &ia, &info, 1);
    return info;
}

/// B (n x nrhs) <- (L L^T)^-1 B with the lower factor L from potrf_lower; returns info.
inline int potrs_lower(std::int64_t n, std::int64_t nrhs, const float* l, std::int64_t ldl,
                       float* b, std::int64_t ldb) {
    const int in = to_int(n, "n"), ir = to_int(nrhs, "nrhs"), il = to_int(ldl, "ldl"),
              ib = to_int(ldb, "ldb");
    int info = 0;
    spotrs_("L", &in, &ir, l, &il, b, &ib, &info, 1);
    return info;
}
inline int potrs_lower(std::int64_t n, std::int64_t nrhs, const double* l, std::int64_t ldl,
                       double* b, std::int64_t ldb) {
    const int in = to_int(n, "n"), ir = to_int(nrhs, "nrhs"), il = to_int(ldl, "ldl"),
              ib = to_int(ldb, "ldb");
    int info = 0;
    dpotrs_("L", &in, &ir, l, &il, b, &ib, &info, 1);
    return info;
}
/// x <- L^-1 x, or L^-T x when `transpose`, for lower triangular L (n x n, non-unit diagonal).
inline void trsv_lower(bool transpose, std::int64_t n, const float* l, std::int64_t ldl, float* x) {
    const int in = to_int(n, "n"), il = to_int(ldl, "ldl"), one = 1;
    strsv_("L", transpose ? "T" : "N", "N", &in, l, &il, x, &one, 1, 1, 1);
}

/// B (m x n) <- B L^-T for lower triangular L (n x n, non-unit diagonal): a Cholesky panel.
inline void trsm_right_lower_transpose(std::int64_t m, std::int64_t n, const float* l,
                                       std::int64_t ldl, float* b, std::int64_t ldb) {
    const int im = to_int(m, "m"), in = to_int(n, "n"), il = to_int(ldl, "ldl"),
              ib = to_int(ldb, "ldb");
    const float one = 1.0f;
    strsm_("R", "L", "T", "N", &im, &in, &one, l, &il, b, &ib, 1, 1, 1, 1);
}

/// Eigenvalues (ascending, into w) and eigenvectors (into A's columns) of symmetric A (lower
/// triangle read), divide and conquer. work/iwork sized by a query (lwork = liwork = -1).
inline int syevd_lower(std::int64_t n, float* a, std::int64_t lda, float* w, float* work,
                       std::int64_t lwork, int* iwork, std::int64_t liwork) {
    const int in = to_int(n, "n"), ia = to_int(lda, "lda");
    const int lw = lwork < 0 ? -1 : to_int(lwork, "lwork");
    const int liw = liwork < 0 ? -1 : to_int(liwork, "liwork");
    int info = 0;
    ssyevd_("V", "L", &in, a, &ia, w, work, &lw, iwork, &liw, &info, 1, 1);
    return info;
}
inline int syevd_lower(std::int64_t n, double* a, std::int64_t lda, double* w, double* work,
                       std::int64_t lwork, int* iwork, std::int64_t liwork) {
    const int in = to_int(n, "n"), ia = to_int(lda, "lda");
    const int lw = lwork < 0 ? -1 : to_int(lwork, "lwork");
    const int liw = liwork < 0 ? -1 : to_int(liwork, "liwork");
    int info = 0;
    dsyevd_("V", "L", &in, a, &ia, w, work, &lw, iwork, &liw, &info, 1, 1);
    return info;
}

}  // namespace ngd::cpu::blas
