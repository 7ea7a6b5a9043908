"""The optimizers with NumPy/PyTorch/JAX arguments, and the loss factors record. A step updates
theta in place and returns the StepReport; a step that raises leaves theta as it was."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import _ngd
from ._arrays import Call, python_terms


@python_terms
def _step(impl, name, ctx, model, theta, x, y, loss, output_rows, stream):
    c = Call(ctx, name, stream)
    th = c.writable_theta(theta)
    args = (c.samples(x, "x"), c.samples(y, "y"))
    rows = c.samples(output_rows, "output_rows")
    if c.cuda_ctx and not c.like_cuda:
        # A host theta with a CUDA context: step a device copy, write it back only on success.
        device = _ngd.copy_to(ctx, th, _ngd.MemorySpace.device)
        c.wait()
        report = impl.step(ctx, model, device, *args, loss, rows)
        ctx.synchronize()
        th[...] = _ngd.copy_to(ctx, device, _ngd.MemorySpace.host)
        return report
    c.wait()
    report = impl.step(ctx, model, th, *args, loss, rows)
    if c.cuda_ctx:
        ctx.synchronize()
    return report


class NaturalGradient:
    """Damped natural gradient: theta <- theta - eta (F + lambda I)^{-1} grad L, solved on the
    sample side (A A^T + n lambda I) alpha = u, d = A^T alpha. Options as in C++
    (NaturalGradient<T>::Options): learning_rate, damping, policy ("fixed" or
    "levenberg_marquardt"), gram_mode, form, evaluate_after, time_stages, rule, damping_min,
    damping_max, max_rejections, damping_raises, raise_factor, fallback, max_solve_residual,
    max_step_norm, max_output_change, precision ("working", "mixed": a float32 Cholesky refined
    in float64 for float64 theta, or "mixed_tf32": the same with TF32 trailing updates; the
    StepReport says which gave the step), deferred_checks (a step in working precision reads its
    results back once, once per try under Levenberg-Marquardt; Context.host_syncs counts). One
    object serves float32 and float64 theta."""

    def __init__(self, **options: Any):
        self._impl = _ngd.NaturalGradient(**options)
        self.options = dict(options)

    @property
    def damping(self) -> float:
        """The damping the next step starts from (changes under the adaptive policy)."""
        return self._impl.damping

    @property
    def learning_rate(self) -> float:
        return self._impl.learning_rate

    def step(self, ctx, model, theta, x, y, loss, *, output_rows=None, stream=None):
        """theta <- theta - eta d in place; returns the StepReport. Synchronises."""
        return _step(self._impl, "ngd.NaturalGradient.step", ctx, model, theta, x, y, loss,
                     output_rows, stream)

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"ngd.NaturalGradient({opts})"


class GradientDescent:
    """Plain gradient descent: theta <- theta - learning_rate grad L. Options: learning_rate,
    evaluate_after, deferred_checks (as NaturalGradient's)."""

    def __init__(self, **options: Any):
        self._impl = _ngd.GradientDescent(**options)
        self.options = dict(options)

    @property
    def learning_rate(self) -> float:
        return self._impl.learning_rate

    def step(self, ctx, model, theta, x, y, loss, *, output_rows=None, stream=None):
        """theta <- theta - learning_rate grad L in place; returns the StepReport. Synchronises."""
        return _step(self._impl, "ngd.GradientDescent.step", ctx, model, theta, x, y, loss,
                     output_rows, stream)

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"ngd.GradientDescent({opts})"


@dataclass
class LossFactors:
    """The loss and its factors (include/ngd/loss.hpp), per sample i: H_i = M_i M_i^T,
    e_i = M_i u_i."""

    value: float
    gradient: Any  # e, (n, k)
    factor: Any  # M, (n, k, k), factor[i] = M_i
    residual: Any  # u, (n, k)
    natural_residual: Any  # rho = H^{-1} e, (n, k); None for softmax
    curvature_inverse: Any  # diagonal of H^{-1}, (n, k); None for softmax
