"""NaturalGradient and GradientDescent: in-place updates that equal theta - eta d, reports, the
adaptive policy, float32 (mirrors tests/optimizer_test.cpp)."""

import ngd
import numpy as np
import pytest
from conftest import batch, rel_err, small_mlp, targets, tol


@pytest.mark.parametrize("loss", ["squared", "logistic", "softmax_cross_entropy"])
def test_natural_gradient_step_is_theta_minus_eta_d(ctx, dtype, loss):
    k = 1 if loss == "logistic" else 3
    m = small_mlp(widths=(7, k))
    theta = m.init(seed=3, dtype=dtype)
    x, y = batch(6, 5).astype(dtype), targets(loss, 6, k)
    d = ngd.direction(ctx, m, theta, x, y, loss, 1e-2)
    expected = theta - 0.5 * d
    opt = ngd.NaturalGradient(learning_rate=0.5, damping=1e-2)
    r = opt.step(ctx, m, theta, x, y, loss)
    assert rel_err(theta, expected) < tol(dtype)
    assert r.accepted and r.rung == ngd.Rung.cholesky and r.damping == pytest.approx(1e-2)
    assert r.loss_after < r.loss_before
    assert r.learning_rate == 0.5 and r.step_norm == pytest.approx(0.5 * np.linalg.norm(d),
                                                                   rel=1e-3)


def test_gradient_descent_step(ctx):
    m = small_mlp()
    theta = m.init(seed=4)
    x, y = batch(5, 5), targets("squared", 5, 3)
    g = ngd.gradient(ctx, m, theta, x, y, "squared")
    expected = theta - 0.1 * g
    r = ngd.GradientDescent(learning_rate=0.1).step(ctx, m, theta, x, y, "squared")
    assert rel_err(theta, expected) < 1e-12
    assert r.loss_after < r.loss_before


def test_zhang_ngd_converges_fast(ctx):
    m = ngd.two_layer_relu(8, 512)
    theta = m.init(seed=0)
    x = batch(16, 8) / np.sqrt(8)
    y = targets("squared", 16, 1)
    opt = ngd.NaturalGradient(learning_rate=1.0, damping=1e-10)
    first = opt.step(ctx, m, theta, x, y, "squared").loss_before
    for _ in range(3):
        last = opt.step(ctx, m, theta, x, y, "squared")
    assert last.loss_after < 1e-8 * first


def test_levenberg_marquardt_adapts_damping(ctx):
    m = small_mlp(widths=(6, 1), activations=("tanh", "identity"))
    theta = m.init(seed=2)
    x, y = batch(10, 5), targets("logistic", 10, 1)
    opt = ngd.NaturalGradient(learning_rate=1.0, damping=1.0, policy="levenberg_marquardt",
                              time_stages=True)
    r = opt.step(ctx, m, theta, x, y, "logistic")
    assert r.accepted and r.next_damping != 1.0 and opt.damping == r.next_damping
    assert r.form == ngd.SolveForm.natural_residual and r.seconds.total > 0


def test_one_optimizer_serves_both_precisions(ctx):
    m = small_mlp()
    x, y = batch(5, 5), targets("squared", 5, 3)
    opt = ngd.NaturalGradient(damping=1e-3)
    t32, t64 = m.init(dtype=np.float32), m.init()
    opt.step(ctx, m, t32, x, y, "squared")
    opt.step(ctx, m, t64, x, y, "squared")
    assert rel_err(t32, t64) < 1e-3


def test_step_report_repr_shows_small_values():
    ctx = ngd.Context.reference()
    m = small_mlp()
    theta = m.init(seed=1)
    x, y = batch(5, 5), targets("squared", 5, 3)
    r = ngd.NaturalGradient(damping=1e-8, time_stages=True).step(ctx, m, theta, x, y, "squared")
    text = repr(r)
    assert text.startswith("ngd.StepReport(") and "damping=1e-08" in text
    assert f"loss_before={r.loss_before!r}" in text and "rung='cholesky'" in text
    assert f"solve_residual={r.solve_residual!r}" in text
    assert repr(r.seconds) == (f"ngd.StepSeconds(forward={r.seconds.forward!r}, "
                               f"gram={r.seconds.gram!r}, solve={r.seconds.solve!r}, "
                               f"direction={r.seconds.direction!r}, "
                               f"total={r.seconds.total!r})")


def test_deferred_checks_read_back_once(ctx):
    # A steady step with fixed damping reads its results back once (Context.host_syncs), and is
    # the step of the host-driven path (mirrors tests/backend_deferred_test.cpp).
    m = small_mlp()
    x, y = batch(6, 5), targets("squared", 6, 3)
    thetas, syncs = [], []
    for deferred in (True, False):
        opt = ngd.NaturalGradient(learning_rate=0.5, damping=1e-2, deferred_checks=deferred)
        theta = m.init(seed=5)
        opt.step(ctx, m, theta, x, y, "squared")
        before = ctx.host_syncs
        opt.step(ctx, m, theta, x, y, "squared")
        syncs.append(ctx.host_syncs - before)
        thetas.append(theta)
    assert syncs[0] == 1 and syncs[1] > 1
    assert np.array_equal(thetas[0], thetas[1])
