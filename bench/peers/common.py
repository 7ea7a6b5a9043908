"""Shared by the PyTorch, JAX and neural-tangents peers: the step_export format, the model and loss
factors of include/ngd (written once over a small `ops` adapter, so every framework computes the
same function with the same parameter layout), the comparison with ngd's direction, the choice of
Jacobian blocks, the timing loop and the result JSON. Only numpy is needed to import it.
"""

import argparse
import dataclasses
import json
import math
import os
import platform
import statistics
import time

import numpy as np

FORMAT = "ngd-step-export/1"
DEFAULT_TOL = {"f64": 1e-8, "f32": 1e-3}


@dataclasses.dataclass
class Layer:
    n_in: int
    n_out: int
    activation: str
    bias: bool
    trainable: bool
    weight_offset: int
    bias_offset: int
    weight_multiplier: float
    bias_multiplier: float


@dataclasses.dataclass
class Export:
    """One step_export folder: meta.json plus its arrays (column-major, as ngd holds them)."""

    folder: str
    meta: dict
    dtype: np.dtype
    layers: list
    arrays: dict  # name -> numpy array (rows x cols, Fortran order); missing files absent

    def __getattr__(self, name):
        meta = self.__dict__.get("meta", {})
        if name in meta:
            return meta[name]
        raise AttributeError(name)

    @property
    def precision(self):
        return self.meta["precision"]

    @property
    def last_width(self):
        return self.layers[-1].n_out


def load_export(folder):
    with open(os.path.join(folder, "meta.json")) as f:
        meta = json.load(f)
    if meta.get("format") != FORMAT:
        raise ValueError(f"{folder}: not a {FORMAT} export (format {meta.get('format')!r})")
    dtype = np.dtype(meta["dtype"])
    arrays = {}
    for name, spec in meta["files"].items():
        file_dtype = np.dtype(spec.get("dtype", meta["dtype"]))
        path = os.path.join(folder, spec["file"])
        flat = np.fromfile(path, dtype=file_dtype)
        if flat.size != spec["rows"] * spec["cols"]:
            raise ValueError(
                f"{path}: {flat.size} values, expected {spec['rows']} x {spec['cols']}"
            )
        arrays[name] = flat.reshape((spec["rows"], spec["cols"]), order="F")
    layers = [Layer(**layer) for layer in meta["layers"]]
    return Export(folder=folder, meta=meta, dtype=dtype, layers=layers, arrays=arrays)


# ---- parameters: theta <-> per-layer arrays ------------------------------------------------------


def layer_arrays(exp):
    """[(W_l (n_out x n_in), b_l or None)] from theta, in the layout of include/ngd/model.hpp."""
    theta = exp.arrays["theta"][:, 0]
    out = []
    for layer in exp.layers:
        size = layer.n_out * layer.n_in
        w = theta[layer.weight_offset : layer.weight_offset + size]
        w = np.ascontiguousarray(w.reshape((layer.n_out, layer.n_in), order="F"))
        b = (
            theta[layer.bias_offset : layer.bias_offset + layer.n_out].copy()
            if layer.bias
            else None
        )
        out.append((w, b))
    return out


def trainable_leaves(exp):
    """What the peers differentiate: W_l then b_l of each trainable layer, in theta order."""
    leaves = []
    for layer, (w, b) in zip(exp.layers, layer_arrays(exp)):
        if layer.trainable:
            leaves.append(w)
            if b is not None:
                leaves.append(b)
    return leaves


def frozen_arrays(exp):
    """(W, b) of each frozen layer (None for trainable ones): constants of the peers' models."""
    return [None if layer.trainable else wb for layer, wb in zip(exp.layers, layer_arrays(exp))]


def leaves_to_theta(exp, leaves):
    """A p-vector (float64) in theta order from per-leaf arrays; frozen entries are zero."""
    theta = np.zeros(exp.meta["p"], dtype=np.float64)
    it = iter(leaves)
    for layer in exp.layers:
        if not layer.trainable:
            continue
        w = np.asarray(next(it), dtype=np.float64).reshape(layer.n_out, layer.n_in)
        theta[layer.weight_offset : layer.weight_offset + w.size] = w.ravel(order="F")
        if layer.bias:
            theta[layer.bias_offset : layer.bias_offset + layer.n_out] = np.asarray(
                next(it)
            ).ravel()
    return theta


def batch_arrays(exp):
    """Sample-major numpy arrays: X (n x d); Y: squared n x k, logistic n (0/1), softmax n (int);
    SEL: n x d_L one-hot output rows for matrix factorization, else None."""
    x = np.ascontiguousarray(exp.arrays["inputs"].T)
    t = exp.arrays["targets"]
    if exp.loss == "squared":
        y = np.ascontiguousarray(t.T)
    elif exp.loss == "logistic":
        y = np.ascontiguousarray(t[0])
    else:
        y = t[0].astype(np.int64)
    sel = None
    if exp.selects_output_row:
        rows = exp.arrays["output_rows"][0].astype(np.int64)
        sel = np.zeros((exp.n, exp.last_width), dtype=exp.dtype)
        sel[np.arange(exp.n), rows] = 1
    return x, y, sel


# ---- the model and the loss factors, over an ops adapter ----------------------------------------
# ops provides: relu, tanh, gelu (exact), exp, log1p, abs, sqrt, einsum, logsumexp (last axis,
# keepdims), one_hot(labels, k), eye(k).


def softplus(ops, z):
    """log(1 + e^z) without overflow, exact to rounding (framework versions switch to z at 20)."""
    return ops.relu(z) + ops.log1p(ops.exp(-ops.abs(z)))


def activation(ops, name, z):
    if name == "identity":
        return z
    if name == "relu":
        return ops.relu(z)
    if name == "tanh":
        return ops.tanh(z)
    if name == "softplus":
        return softplus(ops, z)
    if name == "gelu":
        return ops.gelu(z)
    raise ValueError(f"unknown activation {name!r}")


def forward_sample(exp, ops, leaves, frozen, x, sel):
    """f(x) (k,) for one sample x (d,): z_l = w_l W_l a + b_l, a_l = act(z_l), f = scale * a_L;
    matrix factorization keeps the entry that the one-hot `sel` names."""
    a = x
    it = iter(leaves)
    for layer, const in zip(exp.layers, frozen):
        w, b = (next(it), next(it) if layer.bias else None) if const is None else const
        z = (w @ a) * layer.weight_multiplier
        if b is not None:
            z = z + b * layer.bias_multiplier
        a = activation(ops, layer.activation, z)
    f = a * exp.output_scale
    if sel is not None:
        f = (f * sel).sum(-1, keepdims=True)
    return f


def loss_factors(exp, ops, f, y):
    """(L, M, u) for outputs f (n x k): M is None (identity, squared) or n x k x k with block i =
    M_i; u is n x k; e_i = M_i u_i and H_i = M_i M_i^T (DESIGN.md section 1)."""
    n = f.shape[0]
    if exp.loss == "squared":
        u = f - y
        return (u * u).sum() / (2 * n), None, u
    if exp.loss == "logistic":
        s = 2 * y[:, None] - 1
        m = s * f
        sp_pos, sp_neg = softplus(ops, m), softplus(ops, -m)  # -log sig(m), -log sig(-m)
        value = sp_neg.sum() / n
        big_m = ops.exp(-0.5 * (sp_pos + sp_neg))  # sqrt(sig(m) sig(-m))
        u = -s * ops.exp(-0.5 * m)  # -s sqrt(sig(-m) / sig(m))
        return value, big_m[:, :, None], u
    k = f.shape[1]
    log_p = f - ops.logsumexp(f)
    p, sqrt_p = ops.exp(log_p), ops.exp(0.5 * log_p)
    onehot = ops.one_hot(y, k)
    value = -(onehot * log_p).sum() / n
    big_m = sqrt_p[:, :, None] * ops.eye(k) - p[:, :, None] * sqrt_p[:, None, :]
    return value, big_m, (p - onehot) / sqrt_p


def apply_mt(ops, big_m, jac):
    """A = M^T J per sample: jac (c x k x P) -> (c x k x P); M None is the identity."""
    if big_m is None:
        return jac
    return ops.einsum("nca,ncp->nap", big_m, jac)


def apply_m(ops, big_m, alpha):
    """M alpha per sample (n x k): the cotangent whose VJP is A^T alpha = J^T M alpha."""
    if big_m is None:
        return alpha
    return ops.einsum("nca,na->nc", big_m, alpha)


# ---- the structured algorithm, written by hand (the honest yardstick of DESIGN.md section 6) ----
# ops additionally provides: act_prime(name, z) (the activation's derivative, through the
# framework's own forward-mode AD) and ones(shape).


def forward_batch(exp, ops, leaves, frozen, x, sel):
    """f (n x k) for the batch x (n x d), and per layer (W_l, its input a_{l-1} (n x d_{l-1}), z_l
    (n x d_l)): the same function as forward_sample, batched by matmuls."""
    a, kept = x, []
    it = iter(leaves)
    for layer, const in zip(exp.layers, frozen):
        w, b = (next(it), next(it) if layer.bias else None) if const is None else const
        z = (a @ w.T) * layer.weight_multiplier
        if b is not None:
            z = z + b * layer.bias_multiplier
        kept.append((w, a, z))
        a = activation(ops, layer.activation, z)
    f = a * exp.output_scale
    if sel is not None:
        f = (f * sel).sum(-1, keepdims=True)
    return f, kept


def structured_gram(exp, ops, kept, sel, big_m):
    """K - n lambda I = A A^T by ngd's structured algorithm, both triangles: per trainable layer l
    the input Gram S_l = w_l^2 a_{l-1} a_{l-1}^T + b_l^2 (n x n) and the seed Gram D_l D_l^T
    (N x N, D_l = d(M^T f)/dz_l, N x d_l), their elementwise product (S_l expanded over the k x k
    blocks of a sample pair), summed over layers. J is never formed."""
    n, k = kept[0][1].shape[0], exp.k
    big_n = n * k
    # Seeds at the last layer, n x k x d_L: M^T d f / d z_L with f = scale a_L (or its row sel_i).
    z_last = kept[-1][2]
    if sel is not None:
        out = (exp.output_scale * sel)[:, None, :]
    else:
        out = exp.output_scale * ops.eye(k)[None, :, :] * ops.ones((n, 1, 1))
    seed = apply_mt(ops, big_m, out) * ops.act_prime(exp.layers[-1].activation, z_last)[:, None, :]
    gram = None
    for l in range(len(exp.layers) - 1, -1, -1):
        layer, (w, a_in, _) = exp.layers[l], kept[l]
        if layer.trainable:
            s = (layer.weight_multiplier**2) * (a_in @ a_in.T)
            if layer.bias:
                s = s + layer.bias_multiplier**2
            d = seed.reshape(big_n, layer.n_out)
            term = (s[:, None, :, None] * (d @ d.T).reshape(n, k, n, k)).reshape(big_n, big_n)
            gram = term if gram is None else gram + term
        if l > 0:
            z_prev = kept[l - 1][2]
            act = ops.act_prime(exp.layers[l - 1].activation, z_prev)
            seed = (seed @ w) * layer.weight_multiplier * act[:, None, :]
    return gram


def structured_cost(exp):
    """Flops of the hand-written structured step (a multiply-add is 2): per trainable layer the
    input Gram (2 n^2 d_{l-1}) and the seed Gram (2 N^2 d_l) as full matmuls, the Cholesky and the
    two triangular solves."""
    n, big_n = exp.n, exp.N
    gram = sum(
        2.0 * n * n * layer.n_in + 2.0 * big_n * big_n * layer.n_out
        for layer in exp.layers
        if layer.trainable
    )
    return {
        "chunk": n,
        "blocks": 1,
        "gram_flops": gram,
        "solve_flops": big_n**3 / 3 + 2.0 * big_n**2,
        "jacobian_rows": 0,
    }


# ---- Jacobian blocks and cost -------------------------------------------------------------------


def choose_chunk(exp, budget_bytes, forced=None):
    """Samples per Jacobian block: the largest divisor of n whose block of A (chunk k x p rows) fits
    three times (two resident blocks, one transient) in budget_bytes; `forced` must divide n."""
    n, k, p = exp.n, exp.k, exp.p_trainable
    if forced:
        if n % forced:
            raise ValueError(f"--chunk {forced} does not divide n = {n}")
        return forced
    rows = max(1, int(budget_bytes // (3 * k * p * exp.dtype.itemsize)))
    return max(c for c in range(1, min(n, rows) + 1) if n % c == 0)


def cost(exp, chunk):
    """Flops the peers execute (a multiply-add is 2): the explicit Gram over the computed blocks,
    the Cholesky, the two triangular solves; and the Jacobian rows computed."""
    n_blocks, rows = exp.n // chunk, chunk * exp.k
    pairs = n_blocks * (n_blocks + 1) // 2
    big_n, p = exp.N, exp.p_trainable
    jac_rows = big_n if n_blocks == 1 else pairs * rows + big_n  # + the VJP pass (as N rows)
    return {
        "chunk": chunk,
        "blocks": n_blocks,
        "gram_flops": 2.0 * pairs * rows * rows * p,
        "solve_flops": big_n**3 / 3 + 2.0 * big_n**2,
        "jacobian_rows": jac_rows,
    }


# ---- agreement -----------------------------------------------------------------------------------


def relative_error(a, b):
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    denom = np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / denom) if denom > 0 else float(np.linalg.norm(a - b))


def compare(exp, d_peer, f_peer, loss_peer, tol):
    """The peer's step against ngd's: normwise relative errors of d, f and the loss; in float32
    also each side against ngd's float64 direction on the same data."""
    d_ngd = exp.arrays["direction"][:, 0]
    frozen = np.ones(exp.p, dtype=bool)
    for layer in exp.layers:
        if layer.trainable:
            size = layer.n_out * layer.n_in + (layer.n_out if layer.bias else 0)
            frozen[layer.weight_offset : layer.weight_offset + size] = False
    out = {
        "rel_err_direction": relative_error(d_peer, d_ngd),
        "max_abs_err_direction": float(np.max(np.abs(d_peer - d_ngd.astype(np.float64)))),
        "rel_err_outputs": relative_error(f_peer, exp.arrays["outputs"].T),
        "rel_err_loss": abs(float(loss_peer) - exp.loss_value) / max(abs(exp.loss_value), 1e-300),
        "ngd_frozen_max_abs": float(np.max(np.abs(d_ngd[frozen]))) if frozen.any() else 0.0,
        "tol": tol,
    }
    if "direction_f64" in exp.arrays:
        d64 = exp.arrays["direction_f64"][:, 0]
        out["rel_err_peer_vs_f64"] = relative_error(d_peer, d64)
        out["rel_err_ngd_vs_f64"] = relative_error(d_ngd, d64)
    out["pass"] = bool(out["rel_err_direction"] <= tol and out["ngd_frozen_max_abs"] == 0.0)
    return out


def _activation_np(name, z):
    """The activations in float64 numpy, for kink_ties (gelu through math.erf)."""
    if name == "identity":
        return z
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "tanh":
        return np.tanh(z)
    if name == "softplus":
        return np.logaddexp(0.0, z)
    if name == "gelu":
        return 0.5 * z * (1.0 + np.vectorize(math.erf)(z / math.sqrt(2.0)))
    raise ValueError(f"unknown activation {name!r}")


def kink_ties(exp, examples=5):
    """ReLU pre-activations z that the export's own precision cannot place on either side of the
    kink: |z| (computed in float64 from the export's data) below a bound on the rounding error
    of z computed in that precision, where relu'(z) -- hence that sample's row of J -- depends
    on the summation order. Bound, per layer (u the unit roundoff, gamma_m = m u / (1 - m u), w
    and v the layer's weight and bias multipliers): r_l = gamma_(d_{l-1}+1) (|w| |W_l| |a_{l-1}|
    + |v| |b_l|) + |w| |W_l| e_{l-1}, with e_l the propagated error of a_l (every activation
    here is 1-Lipschitz but gelu, 1.13). A worst-case bound: most units it counts round to the
    same side everywhere; a tie that does not is a flipped relu' for one sample, which moves d
    by far more than any rounding tolerance (10^-2 on config b in float32, docs/performance.md).
    Returns {"count", "per_layer", "unit_roundoff", "examples"} (the ties with the smallest |z|
    / radius first)."""
    unit = float(np.finfo(exp.dtype).eps) / 2
    a = exp.arrays["inputs"].T.astype(np.float64)
    err = np.zeros_like(a)
    per_layer, found = [], []
    for l, (layer, (w, b)) in enumerate(zip(exp.layers, layer_arrays(exp))):
        w = w.astype(np.float64)
        wm, gamma = abs(layer.weight_multiplier), (layer.n_in + 1) * unit
        gamma /= 1 - gamma
        z = layer.weight_multiplier * (a @ w.T)
        size = wm * (np.abs(a) @ np.abs(w).T)
        if b is not None:
            z += layer.bias_multiplier * b.astype(np.float64)
            size += abs(layer.bias_multiplier) * np.abs(b.astype(np.float64))
        radius = gamma * size + wm * (err @ np.abs(w).T)
        tied = np.abs(z) <= radius if layer.activation == "relu" else np.zeros(z.shape, bool)
        per_layer.append(int(tied.sum()))
        found += [{"layer": l, "sample": int(i), "unit": int(j), "z": float(z[i, j]),
                   "radius": float(radius[i, j])} for i, j in zip(*np.nonzero(tied))]
        found = sorted(found, key=lambda t: abs(t["z"]) / t["radius"])[:examples]
        a = _activation_np(layer.activation, z)
        err = (1.13 if layer.activation == "gelu" else 1.0) * radius + unit * np.abs(a)
    return {"count": sum(per_layer), "per_layer": per_layer, "unit_roundoff": unit,
            "examples": found}


def as_float64(exp):
    """The same export as a float64 problem: its (float32-valued) arrays widened, and ngd's float64
    direction on that data (direction_f64) as the direction to compare with."""
    arrays = {k: v.astype(np.float64) for k, v in exp.arrays.items()}
    arrays["direction"] = arrays.pop("direction_f64")
    return Export(folder=exp.folder, meta=dict(exp.meta, precision="f64", dtype="<f8"),
                  dtype=np.dtype(np.float64), layers=exp.layers, arrays=arrays)


def check(exp, bind, to_numpy, tol, catch):
    """The agreement of a peer's step with ngd's (compare()). bind(exp) -> (step, stages) binds
    the peer to an export; step() -> (new leaves, d, f, loss); catch as in check_and_time. A
    float32 check that fails where kink_ties finds ties is decided by the same peer's float64
    step on the same data against ngd's float64 direction (tolerance DEFAULT_TOL["f64"]): the
    float32 step is not determined by the data at a tie, any summation order may flip it, so no
    float32 tolerance could judge it; the peer's algorithm still can be (and its float32 outputs
    f, which relu' does not touch, must still agree within tol). The float32 errors stay in the
    result. What this cannot see is a float32-only error in the peer's Gram, solve or VJP on
    such an export: the small exports, which have no ties, are where the float32 code paths are
    checked."""
    step, stages = bind(exp)
    _, d, f, value = step()
    d_theta = leaves_to_theta(exp, [to_numpy(g) for g in d])
    agree = compare(exp, d_theta, to_numpy(f), float(value), tol)
    del d, f
    if not np.all(np.isfinite(d_theta)):
        return agree, step, stages, "non-finite direction (a failed Cholesky gives NaN in JAX)"
    if agree["pass"] or exp.precision != "f32" or "direction_f64" not in exp.arrays:
        return agree, step, stages, None
    ties = kink_ties(exp)
    agree["kink_ties"] = ties
    if ties["count"] == 0:
        return agree, step, stages, None
    exp64 = as_float64(exp)
    try:  # a second runner, beside the float32 one that is timed next
        step64, _ = bind(exp64)
        _, d, f, value = step64()
        d64 = leaves_to_theta(exp64, [to_numpy(g) for g in d])
        del d, step64
        same_data = compare(exp64, d64, to_numpy(f), float(value), DEFAULT_TOL["f64"])
    except Exception as e:  # noqa: BLE001 -- catch() decides, as for the float32 step
        kind = catch(e)
        if kind is None:
            raise
        agree["float64_same_data"] = {kind[0]: kind[1], "pass": False}
        return agree, step, stages, None
    agree["float64_same_data"] = same_data
    agree["pass_float32"] = False
    # The float32 forward pass is still checked in float32: f does not depend on relu'.
    agree["pass"] = same_data["pass"] and agree["rel_err_outputs"] <= tol
    if agree["pass"]:
        agree["passed_by"] = "float64 step on the same data (float32 ties at a ReLU kink)"
    return agree, step, stages, None


def check_and_time(result, exp, args, bind, sync, to_numpy, catch):
    """What every peer does with an export: check its step against ngd's (check()), then, when it
    agrees, time the step and (unless --no-stages) each stage; fills result["agreement"],
    result["seconds"], or result["error"] / result["out_of_memory"]. stages() yields
    (name, call) pairs in order (the values a later stage needs are computed between yields).
    catch(e) maps an exception to ("error" | "out_of_memory", message), or None to re-raise it.
    The checked step is the first warm-up call; one warm-up (JAX's compilation) per stage."""
    try:
        tol = default_tol(exp, args.tol)
        agree, step, stages, error = check(exp, bind, to_numpy, tol, catch)
        result["agreement"] = agree
        if agree["pass"]:
            warm = max(args.warmup - 1, 0)
            seconds = {"step": time_call(step, sync, warm, args.repeats, args.max_seconds)}
            if not args.no_stages and stages is not None:
                timing = (min(args.warmup, 1), args.repeats, args.max_seconds)
                for name, call in stages():
                    seconds[name] = time_call(call, sync, *timing)
            result["seconds"] = seconds
        if error:
            result["error"] = error
    except Exception as e:  # noqa: BLE001 -- catch() decides; anything else is re-raised
        kind = catch(e)
        if kind is None:
            raise
        result[kind[0]] = kind[1]


# ---- timing --------------------------------------------------------------------------------------


def time_call(fn, sync, warmup, repeats, max_seconds):
    """Device-synchronised wall-clock seconds of fn(): `warmup` untimed calls (compilation,
    allocator warm-up), then `repeats` timed ones, or fewer once the timed calls have taken
    max_seconds (at least one is always timed)."""
    warm = []
    for _ in range(warmup):
        start = time.perf_counter()
        sync(fn())
        warm.append(time.perf_counter() - start)
    timed = []
    while len(timed) < max(repeats, 1) and (not timed or sum(timed) < max_seconds):
        sync(None)
        start = time.perf_counter()
        sync(fn())
        timed.append(time.perf_counter() - start)
    return {
        "median": statistics.median(timed),
        "min": min(timed),
        "repeats": timed,
        "warmup": warm,
    }


# ---- command line and result file ----------------------------------------------------------------


def parser(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("export", help="folder written by step_export")
    p.add_argument("--out", help="write the result JSON here (default: print only)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "gpu"])
    p.add_argument("--repeats", type=int, default=5, help="timed calls per quantity (median)")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls first (compile, caches)")
    p.add_argument(
        "--max-seconds",
        type=float,
        default=20.0,
        help="fewer repeats (at least one) when the warm-up says they would exceed this",
    )
    p.add_argument(
        "--max-gram-flops",
        type=float,
        default=1e15,
        help="skip (check and timing) above this explicit-Gram cost: M4096 needs 3e15",
    )
    p.add_argument(
        "--memory-budget-gb",
        type=float,
        default=None,
        help="bytes for Jacobian blocks (default: half the free device memory, CPU 2)",
    )
    p.add_argument(
        "--chunk",
        type=int,
        default=None,
        help="samples per Jacobian block (must divide n; default from the budget)",
    )
    p.add_argument(
        "--tol",
        type=float,
        default=None,
        help="max relative error of d vs ngd (default 1e-8 f64, 1e-3 f32)",
    )
    p.add_argument("--no-stages", action="store_true", help="time the whole step only")
    p.add_argument("--learning-rate", type=float, default=1.0, help="eta of theta <- theta - eta d")
    return p


def base_result(exp, peer, versions, device):
    return {
        "peer": peer,
        "versions": versions,
        "device": device,
        "host": platform.node(),
        "config": exp.config,
        "model": exp.model,
        "loss": exp.loss,
        "precision": exp.precision,
        "damping": exp.damping,
        "n": exp.n,
        "k": exp.k,
        "N": exp.N,
        "p": exp.p,
        "p_trainable": exp.p_trainable,
        "export": {"backend": exp.backend, "device": exp.device, "ngd_seconds": exp.ngd_seconds},
    }


def finish(result, path):
    """Prints a summary and writes the JSON; returns the process exit status."""
    agree = result.get("agreement", {})
    if agree:
        print(
            f"{result['peer']} {result['config']} n={result['n']} {result['precision']}: "
            f"rel err d {agree['rel_err_direction']:.3e} (tol {agree['tol']:.0e}), "
            f"f {agree['rel_err_outputs']:.3e}, loss {agree['rel_err_loss']:.3e} -> "
            f"{'agree' if agree['pass'] else 'DISAGREE'}"
        )
    if "kink_ties" in agree:
        count = agree["kink_ties"]["count"]
        line = f"  {count} ReLU pre-activations within float32 rounding of the kink"
        same = agree.get("float64_same_data")
        if same and "rel_err_direction" in same:
            line += (
                f"; float64 step on the same data: rel err d {same['rel_err_direction']:.3e} "
                f"(tol {same['tol']:.0e}) -> {'agree' if same['pass'] else 'DISAGREE'}"
            )
        elif same:
            line += f"; float64 step on the same data failed: {same}"
        print(line)
    for name, t in result.get("seconds", {}).items():
        print(f"  {name:>14}: median {t['median'] * 1e3:10.3f} ms over {len(t['repeats'])}")
    if "skipped" in result:
        print(f"  skipped: {result['skipped']}")
    if "error" in result:
        print(f"  error: {result['error']}")
    if "out_of_memory" in result:  # a result (the peer cannot run this size), not a failure
        print(f"  out of memory: {result['out_of_memory']}")
    if path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w") as f:
            json.dump(result, f, indent=1, sort_keys=True)
    if "error" in result or (agree and not agree["pass"]):
        return 1
    return 0


def default_tol(exp, tol):
    return tol if tol is not None else DEFAULT_TOL[exp.precision]


def too_costly(exp, chunk, max_flops):
    c = cost(exp, chunk)
    if c["gram_flops"] > max_flops:
        return f"explicit Gram {c['gram_flops']:.2e} flop > --max-gram-flops {max_flops:.0e}"
    return None


def gib(x):
    return x * float(1 << 30)
