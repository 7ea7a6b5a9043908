"""Shared fixtures and an independent NumPy float64 model of ngd's math: the MLP forward pass from
theta's documented layout, the losses and their Hessians, central finite differences, and the
primal p x p solve. Everything ngd computes is checked against these."""

import math

import ngd
import numpy as np
import pytest

CONTEXTS = ["reference", "cpu"]
DTYPES = [np.float64, np.float32]


def make_context(name):
    if name == "cpu" and not ngd.Context.cpu_available():
        pytest.skip("this build has no cpu backend (no BLAS/LAPACK)")
    return getattr(ngd.Context, name)()


@pytest.fixture(params=CONTEXTS)
def ctx(request):
    return make_context(request.param)


@pytest.fixture(params=DTYPES, ids=["float64", "float32"])
def dtype(request):
    return np.dtype(request.param)


def tol(dtype):
    """Relative tolerance of a result computed in `dtype` against the float64 NumPy reference."""
    return 1e-7 if np.dtype(dtype) == np.float64 else 2e-3


def rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300)


_erf = np.vectorize(math.erf)


def activate(z, name):
    if name == "identity":
        return z
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "tanh":
        return np.tanh(z)
    if name == "softplus":
        return np.logaddexp(0.0, z)
    if name == "gelu":
        return 0.5 * z * (1.0 + _erf(z / math.sqrt(2.0)))
    raise ValueError(name)


def np_forward(model, theta, x, rows=None):
    """f, (n, k), from theta's layout: per layer W_l (n_out x n_in, column-major) then b_l."""
    theta = np.asarray(theta, np.float64)
    a = np.asarray(x, np.float64).T  # d x n
    for l, layer in enumerate(model.layers):
        n_in, n_out = model.fan_in(l), layer.n_out
        off = model.weight_offset(l)
        w = theta[off : off + n_out * n_in].reshape(n_in, n_out).T
        z = model.weight_multiplier(l) * (w @ a)
        if layer.bias:
            b = model.bias_offset(l)
            z = z + theta[b : b + n_out][:, None]
        a = activate(z, layer.activation.name)
    f = model.output_scale * a  # k x n
    if rows is not None:
        f = f[np.asarray(rows, int), np.arange(f.shape[1])][None, :]
    return f.T


def np_jacobian(model, theta, x, rows=None, eps=1e-6):
    """Central differences, (N, p) with row i k + o = d f_o(x_i) / d theta."""
    theta = np.asarray(theta, np.float64)
    cols = []
    for j in range(theta.size):
        e = np.zeros_like(theta)
        e[j] = eps
        df = (np_forward(model, theta + e, x, rows) - np_forward(model, theta - e, x, rows)) / (
            2 * eps)
        cols.append(df.reshape(-1))
    return np.stack(cols, axis=1)


def softmax(f):
    z = f - f.max(axis=1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=1, keepdims=True)


def np_loss_parts(f, y, loss):
    """(L, e (n, k), H (n, k, k)) for outputs f (n, k)."""
    f = np.asarray(f, np.float64)
    n, k = f.shape
    if loss == "squared":
        y = np.asarray(y, np.float64).reshape(n, k)
        return 0.5 * np.sum((f - y) ** 2) / n, f - y, np.broadcast_to(np.eye(k), (n, k, k))
    if loss == "logistic":
        s = 2 * np.asarray(y, np.float64).reshape(n, 1) - 1
        m = s * f
        sig = 1 / (1 + np.exp(-m))
        e = -s * (1 - sig)
        h = (sig * (1 - sig)).reshape(n, 1, 1)
        return np.mean(np.logaddexp(0, -m)), e, h
    p = softmax(f)
    lab = np.asarray(y).astype(int).reshape(n)
    onehot = np.eye(k)[lab]
    value = -np.mean(np.log(p[np.arange(n), lab]))
    h = np.stack([np.diag(pi) - np.outer(pi, pi) for pi in p])
    return value, p - onehot, h


def np_primal_direction(jac, e, h, damping):
    """(J^T H J / n + lambda I)^{-1} J^T e / n: the p x p system, solved directly."""
    n = e.shape[0]
    hb = np.zeros((jac.shape[0], jac.shape[0]))
    k = e.shape[1]
    for i in range(n):
        hb[i * k : (i + 1) * k, i * k : (i + 1) * k] = h[i]
    fisher = jac.T @ hb @ jac / n
    grad = jac.T @ e.reshape(-1) / n
    return np.linalg.solve(fisher + damping * np.eye(jac.shape[1]), grad)


def small_mlp(n_inputs=5, widths=(9, 3), activations=("tanh", "identity"), **kw):
    layers = [ngd.Layer(w, a) for w, a in zip(widths, activations)]
    return ngd.Mlp(n_inputs, layers, **kw)


def batch(n, d, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d))


def targets(loss, n, k, seed=1):
    rng = np.random.default_rng(seed)
    if loss == "squared":
        return rng.standard_normal((n, k))
    if loss == "logistic":
        return rng.integers(0, 2, n).astype(np.float64)
    return rng.integers(0, k, n)
