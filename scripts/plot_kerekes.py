#!/usr/bin/python3
"""Plots for the Kerekes, Meszaros & Huszar (2021) reproduction (docs/reproduction.md).

Reads the CSVs of examples/kerekes_logistic and examples/sparse_teacher from --csv-dir (with --run
BIN_DIR it first runs those programs with the settings below, which are the ones the document
quotes), writes docs/img/kerekes_*.png and prints the figures the document cites.
Needs matplotlib (Debian: python3-matplotlib, for /usr/bin/python3).
"""
import argparse
import math
import os
import subprocess
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from plotlib import read, runs_of, save  # noqa: E402

# (csv file, program, arguments): the runs behind every figure.
RUNS = [
    ("deep_linear.csv", "kerekes_logistic",
     ["--seeds", "0,1,2,3,4", "--ngd-time", "50", "--gd-steps", "100000"]),
    ("damped.csv", "kerekes_logistic",
     ["--depths", "1", "--methods", "ngd", "--lr", "0.05", "--damping", "1e-6",
      "--ngd-time", "100"]),
    ("tanh.csv", "kerekes_logistic", ["--model", "tanh", "--seeds", "0,1,2,3,4"]),
    ("tanh_guard.csv", "kerekes_logistic",
     ["--model", "tanh", "--seeds", "0,1,2,3,4", "--max-step-norm", "1"]),
    ("sparse.csv", "sparse_teacher",
     ["--seeds", "0,1,2,3,4", "--lr", "1,0.5,0.2,0.1,0.03,0.01,0.003,0.001,0.0003"]),
]


DEPTH_COLORS = {1: "tab:blue", 2: "tab:orange", 3: "tab:green"}


def plot_margin_law(rows, damped, out):
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.2))
    runs = runs_of([r for r in rows if r["method"] == "ngd" and r["seed"] == 0],
                   "depth", "lr")
    for (depth, lr), g in sorted(runs.items()):
        c = DEPTH_COLORS.get(int(depth), "k")
        ls = "-" if lr == max(k[1] for k in runs) else "--"
        t = [r["t"] for r in g]
        ax[0].plot(t, [r["min_margin"] for r in g], ls, color=c,
                   label=f"depth {depth:.0f}, eta {lr:g}")
        ax[1].plot(t[1:], [r["margin_law_error"] for r in g][1:], ls, color=c,
                   label=f"depth {depth:.0f}, eta {lr:g}")
    g = runs[sorted(runs)[0]]
    ax[0].plot([r["t"] for r in g], [r["predicted_min_margin"] for r in g], ":", color="k", lw=2,
               label="closed form (depth 1 init)")
    ax[0].set(xlabel="t = eta * step", ylabel="min_i m_i", title="NGD: smallest training margin")
    ax[1].set(xscale="log", yscale="log", xlabel="t = eta * step",
              ylabel="max_i |ln(1+e^m_i) - ln(1+e^m_i(0)) - t|",
              title="NGD: error of the closed form (seed 0)")
    for a in ax[:2]:
        a.legend(fontsize=7)
    dg = sorted(damped, key=lambda r: r["step"])
    dg = [r for r in dg if r["method"] == "ngd" and r["seed"] == 0]
    t = [r["t"] for r in dg]
    ax[2].plot(t, [r["min_margin"] for r in dg], color="tab:red", label="ngd, damping 1e-6")
    ax[2].plot(t, [r["predicted_min_margin"] for r in dg], ":", color="k", lw=2,
               label="closed form")
    ax[2].set(xlabel="t = eta * step", ylabel="min_i m_i",
              title="depth 1, damping 1e-6: the margins stall")
    ax[2].legend(fontsize=8)
    save(fig, out, "kerekes_margin_law.png")


def plot_direction(rows, out):
    fig, ax = plt.subplots(1, 2, figsize=(12, 4.2))
    refs = [r for r in rows if r["method"] == "svm" and r["seed"] == 0]
    cos_ref = refs[0]["cos_minnorm"] if refs else None
    for m, a, xk in (("gd", ax[0], "step"), ("ngd", ax[1], "t")):
        runs = runs_of([r for r in rows if r["method"] == m and r["seed"] == 0], "depth", "lr")
        lrs = sorted({k[1] for k in runs})
        for (depth, lr), g in sorted(runs.items()):
            if m == "ngd" and lr != min(lrs):
                continue
            c = DEPTH_COLORS.get(int(depth), "k")
            x = [r[xk] for r in g][1:]
            a.plot(x, [r["cos_svm"] for r in g][1:], "-", color=c,
                   label=f"depth {depth:.0f}: cos(w, w_svm)")
            a.plot(x, [r["cos_minnorm"] for r in g][1:], "--", color=c,
                   label=f"depth {depth:.0f}: cos(w, X+ s)")
        if cos_ref is not None:
            a.axhline(cos_ref, color="gray", lw=0.8, label="cos(w_svm, X+ s)")
        a.set(xscale="log", xlabel=xk if m == "gd" else "t = eta * step", ylabel="cosine",
              ylim=(0.6, 1.005))
        a.legend(fontsize=7, loc="lower right")
    ax[0].set_title("GD (lr = 2n / lambda_max(JJ^T)): turns to the SVM, like 1/log t")
    ax[1].set_title(f"NGD (eta = {min(lrs):g}, damping 0): tends to X+ s")
    save(fig, out, "kerekes_direction.png")


def plot_tanh(plain, guarded, out):
    fig, ax = plt.subplots(1, 2, figsize=(12, 4.2))
    runs = runs_of([r for r in plain if r["seed"] == 0 and r["lr"] == 0.01], "width")
    cmap = plt.get_cmap("viridis")
    widths = sorted(runs)
    for i, (w,) in enumerate(widths):
        g = runs[(w,)]
        ax[0].plot([r["t"] for r in g][1:], [r["margin_law_error"] for r in g][1:],
                   color=cmap(i / max(1, len(widths) - 1)), label=f"width {w:.0f}")
    ax[0].set(xscale="log", yscale="log", xlabel="t = eta * step",
              ylabel="margin-law error", title="tanh net, NGD eta = 0.01, damping 0 (seed 0)")
    ax[0].legend(fontsize=7)
    for rows, style, name in ((plain, "o-", "no guard"), (guarded, "s--", "|eta d| <= 1")):
        for lr, c in ((0.05, "tab:red"), (0.01, "tab:blue")):
            xs, ys, fails = [], [], []
            for (w, seed), g in sorted(runs_of([r for r in rows if r["lr"] == lr],
                                               "width", "seed").items()):
                last = g[-1]
                target = 20.0
                if abs(last["t"] - target) > 1e-6 or not math.isfinite(last["margin_law_error"]):
                    fails.append(w)
                else:
                    xs.append(w)
                    ys.append(last["margin_law_error"])
            ax[1].plot(xs, ys, style, color=c, ms=4, lw=0.8, alpha=0.8,
                       label=f"eta {lr:g}, {name}")
            if fails:
                ax[1].plot(fails, [3e2] * len(fails), "x", color=c, ms=9)
    ax[1].set(xscale="log", yscale="log", xlabel="hidden width (p = 12 width + 1; n = 40)",
              ylabel="margin-law error at t = 20",
              title="closed form vs width, 5 seeds (x: run blew up)")
    ax[1].axvline(40 / 12, color="gray", lw=0.8)
    ax[1].legend(fontsize=7)
    save(fig, out, "kerekes_tanh.png")


def plot_sparse(rows, out):
    fig, ax = plt.subplots(1, 2, figsize=(12, 4.2))
    runs = runs_of([r for r in rows if r["seed"] == 0 and r["method"] != "min_norm"],
                   "method", "lr")
    cmap = plt.get_cmap("plasma")
    lrs = sorted({k[1] for k in runs if k[0] == "ngd"}, reverse=True)
    for (m, lr), g in sorted(runs.items()):
        if m == "gd":
            ax[0].plot([r["step"] for r in g][1:], [r["test_rel_error"] for r in g][1:], "k-",
                       lw=2, label=f"gd lr {lr:g} (x = step)")
        else:
            i = lrs.index(lr)
            ax[0].plot([r["step"] for r in g][1:], [r["test_rel_error"] for r in g][1:],
                       color=cmap(i / max(1, len(lrs) - 1)), label=f"ngd eta {lr:g}")
    mn = [r for r in rows if r["method"] == "min_norm" and r["seed"] == 0]
    if mn:
        ax[0].axhline(mn[0]["test_rel_error"], color="gray", ls=":", label="X+ y (min norm)")
    ax[0].set(xscale="log", xlabel="step", ylabel="test relative error",
              title="diagonal net on a 3-sparse teacher (seed 0)")
    ax[0].legend(fontsize=7)
    seeds = sorted({r["seed"] for r in rows})
    for s in seeds:
        final = {}
        for (m, lr, seed), g in runs_of([r for r in rows if r["seed"] == s], "method", "lr",
                                       "seed").items():
            final[(m, lr)] = g[-1]
        xs = sorted(lr for m, lr in final if m == "ngd")
        ax[1].plot(xs, [final[("ngd", x)]["test_rel_error"] for x in xs], "o-",
                   label=f"ngd, seed {s:.0f}")
        gd = [v for (m, _), v in final.items() if m == "gd"]
        if gd:
            ax[1].axhline(gd[0]["test_rel_error"], color=f"C{seeds.index(s)}", ls="--", lw=0.8)
        mn_s = [v for (m, _), v in final.items() if m == "min_norm"]
        if mn_s:
            ax[1].axhline(mn_s[0]["test_rel_error"], color=f"C{seeds.index(s)}", ls=":", lw=0.8)
    ax[1].set(xscale="log", yscale="log", xlabel="NGD step size eta (t = 20)",
              ylabel="final test relative error",
              title="NGD vs eta; dashed: GD, dotted: X+ y (per seed)")
    ax[1].legend(fontsize=7)
    save(fig, out, "kerekes_sparse.png")


def summary(deep, damped, plain, guarded, sparse):
    print("\n# figures for docs/reproduction.md")
    final = {}
    for (m, depth, lr, seed), g in runs_of([r for r in deep if r["method"] in ("ngd", "gd")],
                                           "method", "depth", "lr", "seed").items():
        # GD's step size is chosen per seed: group its runs by depth only.
        key = (m, depth, lr if m == "ngd" else "auto", seed)
        final[key] = g[-1]
        if m == "ngd":
            final[key] = dict(g[-1], worst_law=max(r["margin_law_error"] for r in g))
    print("claim 5 (mean over seeds; min..max):")
    for m in ("ngd", "gd"):
        for depth in (1, 2, 3):
            for lr in sorted({k[2] for k in final if k[0] == m and k[1] == depth}, key=str):
                rs = [v for k, v in final.items() if k[:3] == (m, depth, lr)]
                def stat(col):
                    vals = [r[col] for r in rs]
                    return f"{sum(vals) / len(vals):.4f} ({min(vals):.4f}..{max(vals):.4f})"
                extra = f" worst law error {stat('worst_law')}" if m == "ngd" else ""
                lrs = ", ".join(f"{r['lr']:.4g}" for r in rs)
                print(f"  {m} depth {depth} lr {lrs} steps {rs[0]['step']:.0f}: cos_svm "
                      f"{stat('cos_svm')} cos_minnorm {stat('cos_minnorm')} test_acc "
                      f"{stat('test_accuracy')} norm_margin {stat('normalized_margin')}{extra}")
    for m in ("svm", "min_norm"):
        rs = [r for r in deep if r["method"] == m]
        other = "cos_svm" if m == "min_norm" else "cos_minnorm"
        print(f"  {m}: test_acc " + ", ".join(f"{r['test_accuracy']:.4f}" for r in rs) +
              "; cos(svm, min_norm) " + ", ".join(f"{r[other]:.4f}" for r in rs) +
              "; normalized margin " + ", ".join(f"{r['normalized_margin']:.4f}" for r in rs))
    d = sorted([r for r in damped if r["seed"] == 0], key=lambda r: r["step"])
    if d:
        print(f"  damping 1e-6: min margin {d[-1]['min_margin']:.2f} vs closed form "
              f"{d[-1]['predicted_min_margin']:.2f} at t = {d[-1]['t']:.0f}; cos_svm "
              f"{d[-1]['cos_svm']:.4f} cos_minnorm {d[-1]['cos_minnorm']:.4f}")
    print("claim 8 (final margin-law error at t = 20 per width and seed; - = blew up):")
    for rows, name in ((plain, "no guard"), (guarded, "step guard 1")):
        for lr in sorted({r["lr"] for r in rows}, reverse=True):
            parts = []
            for (w,), _ in sorted(runs_of(rows, "width").items()):
                vals = []
                for s in sorted({r["seed"] for r in rows}):
                    g = sorted([r for r in rows if r["width"] == w and r["seed"] == s and
                                r["lr"] == lr], key=lambda r: r["step"])
                    ok = g and abs(g[-1]["t"] - 20) < 1e-6
                    vals.append(f"{g[-1]['margin_law_error']:.3g}" if ok else "-")
                ladder = max(r["ladder_steps"] for r in rows if r["width"] == w and r["lr"] == lr)
                note = f" [ladder {ladder:.0f}]" if ladder else ""
                parts.append(f"w{w:.0f}: " + "/".join(vals) + note)
            print(f"  {name}, eta {lr:g}: " + "  ".join(parts))
    print("claim 7 (final test relative error per seed):")
    for key, g in sorted(runs_of(sparse, "method", "lr").items()):
        by_seed = defaultdict(list)
        for r in g:
            by_seed[r["seed"]].append(r)
        finals = [max(v, key=lambda r: r["step"]) for _, v in sorted(by_seed.items())]
        print(f"  {key[0]} lr {key[1]:g}: test_rel_error " +
              ", ".join(f"{r['test_rel_error']:.4f}" for r in finals) + "; dist_minnorm " +
              ", ".join(f"{r['dist_minnorm']:.2e}" for r in finals) + "; l1 " +
              ", ".join(f"{r['l1_norm']:.3f}" for r in finals))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--csv-dir", default="kerekes_csv", help="where the CSVs are (or go)")
    p.add_argument("--out", default=os.path.join(here, "..", "docs", "img"),
                   help="folder for the PNGs")
    p.add_argument("--run", metavar="BIN_DIR",
                   help="first run the example programs found in BIN_DIR")
    p.add_argument("--backend", default="reference", help="--backend for the programs")
    a = p.parse_args()
    os.makedirs(a.csv_dir, exist_ok=True)
    os.makedirs(a.out, exist_ok=True)
    if a.run:
        for name, prog, args in RUNS:
            cmd = [os.path.join(a.run, prog), *args, "--backend", a.backend,
                   "--csv", os.path.join(a.csv_dir, name)]
            print("+", " ".join(cmd), flush=True)
            # A run whose NGD blew up exits 1 but still wrote its rows: that is data here.
            subprocess.run(cmd, check=False, stdout=subprocess.DEVNULL)
    files = {name: os.path.join(a.csv_dir, name) for name, _, _ in RUNS}
    missing = [f for f in files.values() if not os.path.exists(f)]
    if missing:
        sys.exit("missing CSVs (use --run BIN_DIR): " + ", ".join(missing))
    deep, damped = read(files["deep_linear.csv"]), read(files["damped.csv"])
    plain, guarded = read(files["tanh.csv"]), read(files["tanh_guard.csv"])
    sparse = read(files["sparse.csv"])
    plot_margin_law(deep, damped, a.out)
    plot_direction(deep, a.out)
    plot_tanh(plain, guarded, a.out)
    plot_sparse(sparse, a.out)
    summary(deep, damped, plain, guarded, sparse)


if __name__ == "__main__":
    main()
