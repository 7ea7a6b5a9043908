#!/usr/bin/env python3
"""JAX structured peer: ngd's own algorithm written by hand in JAX, the honest yardstick of
DESIGN.md section 6 (peer 2). Per trainable layer the input Gram and the seed Gram as matmuls,
their elementwise product summed over layers (J is never formed), Cholesky (cho_factor/cho_solve),
and d = J^T M alpha by one VJP; the whole step under one jax.jit. Same export, agreement check
and timing as jax_step.py.
"""

import sys

import numpy as np

import agreement
import export
import harness
import model
import jax_step


class Ops(jax_step.Ops):
    """jax_step's adapter plus what the structured Gram needs."""

    def __init__(self, jax, dtype):
        super().__init__(jax, dtype)
        self.jax = jax

    def act_prime(self, name, z):
        ones = self.jnp.ones_like(z)
        return self.jax.jvp(lambda t: model.activation(self, name, t), (z,), (ones,))[1]

    def ones(self, shape):
        return self.jnp.ones(shape, dtype=self.dtype)


class JaxStructuredStep:
    def __init__(self, jax, exp):
        import jax.numpy as jnp
        from jax.scipy.linalg import cho_factor, cho_solve

        dtype = jnp.float64 if exp.precision == "f64" else jnp.float32
        ops = Ops(jax, dtype)
        self.leaves = [jnp.asarray(a) for a in export.trainable_leaves(exp)]
        put = lambda a: None if a is None else jnp.asarray(a)
        self.frozen = [
            None if c is None else (put(c[0]), put(c[1])) for c in export.frozen_arrays(exp)
        ]
        self.data = tuple(put(a) for a in export.batch_arrays(exp))
        big_n, shift = exp.N, exp.n * exp.damping

        def forward(leaves, frozen, data):
            x, y, sel = data
            f, kept = model.forward_batch(exp, ops, leaves, frozen, x, sel)
            value, big_m, u = model.loss_factors(exp, ops, f, y)
            return f, value, big_m, u, kept

        def gram(leaves, frozen, data):
            _, _, big_m, _, kept = forward(leaves, frozen, data)
            g = model.structured_gram(exp, ops, kept, data[2], big_m)
            return g + shift * jnp.eye(big_n, dtype=dtype)

        def solve(kmat, u):
            return cho_solve(cho_factor(kmat, lower=True), u.reshape(-1)).reshape(u.shape)

        def direction(leaves, frozen, data, big_m, alpha):
            x, _, sel = data
            fb = lambda p: model.forward_batch(exp, ops, p, frozen, x, sel)[0]
            _, pullback = jax.vjp(fb, leaves)
            return pullback(model.apply_m(ops, big_m, alpha))[0]

        def step(leaves, frozen, data, learning_rate):
            f, value, big_m, u, kept = forward(leaves, frozen, data)
            kmat = model.structured_gram(exp, ops, kept, data[2], big_m)
            alpha = solve(kmat + shift * jnp.eye(big_n, dtype=dtype), u)
            d = direction(leaves, frozen, data, big_m, alpha)
            return [p - learning_rate * g for p, g in zip(leaves, d)], d, f, value

        self.forward = jax.jit(lambda leaves, frozen, data: forward(leaves, frozen, data)[:4])
        self.gram = jax.jit(gram)
        self.solve = jax.jit(solve)
        self.direction = jax.jit(direction)
        self.step = jax.jit(step)


def main():
    args = harness.parser(__doc__).parse_args()
    jax = jax_step.configure(args.device)
    exp = export.load_export(args.export)
    dev = jax.devices()[0]
    if args.device == "gpu" and dev.platform != "gpu":
        print(f"jax_structured: --device gpu but jax runs on {dev.platform}", file=sys.stderr)
        return 2
    import jaxlib

    versions = {"jax": jax.__version__, "jaxlib": jaxlib.__version__, "numpy": np.__version__}
    result = harness.base_result(
        exp, "jax_structured", versions, f"{dev.device_kind} ({dev.platform})"
    )
    result["cost"] = model.structured_cost(exp)

    def bind(e):
        runner = JaxStructuredStep(jax, e)
        leaves, frozen, data, lr = runner.leaves, runner.frozen, runner.data, args.learning_rate

        def stages():
            _, _, big_m, u = runner.forward(leaves, frozen, data)
            yield "forward", lambda: runner.forward(leaves, frozen, data)
            yield "gram", lambda: runner.gram(leaves, frozen, data)
            kmat = runner.gram(leaves, frozen, data)
            yield "solve", lambda: runner.solve(kmat, u)
            alpha = runner.solve(kmat, u)
            del kmat
            yield "direction", lambda: runner.direction(leaves, frozen, data, big_m, alpha)

        return (lambda: runner.step(leaves, frozen, data, lr)), stages

    agreement.check_and_time(result, exp, args, bind, jax_step.sync, np.asarray, jax_step.catch)
    return harness.finish(result, args.out)


if __name__ == "__main__":
    sys.exit(main())
