"""ngd.torch: nn.Sequential <-> ngd.Mlp + theta, with forward passes that agree."""

import ngd
import numpy as np
import pytest
from conftest import batch, rel_err

torch = pytest.importorskip("torch")
nn = torch.nn
import ngd.torch as ngd_torch  # noqa: E402


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_from_sequential_forward_agrees(dtype):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 9), nn.Tanh(), nn.Linear(9, 7, bias=False), nn.ReLU(),
                        nn.Linear(7, 6), nn.GELU(), nn.Linear(6, 4), nn.Softplus(),
                        nn.Linear(4, 3)).to(dtype)
    model, theta = ngd_torch.from_sequential(net)
    assert model.n_params == sum(p.numel() for p in net.parameters())
    x = batch(11, 5)
    expected = net(torch.tensor(x, dtype=dtype)).detach().numpy()
    got = ngd.forward(ngd.Context.reference(), model, theta, x.astype(expected.dtype))
    assert rel_err(got, expected) < (1e-12 if dtype == torch.float64 else 1e-5)


def test_round_trip_and_load_theta():
    model = ngd.Mlp(4, [ngd.Layer(6, "relu"), ngd.Layer(2, "identity", bias=False)],
                    parameterization="ntk")
    theta = model.init(seed=3)
    net = ngd_torch.to_sequential(model, theta)
    x = batch(5, 4)
    np.testing.assert_allclose(net(torch.tensor(x)).detach().numpy(),
                               ngd.forward(ngd.Context.reference(), model, theta, x), rtol=1e-12)
    std = ngd.Mlp(4, [ngd.Layer(6, "relu"), ngd.Layer(2, "identity", bias=False)])
    net = ngd_torch.to_sequential(std, theta)
    back_model, back_theta = ngd_torch.from_sequential(net)
    np.testing.assert_array_equal(back_theta, theta)
    ngd_torch.load_theta(net, back_model, 2 * theta)
    np.testing.assert_array_equal(ngd_torch.from_sequential(net)[1], 2 * theta)


def test_training_through_the_mapping_updates_the_torch_model():
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 1)).double()
    model, theta = ngd_torch.from_sequential(net)
    x, y = batch(8, 3), batch(8, 1, seed=5)
    ctx = ngd.Context.reference()
    opt = ngd.NaturalGradient(learning_rate=1.0, damping=1e-6)
    first = opt.step(ctx, model, theta, x, y, "squared").loss_before
    for _ in range(3):
        r = opt.step(ctx, model, theta, x, y, "squared")
    ngd_torch.load_theta(net, model, theta)
    with torch.no_grad():
        loss = 0.5 * ((net(torch.tensor(x)) - torch.tensor(y)) ** 2).sum(1).mean().item()
    assert loss == pytest.approx(r.loss_after, rel=1e-8) and loss < 1e-2 * first


def test_unsupported_modules_are_refused():
    for net in (nn.Sequential(nn.Linear(3, 4), nn.Sigmoid()),
                nn.Sequential(nn.ReLU(), nn.Linear(3, 4)),
                nn.Sequential(nn.Linear(3, 4), nn.GELU(approximate="tanh")),
                nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Tanh())):
        with pytest.raises(ngd.InvalidArgument):
            ngd_torch.from_sequential(net)
