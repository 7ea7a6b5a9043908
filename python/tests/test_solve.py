"""damped_solve against NumPy's solve, and its failure on a non-SPD matrix (mirrors
tests/solve_test.cpp)."""

import ngd
import numpy as np
import pytest
from conftest import rel_err, tol


@pytest.mark.parametrize("r", [None, 1, 3])
def test_damped_solve_matches_numpy(ctx, dtype, r):
    rng = np.random.default_rng(1)
    n = 11
    a = rng.standard_normal((n, n + 2))
    g = np.asfortranarray((a @ a.T).astype(dtype))
    rhs = rng.standard_normal(n if r is None else (n, r)).astype(dtype)
    shift = 0.3
    x = ngd.damped_solve(ctx, g, shift, rhs)
    assert x.shape == rhs.shape and x.dtype == dtype
    ref = np.linalg.solve(g.astype(np.float64) + shift * np.eye(n), rhs.astype(np.float64))
    assert rel_err(x, ref) < tol(dtype)


def test_damped_solve_reads_lower_triangle_only(ctx):
    g = np.array([[4.0, 99.0], [1.0, 3.0]], order="F")
    x = ngd.damped_solve(ctx, g, 0.0, np.array([1.0, 2.0]))
    np.testing.assert_allclose(x, np.linalg.solve([[4.0, 1.0], [1.0, 3.0]], [1.0, 2.0]))


def test_not_positive_definite_carries_info_order_damping(ctx):
    g = np.array([[1.0, 2, 3], [2, 4, 5], [3, 5, 12]], order="F")
    with pytest.raises(ngd.NotPositiveDefinite) as e:
        ngd.damped_solve(ctx, g, 0.0, np.ones(3))
    assert e.value.info == 2 and e.value.order == 3 and e.value.damping == 0.0
    assert isinstance(e.value, ngd.Error)


def test_c_ordered_gram_is_accepted_as_a_copy(ctx):
    g = np.array([[4.0, 1.0], [1.0, 3.0]])  # C order: symmetric, so the copy changes nothing
    np.testing.assert_allclose(ngd.damped_solve(ctx, g, 1.0, np.ones(2)),
                               np.linalg.solve(g + np.eye(2), np.ones(2)))
