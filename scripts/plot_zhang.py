#!/usr/bin/python3
"""Plots for the Zhang, Martens & Grosse (2019) reproduction (docs/reproduction.md).

Reads the CSVs of examples/zhang_convergence (claim 1) and examples/zhang_properties (claims 2-4)
from --csv-dir (with --run BIN_DIR it first runs them with the settings below, the ones the document
quotes), writes docs/img/zhang_*.png and prints the figures the document cites. Needs matplotlib
(Debian: python3-matplotlib, for /usr/bin/python3).
"""
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from plotlib import arguments, run_and_read, runs_of, save  # noqa: E402

SEEDS = "0,1,2,3,4"
# (csv file, program, arguments): the runs behind every figure.
RUNS = [
    ("zhang_convergence.csv", "zhang_convergence",
     ["--widths", "256,1024,4096,16384", "--lr", "0.5", "--steps", "12"]),
    ("zhang_convergence_lr1.csv", "zhang_convergence",
     ["--widths", "256,1024,4096,16384", "--lr", "1", "--steps", "6", "--methods", "ngd"]),
    ("zhang_stability.csv", "zhang_properties", ["--claim", "stability", "--seed", SEEDS]),
    ("zhang_stability_gaussian.csv", "zhang_properties",
     ["--claim", "stability", "--seed", SEEDS, "--targets", "gaussian"]),
    ("zhang_lazy.csv", "zhang_properties", ["--claim", "lazy", "--seed", SEEDS]),
    ("zhang_damping.csv", "zhang_properties", ["--claim", "damping"]),
    ("zhang_kfac.csv", "zhang_properties", ["--claim", "kfac", "--seed", SEEDS]),
    ("zhang_kfac_2048.csv", "zhang_properties",
     ["--claim", "kfac", "--width", "2048", "--seed", SEEDS, "--methods", "ngd,kfac"]),
]


def late_rate(values):
    """Geometric-mean ratio over the second half of the steps, above 1e-20 of the start (the
    estimator of examples/common/zhang.hpp)."""
    logs = [math.log(values[t] / values[t - 1]) for t in range(1, len(values))
            if 2 * t > len(values) and values[t] > 1e-20 * values[0]]
    return math.exp(sum(logs) / len(logs)) if logs else float("nan")


def plot_convergence(rows, rows_lr1, out):
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    print("claim 1: |f - y|^2 ratio per step")
    for (method, width), run in sorted(runs_of(rows, "method", "width").items()):
        style = "-" if method == "ngd" else ":"
        axes[0].semilogy([r["step"] for r in run], [r["residual_sq"] for r in run], style,
                         marker="o" if method == "ngd" else None, ms=3,
                         label=f"{method.upper()} m={int(width)}")
        ratios = [r["ratio"] for r in run[1:] if r["residual_sq"] > 1e-20 * run[0]["residual_sq"]]
        if method == "ngd":
            axes[1].plot(range(1, len(ratios) + 1), ratios, marker="o", ms=3,
                         label=f"lr 0.5, m={int(width)}")
        print(f"  {method} lr {run[0]['lr']:.4g} m={int(width)}: ratios "
              + " ".join(f"{x:.4f}" for x in ratios[:8]) + (" ..." if len(ratios) > 8 else "")
              + f"; |f-y|^2 {run[0]['residual_sq']:.3g} -> {run[-1]['residual_sq']:.3g}")
    for (width,), run in sorted(runs_of(rows_lr1, "width").items()):
        ratios = [r["ratio"] for r in run[1:] if r["residual_sq"] > 1e-20 * run[0]["residual_sq"]]
        print(f"  ngd lr 1 m={int(width)}: ratios " + " ".join(f"{x:.3g}" for x in ratios))
    axes[1].axhline(0.25, color="k", ls="--", lw=1, label="(1 - lr)^2 = 0.25")
    axes[1].axhline(0.5, color="gray", ls=":", lw=1, label="bound 1 - lr = 0.5")
    axes[0].set_xlabel("step")
    axes[0].set_ylabel("|f - y|^2")
    axes[0].legend(fontsize=7, ncol=2)
    axes[1].set_xlabel("step")
    axes[1].set_ylabel("|f - y|^2 ratio per step (NGD)")
    axes[1].legend(fontsize=7)
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.suptitle("Claim 1: NGD (lr 0.5) contracts |f - y|^2 by (1 - lr)^2; GD at n/lambda_max")
    save(fig, out, "zhang_convergence.png")


def spread(values):
    """mean, min, max of a list."""
    return sum(values) / len(values), min(values), max(values)


def errorbar(ax, xs, groups, style, label):
    """Mean with a min-max bar per x; groups[i] is the list of values at xs[i]."""
    st = [spread(g) for g in groups]
    ax.errorbar(xs, [s[0] for s in st], yerr=[[s[0] - s[1] for s in st], [s[2] - s[0] for s in st]],
                fmt=style, capsize=3, ms=4, label=label)
    return [s[0] for s in st]


def plot_stability(rows, rows_gaussian, out):
    fig, ax = plt.subplots(1, 2, figsize=(12, 4.4))
    runs = runs_of(rows, "width", "seed")
    widths = sorted({w for (w, _) in runs})
    seeds = sorted({s for (_, s) in runs})
    per = lambda col, w: [max(r[col] for r in runs[(w, s)]) for s in seeds]  # noqa: E731
    change = errorbar(ax[0], widths, [per("jacobian_change", w) for w in widths], "o-",
                      "max |J_t - J_0|_F / |J_0|_F")
    flips = errorbar(ax[0], widths, [per("flipped", w) for w in widths], "s-",
                     "max fraction of ReLU patterns flipped")
    slope = lambda ys: (math.log(ys[-1]) - math.log(ys[0])) / (math.log(widths[-1]) - math.log(widths[0]))  # noqa: E731
    for ys, p in [(change, -0.25), (flips, -0.5)]:
        ax[0].plot(widths, [ys[0] * (w / widths[0]) ** p for w in widths], "k:", lw=1)
    ax[0].set(xscale="log", yscale="log", xlabel="width m",
              title=f"Claim 2: the Jacobian stays closer to J_0 as m grows ({len(seeds)} seeds)\n"
                    f"slopes {slope(change):.2f} and {slope(flips):.2f} (dotted: m^-1/4, m^-1/2)")
    ax[0].grid(alpha=0.3, which="both")
    ax[0].legend(fontsize=7)
    print(f"claim 2: width, max Jacobian change, max flipped fraction (mean [min, max] over "
          f"{len(seeds)} seeds)")
    for w in widths:
        c, f = spread(per("jacobian_change", w)), spread(per("flipped", w))
        print(f"  m={int(w)}: {c[0]:.4f} [{c[1]:.4f}, {c[2]:.4f}]  {f[0]:.5f} [{f[1]:.5f}, "
              f"{f[2]:.5f}]")
    print(f"  slopes of the means: Jacobian change {slope(change):.3f}, flips {slope(flips):.3f}")
    print("Condition 2 (|J - J0|_2 vs (C/3) sqrt(lambda_min(G0)) at C = 1/2), mean [min, max]:")
    for rs, name, style in [(rows, "sign", "-"), (rows_gaussian, "gaussian", "--")]:
        rr = runs_of(rs, "width", "seed")
        first = lambda w, col: [rr[(w, s)][0][col] for s in seeds]  # noqa: E731
        traj = [[max(r["jacobian_change_spectral"] for r in rr[(w, s)]) for s in seeds]
                for w in widths]
        errorbar(ax[1], widths, traj, "o" + style, f"|J_t - J_0|_2, NGD trajectory ({name})")
        errorbar(ax[1], widths, [first(w, "probe") for w in widths], "^" + style,
                 f"|J(w) - J_0|_2, random w on the ball ({name})")
        errorbar(ax[1], widths, [first(w, "bound") for w in widths], "k" + style,
                 f"bound sqrt(lambda_min(G0))/6 ({name})")
        for w, t in zip(widths, traj):
            lam, lam0 = spread(first(w, "lambda_min_g0")), spread(first(w, "lambda_0"))
            cn = spread(first(w, "c_needed"))
            dist = [max(r["distance"] for r in rr[(w, s)]) for s in seeds]
            print(f"  {name} m={int(w)}: lambda_min(G0) {lam[0]:.4f} [{lam[1]:.4f}, {lam[2]:.4f}]"
                  f" (lambda_0 {lam0[0]:.4f}), radius {spread(first(w, 'radius'))[0]:.1f} (NGD "
                  f"went {spread(dist)[0]:.1f}), bound {spread(first(w, 'bound'))[0]:.4f}, "
                  f"trajectory {spread(t)[0]:.4f} [{spread(t)[1]:.4f}, {spread(t)[2]:.4f}], probe "
                  f"{spread(first(w, 'probe'))[0]:.4f}; C needed {cn[0]:.2f} [{cn[1]:.2f}, "
                  f"{cn[2]:.2f}] -> {'NOT met' if cn[1] >= 0.5 else 'met on some seeds'}")
    ax[1].set(xscale="log", yscale="log", xlabel="width m", ylabel="spectral norm",
              title="Condition 2 of the theorem: not met at any of these widths\n"
                    "(the measured changes are lower bounds on the sup over the ball)")
    ax[1].grid(alpha=0.3, which="both")
    ax[1].legend(fontsize=6)
    save(fig, out, "zhang_stability.png")


def plot_lazy(rows, out):
    runs = {}
    for r in rows:
        runs.setdefault((r["width"],), []).append(r)
    widths = sorted(w for (w,) in runs)
    fig, ax = plt.subplots(figsize=(6, 4.2))
    print("lazy regime: test predictions, rms differences over the rms change (mean [min, max])")
    for col, style, label in [("ngd_vs_gd", "o-", "|f_NGD - f_GD|"),
                              ("ngd_vs_linear", "s--", "|f_NGD - f_kernel|"),
                              ("gd_vs_linear", "^--", "|f_GD - f_kernel|")]:
        vals = [[r[col] for r in runs[(w,)]] for w in widths]
        means = errorbar(ax, widths, vals, style, label)
        sl = (math.log(means[-1]) - math.log(means[0])) / (math.log(widths[-1]) - math.log(widths[0]))
        print(f"  {col}: " + ", ".join(f"m={int(w)} {spread(v)[0]:.4f} [{spread(v)[1]:.4f}, "
                                        f"{spread(v)[2]:.4f}]" for w, v in zip(widths, vals))
              + f"; slope {sl:.2f}")
    for col in ("theta_gap", "test_change", "gd_steps", "gd_residual_sq", "ngd_residual_sq"):
        print(f"  {col}: " + ", ".join(f"m={int(w)} {spread([r[col] for r in runs[(w,)]])[0]:.4g}"
                                        for w in widths))
    ax.set(xscale="log", yscale="log", xlabel="width m",
           ylabel="rms difference / rms change of f(x_test)",
           title="Lazy regime: NGD and GD reach the same predictor\n"
                 "(200 fresh inputs; mean, min-max over 5 seeds)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    save(fig, out, "zhang_lazy.png")


def plot_damping(rows, out):
    runs = runs_of(rows, "damping", "direction")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    print("claim 3: per-direction contraction at step 1")
    for lam in sorted({k[0] for k in runs}):
        dirs = [run for (l, _), run in runs.items() if l == lam]
        c0 = [run[0]["coefficient"] for run in dirs]
        rms = math.sqrt(sum(c * c for c in c0) / len(c0))
        ok = [run for run in dirs if abs(run[0]["coefficient"]) >= rms / 4]
        pred = [run[1]["predicted"] for run in ok]
        meas = [run[1]["ratio"] for run in ok]
        shift = dirs[0][0]["gram_shift"]
        line = axes[0].plot(pred, meas, "o", ms=3, label=f"lambda {lam:g} (n lambda {shift:.3g})")[0]
        bad = [run for run in dirs if abs(run[0]["coefficient"]) < rms / 4]
        axes[0].plot([r[1]["predicted"] for r in bad], [r[1]["ratio"] for r in bad], "o", ms=3,
                     mfc="none", color=line.get_color())
        sig = sorted((run[0]["eigenvalue"], run[1]["predicted"], run[1]["ratio"]) for run in dirs)
        axes[1].plot([s[0] for s in sig], [s[1] for s in sig], "-", color=line.get_color())
        axes[1].plot([s[0] for s in sig], [s[2] for s in sig], ".", color=line.get_color())
        err = max(abs(m - p) for m, p in zip(meas, pred))
        print(f"  lambda {lam:g} (n lambda {shift:.3g}): predicted {min(pred):.3f}..{max(pred):.3f}, "
              f"max |measured - predicted| {err:.4f} over {len(ok)} of {len(dirs)} directions")
    axes[0].plot([0, 1], [0, 1], "k--", lw=1)
    axes[0].set_xlim(0, 1)
    axes[0].set_ylim(-0.1, 1.05)
    axes[0].set_xlabel("predicted n lambda / (sigma_i + n lambda)")
    axes[0].set_ylabel("measured c_1 / c_0")
    axes[0].legend(fontsize=7)
    axes[0].set_title("hollow: |c_0| < rms/4 (ratio dominated by leakage)", fontsize=8)
    axes[1].set_xscale("log")
    axes[1].set_xlabel("eigenvalue sigma_i of G = J J^T at theta0")
    axes[1].set_ylabel("contraction per step (line: predicted)")
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.suptitle("Claim 3: damped NGD (lr 1) contracts eigendirection i by n lambda / (sigma_i + n lambda)")
    save(fig, out, "zhang_damping.png")


def plot_kfac(rows, out):
    runs = runs_of(rows, "method", "cond_target", "seed")
    seeds = sorted({k[2] for k in runs})
    fig, ax = plt.subplots(figsize=(6, 4.2))
    print(f"claim 4: late rate (measured / linearised) vs cond(X^T X), mean [min, max] over "
          f"{len(seeds)} seeds; cond(X^T X) and cond(G) of seed 0")
    for method, color in [("ngd", "tab:red"), ("kfac", "tab:green"), ("gd", "tab:blue")]:
        conds = sorted({k[1] for k in runs if k[0] == method})
        if not conds:
            continue
        pts = []
        for c in conds:
            group = [runs[(method, c, s)] for s in seeds if (method, c, s) in runs]
            rates = [late_rate([r["residual_sq"] for r in g]) for g in group]
            lin = [late_rate([r["linearised_residual_sq"] for r in g]) for g in group]
            pts.append((group[0][0]["cond_xtx"], spread(rates), spread(lin),
                        group[0][0]["cond_gram"]))
        x = [p[0] for p in pts]
        ax.errorbar(x, [p[1][0] for p in pts], yerr=[[p[1][0] - p[1][1] for p in pts],
                    [p[1][2] - p[1][0] for p in pts]], fmt="o-", color=color, capsize=3,
                    label=f"{method.upper()} measured")
        ax.plot(x, [p[2][0] for p in pts], "--", color=color, lw=1,
                label=f"{method.upper()} linearised")
        for p in pts:
            print(f"  {method:4s} cond(X^T X) {p[0]:9.4g}, cond(G) {p[3]:9.4g}: "
                  f"{p[1][0]:.4f} [{p[1][1]:.4f}, {p[1][2]:.4f}] / {p[2][0]:.4f}")
    ax.set_xscale("log")
    ax.set_xlabel("cond(X^T X) of the unit-norm inputs (seed 0)")
    ax.set_ylabel("|f - y|^2 ratio per step (late)")
    ax.set_ylim(0, 1.02)
    ax.set_title("Claim 4: K-FAC's rate degrades with input conditioning\n"
                 f"(each method at half its largest non-overshooting step; {len(seeds)} seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    save(fig, out, "zhang_kfac.png")


def print_kfac_width(rows):
    """Claim 4's finite-width caveat: late rates per method and input conditioning over seeds."""
    runs = runs_of(rows, "method", "cond_target", "seed")
    print(f"claim 4 at width {int(rows[0]['width'])}: late rate, mean [min, max] over seeds, and "
          "the largest |f-y|^2 ratio of any late step")
    for method in ("ngd", "kfac"):
        for cond in sorted({k[1] for k in runs}):
            group = [g for (m, c, _), g in runs.items() if m == method and c == cond]
            rates = [late_rate([r["residual_sq"] for r in g]) for g in group]
            lin = [late_rate([r["linearised_residual_sq"] for r in g]) for g in group]
            worst = max(max(r["ratio"] for r in g[len(g) // 2:]) for g in group)
            final = [g[-1]["residual_sq"] / g[0]["residual_sq"] for g in group]
            print(f"  {method:4s} cond {cond:7g} (cond(X^T X) {group[0][0]['cond_xtx']:.4g}): "
                  f"{spread(rates)[0]:.4f} [{spread(rates)[1]:.4f}, {spread(rates)[2]:.4f}], "
                  f"linearised {spread(lin)[0]:.4f}, worst late ratio {worst:.4f}, final "
                  f"|f-y|^2 fraction {spread(final)[0]:.3g} [{spread(final)[1]:.3g}, "
                  f"{spread(final)[2]:.3g}]")


def main():
    args = arguments(__doc__)
    data = run_and_read(args, RUNS)
    plot_convergence(data["zhang_convergence.csv"], data["zhang_convergence_lr1.csv"], args.out)
    plot_stability(data["zhang_stability.csv"], data["zhang_stability_gaussian.csv"], args.out)
    plot_lazy(data["zhang_lazy.csv"], args.out)
    plot_damping(data["zhang_damping.csv"], args.out)
    plot_kfac(data["zhang_kfac.csv"], args.out)
    print_kfac_width(data["zhang_kfac_2048.csv"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
