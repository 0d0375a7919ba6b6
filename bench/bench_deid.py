#!/usr/bin/env python
"""Inference speed of the shipped de-identifiers (inversion, d2gan) on real LFW faces.

Times `anonfaces.synthesize.baselines.apply_baseline` (crop, network, paste; the
model loaded before timing) on the faces of the bundled sample's photos in one
process (a network runs on `anonfaces.synthesize.deid.INFERENCE_THREADS` = 1 torch
thread; both cores = two such processes, as ``--jobs 2`` runs them), beside
the ``blur`` baseline on the same faces as the reference. CPU seconds are
reported beside wall time: on a loaded machine faces per CPU second is the
figure that does not depend on the other jobs.

    python bench/bench_deid.py [--repeat 3] [--photos 60]

Prints a JSON record.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--photos", type=int, default=60, help="the bundled sample's first this many photos")
    args = ap.parse_args()
    from anonfaces.detect import detect_faces
    from anonfaces.synthesize.baselines import apply_baseline
    from anonfaces.utils.images import read_image

    sample = REPO / "datasets" / "sample"
    images = []
    for path in sorted(sample.rglob("*.jpg"))[: args.photos]:
        image = read_image(path)
        lms = [f.landmarks68 for f in detect_faces(image)]
        if lms:
            images.append((image, lms))
    n_faces = sum(len(lms) for _, lms in images)
    record = {"faces": n_faces, "photos": len(images), "load_avg_1min": os.getloadavg()[0]}
    for method in ("blur", "inversion", "d2gan"):
        apply_baseline(images[0][0], method, images[0][1])  # loads the model outside the timing
        rounds = []
        for _ in range(args.repeat):
            w0, c0 = time.perf_counter(), cpu_seconds()
            for image, lms in images:
                apply_baseline(image, method, lms, random_state=0)
            wall, cpu = time.perf_counter() - w0, cpu_seconds() - c0
            rounds.append({"wall_s": round(wall, 3), "cpu_s": round(cpu, 3)})
        best = min(rounds, key=lambda r: r["wall_s"])
        record[method] = {"rounds": rounds, "faces_per_s": round(n_faces / best["wall_s"], 1),
                          "faces_per_cpu_s": round(n_faces / max(best["cpu_s"], 1e-9), 1)}
    print(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
