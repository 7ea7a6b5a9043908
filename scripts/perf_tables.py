#!/usr/bin/env python3
"""Turns the results of scripts/gpu-bench (and scripts/gpu-check's bench.json) into the Markdown
tables of docs/performance.md: ngd per stage (Google Benchmark, CUDA events), the whole step
against each peer as a ratio, and the peers per stage; and those of scripts/gpu-scaling (*.jsonl,
rendered by scripts/scaling_report.py) into the scaling tables and, with --plots, figures. Standard
library only (the figures need matplotlib).

  scripts/perf_tables.py out/peers [more folders or files]            print the tables
  scripts/perf_tables.py out/peers --update docs/performance.md       fill the marked section
  scripts/perf_tables.py out/scaling --update docs/performance.md --plots docs/img
                                                    fill the scaling section, scaling_*.png
  scripts/perf_tables.py --skeleton --update docs/performance.md      empty tables (no data yet)
Inputs with scaling results only leave the perf-tables section as it is, and inputs without them
the scaling section.
"""

import argparse
import json
import os
import re
import sys

import scaling_report

BEGIN, END = "<!-- perf-tables:begin -->", "<!-- perf-tables:end -->"
SCALING_BEGIN, SCALING_END = "<!-- scaling-tables:begin -->", "<!-- scaling-tables:end -->"
CONFIGS = [("Z", 4096), ("M", 1024), ("M", 4096), ("L", 2048), ("F", 20000)]
PRECISIONS = ["f64", "f32"]
# (1) the step a typical user writes, then (2) the same structured algorithm written by hand.
PEERS = ["torch", "jax", "ntk", "torch_structured", "jax_structured"]
STAGES = ["forward", "seeds", "gram_structured", "gram_explicit", "solve", "direction", "step"]
PEER_STAGES = ["forward", "jacobian", "gram", "solve", "direction", "step"]


def sort_key(key):
    """(config, n, precision) in DESIGN.md's order: Z, M, L, F, then n, then f64 before f32."""
    return ("ZMLF".find(key[0]) % 5, key[1], PRECISIONS.index(key[2]))


def load(paths):
    """Google Benchmark entries, peer results, export metas and env.txt lines found under paths."""
    found = {"bench": [], "peers": [], "exports": [], "env": {}, "scaling": []}
    files = []
    for path in paths:
        if os.path.isdir(path):
            for base, _, names in os.walk(path):
                files += [os.path.join(base, name) for name in sorted(names)]
        else:
            files.append(path)
    for path in files:
        if os.path.basename(path) == "env.txt":
            with open(path) as f:
                for line in f:
                    key, _, value = line.partition(":")
                    found["env"].setdefault(key.strip(), value.strip())
            continue
        if path.endswith(".jsonl"):
            found["scaling"] += scaling_report.read_jsonl(path)
            continue
        if not path.endswith(".json"):
            continue
        with open(path) as f:
            try:
                data = json.load(f)
            except json.JSONDecodeError:
                continue
        if isinstance(data, dict) and "benchmarks" in data:
            found["bench"] += [
                b for b in data["benchmarks"] if b.get("name", "").startswith("cuda/")
            ]
        elif isinstance(data, dict) and "peer" in data:
            found["peers"].append(data)
        elif isinstance(data, dict) and data.get("format") == "ngd-step-export/1":
            found["exports"].append(data)
    return found


def ms(seconds):
    return f"{seconds * 1e3:.3g}" if seconds is not None else "—"


def median(xs):
    xs = sorted(xs)
    if not xs:
        return None
    mid = len(xs) // 2
    return xs[mid] if len(xs) % 2 else 0.5 * (xs[mid - 1] + xs[mid])


def bench_table(found, keys, skeleton):
    """ngd per stage: milliseconds per stage (GFLOP/s), and the two baseline ratios."""
    if not found["bench"] and not skeleton:
        return "(no ngd_bench results among the inputs: they exist at DESIGN.md's sizes only)"
    cells = {}
    for b in found["bench"]:
        m = re.match(r"cuda/([a-z_]+)/([A-Z])\d*/(f64|f32)$", b["name"])
        if not m:
            continue
        stage, letter, prec = m.groups()
        key = (letter, int(b.get("n", 0)), prec)
        if b.get("error_occurred"):
            cells[key, stage] = "skipped"
            continue
        scale = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[b.get("time_unit", "ns")]
        text = f"{b['real_time'] * scale:.3g}"
        if "GFLOP/s" in b:
            text += f" ({b['GFLOP/s']:.0f})"
        if stage in ("gram_structured", "solve") and "ratio_to_baseline" in b:
            text += f" ×{b['ratio_to_baseline']:.2f}"
        cells[key, stage] = text
        cells[key, "sizes"] = (int(b.get("N", 0)), int(b.get("p", 0)))
    rows = [
        "| config | prec | N | p | " + " | ".join(STAGES) + " |",
        "|---|---|---|---|" + "---|" * len(STAGES),
    ]
    for key in keys:
        big_n, p = cells.get((key, "sizes"), ("—", "—"))
        stage_cells = [cells.get((key, s), "—") for s in STAGES]
        rows.append(
            f"| {key[0]} n={key[1]} | {key[2]} | {big_n} | {p} | " + " | ".join(stage_cells) + " |"
        )
    return "\n".join(rows)


def peer_status(r):
    if r is None:
        return None, "—"
    if "out_of_memory" in r:
        return None, "out of memory"
    if "error" in r:
        return None, "error"
    agree = r.get("agreement")
    if agree is not None and not agree.get("pass"):
        return None, f"disagrees ({agree['rel_err_direction']:.1e})"
    if "seconds" not in r:
        reason = r.get("skipped", "")
        return None, "unavailable" if "importable" in reason else "skipped (cost cap)"
    return r["seconds"]["step"]["median"], None


def step_table(found, keys):
    """The whole step: ngd::direction (step_export, synchronised wall clock) against each peer."""
    exports = {(e["config"], e["n"], e["precision"]): e for e in found["exports"]}
    peers = {(r["peer"], r["config"], r["n"], r["precision"]): r for r in found["peers"]}
    head = "| config | prec | N | p | ngd ms |"
    rule = "|---|---|---|---|---|"
    for peer in PEERS:
        head += f" {peer} ms | {peer} ÷ ngd |"
        rule += "---|---|"
    rows = [head + " max rel. err. of d |", rule + "---|"]
    for key in keys:
        e = exports.get(key)
        t_ngd = median(e["ngd_seconds"]["repeats"]) if e else None
        big_n, p = (e["N"], e["p"]) if e else ("—", "—")
        line = f"| {key[0]} n={key[1]} | {key[2]} | {big_n} | {p} | {ms(t_ngd)} |"
        worst, tie = None, False
        for peer in PEERS:
            r = peers.get((peer,) + key)
            t, why = peer_status(r)
            if r and r.get("agreement"):
                err = r["agreement"]["rel_err_direction"]
                worst = err if worst is None else max(worst, err)
                # A float32 check decided in float64 at a ReLU-kink tie (bench/peers/agreement.py).
                tie = tie or "passed_by" in r["agreement"]
            ratio = f"{t / t_ngd:.1f}" if t is not None and t_ngd else "—"
            line += f" {ms(t) if t is not None else why} | {ratio} |"
        note = " (float32 ReLU-kink tie, checked in float64)" if tie else ""
        rows.append(line + (f" {worst:.1e}{note} |" if worst is not None else " — |"))
    return "\n".join(rows)


def peer_stage_table(found):
    rows = [
        "| peer | config | prec | blocks | " + " | ".join(PEER_STAGES) + " | Gram GFLOP/s |",
        "|---|---|---|---|" + "---|" * (len(PEER_STAGES) + 1),
    ]
    results = sorted(
        found["peers"],
        key=lambda r: (
            PEERS.index(r["peer"]) if r["peer"] in PEERS else 9,
            sort_key((r["config"], r["n"], r["precision"])),
        ),
    )
    for r in results:
        if "seconds" not in r:
            continue
        sec = r["seconds"]
        cells = [ms(sec[s]["median"]) if s in sec else "—" for s in PEER_STAGES]
        flops = r.get("cost", {}).get("gram_flops")
        rate = f"{flops / sec['gram']['median'] * 1e-9:.0f}" if flops and "gram" in sec else "—"
        blocks = r.get("cost", {}).get("blocks", "—")
        rows.append(
            f"| {r['peer']} | {r['config']} n={r['n']} | {r['precision']} | {blocks} | "
            + " | ".join(cells)
            + f" | {rate} |"
        )
    if len(rows) == 2:
        rows.append("|" + " — |" * (len(PEER_STAGES) + 5))
    return "\n".join(rows)


def environment(found):
    devices = sorted(
        {r["device"] for r in found["peers"]} | {e["device"] for e in found["exports"]}
    )
    lines = []
    if found["env"].get("commit"):
        lines.append(
            f"- commit: `{found['env']['commit']}` "
            f"(dirty files: {found['env'].get('dirty files', '?')})"
        )
    if found["env"].get("date"):
        lines.append(f"- date: {found['env']['date']}")
    if devices:
        lines.append("- devices: " + "; ".join(devices))
    versions = sorted(
        {f"{k} {v}" for r in found["peers"] for k, v in r.get("versions", {}).items()}
    )
    if versions:
        lines.append("- peer versions: " + ", ".join(versions))
    return "\n".join(lines) if lines else "- no measurements yet"


def tables(found, skeleton=False):
    keys = []
    if skeleton or not (found["exports"] or found["bench"]):
        keys = [(c, n, p) for c, n in CONFIGS for p in PRECISIONS]
    else:
        seen = {(e["config"], e["n"], e["precision"]) for e in found["exports"]}
        for b in found["bench"]:
            m = re.match(r"cuda/[a-z_]+/([A-Z])\d*/(f64|f32)$", b["name"])
            if m and "n" in b:
                seen.add((m.group(1), int(b["n"]), m.group(2)))
        keys = sorted(seen, key=sort_key)
    notes = {
        "bench": "Milliseconds per call, GFLOP/s in parentheses; ×r after the structured Gram is "
        "its time over the GEMM-rate floor of its own products, after the solve its time over "
        "bare cusolverDnXpotrf + Xpotrs.",
        "step": "ngd ms: `ngd::direction` timed by step_export; peer ms: the peer's whole step "
        "(forward, loss factors, Gram, Cholesky, J^T alpha, update); both are "
        "device-synchronised wall-clock medians after warm-up. peer ÷ ngd > 1 means ngd is "
        "faster. torch, jax, ntk: the step a typical user writes (J by vmap(jacrev)); "
        "torch_structured, jax_structured: ngd's structured algorithm written by hand. "
        "DESIGN.md's targets on Z and M: ≥ 50 against the first, ≥ 1.5 against the second.",
        "peers": "Milliseconds (medians); blocks > 1: J computed in sample blocks that fit the "
        "memory budget; Gram GFLOP/s counts the explicit products executed.",
    }
    return "\n\n".join(
        [
            "#### Environment\n\n" + environment(found),
            "#### ngd per stage (Google Benchmark, CUDA events)\n\n"
            + notes["bench"]
            + "\n\n"
            + bench_table(found, keys, skeleton),
            "#### Whole step: ngd against the peers\n\n"
            + notes["step"]
            + "\n\n"
            + step_table(found, keys),
            "#### Peers per stage\n\n" + notes["peers"] + "\n\n" + peer_stage_table(found),
        ]
    )


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("paths", nargs="*", help="folders or files with results")
    ap.add_argument("--output", help="write the tables to this file")
    ap.add_argument(
        "--update", help="replace the section between the perf-tables markers in this file"
    )
    ap.add_argument(
        "--skeleton", action="store_true", help="tables with every configuration, no data"
    )
    ap.add_argument("--plots", help="write the scaling figures (scaling_*.png) to this folder")
    args = ap.parse_args()
    found = load(args.paths)
    only_scaling = found["scaling"] and not (found["bench"] or found["peers"] or found["exports"])
    sections = []  # (begin, end, text) of each section these inputs give
    if args.skeleton or not only_scaling:
        sections.append((BEGIN, END, tables(found, skeleton=args.skeleton)))
    if args.skeleton or found["scaling"]:
        text = scaling_report.tables(found["scaling"], skeleton=args.skeleton)
        sections.append((SCALING_BEGIN, SCALING_END, text))
    text = "\n\n".join(t for _, _, t in sections)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text + "\n")
    if args.update:
        with open(args.update) as f:
            doc = f.read()
        for begin, end, part in sections:
            if begin not in doc or end not in doc:
                print(
                    f"perf_tables: {args.update} has no {begin} ... {end} section", file=sys.stderr
                )
                return 1
            head, rest = doc.split(begin, 1)
            _, tail = rest.split(end, 1)
            doc = f"{head}{begin}\n{part}\n{end}{tail}"
        with open(args.update, "w") as f:
            f.write(doc)
    if args.plots and found["scaling"]:
        try:
            for path in scaling_report.plots(found["scaling"], args.plots):
                print(f"wrote {path}")
        except ImportError:
            print("perf_tables: matplotlib not importable, no scaling figures", file=sys.stderr)
    if not args.output and not args.update:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
