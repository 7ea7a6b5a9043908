#!/usr/bin/env python3
"""neural-tangents peer (optional): the damped NGD step with the Gram from neural-tangents'
empirical NTK in its structured-derivatives implementation (the closest published relative of
ngd's structured Gram: J is never formed), then cho_factor/cho_solve and one VJP for J^T M alpha,
jit-compiled, on a step_export folder. Checks its direction against ngd's, then times it. When
neural-tangents cannot be imported (not installed, or too old for the installed JAX) it writes a
result marked "skipped" and exits 0.
"""

import sys
import types

import numpy as np

import agreement
import export
import harness
import model
import jax_step


def import_neural_tangents():
    """neural_tangents, or the reason it cannot be used. Its package __init__ also loads an
    experimental TensorFlow bridge (TensorFlow, absl) that this peer never calls; when a module
    that bridge needs is missing, that one submodule is replaced by an empty module and the import
    is tried again."""
    try:
        import neural_tangents as nt

        return nt, None
    except ModuleNotFoundError as e:
        if e.name is None or e.name.startswith("neural_tangents"):
            return None, f"neural-tangents not importable: {e}"
    except Exception as e:  # noqa: BLE001 -- an API the installed JAX no longer has, and the like
        return None, f"neural-tangents not importable: {type(e).__name__}: {e}"
    for name in [m for m in sys.modules if m.startswith("neural_tangents")]:
        del sys.modules[name]
    sys.modules["neural_tangents.experimental"] = types.ModuleType("neural_tangents.experimental")
    try:
        import neural_tangents as nt

        return nt, None
    except Exception as e:  # noqa: BLE001 -- any failure means: not usable here
        return None, f"neural-tangents not importable: {type(e).__name__}: {e}"


class NtkStep:
    def __init__(self, jax, nt, exp):
        import jax.numpy as jnp
        from jax.scipy.linalg import cho_factor, cho_solve

        dtype = jnp.float64 if exp.precision == "f64" else jnp.float32
        ops = jax_step.Ops(jax, dtype)
        put = lambda a: None if a is None else jnp.asarray(a)
        self.leaves = [put(a) for a in export.trainable_leaves(exp)]
        frozen = [None if c is None else (put(c[0]), put(c[1])) for c in export.frozen_arrays(exp)]
        x, y, sel = export.batch_arrays(exp)
        d = x.shape[1]
        # neural-tangents passes one input array: the one-hot output row rides along with x.
        self.x = put(x if sel is None else np.concatenate([x, sel], axis=1))
        self.y = put(y)
        n, k, big_n, shift = exp.n, exp.k, exp.N, exp.n * exp.damping

        def f_sample(leaves, xs):
            s = None if sel is None else xs[d:]
            return model.forward_sample(exp, ops, leaves, frozen, xs[:d], s)

        f_batch = jax.vmap(f_sample, in_axes=(None, 0))

        def apply_fn(leaves, xs):
            return f_batch(leaves, xs)

        ntk_fn = nt.empirical_ntk_fn(
            apply_fn,
            trace_axes=(),
            vmap_axes=0,
            implementation=nt.NtkImplementation.STRUCTURED_DERIVATIVES,
        )

        def forward(leaves, x, y):
            f = f_batch(leaves, x)
            value, big_m, u = model.loss_factors(exp, ops, f, y)
            return f, value, big_m, u

        def gram(leaves, x, big_m):
            g = ntk_fn(x, None, leaves).reshape(n, n, k, k)  # G[i, j, c, c']
            if big_m is not None:
                g = jnp.einsum("nca,nmcd,mdb->nmab", big_m, g, big_m)
            kmat = g.transpose(0, 2, 1, 3).reshape(big_n, big_n)
            return kmat + shift * jnp.eye(big_n, dtype=dtype)

        def solve(kmat, u):
            return cho_solve(cho_factor(kmat, lower=True), u.reshape(-1)).reshape(u.shape)

        def direction(leaves, x, big_m, alpha):
            _, pullback = jax.vjp(lambda p: f_batch(p, x), leaves)
            return pullback(model.apply_m(ops, big_m, alpha))[0]

        def step(leaves, x, y, learning_rate):
            f, value, big_m, u = forward(leaves, x, y)
            alpha = solve(gram(leaves, x, big_m), u)
            d = direction(leaves, x, big_m, alpha)
            return [p - learning_rate * g for p, g in zip(leaves, d)], d, f, value

        self.forward, self.gram = jax.jit(forward), jax.jit(gram)
        self.solve, self.direction, self.step = jax.jit(solve), jax.jit(direction), jax.jit(step)


def main():
    args = harness.parser(__doc__).parse_args()
    exp = export.load_export(args.export)
    jax = jax_step.configure(args.device)
    dev = jax.devices()[0]
    result = harness.base_result(
        exp, "ntk", {"jax": jax.__version__}, f"{dev.device_kind} ({dev.platform})"
    )
    nt, why = import_neural_tangents()
    if nt is None:
        result["skipped"] = why
        harness.finish(result, args.out)
        return 0
    result["versions"]["neural_tangents"] = getattr(nt, "__version__", "unknown")

    def bind(e):
        runner = NtkStep(jax, nt, e)
        leaves, x, y, lr = runner.leaves, runner.x, runner.y, args.learning_rate

        def stages():
            _, _, big_m, u = runner.forward(leaves, x, y)
            yield "forward", lambda: runner.forward(leaves, x, y)
            yield "gram", lambda: runner.gram(leaves, x, big_m)
            kmat = runner.gram(leaves, x, big_m)
            yield "solve", lambda: runner.solve(kmat, u)
            alpha = runner.solve(kmat, u)
            yield "direction", lambda: runner.direction(leaves, x, big_m, alpha)

        return (lambda: runner.step(leaves, x, y, lr)), stages

    agreement.check_and_time(result, exp, args, bind, jax_step.sync, np.asarray, jax_step.catch)
    return harness.finish(result, args.out)


if __name__ == "__main__":
    sys.exit(main())
