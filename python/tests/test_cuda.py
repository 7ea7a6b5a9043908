"""The CUDA path: PyTorch CUDA tensors on the caller's stream, NumPy arrays with a CUDA context
(copied to the device and back), all against the reference context. Skipped without a usable
device (run by the GPU check where there is one)."""

import ngd
import pytest
from conftest import batch, rel_err, small_mlp, targets

pytestmark = pytest.mark.skipif(not ngd.Context.cuda_available(),
                                reason="no usable CUDA device (or a build without CUDA)")


def test_numpy_arrays_with_a_cuda_context():
    ref, cuda = ngd.Context.reference(), ngd.Context.cuda(0)
    m = small_mlp()
    theta = m.init(seed=1)
    x, y = batch(33, 5), targets("squared", 33, 3)
    for fn in (ngd.forward, ngd.jacobian):
        assert rel_err(fn(cuda, m, theta, x), fn(ref, m, theta, x)) < 1e-10
    d_ref = ngd.direction(ref, m, theta, x, y, "squared", 1e-3)
    assert rel_err(ngd.direction(cuda, m, theta, x, y, "squared", 1e-3), d_ref) < 1e-8
    t = theta.copy()
    ngd.NaturalGradient(damping=1e-3).step(cuda, m, t, x, y, "squared")
    assert rel_err(t, theta - d_ref) < 1e-8


def test_torch_cuda_tensors_on_a_side_stream():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("PyTorch sees no CUDA device")
    ref, cuda = ngd.Context.reference(), ngd.Context.cuda(0)
    m = small_mlp(widths=(31, 4))
    theta = m.init(seed=2)
    x, y = batch(65, 5), targets("softmax_cross_entropy", 65, 4)
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        tt = torch.tensor(theta, device="cuda")
        xt = torch.tensor(x, device="cuda") * 1.0  # queued on the side stream
        yt = torch.tensor(y, device="cuda")
        d = ngd.direction(cuda, m, tt, xt, yt, "softmax_cross_entropy", 1e-3)
        jac = ngd.jacobian(cuda, m, tt, xt)
        assert d.is_cuda and jac.shape == (65 * 4, m.n_params)
        r = ngd.NaturalGradient(damping=1e-3).step(cuda, m, tt, xt, yt, "softmax_cross_entropy")
    torch.cuda.synchronize()
    d_ref = ngd.direction(ref, m, theta, x, y, "softmax_cross_entropy", 1e-3)
    assert rel_err(d.cpu().numpy(), d_ref) < 1e-8
    assert rel_err(jac.cpu().numpy(), ngd.jacobian(ref, m, theta, x)) < 1e-10
    assert r.accepted and rel_err(tt.cpu().numpy(), theta - d_ref) < 1e-8
    with pytest.raises(ngd.InvalidArgument, match="CUDA"):
        ngd.forward(ref, m, tt, xt)


def test_torch_cuda_theta_with_host_data_waits_for_the_stream():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("PyTorch sees no CUDA device")
    ref, cuda = ngd.Context.reference(), ngd.Context.cuda(0)
    m = small_mlp()
    theta = m.init(seed=4)
    x, y = batch(17, 5), targets("squared", 17, 3)
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        torch.cuda._sleep(50_000_000)  # keeps the stream busy while theta is written on it
        tt = torch.tensor(theta, device="cuda") * 1.0
        ngd.GradientDescent(learning_rate=0.1).step(cuda, m, tt, x, y, "squared")
    torch.cuda.synchronize()
    expected = theta - 0.1 * ngd.gradient(ref, m, theta, x, y, "squared")
    assert rel_err(tt.cpu().numpy(), expected) < 1e-10
