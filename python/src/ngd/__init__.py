"""ngd: exact damped natural-gradient (generalized Gauss-Newton) steps through the Jacobian Gram
matrix, for NumPy, PyTorch and JAX arrays.

    K = A A^T + n lambda I,   K alpha = u,   d = A^T alpha,   theta <- theta - eta d

The API mirrors the C++ one (include/ngd/*.hpp): the same names, the same argument order
(ctx, model, theta, x[, y, loss][, damping]) and keyword options. Data as users hold it: x is
(n, d) with one sample per row, y is (n, k), or (n,) for logistic labels in {0, 1} and softmax class
indices; theta is a 1-D vector of n_params entries; J comes back as (n k, p), sample-major rows, in
Fortran order (a view of ngd's buffer). Enums are also accepted as their lowercase names.

The damped solves (damped_solve, direction, direction_from_jacobian) take precision="working",
"mixed" (a float32 Cholesky refined in float64, for float64 data; see SolvePrecision) or
"mixed_tf32" (the same with TF32 trailing updates in the factor) and, with
report=True, return (result, SolveReport): what the solve did.

Results are arrays of the framework of theta (or of the call's first array): NumPy for NumPy,
PyTorch tensors for PyTorch, JAX arrays for JAX. See ngd._arrays for when an argument is copied and
how CUDA streams are handled.
"""

from . import _ngd
from ._arrays import Call as _Call
from ._arrays import python_terms as _python_terms
from ._ngd import (  # noqa: F401
    Activation,
    Backend,
    Context,
    CublasError,
    CudaError,
    CusolverError,
    DampingPolicy,
    DampingRule,
    DeviceUnavailable,
    Error,
    Fallback,
    GramMode,
    Init,
    InvalidArgument,
    Layer,
    Loss,
    MemorySpace,
    Mlp,
    NonFiniteInput,
    NotCompiled,
    NotPositiveDefinite,
    OutOfMemory,
    Parameterization,
    Rung,
    SolveForm,
    SolvePrecision,
    SolveReport,
    StepReport,
    StepSeconds,
    deep_linear,
    matrix_factorization,
    two_layer_relu,
)
from ._optimizers import GradientDescent, LossFactors, NaturalGradient  # noqa: F401

__version__ = _ngd.__version__
with_cuda = _ngd.with_cuda


@_python_terms
def forward(ctx, model, theta, x, *, output_rows=None, stream=None):
    """Model outputs f, shape (n, k). output_rows: matrix-factorization models only."""
    c = _Call(ctx, "ngd.forward", stream)
    args = (c.key(theta, "theta"), c.samples(x, "x"), c.samples(output_rows, "output_rows"))
    c.wait()
    return c.out(_ngd.forward(ctx, model, *args))


@_python_terms
def loss(ctx, model, theta, x, y, loss, *, output_rows=None, stream=None):
    """The training loss L(theta) = (1/n) sum_i l(f(x_i), y_i), a float."""
    c = _Call(ctx, "ngd.loss", stream)
    args = (c.key(theta, "theta"), c.samples(x, "x"), c.samples(y, "y"))
    rows = c.samples(output_rows, "output_rows")
    c.wait()
    return _ngd.loss(ctx, model, *args, loss, rows)


@_python_terms
def gradient(ctx, model, theta, x, y, loss, *, output_rows=None, stream=None):
    """grad L = J^T e / n, shape (p,)."""
    c = _Call(ctx, "ngd.gradient", stream)
    args = (c.key(theta, "theta"), c.samples(x, "x"), c.samples(y, "y"))
    rows = c.samples(output_rows, "output_rows")
    c.wait()
    return c.out(_ngd.gradient(ctx, model, *args, loss, rows))


@_python_terms
def jacobian(ctx, model, theta, x, *, output_rows=None, stream=None):
    """The Jacobian J, shape (n k, p): row i k + o is d f_o(x_i) / d theta. Fortran order (a view
    of ngd's column-major buffer, no copy); frozen layers give zero columns."""
    c = _Call(ctx, "ngd.jacobian", stream)
    args = (c.key(theta, "theta"), c.samples(x, "x"), c.samples(output_rows, "output_rows"))
    c.wait()
    return c.out(_ngd.jacobian(ctx, model, *args))


@_python_terms
def gram(ctx, model, theta, x, y=None, loss=None, *, output_rows=None, mode="structured",
         stream=None):
    """G = J J^T (without y and loss) or the loss-weighted A A^T = M^T J J^T M (with both),
    shape (n k, n k), full symmetric. mode: "structured" (J never formed) or "explicit_jacobian"."""
    c = _Call(ctx, "ngd.gram", stream)
    args = (c.key(theta, "theta"), c.samples(x, "x"), c.samples(y, "y"))
    rows = c.samples(output_rows, "output_rows")
    c.wait()
    return c.out(_ngd.gram(ctx, model, *args, loss, rows, mode))


def _solved(c, result, report):
    """The result of a damped solve in the caller's framework, with its SolveReport if asked."""
    x, solve_report = result
    x = c.out(x)
    return (x, solve_report) if report else x


def damped_solve(ctx, gram, shift, rhs, *, precision="working", report=False, stream=None):
    """Solves (gram + shift I) X = rhs by Cholesky (only the lower triangle of gram is read);
    rhs is (N,) or (N, r). For an NGD step shift = n lambda. Raises NotPositiveDefinite.
    precision: "working", "mixed" or "mixed_tf32" (SolvePrecision). report=True returns (X, SolveReport)."""
    c = _Call(ctx, "ngd.damped_solve", stream)
    g = c.key(gram, "gram")
    r = c.matrix(rhs, "rhs")
    c.wait()
    return _solved(c, _ngd.damped_solve(ctx, g, float(shift), r, precision), report)


@_python_terms
def direction(ctx, model, theta, x, y, loss, damping, *, output_rows=None,
              gram_mode="structured", form="automatic", precision="working", report=False,
              stream=None):
    """The damped natural-gradient direction d = (F + damping I)^{-1} grad L, shape (p,).
    damping is lambda >= 0 in parameter space (n lambda on the Gram side). precision: "working",
    "mixed" or "mixed_tf32" (SolvePrecision) for the damped solve. report=True returns
    (d, SolveReport)."""
    c = _Call(ctx, "ngd.direction", stream)
    args = (c.key(theta, "theta"), c.samples(x, "x"), c.samples(y, "y"))
    rows = c.samples(output_rows, "output_rows")
    c.wait()
    r = _ngd.direction(ctx, model, *args, loss, float(damping), rows, gram_mode, form, precision)
    return _solved(c, r, report)


def direction_from_jacobian(ctx, jacobian, residual, damping, factor=None, *,
                            precision="working", report=False, stream=None):
    """Bring your own Jacobian: d = A^T (A A^T + n lambda I)^{-1} u with A = M^T J, shape (p,).

    jacobian: (N, p), sample-major rows (Fortran order is used as is; C order is copied).
    residual: u, (N,), or (n, k) with one sample per row as loss_factors returns it (read in
    sample-major order). factor: None (M = I, one output per sample, as for squared loss) or M as
    (n, k, k) with factor[i] = M_i, so that F = J^T blockdiag(M M^T) J / n and
    grad L = J^T blockdiag(M) u / n. precision: "working", "mixed" or "mixed_tf32" (SolvePrecision).
    report=True returns (d, SolveReport)."""
    c = _Call(ctx, "ngd.direction_from_jacobian", stream)
    j = c.key(jacobian, "jacobian")
    if not hasattr(residual, "ndim"):
        import numpy as np

        residual = np.asarray(residual)
    if residual.ndim == 2:
        residual = residual.reshape(-1)  # (n, k) sample-major -> u (N,); a view when C-ordered
    u = c.matrix(residual, "residual")
    m = None
    if factor is not None:
        m = c.samples(_factor_layout(factor), "factor")
    c.wait()
    r = _ngd.direction_from_jacobian(ctx, j, u, float(damping), m, precision)
    return _solved(c, r, report)


@_python_terms
def loss_factors(ctx, loss, outputs, targets, *, stream=None):
    """The loss and its factors at outputs f (n, k): H_i = M_i M_i^T, e_i = M_i u_i. Returns a
    LossFactors (value, gradient (n, k), factor (n, k, k), residual (n, k), natural_residual and
    curvature_inverse (n, k) or None for softmax)."""
    c = _Call(ctx, "ngd.loss_factors", stream)
    f = c.key(outputs, "outputs", "C")
    y = c.samples(targets, "targets")
    c.wait()
    r = _ngd.loss_factors(ctx, loss, f, y)
    return LossFactors(**{k: (v if k == "value" or v is None else c.out(v)) for k, v in r.items()})


def _factor_layout(factor):
    """M as (n, k, k) with factor[i] = M_i -> ngd's k x (k n) column-major, i.e. an (n k, k)
    array in C order whose row i k + c is column c of M_i (no copy when factor already is the
    transpose of a C-ordered array)."""
    import numpy as np

    from ._arrays import _framework

    if _framework(factor) == "torch":
        t = factor.detach().transpose(1, 2)
        n, k = t.shape[0], t.shape[1]
        return t.contiguous().reshape(n * k, k)
    f = np.asarray(factor)
    if f.ndim != 3 or f.shape[1] != f.shape[2]:
        raise InvalidArgument(
            f"ngd.direction_from_jacobian: argument 'factor' must be (n, k, k), got {f.shape}")
    n, k = f.shape[0], f.shape[1]
    return np.ascontiguousarray(np.swapaxes(f, 1, 2)).reshape(n * k, k)
