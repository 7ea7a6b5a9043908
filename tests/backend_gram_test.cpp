// Every non-reference backend (cpu, CUDA) vs reference for gram(): G = J J^T and the loss-weighted
// A A^T, structured and explicit_jacobian, on every model of model_problems() in float and double;
// the explicit mode also with a memory budget of 7 columns of A, so J streams through many column
// blocks whose edges cut through layers. Each instance skips without its backend.
#include <gtest/gtest.h>

#include <string>

#include "backend_fixture.hpp"

namespace {

using namespace ngd_test;
using ngd::GramMode;

template <class C>
class BackendGram : public BackendVsReference<C> {};
TYPED_TEST_SUITE(BackendGram, Cases, CaseNames);

/// Each Gram entry is a dot product of two rows of J (length p) whose entries come out of the
/// forward and backward chain; the loss-weighted M^T (.) M adds `extra` (2k: a length-k reduction
/// on each side).
template <class T>
double gram_tolerance(const Problem<T>& p, double extra = 0) {
    return tolerance<T>(static_cast<double>(p.p()) + chain_length(p.model) + extra);
}

/// The result is N x N and exactly symmetric (both triangles hold the same numbers).
template <class T>
void expect_exactly_symmetric(const Matrix<T>& g) {
    ASSERT_EQ(g.rows(), g.cols());
    for (std::int64_t j = 0; j < g.cols(); ++j) {
        for (std::int64_t i = j + 1; i < g.rows(); ++i) {
            ASSERT_EQ(g(i, j), g(j, i)) << "entry (" << i << ", " << j << ")";
        }
    }
}

template <class T>
void check_plain_gram(ngd::Context& dev, ngd::Context& ref, const Problem<T>& p, GramMode mode) {
    const auto c = upload<T>(dev, p);
    const auto r = upload<double>(ref, p);
    const Matrix<T> g = host(dev, ngd::gram(dev, p.model, c.theta.const_view(),
                                            c.inputs.const_view(), c.rows.const_view(), mode));
    // The reference's structured Gram is the oracle for both modes.
    const Matrix<double> g_ref =
        ngd::gram(ref, p.model, r.theta.const_view(), r.inputs.const_view(), r.rows.const_view(),
                  GramMode::structured);
    ASSERT_EQ(g.rows(), p.big_n());
    EXPECT_NEAR_NORMWISE(g, g_ref, gram_tolerance(p));
    expect_exactly_symmetric(g);
}

template <class T>
void check_weighted_gram(ngd::Context& dev, ngd::Context& ref, const Problem<T>& p, GramMode mode) {
    const auto c = upload<T>(dev, p);
    const auto r = upload<double>(ref, p);
    const Matrix<T> g =
        host(dev, ngd::gram(dev, p.model, c.theta.const_view(), c.batch(), p.loss, mode));
    const Matrix<double> g_ref =
        ngd::gram(ref, p.model, r.theta.const_view(), r.batch(), p.loss, GramMode::structured);
    ASSERT_EQ(g.rows(), p.big_n());
    EXPECT_NEAR_NORMWISE(g, g_ref, gram_tolerance(p, 2 * static_cast<double>(p.k())));
    expect_exactly_symmetric(g);
}

TYPED_TEST(BackendGram, StructuredMatchesReference) {
    for (const auto& p : model_problems<typename TypeParam::Scalar>()) {
        SCOPED_TRACE(p.name);
        check_plain_gram(this->dev(), this->ref(), p, GramMode::structured);
    }
}

TYPED_TEST(BackendGram, ExplicitMatchesReference) {
    for (const auto& p : model_problems<typename TypeParam::Scalar>()) {
        SCOPED_TRACE(p.name);
        check_plain_gram(this->dev(), this->ref(), p, GramMode::explicit_jacobian);
    }
}

TYPED_TEST(BackendGram, LossWeightedStructuredMatchesReference) {
    for (const auto& p : model_problems<typename TypeParam::Scalar>()) {
        SCOPED_TRACE(p.name);
        check_weighted_gram(this->dev(), this->ref(), p, GramMode::structured);
    }
}

TYPED_TEST(BackendGram, LossWeightedExplicitMatchesReference) {
    for (const auto& p : model_problems<typename TypeParam::Scalar>()) {
        SCOPED_TRACE(p.name);
        check_weighted_gram(this->dev(), this->ref(), p, GramMode::explicit_jacobian);
    }
}

// A budget of 7 columns of A (N x 7 entries of T) forces p / 7 column blocks, most of them
// straddling a layer boundary or a frozen layer.
TYPED_TEST(BackendGram, ExplicitStreamsManyColumnBlocks) {
    using T = typename TypeParam::Scalar;
    for (const auto& p : model_problems<T>()) {
        SCOPED_TRACE(p.name);
        const std::size_t budget = static_cast<std::size_t>(7 * p.big_n()) * sizeof(T);
        this->dev().set_memory_budget(budget);
        check_plain_gram(this->dev(), this->ref(), p, GramMode::explicit_jacobian);
        check_weighted_gram(this->dev(), this->ref(), p, GramMode::explicit_jacobian);
    }
}

}  // namespace
