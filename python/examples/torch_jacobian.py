"""Bring your own Jacobian: ngd as the exact damped natural-gradient solver for any PyTorch
nn.Module. torch.func gives J (by jacrev over the flattened parameters); ngd forms the Gram, solves
the damped system and returns d = J^T (J J^T + n lambda I)^{-1} u; PyTorch applies the step.

Here the model is a small residual MLP with LayerNorm, which ngd's Mlp does not describe, fitted
with squared loss (M = I, u = f - y). Run: python examples/torch_jacobian.py [--steps 10]
"""

import argparse

import ngd
import numpy as np
import torch
from torch import nn
from torch.func import functional_call, jacrev


class ResidualNet(nn.Module):
    def __init__(self, d, width):
        super().__init__()
        self.inp = nn.Linear(d, width)
        self.norm = nn.LayerNorm(width)
        self.hidden = nn.Linear(width, width)
        self.out = nn.Linear(width, 1)

    def forward(self, x):
        h = torch.tanh(self.inp(x))
        h = h + torch.tanh(self.hidden(self.norm(h)))
        return self.out(h)


def ngd_step(ctx, net, x, y, damping, learning_rate):
    """One damped NGD step on squared loss; returns the loss before it."""
    names = [n for n, _ in net.named_parameters()]
    params = [p.detach() for p in net.parameters()]
    flat = torch.cat([p.reshape(-1) for p in params])
    sizes = [p.numel() for p in params]

    def f(theta):
        chunks = torch.split(theta, sizes)
        tensors = {n: c.view_as(p) for n, c, p in zip(names, chunks, params)}
        return functional_call(net, tensors, (x,)).reshape(-1)  # (N,), N = n k

    out = f(flat)
    jac = jacrev(f)(flat)  # (N, p), C order: ngd copies it to its column-major layout
    u = (out - y.reshape(-1)).detach()
    d = ngd.direction_from_jacobian(ctx, jac.detach(), u, damping)  # a tensor like J
    with torch.no_grad():
        new = flat - learning_rate * d
        for p, c in zip(net.parameters(), torch.split(new, sizes)):
            p.copy_(c.view_as(p))
    return 0.5 * float((u**2).mean())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--n", type=int, default=64, help="samples")
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--damping", type=float, default=1e-4, help="lambda (parameter space)")
    parser.add_argument("--lr", type=float, default=1.0)
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    x = torch.randn(args.n, 8, dtype=torch.float64)
    y = torch.sin(x.sum(1, keepdim=True))
    net = ResidualNet(8, args.width).double()
    ctx = ngd.Context.cpu() if ngd.Context.cpu_available() else ngd.Context.reference()
    losses = []
    for t in range(args.steps):
        losses.append(ngd_step(ctx, net, x, y, args.damping, args.lr))
        print(f"step {t:3d}  loss {losses[-1]:.3e}")
    with torch.no_grad():
        final = 0.5 * float(((net(x) - y) ** 2).mean())
    print(f"final loss {final:.3e} ({sum(p.numel() for p in net.parameters())} parameters, "
          f"N = {args.n})")
    return np.array(losses + [final])


if __name__ == "__main__":
    main()
