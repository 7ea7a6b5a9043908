"""J and the gradient against central finite differences of the NumPy model (mirrors
tests/jacobian_test.cpp)."""

import ngd
import numpy as np
import pytest
from conftest import batch, np_forward, np_jacobian, np_loss_parts, rel_err, small_mlp, targets, tol


@pytest.mark.parametrize("n", [1, 7])
def test_jacobian_matches_finite_differences(ctx, dtype, n):
    m = ngd.Mlp(5, [ngd.Layer(9, "tanh"), ngd.Layer(4, "softplus", bias=False),
                    ngd.Layer(3, "identity")])
    theta = m.init(seed=0, dtype=dtype)
    x = batch(n, 5).astype(dtype)
    jac = ngd.jacobian(ctx, m, theta, x)
    assert jac.shape == (n * 3, m.n_params) and jac.dtype == dtype
    # A view of ngd's column-major N x p buffer: Fortran order, no copy.
    assert jac.flags.f_contiguous
    assert rel_err(jac, np_jacobian(m, theta, x)) < max(tol(dtype), 1e-7)


def test_frozen_layer_columns_are_zero(ctx):
    m = ngd.Mlp(3, [ngd.Layer(4, "tanh", trainable=False), ngd.Layer(2, "identity")])
    jac = ngd.jacobian(ctx, m, m.init(seed=1), batch(5, 3))
    frozen = m.weight_offset(1)
    assert np.all(jac[:, :frozen] == 0) and np.any(jac[:, frozen:] != 0)


def test_jacobian_matrix_factorization_rows(ctx):
    mf = ngd.matrix_factorization(5, 2, init_scale=0.5)
    theta = mf.init(seed=3)
    cols, rows = np.array([0, 4, 2]), np.array([3, 1, 1])
    x = np.eye(5)[cols]
    jac = ngd.jacobian(ctx, mf, theta, x, output_rows=rows)
    assert rel_err(jac, np_jacobian(mf, theta, x, rows)) < 1e-7


@pytest.mark.parametrize("loss", ["squared", "logistic", "softmax_cross_entropy"])
def test_loss_and_gradient_match_finite_differences(ctx, dtype, loss):
    k = 1 if loss == "logistic" else 3
    m = small_mlp(widths=(9, k))
    theta = m.init(seed=0, dtype=dtype)
    x = batch(7, 5).astype(dtype)
    y = targets(loss, 7, k)
    value = ngd.loss(ctx, m, theta, x, y, loss)
    ref = np_loss_parts(np_forward(m, theta, x), y, loss)[0]
    assert abs(value - ref) <= tol(dtype) * abs(ref)

    def fd_loss(t):
        return np_loss_parts(np_forward(m, t, x), y, loss)[0]

    t64 = theta.astype(np.float64)
    fd = np.array([(fd_loss(t64 + e) - fd_loss(t64 - e)) / 2e-6 for e in np.eye(t64.size) * 1e-6])
    g = ngd.gradient(ctx, m, theta, x, y, loss)
    assert g.shape == (m.n_params,) and g.dtype == dtype
    assert rel_err(g, fd) < max(tol(dtype), 1e-7)
