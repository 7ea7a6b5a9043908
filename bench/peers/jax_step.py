#!/usr/bin/env python3
"""JAX peer: ngd's damped NGD step written as a JAX user would write it (jax.vmap(jax.jacrev) for
J, the Gram by matmul, jax.scipy.linalg.cho_factor/cho_solve, J^T alpha), jit-compiled as one
function, on a step_export folder. It first checks its direction against ngd's, then times the step
and its stages (compilation and warm-up excluded, block_until_ready medians). J is computed in
blocks of samples (lax.fori_loop) when the whole of it does not fit the memory budget; the
direction is then one VJP instead of A^T alpha.
"""

import os
import sys

import numpy as np

import agreement
import export
import harness
import model


def configure(device):
    """Must run before jax is imported: platform choice and float64 support."""
    if device == "cpu":
        os.environ["JAX_PLATFORMS"] = "cpu"
    import jax

    jax.config.update("jax_enable_x64", True)
    # Full float32 products, as ngd computes them: no TF32 or bf16 passes in matmuls.
    jax.config.update("jax_default_matmul_precision", "highest")
    return jax


class Ops:
    """The adapter that the model and loss code of model.py is written against."""

    def __init__(self, jax, dtype):
        import jax.numpy as jnp

        self.jnp, self.dtype = jnp, dtype
        self.relu, self.gelu_fn = jax.nn.relu, jax.nn.gelu
        self.tanh, self.exp, self.log1p, self.abs = jnp.tanh, jnp.exp, jnp.log1p, jnp.abs
        self.sqrt, self.einsum = jnp.sqrt, jnp.einsum
        self.logsumexp_fn = jax.scipy.special.logsumexp

    def gelu(self, z):
        return self.gelu_fn(z, approximate=False)

    def logsumexp(self, f):
        return self.logsumexp_fn(f, axis=-1, keepdims=True)

    def one_hot(self, y, k):
        return (y[:, None] == self.jnp.arange(k)[None, :]).astype(self.dtype)

    def eye(self, k):
        return self.jnp.eye(k, dtype=self.dtype)


class JaxStep:
    def __init__(self, jax, exp, chunk):
        import jax.numpy as jnp
        from jax import lax
        from jax.scipy.linalg import cho_factor, cho_solve

        self.exp, self.chunk, self.n_blocks = exp, chunk, exp.n // chunk
        dtype = jnp.float64 if exp.precision == "f64" else jnp.float32
        ops = Ops(jax, dtype)
        self.leaves = [jnp.asarray(a) for a in export.trainable_leaves(exp)]
        put = lambda a: None if a is None else jnp.asarray(a)
        self.frozen = [
            None if c is None else (put(c[0]), put(c[1])) for c in export.frozen_arrays(exp)
        ]
        x, y, sel = (put(a) for a in export.batch_arrays(exp))
        self.data = (x, y, sel)
        sel_axis = None if sel is None else 0
        k, big_n, c, n_blocks = exp.k, exp.N, chunk, self.n_blocks
        rows, shift = chunk * exp.k, exp.n * exp.damping

        def f_sample(leaves, frozen, x, sel):
            return model.forward_sample(exp, ops, leaves, frozen, x, sel)

        f_batch = jax.vmap(f_sample, in_axes=(None, None, 0, sel_axis))
        jac = jax.vmap(jax.jacrev(f_sample), in_axes=(None, None, 0, sel_axis))

        def forward(leaves, frozen, data):
            x, y, sel = data
            f = f_batch(leaves, frozen, x, sel)
            value, big_m, u = model.loss_factors(exp, ops, f, y)
            return f, value, big_m, u

        def a_block(leaves, frozen, data, big_m, s):
            x, _, sel = data
            take = lambda a: None if a is None else lax.dynamic_slice_in_dim(a, s * c, c, 0)
            jacs = jac(leaves, frozen, take(x), take(sel))
            m = take(big_m)
            return [model.apply_mt(ops, m, j.reshape(c, k, -1)).reshape(rows, -1) for j in jacs]

        def gram(leaves, frozen, data, big_m):
            """K = A A^T + n lambda I (both triangles), and A itself when it is a single block."""
            if n_blocks == 1:
                a = a_block(leaves, frozen, data, big_m, 0)
                return sum(b @ b.T for b in a) + shift * jnp.eye(big_n, dtype=dtype), a

            def outer(s, kmat):
                a_s = a_block(leaves, frozen, data, big_m, s)
                diag = sum(b @ b.T for b in a_s)
                kmat = lax.dynamic_update_slice(kmat, diag, (s * rows, s * rows))

                def inner(t, kmat):
                    a_t = a_block(leaves, frozen, data, big_m, t)
                    block = sum(b @ e.T for b, e in zip(a_s, a_t))
                    kmat = lax.dynamic_update_slice(kmat, block, (s * rows, t * rows))
                    return lax.dynamic_update_slice(kmat, block.T, (t * rows, s * rows))

                return lax.fori_loop(s + 1, n_blocks, inner, kmat)

            kmat = lax.fori_loop(0, n_blocks, outer, jnp.zeros((big_n, big_n), dtype=dtype))
            return kmat + shift * jnp.eye(big_n, dtype=dtype), None

        def solve(kmat, u):
            factor = cho_factor(kmat, lower=True)
            return cho_solve(factor, u.reshape(-1)).reshape(u.shape)

        def direction(leaves, frozen, data, big_m, alpha, a):
            """d = A^T alpha: a product with the stored A, or one VJP with cotangent M alpha."""
            if a is not None:
                flat = alpha.reshape(-1)
                return [(b.T @ flat).reshape(leaf.shape) for b, leaf in zip(a, leaves)]
            x, _, sel = data
            _, pullback = jax.vjp(lambda p: f_batch(p, frozen, x, sel), leaves)
            return pullback(model.apply_m(ops, big_m, alpha))[0]

        def step(leaves, frozen, data, learning_rate):
            f, value, big_m, u = forward(leaves, frozen, data)
            kmat, a = gram(leaves, frozen, data, big_m)
            alpha = solve(kmat, u)
            d = direction(leaves, frozen, data, big_m, alpha, a)
            return [p - learning_rate * g for p, g in zip(leaves, d)], d, f, value

        self.forward = jax.jit(forward)
        self.a_block = jax.jit(a_block)
        self.gram = jax.jit(gram)
        self.solve = jax.jit(solve)
        self.direction = jax.jit(direction)
        self.step = jax.jit(step)


def sync(x):
    """Waits for x (a JAX result) to be computed; None: nothing to wait for."""
    if x is not None:
        import jax

        jax.block_until_ready(x)


def catch(e):
    """The failures a JAX peer records as results (agreement.check_and_time): XLA reports running
    out of memory as a generic runtime error."""
    if "RESOURCE_EXHAUSTED" in str(e) or "out of memory" in str(e).lower():
        return "out_of_memory", str(e).splitlines()[0]
    return None


def main():
    args = harness.parser(__doc__).parse_args()
    jax = configure(args.device)
    exp = export.load_export(args.export)
    dev = jax.devices()[0]
    if args.device == "gpu" and dev.platform != "gpu":
        print(f"jax_step: --device gpu but jax runs on {dev.platform}", file=sys.stderr)
        return 2
    on_gpu = dev.platform == "gpu"
    if args.memory_budget_gb is not None:
        budget = harness.gib(args.memory_budget_gb)
    elif on_gpu:
        stats = dev.memory_stats() or {}
        free = stats.get("bytes_limit", 0) - stats.get("bytes_in_use", 0)
        budget = max(0.5 * free - 2 * exp.N**2 * exp.dtype.itemsize, 0)
    else:
        budget = harness.gib(2)
    chunk = model.choose_chunk(exp, budget, args.chunk)
    import jaxlib

    versions = {"jax": jax.__version__, "jaxlib": jaxlib.__version__, "numpy": np.__version__}
    result = harness.base_result(exp, "jax", versions, f"{dev.device_kind} ({dev.platform})")
    result["cost"] = model.cost(exp, chunk)

    reason = model.too_costly(exp, chunk, args.max_gram_flops)
    if reason:
        result["skipped"] = reason
        return harness.finish(result, args.out)

    def bind(e):
        runner = JaxStep(jax, e, chunk)
        leaves, frozen, data, lr = runner.leaves, runner.frozen, runner.data, args.learning_rate

        def stages():
            _, _, big_m, u = runner.forward(leaves, frozen, data)
            yield "forward", lambda: runner.forward(leaves, frozen, data)
            if runner.n_blocks == 1:
                yield "jacobian", lambda: runner.a_block(leaves, frozen, data, big_m, 0)
            yield "gram", lambda: runner.gram(leaves, frozen, data, big_m)
            kmat, a = runner.gram(leaves, frozen, data, big_m)
            yield "solve", lambda: runner.solve(kmat, u)
            alpha = runner.solve(kmat, u)
            del kmat
            yield "direction", lambda: runner.direction(leaves, frozen, data, big_m, alpha, a)

        return (lambda: runner.step(leaves, frozen, data, lr)), stages

    agreement.check_and_time(result, exp, args, bind, sync, np.asarray, catch)
    return harness.finish(result, args.out)


if __name__ == "__main__":
    sys.exit(main())
