"""Loss factors against their closed forms (mirrors tests/loss_test.cpp)."""

import ngd
import numpy as np
import pytest
from conftest import np_loss_parts, rel_err, tol


@pytest.mark.parametrize("loss", ["squared", "logistic", "softmax_cross_entropy"])
def test_factors_reproduce_gradient_and_hessian(ctx, dtype, loss):
    rng = np.random.default_rng(0)
    n, k = 7, (1 if loss == "logistic" else 4)
    f = rng.standard_normal((n, k))
    y = {"squared": rng.standard_normal((n, k)), "logistic": rng.integers(0, 2, n),
         "softmax_cross_entropy": rng.integers(0, k, n)}[loss]
    r = ngd.loss_factors(ctx, loss, f.astype(dtype), y)
    value, e, h = np_loss_parts(f.astype(dtype), y, loss)
    assert abs(r.value - value) <= tol(dtype) * abs(value)
    assert r.gradient.shape == (n, k) and r.factor.shape == (n, k, k)
    assert rel_err(r.gradient, e) < tol(dtype)
    mu = np.einsum("irc,ic->ir", r.factor.astype(np.float64), r.residual)
    assert rel_err(mu, e) < tol(dtype)
    mmt = np.einsum("irc,isc->irs", r.factor.astype(np.float64), r.factor)
    assert rel_err(mmt, h) < tol(dtype)
    if loss == "softmax_cross_entropy":
        assert r.natural_residual is None and r.curvature_inverse is None
    else:
        hinv = 1 / np.einsum("irr->ir", h)
        assert rel_err(r.curvature_inverse, hinv) < tol(dtype)
        assert rel_err(r.natural_residual, hinv * e) < tol(dtype)


def test_logistic_factors_stay_finite_at_large_margins(ctx):
    f = np.array([[60.0], [-60.0], [0.5]])
    r = ngd.loss_factors(ctx, "logistic", f, np.array([1, 0, 0]))
    assert np.all(np.isfinite(r.factor)) and np.all(r.factor > 0)
    assert np.isfinite(r.value)
