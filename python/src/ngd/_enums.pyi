"""Type stubs of ngd's enums (re-exported by the package; see __init__.pyi). Every argument that
takes one also takes its lowercase name."""

import enum

class Backend(enum.Enum):
    reference = 0
    cuda = 1
    cpu = 2

class MemorySpace(enum.Enum):
    host = 0
    device = 1

class Activation(enum.Enum):
    """relu'(0) = 0; softplus(z) = log(1 + e^z); gelu is the exact z Phi(z)."""

    identity = 0
    relu = 1
    tanh = 2
    softplus = 3
    gelu = 4

class Parameterization(enum.Enum):
    """standard: z = W a + b; ntk: z = W a / sqrt(n_in) + b."""

    standard = 0
    ntk = 1

class Init(enum.Enum):
    """gaussian: N(0, scale^2); sign: +-scale with equal probability; zero: all zeros."""

    gaussian = 0
    sign = 1
    zero = 2

class Loss(enum.Enum):
    """squared: 1/2 |f - y|^2; logistic: log(1 + e^{-s f}), s = 2y - 1, y in {0, 1}, k = 1;
    softmax_cross_entropy: -log softmax(f)_y, y a class index."""

    squared = 0
    logistic = 1
    softmax_cross_entropy = 2

class GramMode(enum.Enum):
    """structured: sum over layers of input Gram o seed Gram, J never formed; explicit_jacobian:
    rows of A in column blocks (Context.memory_budget), then A A^T."""

    structured = 0
    explicit_jacobian = 1

class SolveForm(enum.Enum):
    """factor: (A A^T + n lambda I) alpha = u, d = A^T alpha (any loss); natural_residual:
    (J J^T + n lambda H^-1) beta = H^-1 e, d = J^T beta (squared, logistic); automatic: logistic
    -> natural_residual (unless n lambda H^-1 overflows), else factor."""

    automatic = 0
    factor = 1
    natural_residual = 2

class SolvePrecision(enum.Enum):
    """The precision of the damped solve's Cholesky. working: the data's (the default). mixed: for
    float64 data, K is factored in float32 (about twice as fast on a CPU, more on GPUs with slow
    float64) and the solution refined in float64 until its backward error is that of a float64
    Cholesky; where refinement stagnates, conjugate gradients preconditioned by the float32 factor
    continue (SolveReport.cg_iterations); where the float32 factorization fails or both stagnate
    (kappa(K) beyond about 1e9, e.g. a small damping), the float64 Cholesky gives the solution and
    the report says so. mixed_tf32: as mixed, with a blocked factor whose trailing updates run on
    TF32 tensor cores (CUDA sm_80+; emulated on the CPU backends), accurate to about 1e-4: useful
    for kappa(K) up to about 1e4-1e5. For float32 data both are the working solve."""

    working = 0
    mixed = 1
    mixed_tf32 = 2

class DampingPolicy(enum.Enum):
    """fixed: lambda as given; levenberg_marquardt: lambda adapts to the gain ratio and uphill
    tries are rejected and re-solved with a larger lambda."""

    fixed = 0
    levenberg_marquardt = 1

class DampingRule(enum.Enum):
    nielsen = 0
    martens = 1

class Fallback(enum.Enum):
    """What the last rung of the Cholesky failure ladder does."""

    none = 0
    pseudo_inverse = 1

class Rung(enum.Enum):
    """Which rung of the failure ladder gave the step."""

    cholesky = 0
    raised_damping = 1
    pseudo_inverse = 2
