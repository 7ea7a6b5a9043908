"""What the reproduction plot scripts (scripts/plot_*.py) share: reading the examples' CSVs into
rows of numbers, grouping rows into runs, and saving a figure. Needs matplotlib (Debian:
python3-matplotlib, for /usr/bin/python3)."""
import csv
import os
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def number(v):
    """A CSV cell as a float when it is one, else the string."""
    try:
        return float(v)
    except ValueError:
        return v


def read(path):
    """The rows of a CSV file as dicts of numbers (or strings)."""
    with open(path, newline="") as f:
        return [{k: number(v) for k, v in row.items()} for row in csv.DictReader(f)]


def runs_of(rows, *keys):
    """Rows grouped into runs by the given columns, each run sorted by step."""
    groups = defaultdict(list)
    for r in rows:
        groups[tuple(r[k] for k in keys)].append(r)
    for g in groups.values():
        g.sort(key=lambda r: r["step"])
    return groups


def save(fig, out, name):
    """Writes fig to out/name (PNG) and closes it."""
    path = os.path.join(out, name)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"wrote {path}")


def arguments(doc):
    """The command line every plot script takes: --csv-dir, --run BIN_DIR, --backend, --out
    (folders created)."""
    import argparse

    ap = argparse.ArgumentParser(description=doc)
    ap.add_argument("--csv-dir", required=True, help="where the CSVs are (or are written)")
    ap.add_argument("--run", metavar="BIN_DIR", help="run the example programs from BIN_DIR first")
    ap.add_argument("--backend", default="reference", help="--backend for the runs")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "docs", "img"))
    args = ap.parse_args()
    os.makedirs(args.csv_dir, exist_ok=True)
    os.makedirs(args.out, exist_ok=True)
    return args


def run_and_read(args, runs):
    """runs: (csv name, program, extra arguments) triples. With --run, runs each program writing
    its CSV into --csv-dir; then returns {csv name: rows}."""
    import subprocess

    if args.run:
        for name, program, extra in runs:
            cmd = [os.path.join(args.run, program), "--backend", args.backend,
                   "--csv", os.path.join(args.csv_dir, name)] + extra
            print("running", " ".join(cmd), flush=True)
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return {name: read(os.path.join(args.csv_dir, name)) for name, _, _ in runs}
