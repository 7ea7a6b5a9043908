#!/usr/bin/python3
"""Plots for the deep matrix completion reproduction (docs/reproduction.md).

Reads the CSVs of examples/kerekes_matrix_factorization from --csv-dir (with --run BIN_DIR it first
runs the program with the settings below, the ones the document quotes), writes docs/img/mf_*.png
and prints the figures the document cites. Needs matplotlib (Debian: python3-matplotlib, for
/usr/bin/python3).
"""
import math
import os
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from plotlib import arguments, run_and_read, runs_of, save  # noqa: E402

PROGRAM = "kerekes_matrix_factorization"
# (csv file, arguments): the runs behind every figure.
RUNS = [
    ("mf_main.csv", ["--seeds", "0,1,2,3,4"]),
    ("mf_init.csv", ["--seeds", "0,1,2,3,4", "--depths", "2", "--methods", "gd,ngd",
                     "--init-scales", "1e-1,1e-2,1e-3,1e-4"]),
    # The step-size sweep keeps seeds 0-2: its small-lr runs (up to 20 000 NGD steps each) are most
    # of this script's time.
    ("mf_ngd_lr.csv", ["--seeds", "0,1,2", "--depths", "2,3", "--methods", "ngd",
                       "--ngd-lrs", "1,0.3,0.1,0.03,0.01,0.003,0.001"]),
    ("mf_tiny.csv", ["--depths", "3", "--init-scales", "1e-3", "--methods", "gd,ngd",
                     "--ngd-lrs", "1,0.1,0.01", "--ngd-dampings", "0,1e-5,1e-4", "--log-every", "1"]),
    ("mf_tiny_guard.csv", ["--depths", "3", "--init-scales", "1e-3", "--methods", "ngd",
                           "--ngd-lrs", "1", "--ngd-max-step-norms", "1,0.1,0.01",
                           "--ngd-time", "50", "--log-every", "1"]),
]
COLORS = {"gd": "tab:blue", "ngd": "tab:red", "ngd_full": "tab:green"}
LABELS = {"gd": "GD", "ngd": "NGD (training-set Fisher)", "ngd_full": "NGD (Fisher over all entries)"}


def final(run, column):
    """The last finite value of a column (a run that blew up keeps its last finite record)."""
    values = [r[column] for r in run if isinstance(r[column], float) and math.isfinite(r[column])]
    return values[-1] if values else float("nan")


def summary(groups, key_fn):
    """{key: (mean, min, max)} of final test error and effective rank over seeds."""
    acc = defaultdict(lambda: ([], []))
    for key, run in groups.items():
        k = key_fn(key)
        acc[k][0].append(final(run, "test_rel_error"))
        acc[k][1].append(final(run, "effective_rank"))
    stats = lambda v: (sum(v) / len(v), min(v), max(v))  # noqa: E731
    return {k: (stats(t), stats(e)) for k, (t, e) in acc.items()}


def plot_depth(rows, out):
    groups = runs_of(rows, "method", "depth", "seed")
    s = summary(groups, lambda k: (k[0], int(k[1])))
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    print("final test error and effective rank (mean [min, max] over seeds):")
    for method in ["gd", "ngd", "ngd_full"]:
        depths = sorted(d for m, d in s if m == method)
        if not depths:
            continue
        for ax, i in zip(axes, [0, 1]):
            mean = [s[(method, d)][i][0] for d in depths]
            lo = [s[(method, d)][i][0] - s[(method, d)][i][1] for d in depths]
            hi = [s[(method, d)][i][2] - s[(method, d)][i][0] for d in depths]
            ax.errorbar(depths, mean, yerr=[lo, hi], marker="o", capsize=4,
                        color=COLORS[method], label=LABELS[method])
        for d in depths:
            (t, e) = s[(method, d)]
            print(f"  {method:8s} depth {d}: test {t[0]:.4g} [{t[1]:.4g}, {t[2]:.4g}], "
                  f"eff. rank {e[0]:.3f} [{e[1]:.3f}, {e[2]:.3f}]")
    axes[0].set_yscale("log")
    axes[0].set_ylabel("test error on unobserved entries (relative)")
    axes[1].set_ylabel("effective rank of W")
    for ax in axes:
        ax.set_xlabel("depth")
        ax.set_xticks([1, 2, 3])
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("Rank-1 20x20 matrix, 120 of 400 entries observed, init scale 1e-2 (3 seeds)")
    save(fig, out, "mf_depth.png")

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), sharey=True)
    for (method, depth, seed), run in sorted(groups.items()):
        if seed != 0:
            continue
        ax = axes[int(depth) - 1]
        # GD against its step; NGD against flow time lr * step, the time of its gradient flow.
        scale = 1.0 if method == "gd" else run[0]["lr"]
        ax.plot([r["step"] * scale for r in run], [r["test_rel_error"] for r in run],
                color=COLORS[method], label=LABELS[method] + ("" if method == "gd" else " (t = lr step)"))
    for d, ax in enumerate(axes, start=1):
        ax.set_title(f"depth {d}")
        ax.set_xscale("symlog", linthresh=1)
        ax.set_xlim(left=0)
        ax.set_yscale("log")
        ax.set_xlabel("GD step / NGD flow time")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test error (relative)")
    axes[0].legend(fontsize=7)
    save(fig, out, "mf_curves.png")


def plot_init(rows, out):
    s = summary(runs_of(rows, "method", "init_scale", "seed"), lambda k: (k[0], k[1]))
    fig, ax = plt.subplots(figsize=(5.5, 4))
    print("depth 2, final test error vs init scale (mean [min, max]):")
    for method in ["gd", "ngd"]:
        scales = sorted(x for m, x in s if m == method)
        mean = [s[(method, x)][0][0] for x in scales]
        lo = [s[(method, x)][0][0] - s[(method, x)][0][1] for x in scales]
        hi = [s[(method, x)][0][2] - s[(method, x)][0][0] for x in scales]
        ax.errorbar(scales, mean, yerr=[lo, hi], marker="o", capsize=4, color=COLORS[method],
                    label=LABELS[method])
        for x in scales:
            t = s[(method, x)][0]
            print(f"  {method:4s} init {x:g}: {t[0]:.4g} [{t[1]:.4g}, {t[2]:.4g}]")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("init scale (std of factor entries)")
    ax.set_ylabel("test error (relative)")
    ax.set_title("Depth 2: smaller init helps GD, not NGD")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save(fig, out, "mf_init.png")


def plot_ngd_lr(rows, main_rows, out):
    s = summary(runs_of(rows, "depth", "lr", "seed"), lambda k: (int(k[0]), k[1]))
    seeds = {r["seed"] for r in rows}  # GD's reference over the same seeds as the sweep
    gd = summary(runs_of([r for r in main_rows if r["method"] == "gd" and r["seed"] in seeds],
                         "depth", "seed"), lambda k: int(k[0]))
    fig, ax = plt.subplots(figsize=(5.5, 4))
    print("NGD final test error vs lr (mean [min, max]):")
    for depth, color in [(2, "tab:orange"), (3, "tab:purple")]:
        lrs = sorted(x for d, x in s if d == depth)
        mean = [s[(depth, x)][0][0] for x in lrs]
        ax.plot(lrs, mean, marker="o", color=color, label=f"NGD depth {depth}")
        if depth in gd:
            ax.axhline(gd[depth][0][0], color=color, ls="--", lw=1, label=f"GD depth {depth}")
        for x in lrs:
            t = s[(depth, x)][0]
            print(f"  depth {depth} lr {x:g}: {t[0]:.4g} [{t[1]:.4g}, {t[2]:.4g}]")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("NGD step size lr (flow time 20 each)")
    ax.set_ylabel("test error (relative)")
    ax.set_title("Discrete NGD vs its flow limit (init 1e-2)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save(fig, out, "mf_ngd_lr.png")


def plot_tiny(rows, out):
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.4))
    print("depth 3, init 1e-3:")
    groups = runs_of(rows, "method", "lr", "damping", "max_step_norm")
    for (method, lr, damping, guard), run in sorted(groups.items(), key=lambda kv: str(kv[0])):
        label = "GD" if method == "gd" else f"NGD lr {lr:g}, lambda {damping:g}"
        # Colour: what tames the step (nothing, damping, guard); line style: the step size.
        if method == "gd":
            color, ls = "k", ":"
        elif math.isfinite(guard):
            label += f", |step| <= {guard:g}"
            color, ls = {1: "tab:orange", 0.1: "tab:purple", 0.01: "tab:brown"}.get(guard, "gray"), "-."
        else:
            color = {0: "tab:red", 1e-5: "tab:green", 1e-4: "tab:blue"}.get(damping, "gray")
            ls = {1: "-", 0.1: "--", 0.01: ":"}.get(lr, "-")
        x = [r["step"] * (1.0 if method == "gd" else lr) for r in run]
        for ax, col in zip(axes, ["loss", "test_rel_error"]):
            ax.plot(x, [r[col] for r in run], label=label, color=color, ls=ls, lw=1.4)
        print(f"  {label}: max loss {max(r['loss'] for r in run):.3g} (start "
              f"{run[0]['loss']:.3g}), final loss {final(run, 'loss'):.3g}, max test "
              f"{max(r['test_rel_error'] for r in run):.3g}, final test "
              f"{final(run, 'test_rel_error'):.3g}, eff. rank {final(run, 'effective_rank'):.3f}, "
              f"ladder steps {int(run[-1]['ladder_steps'])}")
    for ax, name in zip(axes, ["training loss", "test error (relative)"]):
        ax.set_xscale("symlog", linthresh=1)
        ax.set_xlim(left=0)
        ax.set_yscale("log")
        ax.set_xlabel("GD step / NGD flow time (lr step)")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7)
    fig.suptitle("Tiny initialisation (depth 3, scale 1e-3): the undamped NGD step explodes;\n"
                 "damping or the step guard repair it, a smaller lr alone does not")
    save(fig, out, "mf_tiny_init.png")


def main():
    args = arguments(__doc__)
    data = run_and_read(args, [(name, PROGRAM, extra) for name, extra in RUNS])
    plot_depth(data["mf_main.csv"], args.out)
    plot_init(data["mf_init.csv"], args.out)
    plot_ngd_lr(data["mf_ngd_lr.csv"], data["mf_main.csv"], args.out)
    plot_tiny(data["mf_tiny.csv"] + data["mf_tiny_guard.csv"], args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
