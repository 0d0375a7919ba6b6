#!/usr/bin/env python
"""Probe for issue 16: how each way of putting a surrogate into a photo keeps the 1/k promise.

Runs `anonfaces.evaluate.evaluate_dataset` once per configuration (``ksame:<synth>``
at one k, the same subset, encodings made once and shared) and prints, per
configuration, the dlib attacker's closed-set, identity-level and parrot rates,
the 1/k bound, SSIM, the re-detection rate and the privacy check's outcomes
(``privacy.csv`` of the run). Configurations are named below (`CONFIGS`) or given
as JSON (``--config '{"name": "x", "shape": "cluster", ...}'``, the keywords of
`anonymize_dataset`).

    python bench/probe_kanon.py --dataset ../shared/data/lfw --people 60 --photos-per-person 5 \\
        --min-photos 5 --k 5 --configs old,cluster-inner,cluster-head --out /tmp/probe [--jobs 2]

By default the probe subset is people with at least 5 photos (evenly spaced): a
different set of people from the README's sweep (people with at least 10 photos),
so the defaults are not chosen on the figures they are then reported with.
Appends one JSON line per configuration to ``OUT/probe.jsonl``.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

NO_CHECK = {"privacy_check": False}
CONFIGS = {
    "old": {"shape": "member", "region": "inner", **NO_CHECK},
    "cluster-inner": {"shape": "cluster", "region": "inner", **NO_CHECK},
    "cluster-forehead": {"shape": "cluster", "region": "forehead", **NO_CHECK},
    "cluster-head": {"shape": "cluster", "region": "head", **NO_CHECK},
    "cluster-head-luma": {"shape": "cluster", "region": "head", "color": "luma", **NO_CHECK},
    "cluster-head-none": {"shape": "cluster", "region": "head", "color": "none", **NO_CHECK},
    "cluster-head-seamless": {"shape": "cluster", "region": "head", "blend": "seamless", **NO_CHECK},
    "check-0.05-blur": {"shape": "cluster", "region": "head", "privacy_margin": 0.05, "on_leak": "blur"},
    "check-0.1-blur": {"shape": "cluster", "region": "head", "privacy_margin": 0.1, "on_leak": "blur"},
    "check-0.05-surrogate": {"shape": "cluster", "region": "head", "privacy_margin": 0.05, "on_leak": "surrogate"},
}


def _metrics(path: Path, method: str, k: int) -> dict:
    """dlib's privacy figures by metric name, the other attackers' as ``<recognizer>:<metric>``, utility by name."""
    out = {}
    with open(path, newline="") as fh:
        for r in csv.DictReader(fh):
            if r["method"] != method or r["k"] != str(k) or r["subset"] not in ("", "average") or r["value"] == "":
                continue
            key = r["metric"] if r["recognizer"] in ("dlib", "") else f"{r['recognizer']}:{r['metric']}"
            out[key] = float(r["value"])
    return out


def _privacy_outcomes(run: Path) -> dict:
    path = next(iter(sorted((run / "runs").rglob("privacy.csv"))), None)
    if path is None:
        return {}
    with open(path, newline="") as fh:
        return dict(Counter(r["outcome"] for r in csv.DictReader(fh)))


KEYS = ("closed_set", "identity_reid", "parrot_reid", "ssim", "detection_rate")


def _line(name, m, outcomes, seconds) -> str:
    return f"{name:24s} " + " ".join(f"{key}={m.get(key, float('nan')):.3f}" for key in KEYS) + f" {outcomes} {seconds:.0f}s"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="../shared/data/lfw")
    ap.add_argument("--people", type=int, default=60)
    ap.add_argument("--photos-per-person", type=int, default=5)
    ap.add_argument("--min-photos", type=int, default=5)
    ap.add_argument("--reid-min-photos", type=int, default=None, help="default: --photos-per-person")
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--synth", default="morph")
    ap.add_argument("--recognizers", default="dlib")
    ap.add_argument("--configs", default="old,cluster-head")
    ap.add_argument("--config", action="append", default=[], help="a JSON configuration (repeatable)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", required=True)
    ap.add_argument("--summarize", action="store_true", help="only print the figures of the runs already in OUT")
    args = ap.parse_args(argv)
    if args.summarize:
        for run in sorted(p for p in Path(args.out).iterdir() if (p / "metrics.csv").is_file()):
            print(_line(run.name, _metrics(run / "metrics.csv", f"ksame:{args.synth}", args.k), _privacy_outcomes(run), 0))
        return 0

    import logging

    logging.basicConfig(level=logging.WARNING)
    from anonfaces.evaluate import DatasetSubset, evaluate_dataset

    configs = [{"name": n, **CONFIGS[n]} for n in args.configs.split(",") if n]
    configs += [json.loads(c) for c in args.config]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    subset = DatasetSubset(people=args.people, photos_per_person=args.photos_per_person, min_photos=args.min_photos)
    encodings = None
    method = f"ksame:{args.synth}"
    for cfg in configs:
        cfg = dict(cfg)
        name = cfg.pop("name")
        run = out / name
        t = time.perf_counter()
        evaluate_dataset(args.dataset, run, subset=subset, methods=[method], ks=[args.k],
                         recognizers=args.recognizers.split(","), encodings=encodings,
                         reid_min_photos=args.reid_min_photos or args.photos_per_person, anonymize_params=cfg,
                         examples=4, plots=False, jobs=args.jobs, progress=False)
        seconds = time.perf_counter() - t
        if encodings is None:
            encodings = run / "cache" / "encodings.npz"
        m = _metrics(run / "metrics.csv", method, args.k)
        outcomes = _privacy_outcomes(run)
        row = {"name": name, "settings": cfg, "k": args.k, "bound": 1 / args.k, "dataset": args.dataset,
               "subset": subset.to_dict(), "seconds": round(seconds, 1),
               "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "privacy": outcomes, **m}
        with open(out / "probe.jsonl", "a") as fh:
            fh.write(json.dumps(row) + "\n")
        print(_line(name, m, outcomes, seconds), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
