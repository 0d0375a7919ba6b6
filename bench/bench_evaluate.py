#!/usr/bin/env python
"""Evaluation speed, A/B: the same ``anonfaces evaluate`` sweep from two checkouts, timed and compared.

Each checkout runs the sweep as its own command line (``python -m anonfaces.cli evaluate``,
with that checkout first on ``PYTHONPATH``), one after the other in this one run of the
benchmark, on the same photos. The stage timings come from each sweep's own ``run.json``
(``stage_seconds``: the originals' encode / measure / fit, and per anonymization cluster /
anonymize / measure / score), so this script does not restate the sweep's steps. Then the
two ``metrics.csv`` are compared value by value.

    python bench/bench_evaluate.py ab --checkouts /work/wt/base,. --out bench-out      # the README's LFW sweep
    python bench/bench_evaluate.py ab --checkouts A,B --out bench-out -- --people 20 --photos-per-person 5 --k 5
    python bench/bench_evaluate.py stages bench-out/A/run.json                          # one run's stage table
    python bench/bench_evaluate.py compare bench-out/A/metrics.csv bench-out/B/metrics.csv

Arguments after ``--`` replace the default sweep options (`DEFAULT_SWEEP`, the README's
LFW figure: 60 people x 10 photos, 5 methods, k = 2, 5, 10, 19). Prints the stage table,
the speed-up and the comparison, and appends one JSON line to ``--record`` when given.
``compare`` exits 1 when the tables differ.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from photo_sets import DEFAULT_LFW

DEFAULT_SWEEP = [
    "--dataset", str(DEFAULT_LFW), "--people", "60", "--photos-per-person", "10", "--min-photos", "10",
    "--methods", "ksame:morph,ksame:pixel,blur,pixelate,closing", "--k", "2,5,10,19", "--reid-min-photos", "10",
    "--jobs", "2", "--no-progress",
]
KEY = ["dataset", "method", "k", "metric", "subset", "recognizer"]


def run_sweep(checkout: Path, out: Path, sweep_args: list[str]) -> float:
    """Run the sweep from ``checkout`` into ``out``; returns the wall-clock seconds."""
    env = {**os.environ, "PYTHONPATH": str(checkout.resolve())}
    cmd = [sys.executable, "-m", "anonfaces.cli", "evaluate", *sweep_args, "--out", str(out.resolve())]
    t = time.perf_counter()
    subprocess.run(cmd, cwd=checkout, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def stages(run_json: Path) -> dict[str, float]:
    """Seconds by stage from a sweep's run.json, summed over its anonymizations."""
    record = json.loads(Path(run_json).read_text())
    out: dict[str, float] = {}
    for label, steps in record.get("stage_seconds", {}).items():
        for step, seconds in steps.items():
            name = f"originals: {step}" if label == "originals" else f"runs: {step}"
            out[name] = out.get(name, 0.0) + float(seconds)
    out["total (run.json)"] = float(record["seconds"]["total"])
    return out


def compare(a: Path, b: Path) -> dict:
    """Row-by-row comparison of two metrics.csv files (same rows, values equal to the last bit)."""
    import numpy as np
    import pandas as pd

    ta, tb = (pd.read_csv(p, keep_default_na=False, na_values=[""]) for p in (a, b))
    for t in (ta, tb):
        t["k"] = t["k"].astype("string")
        t["subset"] = t["subset"].fillna("").astype(str)
        t["recognizer"] = t["recognizer"].fillna("").astype(str)
    merged = ta.merge(tb, on=KEY, how="outer", suffixes=("_a", "_b"), indicator=True)
    only = merged[merged["_merge"] != "both"]
    both = merged[merged["_merge"] == "both"]
    va, vb = both["value_a"].to_numpy(float), both["value_b"].to_numpy(float)
    same = (va == vb) | (np.isnan(va) & np.isnan(vb))
    diff = np.where(same, 0.0, np.abs(va - vb))
    worst = both.assign(diff=diff).sort_values("diff", ascending=False).head(5)
    return {"rows_a": len(ta), "rows_b": len(tb), "rows_only_in_one": len(only), "values_differing": int((~same).sum()),
            "max_abs_diff": float(np.nanmax(diff)) if len(diff) else 0.0, "identical": bool(len(only) == 0 and same.all()),
            "worst": worst[[*KEY, "value_a", "value_b"]].to_dict("records") if (~same).any() else []}


def _table(columns: dict[str, dict[str, float]]) -> str:
    names = list(dict.fromkeys(n for col in columns.values() for n in col))
    heads = list(columns)
    lines = ["| stage (s) | " + " | ".join(heads) + " |", "|---" * (len(heads) + 1) + "|"]
    for n in names:
        lines.append(f"| {n} | " + " | ".join(f"{columns[h].get(n, float('nan')):.1f}" for h in heads) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    sweep_args = DEFAULT_SWEEP
    if "--" in argv:
        i = argv.index("--")
        argv, sweep_args = argv[:i], argv[i + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    ab = sub.add_parser("ab", help="run the sweep from two checkouts and compare")
    ab.add_argument("--checkouts", required=True, help="two checkout folders, comma-separated (A,B)")
    ab.add_argument("--out", type=Path, required=True, help="folder for A/ and B/ (each a sweep's OUT)")
    ab.add_argument("--record", type=Path, default=None, help="append one JSON line here")
    ab.add_argument("--b-args", default="", help="options added to B's sweep only, one string split at spaces (e.g. "
                    "the old anonymization settings of a newer checkout: '--anonymize-param shape=member ...')")
    st = sub.add_parser("stages", help="the stage table of one run.json")
    st.add_argument("run_json", type=Path)
    cmp_ = sub.add_parser("compare", help="compare two metrics.csv")
    cmp_.add_argument("a", type=Path)
    cmp_.add_argument("b", type=Path)
    args = parser.parse_args(argv)

    if args.what == "stages":
        print(_table({str(args.run_json): stages(args.run_json)}))
        return 0
    if args.what == "compare":
        result = compare(args.a, args.b)
        print(json.dumps(result, indent=1, default=str))
        return 0 if result["identical"] else 1
    checkouts = [Path(p) for p in args.checkouts.split(",")]
    if len(checkouts) != 2:
        parser.error("--checkouts takes two folders")
    wall, tables = {}, {}
    for name, checkout in zip("AB", checkouts):
        out = args.out / name
        wall[name] = run_sweep(checkout, out, sweep_args + (args.b_args.split() if name == "B" else []))
        record = out.with_name(out.name + ".private") / "run.json"  # since the private folder (issue 13)
        tables[f"{name}: {checkout}"] = {**stages(record if record.is_file() else out / "run.json"), "wall clock": wall[name]}
    result = compare(args.out / "A" / "metrics.csv", args.out / "B" / "metrics.csv")
    print(_table(tables))
    print(f"\nspeed-up A/B (wall clock): {wall['A'] / wall['B']:.2f}x")
    print("metrics.csv: " + ("identical" if result["identical"] else
                            f"{result['values_differing']} values differ (max {result['max_abs_diff']:.4g}), "
                            f"{result['rows_only_in_one']} rows in one only"))
    if args.record:
        line = {"bench": "evaluate-ab", "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "checkouts": [str(c) for c in checkouts],
                "sweep": sweep_args, "wall": wall, "stages": tables, "compare": result}
        with open(args.record, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(line, default=str) + "\n")
    return 0 if result["identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
