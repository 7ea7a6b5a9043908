"""The examples run: the bring-your-own-Jacobian one through torch.func (skipped without PyTorch)
and the digits one (its training loop on synthetic data always; the whole program, with its plot,
where scikit-learn and matplotlib are installed)."""

import importlib.util
import pathlib

import ngd
import numpy as np
import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_torch_jacobian_example_converges():
    pytest.importorskip("torch")
    losses = load("torch_jacobian").main(["--steps", "6", "--n", "16", "--width", "8"])
    assert losses[-1] < 1e-3 * losses[0]


class _NoBar:
    def __init__(self, **kw):
        pass

    def set_postfix(self, **kw):
        pass

    def update(self, n):
        pass

    def close(self):
        pass


def test_digits_training_loop_on_synthetic_data():
    digits = load("digits")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 64))
    y = rng.integers(0, 10, 60)
    model = ngd.Mlp(64, [ngd.Layer(8, "tanh"), ngd.Layer(10, "identity")])
    theta0 = model.init()
    batches = [rng.choice(60, 16, replace=False) for _ in range(6)]
    ctx = ngd.Context.reference()
    for opt in (ngd.NaturalGradient(learning_rate=0.5, damping=0.1), digits.Adam(),
                ngd.GradientDescent(learning_rate=0.5)):
        _, steps, seconds, losses = digits.train("t", opt, ctx, model, theta0, (x, y), batches, 2,
                                                 _NoBar)
        assert list(steps) == [0, 2, 4, 6] and np.all(np.diff(seconds) >= 0)
        assert losses[-1] < losses[0]


def test_digits_example_writes_its_plot(tmp_path):
    pytest.importorskip("sklearn")
    pytest.importorskip("matplotlib")
    out = tmp_path / "digits.png"
    load("digits").main(["--steps", "4", "--batch", "16", "--eval-every", "2", "--no-progress",
                         "--plot", str(out)])
    assert out.stat().st_size > 10_000
