"""Every error type, its Python base classes and attributes, and theta left as it was after a
failed step (mirrors tests/errors_test.cpp and tests/robustness_test.cpp)."""

import ngd
import numpy as np
import pytest
from conftest import batch, small_mlp, targets
from ngd import _ngd

ALL = {
    "Error": (RuntimeError,),
    "InvalidArgument": (ngd.Error, ValueError),
    "NotCompiled": (ngd.Error,),
    "DeviceUnavailable": (ngd.Error,),
    "NonFiniteInput": (ngd.Error, ValueError),
    "NotPositiveDefinite": (ngd.Error,),
    "OutOfMemory": (ngd.Error, MemoryError),
    "CudaError": (ngd.Error,),
    "CublasError": (ngd.Error,),
    "CusolverError": (ngd.Error,),
}


@pytest.mark.parametrize("kind", sorted(ALL))
def test_every_cpp_exception_maps_to_its_class(kind):
    cls = getattr(ngd, kind)
    for base in ALL[kind]:
        assert issubclass(cls, base)
    with pytest.raises(cls) as e:
        _ngd._throw_for_test(kind)
    assert type(e.value) is cls and kind in str(e.value)
    attrs = {"NonFiniteInput": {"count": 3, "first_index": 7},
             "NotPositiveDefinite": {"info": 2, "order": 5, "damping": 0.25},
             "OutOfMemory": {"requested": 1024, "free": 512},
             "CudaError": {"code": 2}, "CublasError": {"status": 3},
             "CusolverError": {"status": 7}}.get(kind, {})
    for name, value in attrs.items():
        assert getattr(e.value, name) == value


def test_invalid_argument_names_function_argument_and_sizes(ctx):
    m = small_mlp()
    with pytest.raises(ngd.InvalidArgument, match="theta") as e:
        ngd.forward(ctx, m, np.zeros(m.n_params + 1), batch(3, 5))
    assert isinstance(e.value, ValueError)
    with pytest.raises(ngd.InvalidArgument, match="x"):
        ngd.forward(ctx, m, m.init(), batch(3, 4))


def test_non_finite_input(ctx):
    m = small_mlp()
    x = batch(4, 5)
    x[2, 1] = np.nan
    with pytest.raises(ngd.NonFiniteInput) as e:
        ngd.forward(ctx, m, m.init(), x)
    assert e.value.count == 1 and e.value.first_index == 2 * 5 + 1


def test_not_positive_definite_for_rank_deficient_j_at_zero_damping(ctx):
    m = ngd.deep_linear(2, 2, 1)  # p = 2 < N = 5: J J^T is singular
    with pytest.raises(ngd.NotPositiveDefinite) as e:
        ngd.direction(ctx, m, m.init(), batch(5, 2), targets("squared", 5, 1), "squared", 0.0,
                      form="factor")
    assert e.value.order == 5


def test_out_of_memory():
    huge = ngd.Mlp(1, [ngd.Layer(1 << 21, "identity"), ngd.Layer(1 << 21, "identity")])
    with pytest.raises(ngd.OutOfMemory) as e:
        huge.init()
    assert e.value.requested >= 8 << 42


def test_context_errors():
    if ngd.Context.cuda_available():
        pytest.skip("a CUDA device is usable here")
    with pytest.raises(ngd.DeviceUnavailable if ngd.with_cuda else ngd.NotCompiled):
        ngd.Context.cuda(0)
    with pytest.raises(ngd.InvalidArgument):
        ngd.Context.cpu(-1)


def test_enum_names_and_bad_names(ctx):
    m = small_mlp()
    x, y = batch(3, 5), targets("squared", 3, 3)
    assert ngd.loss(ctx, m, m.init(), x, y, "SQUARED") == ngd.loss(ctx, m, m.init(), x, y,
                                                                    ngd.Loss.squared)
    with pytest.raises(ngd.InvalidArgument, match="squared, logistic, softmax_cross_entropy"):
        ngd.loss(ctx, m, m.init(), x, y, "hinge")
    with pytest.raises(ngd.InvalidArgument, match="activation"):
        ngd.Layer(3, "swish")
    with pytest.raises(ngd.InvalidArgument, match="policy"):
        ngd.NaturalGradient(policy="adam")


@pytest.mark.parametrize("opt", [ngd.NaturalGradient(damping=1e-3), ngd.GradientDescent()])
def test_failed_step_leaves_theta_unchanged(ctx, opt):
    m = small_mlp()
    theta = m.init(seed=1)
    before = theta.copy()
    x = batch(4, 5)
    x[0, 0] = np.inf
    with pytest.raises(ngd.NonFiniteInput):
        opt.step(ctx, m, theta, x, targets("squared", 4, 3), "squared")
    np.testing.assert_array_equal(theta, before)


def test_failed_solve_without_fallback_leaves_theta_unchanged(ctx):
    m = ngd.deep_linear(2, 2, 1)
    theta = m.init()
    before = theta.copy()
    opt = ngd.NaturalGradient(damping=0.0, damping_raises=0, fallback="none", form="factor")
    with pytest.raises(ngd.NotPositiveDefinite):
        opt.step(ctx, m, theta, batch(5, 2), targets("squared", 5, 1), "squared")
    np.testing.assert_array_equal(theta, before)


def test_bad_options_and_read_only_theta(ctx):
    with pytest.raises(ngd.InvalidArgument):
        ngd.NaturalGradient(learning_rate=-1.0)
    with pytest.raises(ngd.InvalidArgument):
        ngd.NaturalGradient(damping_min=1.0, damping_max=0.5)
    m = small_mlp()
    theta = m.init()
    theta.flags.writeable = False
    with pytest.raises(ngd.InvalidArgument, match="theta"):
        ngd.GradientDescent().step(ctx, m, theta, batch(3, 5), targets("squared", 3, 3),
                                   "squared")
    with pytest.raises(ngd.InvalidArgument, match="float32 or float64"):
        ngd.forward(ctx, m, m.init().astype(np.float16), batch(3, 5))


def test_bad_enum_names_name_the_function_and_the_choices(ctx):
    m = small_mlp()
    x, y = batch(3, 5), targets("squared", 3, 3)
    cases = [
        (lambda: ngd.gram(ctx, m, m.init(), x, mode="dense"), "ngd.gram: argument 'mode'",
         "structured, explicit_jacobian"),
        (lambda: ngd.direction(ctx, m, m.init(), x, y, "squared", 0.1, form="lu"),
         "ngd.direction: argument 'form'", "automatic, factor, natural_residual"),
        (lambda: ngd.NaturalGradient().step(ctx, m, m.init(), x, y, "l1"),
         "ngd.NaturalGradient.step: argument 'loss'", "squared, logistic"),
        (lambda: ngd.NaturalGradient(rule="adam"), "ngd.NaturalGradient: argument 'rule'",
         "nielsen, martens"),
        (lambda: ngd.Layer(3, init="ones"), "ngd.Layer: argument 'init'", "gaussian, sign, zero"),
    ]
    for call, where, names in cases:
        with pytest.raises(ValueError, match=where) as e:
            call()
        assert isinstance(e.value, ngd.InvalidArgument) and names in str(e.value)


def test_shape_errors_from_cpp_say_what_they_mean_in_python_terms(ctx):
    m = small_mlp()
    theta = m.init()
    x, y = batch(6, 5), targets("squared", 6, 3)
    with pytest.raises(ngd.InvalidArgument, match=r"'inputs' must be 5 x 6 \(d x n\)") as e:
        ngd.forward(ctx, m, theta, x[:, :4])
    assert "'inputs' is x, and x of shape (n, d) is d x n" in str(e.value)
    for call in (lambda: ngd.loss(ctx, m, theta, x, y[:, :2], "squared"),
                 lambda: ngd.NaturalGradient().step(ctx, m, theta, x, y[:, :2], "squared"),
                 lambda: ngd.loss_factors(ctx, "squared", y, y[:, :2])):
        with pytest.raises(ValueError, match="got 2 x 6") as e:
            call()
        assert "'targets' is y, and y of shape (n, k) or (n,) is k x n" in str(e.value)
    with pytest.raises(ngd.InvalidArgument) as e:  # column-major arguments: no note
        ngd.damped_solve(ctx, np.eye(3), 0.1, np.ones(4))
    assert "Python terms" not in str(e.value)
