"""The scaling part of scripts/perf_tables.py: reads the JSON lines that scripts/gpu-scaling writes
(one per point: step time against N or p, per stage, per Gram mode) and renders where each mode
stopped, the time against size, and the stages as Markdown tables, and as PNG figures when
matplotlib can be imported. Standard library only otherwise.
"""

import json
import os

FORMAT = "ngd-scaling/1"
SWEEPS = ["n", "p"]
MODES = ["structured", "explicit", "explicit_whole_j"]
PRECISIONS = ["f64", "f32"]
STAGES = ["forward", "gram", "solve", "direction"]
WHY = {
    "out_of_memory": "out of memory",
    "timeout": "time limit",
    "predicted_timeout": "time limit (predicted)",
    "budget": "run's budget",
    "error": "error",
}
SHORT = {
    "out_of_memory": "OOM",
    "timeout": "time",
    "predicted_timeout": "time*",
    "budget": "budget",
    "error": "error",
}
# What a skeleton lists: the series scripts/gpu-scaling runs by default.
DEFAULT_SERIES = [("n", c, pr, m) for c in "ZM" for pr in PRECISIONS for m in MODES[:2]] + [
    ("p", "Z", pr, m) for pr in PRECISIONS for m in MODES
]


def read_jsonl(path):
    """The scaling records of one .jsonl file (other lines are ignored)."""
    records = []
    with open(path) as f:
        for line in f:
            try:
                r = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(r, dict) and r.get("format") == FORMAT:
                records.append(r)
    return records


def series_of(r):
    return (r["sweep"], r["config"], r["precision"], r["mode"])


def series_order(key):
    sweep, config, precision, mode = key
    return (
        SWEEPS.index(sweep),
        "ZM".find(config) % 3,
        PRECISIONS.index(precision),
        MODES.index(mode) if mode in MODES else 9,
    )


def size_of(r):
    """What a sweep grows: N for the n sweep, p for the p sweep."""
    return r["N"] if r["sweep"] == "n" else r["p"]


def by_series(records):
    """Series -> its points sorted by size, the last record of a repeated point winning."""
    points = {}
    for r in records:
        points[series_of(r) + (size_of(r),)] = r
    out = {}
    for key in sorted(points, key=lambda k: (series_order(k[:4]), k[4])):
        out.setdefault(key[:4], []).append(points[key])
    return out


def count(x):
    """12845056 -> 12.8M: p compact in headers, N (at most 65 536) exact."""
    for div, unit in ((1e9, "G"), (1e6, "M")):
        if x >= div:
            return f"{x / div:.3g}{unit}"
    return str(x)


def ms(seconds):
    return f"{seconds * 1e3:.3g}" if seconds is not None else "—"


def point_name(r):
    if r["sweep"] == "n":
        return f"N = {r['N']}"
    return f"p = {r['p']}" + (f" (m = {r['m']})" if "m" in r else "")


def limits_table(series, skeleton):
    rows = [
        "| sweep | config | prec | mode | largest run | its ms | stopped at | why | device |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    keys = list(series) or (DEFAULT_SERIES if skeleton else [])
    for key in keys:
        points = series.get(key, [])
        ok = [r for r in points if r["status"] == "ok"]
        stop = next((r for r in points if r["status"] != "ok"), None)
        best = ok[-1] if ok else None
        largest = point_name(best) if best else "—"
        stopped = point_name(stop) if stop else ("—" if not points else "— (all ran)")
        why = WHY.get(stop["status"], stop["status"]) if stop else "—"
        device = (points[0].get("device") or "—") if points else "—"
        t = best["seconds"].get("total") if best else None
        rows.append(
            f"| {key[0]} | {key[1]} | {key[2]} | {key[3]} | {largest} | {ms(t)} | {stopped} | "
            f"{why} | {device} |"
        )
    return "\n".join(rows)


def time_table(series, sweep, config):
    """Milliseconds of ngd::direction: a row per precision and mode, a column per size."""
    keys = [k for k in series if k[0] == sweep and k[1] == config]
    sizes = sorted({size_of(r) for k in keys for r in series[k]})
    label = "N" if sweep == "n" else "p"
    rows = [
        "| prec | mode | " + " | ".join(f"{label} = {count(s)}" for s in sizes) + " |",
        "|---|---|" + "---|" * len(sizes),
    ]
    for key in keys:
        cells = {size_of(r): r for r in series[key]}
        line = []
        for s in sizes:
            r = cells.get(s)
            if r is None:
                line.append("·")
            elif r["status"] == "ok":
                line.append(ms(r["seconds"].get("total")))
            else:
                line.append(SHORT.get(r["status"], r["status"]))
        rows.append(f"| {key[2]} | {key[3]} | " + " | ".join(line) + " |")
    return "\n".join(rows)


def stage_table(series):
    rows = [
        "| sweep | config | prec | mode | n | N | p | "
        + " | ".join(STAGES)
        + " | step | ngd::direction |",
        "|---|---|---|---|---|---|---|" + "---|" * (len(STAGES) + 2),
    ]
    for key, points in series.items():
        for r in points:
            if r["status"] != "ok":
                continue
            sec = r["seconds"]
            stages = [ms(sec.get(s)) for s in STAGES + ["step"]]
            if r.get("stage_status") == "out_of_memory":
                stages = ["step: OOM"] + [""] * len(STAGES)
            rows.append(
                f"| {key[0]} | {key[1]} | {key[2]} | {key[3]} | {r['n']} | {r['N']} | {r['p']} | "
                + " | ".join(stages)
                + f" | {ms(sec.get('total'))} |"
            )
    if len(rows) == 2:
        rows.append("|" + " — |" * (len(STAGES) + 9))
    return "\n".join(rows)


def tables(records, skeleton=False):
    """The Markdown of the scaling results (records from read_jsonl)."""
    series = by_series(records)
    devices = sorted({r.get("device") or "?" for r in records})
    small = any(r.get("small") for r in records)
    parts = [
        "#### Scaling: environment\n\n"
        + ("- devices: " + "; ".join(devices) if devices else "- no measurements yet")
        + ("\n- CPU-sized check run (--small): not a performance figure" if small else ""),
        "#### Scaling: how far each mode goes\n\n"
        "A series grows N (sweep n) or p (sweep p) until a point runs out of memory or past its "
        "time limit (predicted: not run, since the previous point's time scaled by N²p says it "
        "would be); that point is the limit, not an error. explicit streams J through column "
        "blocks of the Context's 256 MiB budget; explicit_whole_j forms all of J at once, as a "
        "framework does.\n\n" + limits_table(series, skeleton),
    ]
    for sweep, config in [("n", "Z"), ("n", "M"), ("p", "Z")]:
        if any(k[0] == sweep and k[1] == config for k in series):
            parts.append(
                f"#### Scaling: {config}, milliseconds per `ngd::direction` against "
                f"{'N' if sweep == 'n' else 'p'}\n\n"
                "Medians of device-synchronised wall clock after warm-up; OOM: out of memory; "
                "time, time*: past the time limit (measured, predicted); ·: not run.\n\n"
                + time_table(series, sweep, config)
            )
    parts.append(
        "#### Scaling: per stage\n\n"
        "Milliseconds (medians) of `NaturalGradient::step` with `Options::time_stages`, which "
        "synchronises after each stage: forward (with the loss factors), gram (seeds and Gram), "
        "solve (Cholesky and its residual), direction (Aᵀα), step (the whole step); "
        "ngd::direction is the same work timed without the per-stage synchronisation.\n\n"
        + stage_table(series)
    )
    return "\n\n".join(parts)


def plots(records, folder):
    """scaling_n.png, scaling_p.png and scaling_stages.png in folder; [] without data. Raises
    ImportError without matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.transforms import blended_transform_factory

    series = by_series(records)
    devices = "; ".join(sorted({r.get("device") or "?" for r in records}))
    if any(r.get("small") for r in records):
        devices += " (CPU-sized check run, --small: not a performance figure)"
    colors = {"structured": "C0", "explicit": "C1", "explicit_whole_j": "C3"}
    dashes = {"f64": "-", "f32": "--"}
    written = []

    def time_panel(ax, keys, label):
        top = blended_transform_factory(ax.transData, ax.transAxes)
        widest = 0
        for key in keys:
            ok = [r for r in series[key] if r["status"] == "ok"]
            stop = next((r for r in series[key] if r["status"] != "ok"), None)
            style = dict(color=colors.get(key[3], "k"), linestyle=dashes.get(key[2], ":"))
            ax.plot(
                [size_of(r) for r in ok],
                [r["seconds"]["total"] for r in ok],
                marker="o",
                label=f"{key[3]} {key[2]}",
                **style,
            )
            widest = max([widest] + [size_of(r) for r in series[key]])
            if stop is not None:  # where the series stopped, at the top edge
                ax.plot(
                    [size_of(stop)],
                    [0.97],
                    marker="v",
                    transform=top,
                    clip_on=False,
                    color=style["color"],
                )
                ax.annotate(
                    SHORT.get(stop["status"], stop["status"]),
                    (size_of(stop), 0.97),
                    xycoords=top,
                    textcoords="offset points",
                    xytext=(3, -12),
                    fontsize=7,
                    color=style["color"],
                )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(right=widest * 1.6)  # room for the last stop's label
        ax.set_xlabel(label)
        ax.set_ylabel("ngd::direction (s)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)

    configs = [c for c in "ZM" if any(k[:2] == ("n", c) for k in series)]
    if configs:
        fig, axes = plt.subplots(1, len(configs), figsize=(6 * len(configs), 4.2), squeeze=False)
        for ax, c in zip(axes[0], configs):
            time_panel(ax, [k for k in series if k[:2] == ("n", c)], "N = n k")
            ax.set_title(f"{c}: step time against N")
        fig.suptitle(devices, fontsize=9)
        written.append(save(fig, plt, folder, "scaling_n.png"))
    if any(k[0] == "p" for k in series):
        fig, ax = plt.subplots(figsize=(6.5, 4.2))
        ns = sorted({r["n"] for k in series if k[0] == "p" for r in series[k]})
        time_panel(
            ax, [k for k in series if k[0] == "p"], f"p (Z at n = {', '.join(map(str, ns))})"
        )
        ax.set_title("Z: step time against p")
        fig.suptitle(devices, fontsize=9)
        written.append(save(fig, plt, folder, "scaling_p.png"))

    panels = [
        (c, m)
        for c in configs
        for m in MODES
        if any(k[:2] == ("n", c) and k[3] == m for k in series)
    ]
    if panels:
        cols = 2
        rows = (len(panels) + cols - 1) // cols
        fig, axes = plt.subplots(rows, cols, figsize=(12, 3.8 * rows), squeeze=False)
        for ax, (c, m) in zip(axes.flat, panels):
            for key in [k for k in series if k[:2] == ("n", c) and k[3] == m]:
                ok = [r for r in series[key] if r["status"] == "ok" and "gram" in r["seconds"]]
                for i, stage in enumerate(STAGES):
                    ax.plot(
                        [r["N"] for r in ok],
                        [r["seconds"][stage] for r in ok],
                        color=f"C{i}",
                        linestyle=dashes.get(key[2], ":"),
                        marker=".",
                        label=f"{stage} {key[2]}",
                    )
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(f"{c}, {m}: per stage")
            ax.set_xlabel("N = n k")
            ax.set_ylabel("seconds")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=6, ncol=2)
        for ax in list(axes.flat)[len(panels) :]:
            ax.set_visible(False)
        fig.suptitle(devices, fontsize=9)
        written.append(save(fig, plt, folder, "scaling_stages.png"))
    return written


def save(fig, plt, folder, name):
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, name)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
