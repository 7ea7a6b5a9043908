#!/usr/bin/env python3
"""PyTorch peer: ngd's damped NGD step written as a PyTorch user would write it (torch.func
vmap(jacrev) for J, the Gram by matmul, torch.linalg.cholesky + cholesky_solve, then J^T alpha),
on a step_export folder. It first checks its direction against ngd's, then times the step and its
stages (warm-up excluded, device-synchronised medians). J is computed in blocks of samples when the
whole of it does not fit the memory budget; the direction is then one VJP instead of A^T alpha.
"""

import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import jacrev, vjp, vmap

import agreement
import export
import harness
import model


class Ops:
    """The adapter that the model and loss code of model.py is written against."""

    relu = staticmethod(torch.relu)
    tanh = staticmethod(torch.tanh)
    exp = staticmethod(torch.exp)
    log1p = staticmethod(torch.log1p)
    abs = staticmethod(torch.abs)
    sqrt = staticmethod(torch.sqrt)
    einsum = staticmethod(torch.einsum)

    def __init__(self, dtype, device):
        self.dtype, self.device = dtype, device

    def gelu(self, z):
        return F.gelu(z, approximate="none")

    def logsumexp(self, f):
        return torch.logsumexp(f, dim=-1, keepdim=True)

    def one_hot(self, y, k):
        return F.one_hot(y, k).to(self.dtype)

    def eye(self, k):
        return torch.eye(k, dtype=self.dtype, device=self.device)


class TorchStep:
    def __init__(self, exp, device, chunk):
        self.exp, self.chunk, self.n_blocks = exp, chunk, exp.n // chunk
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
        sel_dim = None if sel is None else 0

        def f_sample(leaves, x, sel):
            return model.forward_sample(exp, self.ops, leaves, self.frozen, x, sel)

        self.f_batch = vmap(f_sample, in_dims=(None, 0, sel_dim))
        self.jac = vmap(jacrev(f_sample), in_dims=(None, 0, sel_dim))

    def forward(self, leaves):
        f = self.f_batch(leaves, self.x, self.sel)
        value, big_m, u = model.loss_factors(self.exp, self.ops, f, self.y)
        return f, value, big_m, u

    def a_block(self, leaves, big_m, s):
        """Rows of A = M^T J for samples [s c, (s + 1) c), one (c k) x p_l matrix per leaf."""
        c, k = self.chunk, self.exp.k
        rows = slice(s * c, (s + 1) * c)
        jacs = self.jac(leaves, self.x[rows], None if self.sel is None else self.sel[rows])
        m = None if big_m is None else big_m[rows]
        return [model.apply_mt(self.ops, m, j.reshape(c, k, -1)).reshape(c * k, -1) for j in jacs]

    def gram(self, leaves, big_m):
        """K = A A^T + n lambda I (both triangles), and A itself when it is a single block."""
        if self.n_blocks == 1:
            a = self.a_block(leaves, big_m, 0)
            k = sum(b @ b.T for b in a)
        else:
            a, rows = None, self.chunk * self.exp.k
            k = torch.empty(self.exp.N, self.exp.N, dtype=self.dtype, device=self.ops.device)
            for s in range(self.n_blocks):
                a_s, rs = self.a_block(leaves, big_m, s), slice(s * rows, (s + 1) * rows)
                k[rs, rs] = sum(b @ b.T for b in a_s)
                for t in range(s + 1, self.n_blocks):
                    a_t, rt = self.a_block(leaves, big_m, t), slice(t * rows, (t + 1) * rows)
                    block = sum(b @ c.T for b, c in zip(a_s, a_t))
                    k[rs, rt], k[rt, rs] = block, block.T
                    del a_t
        k.diagonal().add_(self.exp.n * self.exp.damping)
        return k, a

    def solve(self, k, u):
        chol = torch.linalg.cholesky(k)
        return torch.cholesky_solve(u.reshape(-1, 1), chol).reshape(u.shape)

    def direction(self, leaves, big_m, alpha, a):
        """d = A^T alpha: a product with the stored A, or one VJP with cotangent M alpha."""
        if a is not None:
            flat = alpha.reshape(-1)
            return [(b.T @ flat).reshape(leaf.shape) for b, leaf in zip(a, leaves)]
        _, pullback = vjp(lambda p: self.f_batch(p, self.x, self.sel), leaves)
        return list(pullback(model.apply_m(self.ops, big_m, alpha))[0])

    def step(self, leaves, learning_rate):
        f, value, big_m, u = self.forward(leaves)
        k, a = self.gram(leaves, big_m)
        alpha = self.solve(k, u)
        del k
        d = self.direction(leaves, big_m, alpha, a)
        return [p - learning_rate * g for p, g in zip(leaves, d)], d, f, value


def to_numpy(t):
    return t.detach().cpu().numpy()


def catch(e):
    """The failures a torch peer records as results (agreement.check_and_time)."""
    if isinstance(e, torch.cuda.OutOfMemoryError):
        return "out_of_memory", str(e).splitlines()[0]
    if isinstance(e, torch.linalg.LinAlgError):
        return "error", "Cholesky failed: " + str(e).splitlines()[0]
    return None


def main():
    args = harness.parser(__doc__).parse_args()
    exp = export.load_export(args.export)
    use_gpu = args.device == "gpu" or (args.device == "auto" and torch.cuda.is_available())
    if use_gpu and not torch.cuda.is_available():
        print("torch_step: --device gpu but torch sees no CUDA device", file=sys.stderr)
        return 2
    device = torch.device("cuda" if use_gpu else "cpu")
    # Full float32 products, as ngd computes them: no TF32 in matmuls.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")

    itemsize = exp.dtype.itemsize
    if args.memory_budget_gb is not None:
        budget = harness.gib(args.memory_budget_gb)
    elif use_gpu:
        free, _ = torch.cuda.mem_get_info()
        budget = max(0.5 * free - 2 * exp.N**2 * itemsize, 0)
    else:
        budget = harness.gib(2)
    chunk = model.choose_chunk(exp, budget, args.chunk)
    name = (
        torch.cuda.get_device_name(device)
        if use_gpu
        else f"CPU ({torch.get_num_threads()} threads)"
    )
    result = harness.base_result(
        exp, "torch", {"torch": torch.__version__, "numpy": np.__version__}, name
    )
    result["cost"] = model.cost(exp, chunk)

    def sync(_):
        if use_gpu:
            torch.cuda.synchronize()

    reason = model.too_costly(exp, chunk, args.max_gram_flops)
    if reason:
        result["skipped"] = reason
        return harness.finish(result, args.out)

    def bind(e):
        runner = TorchStep(e, device, chunk)
        leaves, lr = runner.leaves, args.learning_rate

        def stages():
            _, _, big_m, u = runner.forward(leaves)
            yield "forward", lambda: runner.forward(leaves)
            if runner.n_blocks == 1:
                yield "jacobian", lambda: runner.a_block(leaves, big_m, 0)
            yield "gram", lambda: runner.gram(leaves, big_m)
            k, a = runner.gram(leaves, big_m)
            yield "solve", lambda: runner.solve(k, u)
            alpha = runner.solve(k, u)
            del k
            yield "direction", lambda: runner.direction(leaves, big_m, alpha, a)

        return (lambda: runner.step(leaves, lr)), stages

    agreement.check_and_time(result, exp, args, bind, sync, to_numpy, catch)
    return harness.finish(result, args.out)


if __name__ == "__main__":
    sys.exit(main())
