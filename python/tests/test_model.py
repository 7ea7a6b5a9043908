"""Models, presets, theta's layout and the forward pass (mirrors tests/model_test.cpp)."""

import ngd
import numpy as np
import pytest
from conftest import batch, np_forward, rel_err, small_mlp, tol


def test_layer_and_mlp_accept_enums_and_names():
    a = ngd.Layer(4, "tanh", bias=False)
    b = ngd.Layer(4, ngd.Activation.tanh, bias=False)
    assert a.activation == b.activation == ngd.Activation.tanh
    assert a.width == 4 and not a.bias and a.trainable
    m = ngd.Mlp(3, [a, ngd.Layer(2, "IDENTITY")], parameterization="ntk", output_scale=0.5)
    assert m.parameterization == ngd.Parameterization.ntk
    assert m.n_params == 3 * 4 + 4 * 2 + 2
    assert m.n_outputs == 2 and m.n_inputs == 3 and m.n_layers == 2
    assert m.describe().startswith("3-4(tanh,nobias)-2(identity), ntk")


def test_init_dtype_seed_and_shape():
    m = small_mlp()
    t64 = m.init(seed=3)
    t32 = m.init(seed=3, dtype=np.float32)
    assert t64.shape == (m.n_params,) and t64.dtype == np.float64 and t64.flags.writeable
    assert t32.dtype == np.float32
    np.testing.assert_allclose(t32, t64, rtol=1e-6)
    np.testing.assert_array_equal(m.init(seed=3), t64)
    assert not np.array_equal(m.init(seed=4), t64)
    with pytest.raises(ngd.InvalidArgument, match="dtype"):
        m.init(dtype=np.int32)


def test_presets():
    z = ngd.two_layer_relu(7, 11)
    assert z.n_params == 7 * 11 + 11 and z.n_trainable_params == 7 * 11
    dl = ngd.deep_linear(6, 5, 3)
    assert dl.n_params == 6 * 5 + 5 * 5 + 5 and dl.n_outputs == 1
    mf = ngd.matrix_factorization(4, 2)
    assert mf.selects_output_row and mf.n_outputs == 1 and mf.n_last == 4


@pytest.mark.parametrize("act", ["identity", "relu", "tanh", "softplus", "gelu"])
@pytest.mark.parametrize("param", ["standard", "ntk"])
def test_forward_matches_numpy(ctx, dtype, act, param):
    m = ngd.Mlp(5, [ngd.Layer(9, act), ngd.Layer(7, act, bias=False), ngd.Layer(3, "identity")],
                parameterization=param, output_scale=1.5)
    theta = m.init(seed=1, dtype=dtype)
    x = batch(13, 5).astype(dtype)
    f = ngd.forward(ctx, m, theta, x)
    assert f.shape == (13, 3) and f.dtype == dtype
    assert rel_err(f, np_forward(m, theta, x)) < tol(dtype)


def test_forward_two_layer_relu_and_matrix_factorization(ctx):
    z = ngd.two_layer_relu(4, 33)
    theta = z.init(seed=2)
    x = batch(5, 4)
    assert rel_err(ngd.forward(ctx, z, theta, x), np_forward(z, theta, x)) < 1e-12
    mf = ngd.matrix_factorization(6, 3, init_scale=0.7)
    theta = mf.init(seed=2)
    cols = np.array([0, 5, 2, 2, 1])
    rows = np.array([1, 1, 0, 5, 3])
    x = np.eye(6)[cols]
    f = ngd.forward(ctx, mf, theta, x, output_rows=rows)
    assert f.shape == (5, 1)
    assert rel_err(f, np_forward(mf, theta, x, rows)) < 1e-12


def test_layer_fields_accept_names_and_repr_round_trips():
    layer = ngd.Layer(4)
    layer.activation = "GELU"
    layer.init = "sign"
    assert layer.activation == ngd.Activation.gelu and layer.init == ngd.Init.sign
    with pytest.raises(ngd.InvalidArgument, match="ngd.Layer: argument 'activation'.*relu"):
        layer.activation = "swish"
    assert layer.activation == ngd.Activation.gelu
    for a in (ngd.Layer(4, "tanh", bias=False, trainable=False, init="zero", init_scale=0.5),
              ngd.Layer(7), layer):
        b = eval(repr(a), {"ngd": ngd})
        assert [getattr(b, f) for f in ("n_out", "activation", "bias", "trainable", "init",
                                        "init_scale")] == [
            getattr(a, f) for f in ("n_out", "activation", "bias", "trainable", "init",
                                    "init_scale")]
    assert repr(ngd.Layer(7)) == "ngd.Layer(7, activation='relu', bias=True, trainable=True)"
