"""Type stubs of the ngd package (editor completion and type checking). The C++ documentation of
each name is in include/ngd/*.hpp; the docstrings below summarise it."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np

# The enums (every argument that takes one also takes its lowercase name).
from ._enums import (
    Backend as Backend,
    MemorySpace as MemorySpace,
    Activation as Activation,
    Parameterization as Parameterization,
    Init as Init,
    Loss as Loss,
    GramMode as GramMode,
    SolveForm as SolveForm,
    SolvePrecision as SolvePrecision,
    DampingPolicy as DampingPolicy,
    DampingRule as DampingRule,
    Fallback as Fallback,
    Rung as Rung,
)

# Any array ngd takes: NumPy arrays, PyTorch tensors, JAX and CuPy arrays, nested sequences.
ArrayLike: TypeAlias = Any
# The array type of the call's key argument (theta, gram, jacobian, outputs).
Array: TypeAlias = Any
# A CUDA stream: a cudaStream_t as an int, a torch.cuda.Stream or a cupy.cuda.Stream.
Stream: TypeAlias = Any

__version__: str
with_cuda: bool
"""True when this build contains the CUDA backend."""

# ---- errors ---------------------------------------------------------------------------------

class Error(RuntimeError):
    """Base class of every exception raised by ngd; the message names the function, the argument
    and the sizes."""

class InvalidArgument(Error, ValueError):
    """A shape, value, layout or option is outside what the function accepts."""

class NotCompiled(Error):
    """The call needs a backend this build does not contain."""

class DeviceUnavailable(Error):
    """CUDA is compiled in, but no usable device (or driver) is present."""

class NonFiniteInput(Error, ValueError):
    """An input holds NaN or Inf."""

    count: int
    """Number of non-finite entries."""
    first_index: int
    """Column-major linear index (ngd's layout) of the first one."""

class NotPositiveDefinite(Error):
    """Cholesky found the damped system not positive definite."""

    info: int
    """LAPACK's info: order of the failing leading minor, or -1 (non-finite factor, or a solution
    whose residual showed the system singular to working precision)."""
    order: int
    """Size of the system."""
    damping: float
    """Diagonal shift last tried, on the Gram side (n lambda)."""

class OutOfMemory(Error, MemoryError):
    """An allocation failed."""

    requested: int
    """Bytes asked for."""
    free: int
    """Bytes free (0 if unknown)."""

class CudaError(Error):
    """A CUDA runtime call failed."""

    code: int

class CublasError(Error):
    """A cuBLAS call failed."""

    status: int

class CusolverError(Error):
    """A cuSOLVER call failed."""

    status: int

# ---- context and models ---------------------------------------------------------------------

class Context:
    """Where the stages run: the float64-accumulating reference, the cpu backend (BLAS, LAPACK,
    OpenMP) or a CUDA device. NumPy arrays and CPU tensors run on the CPU contexts; CUDA tensors
    on the CUDA context of their device. ngd releases the GIL while it computes; a context serves
    one call at a time (threads that run ngd concurrently each need their own)."""

    @staticmethod
    def reference() -> Context:
        """The CPU reference backend: plain loops, double accumulation. Always available."""
    @staticmethod
    def cpu(n_threads: int = 0) -> Context:
        """The fast CPU backend with n_threads threads (0: OpenMP's default). Raises NotCompiled
        in a build without BLAS/LAPACK."""
    @staticmethod
    def cuda(device: int = 0) -> Context:
        """The CUDA backend on `device`. Raises NotCompiled without CUDA, DeviceUnavailable
        without a usable device."""
    @staticmethod
    def best() -> Context:
        """CUDA device 0 when usable, else cpu when compiled, else reference."""
    @staticmethod
    def cuda_available() -> bool: ...
    @staticmethod
    def cpu_available() -> bool: ...
    @property
    def host_syncs(self) -> int:
        """Debug counter: the points where ngd waited for this context's backend (one host
        synchronisation each on CUDA; counted the same way on the CPU backends)."""
    @property
    def backend(self) -> Backend: ...
    @property
    def memory_space(self) -> MemorySpace: ...
    @property
    def device(self) -> int: ...
    @property
    def n_threads(self) -> int: ...
    @property
    def description(self) -> str: ...
    memory_budget: int
    """Upper bound in bytes for the explicit Gram mode's scratch (default 256 MiB)."""
    def synchronize(self) -> None:
        """Waits until all work queued on this context is done."""

class Layer:
    """One dense layer: z = W a + b, a' = activation(z)."""

    def __init__(self, width: int, activation: Activation | str = "relu", bias: bool = True,
                 trainable: bool = True, init: Init | str = "gaussian",
                 init_scale: float = -1.0) -> None:
        """width: n_out. init_scale < 0: 1/sqrt(n_in) (standard) or 1 (NTK). A frozen layer
        (trainable=False) keeps its entries in theta with zero Jacobian columns."""
    @property
    def width(self) -> int: ...
    n_out: int
    @property
    def activation(self) -> Activation: ...
    @activation.setter
    def activation(self, value: Activation | str) -> None: ...
    bias: bool
    trainable: bool
    @property
    def init(self) -> Init: ...
    @init.setter
    def init(self, value: Init | str) -> None: ...
    init_scale: float

class Mlp:
    """A multilayer perceptron spec; parameters live in theta, layer by layer: W_l (n_out x n_in,
    column-major: entry (r, c) at weight_offset(l) + r + c n_out), then b_l."""

    def __init__(self, n_inputs: int, layers: Sequence[Layer],
                 parameterization: Parameterization | str = "standard",
                 output_scale: float = 1.0) -> None: ...
    def select_output_row(self, on: bool = True) -> Mlp:
        """Matrix-factorization mode: each sample's output is one row of the last layer
        (output_rows)."""
    @property
    def selects_output_row(self) -> bool: ...
    @property
    def n_inputs(self) -> int: ...
    @property
    def n_outputs(self) -> int:
        """k, outputs per sample."""
    @property
    def n_last(self) -> int: ...
    @property
    def n_layers(self) -> int: ...
    @property
    def n_params(self) -> int:
        """p, the length of theta."""
    @property
    def n_trainable_params(self) -> int: ...
    @property
    def output_scale(self) -> float: ...
    @property
    def parameterization(self) -> Parameterization: ...
    @property
    def layers(self) -> list[Layer]: ...
    def fan_in(self, layer: int) -> int: ...
    def weight_offset(self, layer: int) -> int: ...
    def bias_offset(self, layer: int) -> int:
        """-1 without a bias."""
    def weight_multiplier(self, layer: int) -> float: ...
    def describe(self) -> str: ...
    def init(self, seed: int = 0, dtype: Any = "float64") -> np.ndarray:
        """theta drawn from each layer's Init with a fixed seed (the same on every platform): a
        writable 1-D NumPy array of n_params entries, float64 or float32 (dtype: anything
        numpy.dtype takes, or torch.float32 / torch.float64)."""

def two_layer_relu(d: int, m: int, init_std: float = 1.0) -> Mlp:
    """Zhang et al.: f(x) = m^{-1/2} sum_r a_r relu(w_r . x), a_r = +-1 fixed; only W trained."""

def deep_linear(d: int, width: int, depth: int, n_out: int = 1,
                init_scale: float = -1.0) -> Mlp:
    """W_depth ... W_1 x: identity activations, no biases."""

def matrix_factorization(d: int, depth: int, init_scale: float = 0.1) -> Mlp:
    """Deep matrix factorization: a sample is an observed entry (i, j), input e_j (one-hot),
    output row i (output_rows)."""

# ---- stages ---------------------------------------------------------------------------------

def forward(ctx: Context, model: Mlp, theta: ArrayLike, x: ArrayLike, *,
            output_rows: ArrayLike | None = None, stream: Stream | None = None) -> Array:
    """Model outputs f, (n, k). x: (n, d), one sample per row."""

def loss(ctx: Context, model: Mlp, theta: ArrayLike, x: ArrayLike, y: ArrayLike,
         loss: Loss | str, *, output_rows: ArrayLike | None = None,
         stream: Stream | None = None) -> float:
    """L(theta) = (1/n) sum_i l(f(x_i), y_i). y: (n, k) targets, or (n,) labels."""

def gradient(ctx: Context, model: Mlp, theta: ArrayLike, x: ArrayLike, y: ArrayLike,
             loss: Loss | str, *, output_rows: ArrayLike | None = None,
             stream: Stream | None = None) -> Array:
    """grad L = J^T e / n, (p,)."""

def jacobian(ctx: Context, model: Mlp, theta: ArrayLike, x: ArrayLike, *,
             output_rows: ArrayLike | None = None, stream: Stream | None = None) -> Array:
    """J, (n k, p), row i k + o = d f_o(x_i) / d theta; Fortran order (a view of ngd's buffer)."""

def gram(ctx: Context, model: Mlp, theta: ArrayLike, x: ArrayLike, y: ArrayLike | None = None,
         loss: Loss | str | None = None, *, output_rows: ArrayLike | None = None,
         mode: GramMode | str = "structured", stream: Stream | None = None) -> Array:
    """G = J J^T, or with y and loss the loss-weighted A A^T = M^T J J^T M; (n k, n k)."""

class SolveReport:
    """What a damped solve did (field names as in C++); with several right-hand sides, the
    largest iterations and errors over the columns. Returned by damped_solve, direction and
    direction_from_jacobian with report=True."""

    requested: SolvePrecision
    used: SolvePrecision
    """The precision whose factorization gave the solution: mixed (the float32 factor,
    refined), or working (asked for, float32 data, or the fallback)."""
    mixed_fallback: bool
    """mixed was asked for float64 data and refinement failed: the float64 Cholesky solved."""
    refinement_iterations: int
    """Corrections alpha += (L L^T)^{-1} r applied with the float32 factor L."""
    cg_iterations: int
    """Conjugate-gradient iterations, preconditioned by L, after refinement stagnated (0: none)."""
    float_info: int
    """The float32 factorization's info (0 ok, > 0 failing pivot, -1 NaN)."""
    backward_error: float
    """|K alpha - u|_2 / (|K|_F |alpha|_2 + |u|_2), in float64, of the solution returned."""
    solve_residual: float
    """|D^-1/2 (K alpha - u)| / |D^-1/2 u|, D = diag(K): the acceptance test's residual."""

def damped_solve(ctx: Context, gram: ArrayLike, shift: float, rhs: ArrayLike, *,
                 precision: SolvePrecision | str = "working", report: bool = False,
                 stream: Stream | None = None) -> Array | tuple[Array, SolveReport]:
    """Solves (gram + shift I) X = rhs by Cholesky (lower triangle read); rhs (N,) or (N, r).
    For an NGD step shift = n lambda. Raises NotPositiveDefinite. report=True returns
    (X, SolveReport)."""

def direction(ctx: Context, model: Mlp, theta: ArrayLike, x: ArrayLike, y: ArrayLike,
              loss: Loss | str, damping: float, *, output_rows: ArrayLike | None = None,
              gram_mode: GramMode | str = "structured", form: SolveForm | str = "automatic",
              precision: SolvePrecision | str = "working", report: bool = False,
              stream: Stream | None = None) -> Array | tuple[Array, SolveReport]:
    """d = (F + damping I)^{-1} grad L, (p,); damping = lambda >= 0 in parameter space (the Gram
    side carries n lambda). report=True returns (d, SolveReport)."""

def direction_from_jacobian(ctx: Context, jacobian: ArrayLike, residual: ArrayLike,
                            damping: float, factor: ArrayLike | None = None, *,
                            precision: SolvePrecision | str = "working", report: bool = False,
                            stream: Stream | None = None) -> Array | tuple[Array, SolveReport]:
    """Bring your own Jacobian: d = A^T (A A^T + n lambda I)^{-1} u, A = M^T J, (p,).
    jacobian (N, p) sample-major rows (Fortran order used as is, C order copied); residual u (N,)
    or (n, k) one sample per row (as loss_factors returns it); factor None (M = I) or (n, k, k)
    with factor[i] = M_i. report=True returns (d, SolveReport)."""

@dataclass
class LossFactors:
    """Per sample i: H_i = M_i M_i^T, e_i = M_i u_i."""

    value: float
    gradient: Array
    factor: Array
    residual: Array
    natural_residual: Array | None
    curvature_inverse: Array | None

def loss_factors(ctx: Context, loss: Loss | str, outputs: ArrayLike, targets: ArrayLike, *,
                 stream: Stream | None = None) -> LossFactors:
    """The loss and its factors at outputs f (n, k)."""

# ---- optimizers -----------------------------------------------------------------------------

class StepSeconds:
    """Wall-clock seconds per stage (filled when time_stages is on)."""

    forward: float
    gram: float
    solve: float
    direction: float
    total: float

class StepReport:
    """What one step did (field names as in C++)."""

    loss_before: float
    loss_after: float
    predicted_reduction: float
    actual_reduction: float
    gain_ratio: float
    damping: float
    next_damping: float
    accepted: bool
    rejections: int
    cholesky_tries: int
    cholesky_info: int
    rung: Rung
    fallback_used: bool
    form: SolveForm
    gram_mode: GramMode
    solve_residual: float
    precision: SolvePrecision
    """The precision whose factorization gave the step: mixed when the float32 factor, refined,
    did; working otherwise (asked for, float32 data, or mixed's fallback)."""
    mixed_fallback: bool
    """mixed was asked and fell back to the float64 Cholesky."""
    refinement_iterations: int
    cg_iterations: int
    backward_error: float
    """|K alpha - u|_2 / (|K|_F |alpha|_2 + |u|_2) of the solve taken."""
    learning_rate: float
    step_limited: bool
    step_norm: float
    output_change: float
    seconds: StepSeconds

class NaturalGradient:
    """Damped natural gradient through the Gram matrix: theta <- theta - eta d."""

    def __init__(self, *, learning_rate: float = 1.0, damping: float = 1e-3,
                 policy: DampingPolicy | str = "fixed", gram_mode: GramMode | str = "structured",
                 form: SolveForm | str = "automatic", evaluate_after: bool = True,
                 time_stages: bool = False, rule: DampingRule | str = "nielsen",
                 damping_min: float = 1e-12, damping_max: float = 1e10, max_rejections: int = 10,
                 damping_raises: int = 3, raise_factor: float = 10.0,
                 fallback: Fallback | str = "pseudo_inverse", max_solve_residual: float = -1.0,
                 max_step_norm: float = ..., max_output_change: float = ...,
                 precision: SolvePrecision | str = "working",
                 deferred_checks: bool = True) -> None:
        """Raises InvalidArgument for inconsistent options. precision: of the damped solve
        (SolvePrecision); the StepReport says which gave the step. deferred_checks: a fixed-policy
        step in working precision reads its results back once (one host synchronisation on
        CUDA), redone on the host-driven path when a check or the first Cholesky fails."""
    @property
    def damping(self) -> float:
        """The damping the next step starts from."""
    @property
    def learning_rate(self) -> float: ...
    def step(self, ctx: Context, model: Mlp, theta: ArrayLike, x: ArrayLike, y: ArrayLike,
             loss: Loss | str, *, output_rows: ArrayLike | None = None,
             stream: Stream | None = None) -> StepReport:
        """Updates theta (a writable float32/float64 vector) in place; a step that raises leaves
        it unchanged. Synchronises."""

class GradientDescent:
    """theta <- theta - learning_rate grad L."""

    def __init__(self, *, learning_rate: float = 0.1, evaluate_after: bool = True,
                 deferred_checks: bool = True) -> None: ...
    @property
    def learning_rate(self) -> float: ...
    def step(self, ctx: Context, model: Mlp, theta: ArrayLike, x: ArrayLike, y: ArrayLike,
             loss: Loss | str, *, output_rows: ArrayLike | None = None,
             stream: Stream | None = None) -> StepReport: ...
