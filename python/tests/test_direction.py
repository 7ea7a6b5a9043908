"""Directions against the primal p x p solve (mirrors tests/direction_test.cpp)."""

import ngd
import numpy as np
import pytest
from conftest import (
    batch,
    np_forward,
    np_jacobian,
    np_loss_parts,
    np_primal_direction,
    rel_err,
    small_mlp,
    targets,
    tol,
)

LOSSES = ["squared", "logistic", "softmax_cross_entropy"]


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("mode", ["structured", "explicit_jacobian"])
@pytest.mark.parametrize("form", ["automatic", "factor", "natural_residual"])
def test_direction_matches_primal_solve(ctx, dtype, loss, mode, form):
    k = 1 if loss == "logistic" else 3
    m = small_mlp(widths=(6, k))
    theta = m.init(seed=2, dtype=dtype)
    n = 7
    x = batch(n, 5).astype(dtype)
    y = targets(loss, n, k)
    damping = 1e-2
    if form == "natural_residual" and loss == "softmax_cross_entropy":
        # The natural-residual form needs an invertible H, which softmax does not have.
        with pytest.raises(ngd.InvalidArgument):
            ngd.direction(ctx, m, theta, x, y, loss, damping, gram_mode=mode, form=form)
        return
    d = ngd.direction(ctx, m, theta, x, y, loss, damping, gram_mode=mode, form=form)
    assert d.shape == (m.n_params,) and d.dtype == dtype
    _, e, h = np_loss_parts(np_forward(m, theta, x), y, loss)
    ref = np_primal_direction(np_jacobian(m, theta, x), e, h, damping)
    assert rel_err(d, ref) < max(10 * tol(dtype), 1e-6)


def test_direction_from_jacobian_identity_factor(ctx, dtype):
    rng = np.random.default_rng(3)
    n, p = 9, 14
    jac = rng.standard_normal((n, p))
    u = rng.standard_normal(n)
    d = ngd.direction_from_jacobian(ctx, np.asfortranarray(jac.astype(dtype)), u.astype(dtype),
                                    0.05)
    ref = np_primal_direction(jac, u.reshape(n, 1), np.ones((n, 1, 1)), 0.05)
    assert rel_err(d, ref) < tol(dtype) * 10


def test_direction_from_jacobian_with_factor_matches_direction(ctx):
    m = small_mlp(widths=(6, 4))
    theta = m.init(seed=1)
    x, y = batch(5, 5), targets("softmax_cross_entropy", 5, 4)
    f = ngd.forward(ctx, m, theta, x)
    lf = ngd.loss_factors(ctx, "softmax_cross_entropy", f, y)
    jac = ngd.jacobian(ctx, m, theta, x)
    d = ngd.direction_from_jacobian(ctx, jac, lf.residual.reshape(-1), 1e-2, lf.factor)
    ref = ngd.direction(ctx, m, theta, x, y, "softmax_cross_entropy", 1e-2)
    assert rel_err(d, ref) < 1e-8


def test_zhang_limit_fits_targets_in_one_step(ctx):
    m = ngd.two_layer_relu(6, 257)
    theta = m.init(seed=0)
    x = batch(8, 6)
    y = targets("squared", 8, 1)
    d = ngd.direction(ctx, m, theta, x, y, "squared", 0.0)
    # With eta = 1, lambda = 0: f(theta - d) ~ y to first order; the linearised residual vanishes.
    jac = ngd.jacobian(ctx, m, theta, x)
    lin = ngd.forward(ctx, m, theta, x).reshape(-1) - jac @ d
    assert rel_err(lin, y.reshape(-1)) < 1e-8


def test_direction_from_jacobian_takes_the_residual_as_loss_factors_gives_it(ctx):
    m = small_mlp(widths=(6, 4))
    theta = m.init(seed=1)
    x, y = batch(5, 5), targets("softmax_cross_entropy", 5, 4)
    lf = ngd.loss_factors(ctx, "softmax_cross_entropy", ngd.forward(ctx, m, theta, x), y)
    jac = ngd.jacobian(ctx, m, theta, x)
    ref = ngd.direction_from_jacobian(ctx, jac, lf.residual.reshape(-1), 1e-2, lf.factor)
    assert lf.residual.shape == (5, 4)
    for u in (lf.residual, np.asfortranarray(lf.residual), lf.residual.tolist()):
        np.testing.assert_array_equal(
            ngd.direction_from_jacobian(ctx, jac, u, 1e-2, lf.factor), ref)
    # k = 1: (N, 1) is the same u as (N,).
    j1 = ngd.jacobian(ctx, m, theta, x)[::4]
    u1 = batch(5, 1, seed=4)
    np.testing.assert_array_equal(ngd.direction_from_jacobian(ctx, j1, u1, 1e-2),
                                  ngd.direction_from_jacobian(ctx, j1, u1.reshape(-1), 1e-2))
