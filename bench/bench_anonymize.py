#!/usr/bin/env python
"""Anonymization speed: the whole ksame + morph chain against encoding the same photos.

Both are timed in the same run, on the same photos, each in a fresh process
(models loaded inside the timing, on both sides) and with the same number of
worker processes:

* ``encode``: `anonfaces.encode.encode_photos(..., jobs=N)`;
* ``anonymize``: `anonfaces.pipeline.anonymize_dataset(..., k=5, synth="morph",
  jobs=N)`, which encodes, clusters, aligns, synthesizes and rewrites every photo.

The target (issue 4) is anonymize <= 1.3 x encode. The sides alternate for
``--repeat`` rounds; the record gives every round and the medians.

    python bench/bench_anonymize.py [--photos 300] [--jobs 2] [--repeat 2] [--lfw ../shared/data/lfw]

Prints a JSON record.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from photo_sets import add_photo_options, chosen_photos, link_dataset, machine


def run_side(side: str, photos: list[Path], jobs: int, k: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        ds = link_dataset(photos, Path(tmp) / "photos")
        t0 = time.perf_counter()
        if side == "encode":
            from anonfaces.encode import encode_photos

            report = encode_photos(ds, Path(tmp) / "enc.npz", jobs=jobs, progress=False)
            return {"seconds": time.perf_counter() - t0, "faces": report.n_faces}
        from anonfaces.pipeline import anonymize_dataset

        report = anonymize_dataset(ds, Path(tmp) / "out", k=k, synth="morph", jobs=jobs, progress=False)
        return {"seconds": time.perf_counter() - t0, "faces": report.n_faces, "stages": report.seconds}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_photo_options(ap, photos=300)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--side", choices=["encode", "anonymize"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    photos = chosen_photos(args)
    if args.side:  # one side, in this fresh process
        print(json.dumps(run_side(args.side, photos, args.jobs, args.k)))
        return {}
    rounds = []
    for _ in range(args.repeat):
        r = {}
        for side in ("encode", "anonymize"):
            out = subprocess.run([sys.executable, __file__, "--side", side, "--photos", str(args.photos), "--jobs",
                                  str(args.jobs), "--k", str(args.k), "--lfw", str(args.lfw)],
                                 capture_output=True, text=True, check=True)
            r[side] = json.loads(out.stdout.strip().splitlines()[-1])
        rounds.append(r)
    enc = float(np.median([r["encode"]["seconds"] for r in rounds]))
    anon = float(np.median([r["anonymize"]["seconds"] for r in rounds]))
    beyond = float(np.median([r["anonymize"]["seconds"] - r["anonymize"]["stages"]["encode"] for r in rounds]))
    record = {
        "benchmark": "anonymize",
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "photos": len(photos),
        "faces": rounds[0]["encode"]["faces"],
        "jobs": args.jobs,
        "k": args.k,
        "encode_s": round(enc, 2),
        "anonymize_s": round(anon, 2),
        "anonymize_beyond_encoding_s": round(beyond, 2),
        "ratio_anonymize_to_encode": round(anon / enc, 3),
        "target_ratio": 1.3,
        "rounds": [{"encode_s": round(r["encode"]["seconds"], 2), "anonymize_s": round(r["anonymize"]["seconds"], 2),
                    "anonymize_stages_s": {k: round(v, 2) for k, v in r["anonymize"]["stages"].items()}} for r in rounds],
    }
    print(json.dumps(record, indent=1))
    return record


if __name__ == "__main__":
    main()
