"""The agreement of a peer's step with ngd's, and the function every peer runs on an export
(check_and_time): the comparison of d, f and the loss, the float32 ReLU-kink ties (kink_ties)
decided by the same peer's float64 step on the same data, then the timing.
"""

import math

import numpy as np

import export
import harness


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
    for l, (layer, (w, b)) in enumerate(zip(exp.layers, export.layer_arrays(exp))):
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
    meta = dict(exp.meta, precision="f64", dtype="<f8")
    return export.Export(folder=exp.folder, meta=meta, dtype=np.dtype(np.float64),
                         layers=exp.layers, arrays=arrays)


def check(exp, bind, to_numpy, tol, catch):
    """The agreement of a peer's step with ngd's (compare()). bind(exp) -> (step, stages) binds
    the peer to an export; step() -> (new leaves, d, f, loss); catch as in check_and_time. A
    float32 check that fails where kink_ties finds ties is decided by the same peer's float64
    step on the same data against ngd's float64 direction (tolerance DEFAULT_TOL["f64"] of
    harness): the float32 step is not determined by the data at a tie, any summation order may
    flip it, so no float32 tolerance could judge it; the peer's algorithm still can be (and its
    float32 outputs f, which relu' does not touch, must still agree within tol). The float32
    errors stay in the result. What this cannot see is a float32-only error in the peer's Gram,
    solve or VJP on such an export: the small exports, which have no ties, are where the float32
    code paths are checked."""
    step, stages = bind(exp)
    _, d, f, value = step()
    d_theta = export.leaves_to_theta(exp, [to_numpy(g) for g in d])
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
        d64 = export.leaves_to_theta(exp64, [to_numpy(g) for g in d])
        del d, step64
        same_data = compare(exp64, d64, to_numpy(f), float(value), harness.DEFAULT_TOL["f64"])
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
        tol = harness.default_tol(exp, args.tol)
        agree, step, stages, error = check(exp, bind, to_numpy, tol, catch)
        result["agreement"] = agree
        if agree["pass"]:
            warm = max(args.warmup - 1, 0)
            seconds = {"step": harness.time_call(step, sync, warm, args.repeats, args.max_seconds)}
            if not args.no_stages and stages is not None:
                timing = (min(args.warmup, 1), args.repeats, args.max_seconds)
                for name, call in stages():
                    seconds[name] = harness.time_call(call, sync, *timing)
            result["seconds"] = seconds
        if error:
            result["error"] = error
    except Exception as e:  # noqa: BLE001 -- catch() decides; anything else is re-raised
        kind = catch(e)
        if kind is None:
            raise
        result[kind[0]] = kind[1]
