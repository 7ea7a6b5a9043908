#!/usr/bin/python3
"""Plots for the n > d settings of the Kerekes, Meszaros & Huszar (2021) reproduction
(docs/reproduction.md, claims 7b and 8b): NGD's invariance between a linear model and a diagonal
network on a sparse teacher (examples/kerekes_reparam), deep linear nets with more samples than
dimensions, and the closed form on a two-layer ReLU net (examples/kerekes_logistic).

Reads the CSVs from --csv-dir (with --run BIN_DIR it first runs the programs with the settings
below, the ones the document quotes), writes docs/img/kerekes_reparam.png and
docs/img/kerekes_relu.png and prints the figures the document cites. Needs matplotlib (Debian:
python3-matplotlib, for /usr/bin/python3).
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

SEEDS = "0,1,2,3,4"
# (csv file, program, arguments): the runs behind every figure.
RUNS = [
    ("reparam.csv", "kerekes_reparam", ["--seeds", SEEDS, "--lr", "1,0.3,0.1,0.03,0.01"]),
    ("deep_linear_n_gt_d.csv", "kerekes_logistic",
     ["--seeds", SEEDS, "--n", "100", "--d", "20", "--inputs", "gaussian", "--damping", "1e-8",
      "--lr", "0.05", "--ngd-time", "10", "--gd-steps", "20000", "--n-test", "2000"]),
    ("relu.csv", "kerekes_logistic",
     ["--model", "relu", "--seeds", SEEDS, "--widths", "8,32,128,512,2048", "--lr", "0.01,0.002",
      "--ngd-time", "5", "--n-test", "200"]),
]


def spread(values):
    """mean, min, max of a list."""
    return sum(values) / len(values), min(values), max(values)


def fmt(values, digits=4):
    m, lo, hi = spread(values)
    return f"{m:.{digits}g} [{lo:.{digits}g}, {hi:.{digits}g}]"


def plot_reparam(rows, out):
    fig, ax = plt.subplots(1, 3, figsize=(16, 4.4))
    ngd = runs_of([r for r in rows if r["method"] == "ngd" and r["model"] == "diagonal"],
                  "lr", "seed")
    lrs = sorted({k[0] for k in ngd}, reverse=True)
    cmap = plt.get_cmap("viridis")
    print("claim 7b: NGD, diagonal network vs linear model at the same step (5 seeds)")
    for i, lr in enumerate(lrs):
        runs = [g for (l, _), g in ngd.items() if l == lr]
        color = cmap(i / max(1, len(lrs) - 1))
        n = min(len(g) for g in runs)
        t = [runs[0][k]["t"] for k in range(1, n)]
        vals = [[g[k]["pair_pred_diff"] for g in runs] for k in range(1, n)]
        ax[0].plot(t, [spread(v)[0] for v in vals], color=color, label=f"NGD eta {lr:g}")
        ax[0].fill_between(t, [spread(v)[1] for v in vals], [spread(v)[2] for v in vals],
                           color=color, alpha=0.2)
        ends = [g[-1] for g in runs]
        print(f"  eta {lr:g}: final |f_diag - f_lin| / |f_lin| (test) "
              f"{fmt([e['pair_pred_diff'] for e in ends], 3)}, cos "
              f"{fmt([e['pair_cos'] for e in ends], 6)}, max over the run "
              f"{max(r['pair_pred_diff'] for g in runs for r in g[1:]):.3g}; disagreeing test "
              f"points {fmt([e['pair_disagree'] for e in ends], 3)}; ladder steps "
              f"{max(e['ladder_steps'] for e in ends):.0f}")
    ax[0].set(yscale="log", xlabel="t = eta * step",
              ylabel="|f_diag - f_lin| / |f_lin| on test inputs",
              title="NGD: diagonal network vs linear model\n(same eta, same step; band: 5 seeds)")
    ax[0].legend(fontsize=7)
    gd = runs_of([r for r in rows if r["method"] == "gd" and r["model"] == "diagonal"], "seed")
    print("claim 7b: GD, diagonal network vs linear model at the same training loss")
    for (seed,), g in sorted(gd.items()):
        pts = [(r["loss"], r["pair_cos"]) for r in g if r["pair_cos"] == r["pair_cos"]]
        ax[1].plot([p[0] for p in pts], [p[1] for p in pts], color="tab:blue", alpha=0.7,
                   label="GD" if seed == 0 else None)
        last = pts[-1]
        print(f"  seed {seed:.0f}: cos at the lowest shared loss {last[0]:.3g}: {last[1]:.4f}; "
              f"min {min(p[1] for p in pts if p[0] < 0.1):.4f} below loss 0.1")
    for (lr, seed), g in ngd.items():
        if lr == lrs[-1]:
            ax[1].plot([r["loss"] for r in g[1:]], [r["pair_cos"] for r in g[1:]],
                       color="tab:red", alpha=0.7,
                       label=f"NGD eta {lr:g}" if seed == 0 else None)
    ax[1].set(xscale="log", xlabel="training loss", ylabel="cos(w_diag, w_lin)",
              title="cos of the two models' w at equal training loss")
    ax[1].invert_xaxis()
    ax[1].legend(fontsize=7)
    # Final test accuracy per run kind.
    finals = defaultdict(list)
    for (m, model, lr, seed), g in runs_of(rows, "method", "model", "lr", "seed").items():
        finals[(m, model, lr)].append(g[-1])
    keys = [("svm", "linear", 0.0), ("gd", "linear", None), ("gd", "diagonal", None)]
    keys += [("ngd", model, lr) for lr in lrs for model in ("linear", "diagonal")]
    labels, means, los, his = [], [], [], []
    print("claim 7b: final test accuracy, support mass |w_S|_1/|w|_1, training loss (5 seeds)")
    for m, model, lr in keys:
        group = [v for k, v in finals.items() if k[0] == m and k[1] == model
                 and (lr is None or k[2] == lr)]
        if not group:
            continue
        ends = group[0]
        acc = [e["test_accuracy"] for e in ends]
        mean, lo, hi = spread(acc)
        name = m.upper() if m != "svm" else "l2 SVM"
        label = f"{name} {model}" + (f" eta {lr:g}" if m == "ngd" else "")
        labels.append(label)
        means.append(mean)
        los.append(mean - lo)
        his.append(hi - mean)
        print(f"  {label}: accuracy {fmt(acc)}, support mass "
              f"{fmt([e['support_mass'] for e in ends], 3)}, loss "
              f"{fmt([e['loss'] for e in ends], 3) if m != 'svm' else '-'}")
    colors = ["gray", "tab:blue", "tab:cyan"] + ["tab:red", "tab:orange"] * len(lrs)
    ax[2].barh(range(len(labels)), means, xerr=[los, his], color=colors[:len(labels)])
    ax[2].set_yticks(range(len(labels)))
    ax[2].set_yticklabels(labels, fontsize=7)
    ax[2].set_xlim(0.75, 1.0)
    ax[2].invert_yaxis()
    ax[2].set(xlabel="test accuracy (mean, min-max over 5 seeds)",
              title="only GD on the diagonal net finds the sparse w*")
    fig.suptitle("Logistic regression, sparse teacher, n = 90 > d = 30: NGD's two "
                 "parameterizations agree to within 3 % on test outputs, GD's do not")
    save(fig, out, "kerekes_reparam.png")


def summary_deep_linear(rows):
    print("n > d deep linear (n = 100, d = 20, Gaussian inputs, NGD damping 1e-8, 5 seeds):")
    for (m, depth), runs in sorted(runs_of([r for r in rows if r["method"] in ("ngd", "gd")],
                                           "method", "depth").items()):
        ends = [g[-1] for g in runs_of(runs, "seed").values()]
        extra = ""
        if m == "ngd":
            extra = (f", margin-law error {fmt([e['margin_law_error'] for e in ends], 3)}, "
                     f"ladder steps {max(e['ladder_steps'] for e in ends):.0f}")
        print(f"  {m} depth {depth:.0f}: loss {fmt([e['loss'] for e in ends], 3)}, cos_svm "
              f"{fmt([e['cos_svm'] for e in ends])}, test accuracy "
              f"{fmt([e['test_accuracy'] for e in ends])}" + extra)


def plot_relu(rows, out):
    fig, ax = plt.subplots(figsize=(6, 4.2))
    runs = runs_of([r for r in rows if r["method"] == "ngd"], "lr", "width", "seed")
    print("relu: max margin-law error over t <= 5 per width (5 seeds)")
    for lr, style in ((0.01, "o-"), (0.002, "s--")):
        widths = sorted({k[1] for k in runs if k[0] == lr})
        stats = []
        for w in widths:
            errs = [max(r["margin_law_error"] for r in g[1:]) for (l, ww, _), g in runs.items()
                    if l == lr and ww == w]
            stats.append(spread(errs))
            print(f"  eta {lr:g} width {w:.0f}: {fmt(errs, 3)}")
        ax.errorbar(widths, [s[0] for s in stats],
                    yerr=[[s[0] - s[1] for s in stats], [s[2] - s[0] for s in stats]],
                    fmt=style, capsize=3, label=f"eta {lr:g}")
    ax.set(xscale="log", yscale="log", xlabel="hidden width",
           ylabel="max_i,t |ln(1+e^m_i) - ln(1+e^m_i(0)) - t|",
           title="Two-layer ReLU net (d 10, n 40): error of the closed form\n"
                 "(mean, min-max over 5 seeds)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    save(fig, out, "kerekes_relu.png")


def main():
    args = arguments(__doc__)
    data = run_and_read(args, RUNS)
    print("\n# figures for docs/reproduction.md")
    plot_reparam(data["reparam.csv"], args.out)
    summary_deep_linear(data["deep_linear_n_gt_d.csv"])
    plot_relu(data["relu.csv"], args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
