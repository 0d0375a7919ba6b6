#!/usr/bin/env python
"""SSIM against re-identification, one point per sweep: the frontier of issue 16's blend settings.

Reads the ``metrics.csv`` of several ``anonfaces evaluate`` sweeps (one blend setting each, the
same people) and draws, for one k, SSIM against a privacy figure of each attacker (dlib, and the
independent ones), with the k-anonymity bound as a line; prints the points as a table.

    python bench/plot_frontier.py --k 5 --metric closed_set --out docs/images/kanon-frontier-lfw-k5.png \\
        "default=runs/sweep0" "ring 1.08=runs/sweepC" "pose 2 + detail=runs/sweepE" ...
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def read_points(folder, k: int, metric: str) -> dict:
    """{recognizer: value of ``metric``, "ssim": mean SSIM, "bound": its bound} of ksame at ``k`` in one sweep."""
    out = {}
    with open(Path(folder) / "metrics.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            if not row["method"].startswith("ksame") or row["k"] != str(k) or not row["value"]:
                continue
            if row["metric"] == "ssim" and row["subset"] in ("", "average"):
                out["ssim"] = float(row["value"])
            elif row["metric"] == metric and row["recognizer"]:
                out[row["recognizer"]] = float(row["value"])
                out["bound"] = float(row["bound"]) if row["bound"] else None
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sweeps", nargs="+", metavar="LABEL=FOLDER")
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--metric", default="closed_set", help="closed_set, identity_reid, parrot_reid, ...")
    ap.add_argument("--out", default=None, help="write the plot here (PNG)")
    args = ap.parse_args(argv)
    points = []
    for spec in args.sweeps:
        label, _, folder = spec.partition("=")
        if not folder:
            ap.error(f"{spec!r}: expected LABEL=FOLDER")
        points.append((label, read_points(folder, args.k, args.metric)))
    recognizers = sorted({r for _, p in points for r in p if r not in ("ssim", "bound")},
                         key=lambda r: (r != "dlib", r))
    print(f"| setting (k = {args.k}) | SSIM | " + " | ".join(f"{r} {args.metric}" for r in recognizers) + " |")
    print("|---|---|" + "---|" * len(recognizers))
    for label, p in points:
        print(f"| {label} | {p.get('ssim', float('nan')):.3f} | "
              + " | ".join(f"{p.get(r, float('nan')):.3f}" for r in recognizers) + " |")
    if args.out:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=120)
        for r, marker in zip(recognizers, "os^vD<>"):
            xs = [p["ssim"] for _, p in points if r in p and "ssim" in p]
            ys = [p[r] for _, p in points if r in p and "ssim" in p]
            ax.plot(xs, ys, marker, label=r, alpha=0.85)
        for i, (label, p) in enumerate(points, start=1):  # numbered here, named in the box below the axes
            if "ssim" in p:
                ax.annotate(str(i), (p["ssim"], max(p.get(r, 0) for r in recognizers)), fontsize=8,
                            xytext=(3, 3), textcoords="offset points")
        fig.text(0.01, 0.01, "   ".join(f"{i} {label}" for i, (label, _) in enumerate(points, start=1)),
                 fontsize=6.5, wrap=True, va="bottom")
        bound = next((p["bound"] for _, p in points if p.get("bound")), None)
        if bound:
            ax.axhline(bound, color="grey", lw=1, ls="--", label=f"1/k = {bound:.3f}")
            if args.metric == "identity_reid":
                ax.axhline(bound + 0.05, color="grey", lw=1, ls="-.", label="target 1/k + 0.05")
        ax.axvline(0.90, color="grey", lw=1, ls=":", label="SSIM target 0.90")
        ax.set_xlabel("SSIM of the photo (higher: closer to the original)")
        ax.set_ylabel(f"{args.metric} (lower protects more)")
        ax.set_title(f"k = {args.k}: what each blend setting buys and costs")
        ax.legend(fontsize=7)
        fig.tight_layout(rect=(0, 0.08, 1, 1))
        from anonfaces.utils.atomic import atomic_open

        with atomic_open(args.out, "wb") as fh:
            fig.savefig(fh, format="png")
        print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
