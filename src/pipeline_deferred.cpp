// GramSystem's deferred path (pipeline.hpp; docs/performance.md "One host synchronisation"): the
// constructor's checks and the loss value as words of a StatusBlock, one Cholesky try with its
// acceptance test and the Gauss-Newton model's dots queued into a block, and the Solution read
// from it. Nothing here synchronises; the caller reads the block.
#include <cmath>
#include <limits>

#include "dispatch.hpp"
#include "pipeline.hpp"
#include "result_checks.hpp"
#include "status_block.hpp"

namespace ngd::detail {

template <class T>
void GramSystem<T>::construct_deferred(const DirectionOptions& options) {
    // The constructor's checks as fault words of the block; a fault sends the caller to the
    // host-driven path, where they throw (or, for H^{-1}, move to the factor form).
    NGD_STAGE(ctx_, count_nonfinite_into<T>, ctx_, state_.outputs.const_view(), defer_->fault());
    loss_word_ = defer_->value();
    NGD_STAGE(ctx_, loss_factors_into<T>, ctx_, loss_, state_.outputs.const_view(), batch_.targets,
              factors_, defer_->at(loss_word_));
    form_ = choose_form(fn_, loss_, options.form);
    natural_ = form_ == SolveForm::natural_residual;
    if (natural_ && loss_ == Loss::logistic) {
        NGD_STAGE(ctx_, count_nonfinite_into<T>, ctx_, factors_.curvature_inverse.const_view(),
                  defer_->fault());
    }
    rhs_ = natural_ ? &factors_.natural_residual : &factors_.residual;
    NGD_STAGE(ctx_, count_nonfinite_into<T>, ctx_, rhs_->const_view(), defer_->fault());
    factor_ =
        natural_ || loss_ == Loss::squared ? MatrixView<const T>() : factors_.factor.const_view();
    allocate_and_build();
}

template <class T>
double GramSystem<T>::loss() const {
    return defer_ != nullptr ? (*defer_)[loss_word_] : factors_.value;
}

template <class T>
DeferredSolution<T> GramSystem<T>::solve_deferred(double damping, StatusBlock& block) {
    const MemorySpace space = ctx_.memory_space();
    DeferredSolution<T> q;
    q.damping = damping;
    set_shift(damping);
    if (natural_ && loss_ == Loss::logistic) {
        NGD_STAGE(ctx_, count_nonfinite_into<T>, ctx_, shift_.const_view(), block.fault());
    }
    // The Cholesky try of try_cholesky, its info a fault word.
    Matrix<T> alpha(big_n_, 1, space), w(big_n_, 1, space), r(big_n_, 1, space);
    copy_lower_to_work();
    NGD_STAGE(ctx_, copy_vector<T>, ctx_, big_n_, rhs_->data(), alpha.data());
    NGD_STAGE(ctx_, cholesky_solve_into<T>, ctx_, work_.view(), shift_.const_view(), alpha.view(),
              block.fault());
    // The acceptance test's sums and the backward error's norms (equilibrated_residual's).
    residual(alpha, w, r);
    q.sums = block.values(3);
    NGD_STAGE(ctx_, equilibrated_sums_into<T>, ctx_, gram_.const_view(), shift_.const_view(),
              r.data(), rhs_->data(), block.at(q.sums));
    q.norms = block.values(4);
    NGD_STAGE(ctx_, dot_into<T>, ctx_, big_n_, r.data(), r.data(), block.at(q.norms));
    NGD_STAGE(ctx_, dot_into<T>, ctx_, big_n_, alpha.data(), alpha.data(), block.at(q.norms + 1));
    NGD_STAGE(ctx_, dot_into<T>, ctx_, big_n_, rhs_->data(), rhs_->data(), block.at(q.norms + 2));
    NGD_STAGE(ctx_, frobenius_norm_lower_into<T>, ctx_, gram_.const_view(), shift_.const_view(),
              block.at(q.norms + 3));
    // d = A^T alpha, and the model's dots as solve() takes them.
    q.d = Matrix<T>(model_.n_params(), 1, space);
    const MatrixView<const T> coeff(alpha.data(), k_, n_, space);
    NGD_STAGE(ctx_, transpose_product<T>, ctx_, model_, theta_.data, batch_.inputs, state_, factor_,
              batch_.output_rows, coeff, q.d.data());
    NGD_STAGE(ctx_, count_nonfinite_into<T>, ctx_, q.d.const_view(), block.fault());
    q.model = block.values(3);
    NGD_STAGE(ctx_, dot_into<T>, ctx_, model_.n_params(), q.d.data(), q.d.data(),
              block.at(q.model));
    const Matrix<T>& lin = natural_ ? factors_.gradient : factors_.residual;
    NGD_STAGE(ctx_, dot_into<T>, ctx_, big_n_, lin.data(), w.data(), block.at(q.model + 2));
    if (natural_ && loss_ == Loss::logistic) {
        NGD_STAGE(ctx_, multiply<T>, ctx_, big_n_, factors_.factor.data(), w.data(), w.data());
    }
    NGD_STAGE(ctx_, dot_into<T>, ctx_, big_n_, w.data(), w.data(), block.at(q.model + 1));
    return q;
}

template <class T>
bool GramSystem<T>::finish_deferred(const DeferredSolution<T>& q, const StatusBlock& block,
                                    double max_residual, Solution<T>& out) const {
    if (!block.clean()) return false;
    // The acceptance test from plain sums; where they over- or underflow (or a D_i is not > 0),
    // result_checks' scaled norms decide, on the host-driven path.
    const double rr = block[q.sums], uu = block[q.sums + 1];
    if (block[q.sums + 2] != 0 || !std::isfinite(rr) || !std::isfinite(uu) ||
        !(uu >= std::numeric_limits<double>::min())) {
        return false;
    }
    const double residual = std::sqrt(rr / uu);
    if (max_residual < 0) max_residual = max_solve_residual<T>();
    if (!(residual <= max_residual)) return false;

    out.damping = q.damping;
    out.cholesky_tries = 1;
    out.solve_residual = residual;
    out.report = SolveReport{};
    out.report.requested = precision_;
    out.report.solve_residual = residual;
    // backward_error() of mixed_solve.hpp from the same dots.
    const double r_norm = std::sqrt(block[q.norms]), x_norm = std::sqrt(block[q.norms + 1]);
    const double u_norm = std::sqrt(block[q.norms + 2]), norm_k = block[q.norms + 3];
    const double eta = r_norm / (norm_k * x_norm + u_norm);
    out.report.backward_error = std::isfinite(eta) ? eta : std::numeric_limits<double>::infinity();
    out.gradient_dot = block[q.model + 2] / double(n_);
    out.curvature = block[q.model + 1] / double(n_);
    return true;
}

#define NGD_INSTANTIATE_DEFERRED_PIPELINE(T)                                                     \
    template void GramSystem<T>::construct_deferred(const DirectionOptions&);                    \
    template double GramSystem<T>::loss() const;                                                 \
    template DeferredSolution<T> GramSystem<T>::solve_deferred(double, StatusBlock&);            \
    template bool GramSystem<T>::finish_deferred(const DeferredSolution<T>&, const StatusBlock&, \
                                                 double, Solution<T>&) const;
NGD_INSTANTIATE_DEFERRED_PIPELINE(float)
NGD_INSTANTIATE_DEFERRED_PIPELINE(double)
#undef NGD_INSTANTIATE_DEFERRED_PIPELINE

}  // namespace ngd::detail
