"""precision="mixed": a float32 Cholesky refined in float64, its fallback to the float64 Cholesky on
ill-conditioned systems, and the SolveReport of damped_solve, direction and
direction_from_jacobian (mirrors tests/mixed_solve_test.cpp and tests/mixed_direction_test.cpp)."""

import ngd
import numpy as np
import pytest
from conftest import batch, rel_err, small_mlp, targets


def spd(n, cond, seed=0):
    """A symmetric positive definite n x n matrix with eigenvalues from 1 down to 1/cond."""
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((n, n)))
    k = (q * np.logspace(0, -np.log10(cond), n)) @ q.T
    return np.asfortranarray((k + k.T) / 2)


@pytest.mark.parametrize("r", [None, 3])
def test_mixed_matches_the_float64_solve_on_a_well_conditioned_system(ctx, r):
    k = spd(40, 1e3)
    x_true = np.random.default_rng(1).standard_normal(40 if r is None else (40, r))
    rhs = np.asfortranarray(k @ x_true + 0.5 * x_true)
    working, w = ngd.damped_solve(ctx, k, 0.5, rhs, report=True)
    mixed, m = ngd.damped_solve(ctx, k, 0.5, rhs, precision="mixed", report=True)
    assert mixed.shape == rhs.shape and mixed.dtype == np.float64
    assert rel_err(mixed, working) < 1e-12 and rel_err(mixed, x_true) < 1e-12
    assert w.requested == w.used == ngd.SolvePrecision.working and w.refinement_iterations == 0
    assert m.requested == m.used == ngd.SolvePrecision.mixed
    assert m.refinement_iterations >= 1 and not m.mixed_fallback and m.float_info == 0
    assert m.backward_error < 1e-15 and m.solve_residual < 1e-12


def test_mixed_falls_back_on_an_ill_conditioned_system(ctx):
    k = spd(40, 1e12, seed=2)
    x_true = np.random.default_rng(3).standard_normal(40)
    rhs = k @ x_true
    working = ngd.damped_solve(ctx, k, 0.0, rhs)
    mixed, rep = ngd.damped_solve(ctx, k, 0.0, rhs, precision=ngd.SolvePrecision.mixed,
                                  report=True)
    assert rep.requested == ngd.SolvePrecision.mixed and rep.used == ngd.SolvePrecision.working
    assert rep.mixed_fallback
    # The float64 Cholesky's answer: forward error up to kappa eps, backward error eps.
    assert rel_err(mixed, working) < 1e-12
    assert rel_err(mixed, x_true) < 1e-3 and rep.backward_error < 1e-14


def test_float32_data_solves_in_working_precision(ctx):
    k = spd(20, 1e2).astype(np.float32, order="F")
    rhs = np.ones(20, np.float32)
    x, rep = ngd.damped_solve(ctx, k, 0.1, rhs, precision="mixed", report=True)
    assert x.dtype == np.float32
    assert rel_err(x, np.linalg.solve(k.astype(np.float64) + 0.1 * np.eye(20), rhs)) < 2e-3
    assert rep.requested == ngd.SolvePrecision.mixed and rep.used == ngd.SolvePrecision.working
    assert not rep.mixed_fallback and rep.refinement_iterations == 0


def test_direction_and_direction_from_jacobian_take_mixed(ctx):
    m = small_mlp()
    theta = m.init(seed=1)
    x, y = batch(6, 5), targets("squared", 6, 3)
    ref = ngd.direction(ctx, m, theta, x, y, "squared", 0.1)
    d, rep = ngd.direction(ctx, m, theta, x, y, "squared", 0.1, precision="mixed", report=True)
    assert rel_err(d, ref) < 1e-12
    assert rep.used == ngd.SolvePrecision.mixed and rep.refinement_iterations >= 1
    jac = ngd.jacobian(ctx, m, theta, x)
    u = (ngd.forward(ctx, m, theta, x) - y).reshape(-1)
    ref = ngd.direction_from_jacobian(ctx, jac, u, 0.1)
    d, rep = ngd.direction_from_jacobian(ctx, jac, u, 0.1, precision="mixed", report=True)
    assert rel_err(d, ref) < 1e-12 and rep.used == ngd.SolvePrecision.mixed
    assert rep.requested == ngd.SolvePrecision.mixed and rep.refinement_iterations >= 1


def test_report_is_off_by_default_and_repr_is_readable(ctx):
    k, rhs = spd(5, 10.0), np.ones(5)
    assert isinstance(ngd.damped_solve(ctx, k, 0.1, rhs), np.ndarray)
    _, rep = ngd.damped_solve(ctx, k, 0.1, rhs, precision="MIXED", report=True)
    text = repr(rep)
    assert text.startswith("ngd.SolveReport(requested='mixed', used='mixed', mixed_fallback=False")
    assert rep.cg_iterations == 0
    assert f"refinement_iterations={rep.refinement_iterations}, cg_iterations=0, float_info=0, " in text
    assert f"backward_error={rep.backward_error!r}, solve_residual={rep.solve_residual!r})" in text
    with pytest.raises(AttributeError):
        rep.used = ngd.SolvePrecision.working


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_natural_gradient_step_reports_the_precision(ctx, dtype):
    m = small_mlp()
    x, y = batch(6, 5), targets("squared", 6, 3)
    theta = m.init(seed=1, dtype=dtype)
    ref = theta.copy()
    rep = ngd.NaturalGradient(damping=0.1, precision="mixed").step(ctx, m, theta, x, y, "squared")
    ngd.NaturalGradient(damping=0.1).step(ctx, m, ref, x, y, "squared")
    assert rel_err(theta, ref) < (1e-12 if dtype == np.float64 else 1e-5)
    if dtype == np.float64:
        assert rep.precision == ngd.SolvePrecision.mixed and rep.refinement_iterations >= 1
        assert not rep.mixed_fallback and rep.backward_error < 1e-15
        assert "precision='mixed', mixed_fallback=False, refinement_iterations=" in repr(rep)
    else:
        assert rep.precision == ngd.SolvePrecision.working and rep.refinement_iterations == 0
        assert "precision='working', learning_rate=" in repr(rep)


def test_bad_precision_names_the_choices(ctx):
    m = small_mlp()
    theta, x, y = m.init(), batch(3, 5), targets("squared", 3, 3)
    cases = [
        (lambda: ngd.damped_solve(ctx, np.eye(2), 0.1, np.ones(2), precision="half"),
         "ngd.damped_solve: argument 'precision'"),
        (lambda: ngd.direction(ctx, m, theta, x, y, "squared", 0.1, precision="single"),
         "ngd.direction: argument 'precision'"),
        (lambda: ngd.direction_from_jacobian(ctx, np.eye(2), np.ones(2), 0.1, precision=2),
         "ngd.direction_from_jacobian: argument 'precision'"),
        (lambda: ngd.NaturalGradient(precision="double"),
         "ngd.NaturalGradient: argument 'precision'"),
    ]
    for call, where in cases:
        with pytest.raises(ValueError, match=where) as e:
            call()
        assert isinstance(e.value, ngd.InvalidArgument)
        assert "expected ngd.SolvePrecision or one of the strings working, mixed" in str(e.value)


def test_mixed_tf32_refines_the_emulated_tf32_factor(ctx):
    """precision="mixed_tf32" (mirrors tests/mixed_tf32_test.cpp): the TF32 factor needs more
    corrections than the float32 one to the same float64 answer; the report says which factor."""
    k = spd(80, 1e3, seed=3)
    rhs = np.random.default_rng(4).standard_normal(80)
    working = ngd.damped_solve(ctx, k, 0.0, rhs)
    x32, m = ngd.damped_solve(ctx, k, 0.0, rhs, precision="mixed", report=True)
    xtf, t = ngd.damped_solve(ctx, k, 0.0, rhs, precision="mixed_tf32", report=True)
    assert t.requested == t.used == ngd.SolvePrecision.mixed_tf32 and not t.mixed_fallback
    assert t.refinement_iterations > m.refinement_iterations and t.cg_iterations == 0
    assert rel_err(xtf, working) < 1e-10 and rel_err(x32, working) < 1e-10
    assert "used='mixed_tf32'" in repr(t) and "cg_iterations=0" in repr(t)
