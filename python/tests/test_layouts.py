"""Layouts: which arrays are used without a copy, which are copied, which are refused, and the
layout of every result (mirrors tests/backend_layout_test.cpp for the host side)."""

import types

import ngd
import numpy as np
import pytest
from conftest import batch, rel_err, small_mlp, targets
from ngd import _ngd
from ngd._arrays import Call


def test_zero_copy_inputs_are_passed_as_they_are():
    ctx = ngd.Context.reference()
    x = batch(6, 5)
    big = batch(6, 9)
    for a in (x, big[:, :5], big[::2, :5], x[:1]):
        c = Call(ctx, "test")
        c._set_key(np.zeros(3), "theta")
        assert c.samples(a, "x") is a  # no copy: seen as ngd's d x n with ld = row stride
    jac = np.asfortranarray(batch(8, 6))
    for a in (jac, jac[:, 2:5], np.zeros(4)):
        c = Call(ctx, "test")
        c._set_key(np.zeros(3), "theta")
        assert c.matrix(a, "J") is a


def _layouts():
    """(name, view) pairs: the same (7, 5) values in layouts that are copied or viewed."""
    big = batch(14, 9)
    x = big[::2, 1:6].copy()
    return x, {
        "fortran (copied)": np.asfortranarray(x),
        "inner stride 2 (copied)": np.repeat(x, 2, axis=1)[:, ::2],
        "row step and column offset (viewed)": big[::2, 1:6],
        "C order (viewed)": x,
    }


@pytest.mark.parametrize("layout", list(_layouts()[1]))
def test_input_layouts_give_the_same_result(ctx, layout):
    m = small_mlp()
    theta = m.init(seed=1)
    x, views = _layouts()
    xa = views[layout]
    np.testing.assert_array_equal(xa, x)
    np.testing.assert_array_equal(ngd.forward(ctx, m, theta, xa), ngd.forward(ctx, m, theta, x))


def test_raw_module_refuses_layouts_it_cannot_view():
    ctx = ngd.Context.reference()
    m = small_mlp()
    x = np.asfortranarray(batch(7, 5))
    with pytest.raises(ngd.InvalidArgument, match=r"'x' with shape \(7, 5\), strides \(8, 56\)"):
        _ngd.forward(ctx, m, m.init(), x)
    with pytest.raises(ngd.InvalidArgument, match="float64 like theta"):
        _ngd.forward(ctx, m, m.init(), batch(7, 5).astype(np.float32))
    jac = batch(4, 6)  # C order: not ngd's column-major N x p
    with pytest.raises(ngd.InvalidArgument, match="'jacobian'.*Fortran order"):
        _ngd.direction_from_jacobian(ctx, jac, np.zeros(4), 0.1)


def test_targets_and_labels_shapes_and_dtypes(ctx):
    m = small_mlp(widths=(6, 1))
    theta = m.init(seed=2)
    x = batch(5, 5)
    y = targets("squared", 5, 1)
    assert ngd.loss(ctx, m, theta, x, y, "squared") == ngd.loss(ctx, m, theta, x, y.reshape(-1),
                                                                "squared")
    lab = np.array([0, 1, 1, 0, 1])
    ref = ngd.loss(ctx, m, theta, x, lab.astype(np.float64), "logistic")
    for dt in (np.int64, np.int32, np.bool_, np.float32):
        assert ngd.loss(ctx, m, theta, x, lab.astype(dt), "logistic") == ref
    m3 = small_mlp(widths=(6, 4))
    cls = np.array([3, 0, 2, 2, 1])
    assert ngd.loss(ctx, m3, m3.init(), x, cls, "softmax_cross_entropy") == ngd.loss(
        ctx, m3, m3.init(), x, cls.tolist(), "softmax_cross_entropy")


def test_result_layouts(ctx):
    m = small_mlp()
    theta = m.init(seed=3)
    x = batch(4, 5)
    f = ngd.forward(ctx, m, theta, x)
    assert f.shape == (4, 3) and f.flags.c_contiguous and f.flags.writeable
    jac = ngd.jacobian(ctx, m, theta, x)
    assert jac.shape == (12, m.n_params) and jac.flags.f_contiguous
    assert jac.strides == (8, 8 * 12)
    # Row i k + o is sample i, output o: the same as stacking per-sample Jacobians.
    j1 = ngd.jacobian(ctx, m, theta, x[1:2])
    np.testing.assert_allclose(jac[3:6], j1, rtol=1e-14)
    g = ngd.gram(ctx, m, theta, x)
    np.testing.assert_allclose(g, jac @ jac.T, rtol=1e-10)
    rhs = np.ones((12, 2))  # C order: copied to Fortran order; the result keeps the shape
    sol = ngd.damped_solve(ctx, g, 1.0, rhs)
    assert sol.shape == (12, 2) and sol.flags.f_contiguous


def test_results_own_their_memory():
    ctx = ngd.Context.reference()
    m = small_mlp()
    jac = ngd.jacobian(ctx, m, m.init(), batch(3, 5))
    copy = jac.copy()
    del ctx, m
    np.testing.assert_array_equal(jac, copy)
    assert jac.base is not None  # a view owned by ngd's buffer, no copy was made


def test_theta_layouts(ctx):
    m = small_mlp()
    theta = m.init(seed=5)
    x, y = batch(4, 5), targets("squared", 4, 3)
    strided = np.zeros(2 * m.n_params)
    strided[::2] = theta
    # Read-only uses copy a strided theta; a step refuses it (it updates theta in place).
    assert rel_err(ngd.forward(ctx, m, strided[::2], x), ngd.forward(ctx, m, theta, x)) == 0
    with pytest.raises(ngd.InvalidArgument, match="theta"):
        ngd.NaturalGradient().step(ctx, m, strided[::2], x, y, "squared")
    with pytest.raises(ngd.InvalidArgument, match="theta"):
        ngd.forward(ctx, m, np.arange(m.n_params), x)  # integers: no precision to pick


def test_copy_to_keeps_dense_layouts():
    # The host <-> device staging copy of a CUDA context, checked here host to host.
    ctx = ngd.Context.reference()
    base = batch(6, 4)
    factor = np.ascontiguousarray(batch(12, 3).reshape(4, 3, 3).transpose(0, 2, 1))
    for a in (base, np.asfortranarray(base), base[:3], np.zeros(5),
              np.swapaxes(factor, 1, 2), base.astype(np.float32)):
        c = _ngd.copy_to(ctx, a, ngd.MemorySpace.host)
        assert c.dtype == a.dtype and c.strides == a.strides
        np.testing.assert_array_equal(c, a)
    for a in (base[:, ::2], base[:, :1]):
        with pytest.raises(ngd.InvalidArgument, match="dense"):
            _ngd.copy_to(ctx, a, ngd.MemorySpace.host)


class _FakeCudaTensor:
    """Just enough of a PyTorch CUDA tensor for ngd._arrays.Call (no GPU needed)."""

    __module__ = "torch"
    dtype = "torch.float64"
    shape = (3,)
    ndim = 1
    device = types.SimpleNamespace(type="cuda", index=0)

    def detach(self):
        return self

    def is_contiguous(self):
        return True


def test_a_cuda_theta_of_a_step_waits_for_the_callers_stream(monkeypatch):
    # A step with a CUDA theta and host x, y must still wait for the stream theta was written on.
    monkeypatch.setattr("ngd._arrays._current_stream", lambda a, fw: 1234)
    cuda = types.SimpleNamespace(backend=ngd.Backend.cuda, device=0, description="CUDA device 0")
    theta = _FakeCudaTensor()
    c = Call(cuda, "test")
    assert c.writable_theta(theta) is theta and c.streams == {1234}
    c = Call(cuda, "test", stream=77)
    c.writable_theta(theta)
    assert c.streams == {77}
    with pytest.raises(ngd.InvalidArgument, match="'theta'.*CUDA array; the context is reference"):
        Call(ngd.Context.reference(), "ngd.NaturalGradient.step").writable_theta(theta)


def test_stream_takes_torch_and_cupy_stream_objects(monkeypatch):
    monkeypatch.setattr("ngd._arrays._current_stream", lambda a, fw: 1234)
    cuda = types.SimpleNamespace(backend=ngd.Backend.cuda, device=0, description="CUDA device 0")
    for stream in (types.SimpleNamespace(cuda_stream=55), types.SimpleNamespace(ptr=55), 55):
        c = Call(cuda, "test", stream=stream)
        c.writable_theta(_FakeCudaTensor())
        assert c.streams == {55}
    with pytest.raises(ngd.InvalidArgument, match="'stream'.*torch.cuda.Stream"):
        ngd.forward(ngd.Context.reference(), small_mlp(), np.zeros(3), np.zeros((2, 5)),
                    stream="default")
