"""PyTorch CPU tensors and JAX CPU arrays through the same path as NumPy: results in the caller's
framework, in-place steps on tensors, JAX's immutability respected."""

import ngd
import numpy as np
import pytest
from conftest import batch, small_mlp, targets


def test_torch_cpu_tensors():
    torch = pytest.importorskip("torch")
    ctx = ngd.Context.reference()
    m = small_mlp()
    theta_np = m.init(seed=1)
    x, y = batch(5, 5), targets("squared", 5, 3)
    theta = torch.tensor(theta_np, requires_grad=True)
    f = ngd.forward(ctx, m, theta, torch.from_numpy(x))
    assert isinstance(f, torch.Tensor) and f.dtype == torch.float64
    np.testing.assert_array_equal(f.numpy(), ngd.forward(ctx, m, theta_np, x))
    d = ngd.direction(ctx, m, theta, torch.from_numpy(x), torch.from_numpy(y), "squared", 1e-2)
    np.testing.assert_array_equal(d.numpy(), ngd.direction(ctx, m, theta_np, x, y, "squared",
                                                           1e-2))
    t = torch.tensor(theta_np)
    ngd.NaturalGradient(damping=1e-2).step(ctx, m, t, torch.from_numpy(x), torch.from_numpy(y),
                                           "squared")
    ngd.NaturalGradient(damping=1e-2).step(ctx, m, theta_np, x, y, "squared")
    np.testing.assert_array_equal(t.numpy(), theta_np)  # updated in place, same result
    labels = torch.tensor([0, 2, 1, 1, 0])
    assert np.isfinite(ngd.loss(ctx, m, t, x, labels, "softmax_cross_entropy"))
    jac = ngd.jacobian(ctx, m, t.float(), torch.from_numpy(x))
    assert jac.dtype == torch.float32 and jac.shape == (15, m.n_params)


def test_jax_cpu_arrays():
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    ctx = ngd.Context.reference()
    m = small_mlp()
    theta = m.init(seed=2, dtype=np.float32)
    x, y = batch(5, 5).astype(np.float32), targets("squared", 5, 3).astype(np.float32)
    g = ngd.gradient(ctx, m, jnp.asarray(theta), jnp.asarray(x), jnp.asarray(y), "squared")
    assert isinstance(g, jax.Array) and g.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(g), ngd.gradient(ctx, m, theta, x, y, "squared"))
    with pytest.raises(ngd.InvalidArgument, match="immutable"):
        ngd.GradientDescent().step(ctx, m, jnp.asarray(theta), x, y, "squared")


def test_torch_arguments_of_a_dtype_numpy_lacks_are_converted():
    torch = pytest.importorskip("torch")
    ctx = ngd.Context.reference()
    m = small_mlp()
    theta = m.init(seed=3, dtype=np.float32)
    x, y = batch(5, 5), targets("squared", 5, 3)
    xb, yb = torch.tensor(x).bfloat16(), torch.tensor(y).bfloat16()
    expected = ngd.loss(ctx, m, theta, xb.float().numpy(), yb.float().numpy(), "squared")
    assert ngd.loss(ctx, m, torch.tensor(theta), xb, yb, "squared") == expected
    t = torch.tensor(theta)
    ngd.GradientDescent().step(ctx, m, t, xb, yb, "squared")
    ngd.GradientDescent().step(ctx, m, theta, xb.float().numpy(), yb.float().numpy(), "squared")
    np.testing.assert_array_equal(t.numpy(), theta)


def test_errors_about_tensors_give_plain_shapes():
    torch = pytest.importorskip("torch")
    ctx = ngd.Context.reference()
    m = small_mlp()
    theta = torch.tensor(m.init()).bfloat16()
    with pytest.raises(ngd.InvalidArgument) as e:
        ngd.forward(ctx, m, theta, batch(3, 5))
    expected = f"ngd.forward: argument 'theta' (shape ({m.n_params},)): must be float32 or float64"
    assert expected in str(e.value)


def test_init_takes_a_torch_dtype():
    torch = pytest.importorskip("torch")
    m = small_mlp()
    np.testing.assert_array_equal(m.init(seed=2, dtype=torch.float32),
                                  m.init(seed=2, dtype=np.float32))
    assert m.init(dtype=torch.float64).dtype == np.float64
    with pytest.raises(ngd.InvalidArgument, match="ngd.Mlp.init: argument 'dtype'.*bfloat16"):
        m.init(dtype=torch.bfloat16)
