#!/usr/bin/env python3
"""PyTorch structured peer: ngd's own algorithm written by hand in PyTorch, the honest yardstick of
DESIGN.md section 6 (peer 2). Per trainable layer the input Gram and the seed Gram as matmuls,
their elementwise product summed over layers (J is never formed), torch.linalg.cholesky +
cholesky_solve, and d = J^T M alpha by one VJP (torch.func.vjp). Same export, agreement check and
timing as torch_step.py.
"""

import sys

import numpy as np
import torch
from torch.func import jvp, vjp

import agreement
import export
import harness
import model
import torch_step


class Ops(torch_step.Ops):
    """torch_step's adapter plus what the structured Gram needs."""

    def act_prime(self, name, z):
        return jvp(lambda t: model.activation(self, name, t), (z,), (torch.ones_like(z),))[1]

    def ones(self, shape):
        return torch.ones(shape, dtype=self.dtype, device=self.device)


class TorchStructuredStep:
    def __init__(self, exp, device):
        self.exp = exp
        self.dtype = torch.float64 if exp.precision == "f64" else torch.float32
        self.ops = Ops(self.dtype, device)

        def put(a):
            return None if a is None else torch.as_tensor(a, device=device)

        self.leaves = [put(a) for a in export.trainable_leaves(exp)]
        self.frozen = [
            None if c is None else (put(c[0]), put(c[1])) for c in export.frozen_arrays(exp)
        ]
        x, y, sel = export.batch_arrays(exp)
        self.x, self.y, self.sel = put(x), put(y), put(sel)

    def f_batch(self, leaves):
        return model.forward_batch(self.exp, self.ops, leaves, self.frozen, self.x, self.sel)

    def forward(self, leaves):
        f, kept = self.f_batch(leaves)
        value, big_m, u = model.loss_factors(self.exp, self.ops, f, self.y)
        return f, value, big_m, u, kept

    def gram(self, leaves):
        _, _, big_m, _, kept = self.forward(leaves)
        k = model.structured_gram(self.exp, self.ops, kept, self.sel, big_m)
        k.diagonal().add_(self.exp.n * self.exp.damping)
        return k

    def solve(self, k, u):
        chol = torch.linalg.cholesky(k)
        return torch.cholesky_solve(u.reshape(-1, 1), chol).reshape(u.shape)

    def direction(self, leaves, big_m, alpha):
        _, pullback = vjp(lambda p: self.f_batch(p)[0], leaves)
        return list(pullback(model.apply_m(self.ops, big_m, alpha))[0])

    def step(self, leaves, learning_rate):
        f, value, big_m, u, kept = self.forward(leaves)
        k = model.structured_gram(self.exp, self.ops, kept, self.sel, big_m)
        del kept
        k.diagonal().add_(self.exp.n * self.exp.damping)
        alpha = self.solve(k, u)
        del k
        d = self.direction(leaves, big_m, alpha)
        return [p - learning_rate * g for p, g in zip(leaves, d)], d, f, value


def main():
    args = harness.parser(__doc__).parse_args()
    exp = export.load_export(args.export)
    use_gpu = args.device == "gpu" or (args.device == "auto" and torch.cuda.is_available())
    if use_gpu and not torch.cuda.is_available():
        print("torch_structured: --device gpu but torch sees no CUDA device", file=sys.stderr)
        return 2
    device = torch.device("cuda" if use_gpu else "cpu")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    name = (
        torch.cuda.get_device_name(device)
        if use_gpu
        else f"CPU ({torch.get_num_threads()} threads)"
    )
    result = harness.base_result(
        exp, "torch_structured", {"torch": torch.__version__, "numpy": np.__version__}, name
    )
    result["cost"] = model.structured_cost(exp)

    def sync(_):
        if use_gpu:
            torch.cuda.synchronize()

    def bind(e):
        runner = TorchStructuredStep(e, device)
        leaves, lr = runner.leaves, args.learning_rate

        def stages():
            _, _, big_m, u, _ = runner.forward(leaves)
            yield "forward", lambda: runner.forward(leaves)
            yield "gram", lambda: runner.gram(leaves)
            k = runner.gram(leaves)
            yield "solve", lambda: runner.solve(k, u)
            alpha = runner.solve(k, u)
            del k
            yield "direction", lambda: runner.direction(leaves, big_m, alpha)

        return (lambda: runner.step(leaves, lr)), stages

    agreement.check_and_time(result, exp, args, bind, sync, torch_step.to_numpy, torch_step.catch)
    return harness.finish(result, args.out)


if __name__ == "__main__":
    sys.exit(main())
