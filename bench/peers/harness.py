"""The command line, the timing loop and the result JSON shared by every peer (the printed summary
and the exit status come from finish). Only the standard library is needed to import it.
"""

import argparse
import json
import os
import platform
import statistics
import time

DEFAULT_TOL = {"f64": 1e-8, "f32": 1e-3}


def default_tol(exp, tol):
    """--tol when given, else the default for the export's precision."""
    return tol if tol is not None else DEFAULT_TOL[exp.precision]


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


def gib(x):
    return x * float(1 << 30)
