"""Gram matrices, both modes, plain and loss-weighted (mirrors tests/gram_test.cpp)."""

import ngd
import numpy as np
import pytest
from conftest import batch, np_forward, np_jacobian, np_loss_parts, rel_err, small_mlp, targets, tol


@pytest.mark.parametrize("mode", ["structured", "explicit_jacobian"])
def test_gram_is_j_jt(ctx, dtype, mode):
    m = small_mlp(widths=(8, 3), activations=("gelu", "identity"))
    theta = m.init(seed=4, dtype=dtype)
    x = batch(5, 5).astype(dtype)
    g = ngd.gram(ctx, m, theta, x, mode=mode)
    jac = np_jacobian(m, theta, x)
    assert g.shape == (15, 15) and g.dtype == dtype
    assert rel_err(g, jac @ jac.T) < max(tol(dtype), 1e-7)


@pytest.mark.parametrize("loss", ["squared", "logistic", "softmax_cross_entropy"])
@pytest.mark.parametrize("mode", [ngd.GramMode.structured, ngd.GramMode.explicit_jacobian])
def test_loss_weighted_gram(ctx, loss, mode):
    k = 1 if loss == "logistic" else 3
    m = small_mlp(widths=(6, k))
    theta = m.init(seed=5)
    x = batch(4, 5)
    y = targets(loss, 4, k)
    g = ngd.gram(ctx, m, theta, x, y, loss, mode=mode)
    jac = np_jacobian(m, theta, x)
    _, _, h = np_loss_parts(np_forward(m, theta, x), y, loss)
    hb = np.zeros((4 * k, 4 * k))
    for i in range(4):
        hb[i * k:(i + 1) * k, i * k:(i + 1) * k] = h[i]
    # M is not unique (any M with M M^T = H_i): take ngd's, check M M^T = H against NumPy, then
    # A A^T = M^T J J^T M with the finite-difference J.
    lf = ngd.loss_factors(ctx, loss, ngd.forward(ctx, m, theta, x), y)
    mb = np.zeros((4 * k, 4 * k))
    for i in range(4):
        mb[i * k:(i + 1) * k, i * k:(i + 1) * k] = lf.factor[i]
    np.testing.assert_allclose(mb @ mb.T, hb, atol=1e-12)
    assert rel_err(g, mb.T @ jac @ jac.T @ mb) < 1e-7


def test_gram_needs_y_and_loss_together(ctx):
    m = small_mlp()
    with pytest.raises(ngd.InvalidArgument, match="both y and loss"):
        ngd.gram(ctx, m, m.init(), batch(3, 5), np.zeros((3, 3)))
