#!/usr/bin/env python
"""dlib's face ResNet alone: ONNX Runtime (anonfaces' default backend) against dlib, same run.

Face chips are cut by dlib from LFW photos (HOG detection, 5-point landmarks, as
`anonfaces encode` does). On every chip the two descriptors are compared (max abs
difference); then the per-face time is measured on the same chips for batch 1 and
batch 32, ONNX Runtime with one and two threads, dlib (single-threaded) beside it,
the measurements interleaved so that the machine's load hits both sides alike.

    python bench/bench_embed.py [--faces 1000] [--timing-faces 64] [--repeats 5] [--lfw ../shared/data/lfw]

Prints a JSON record (load average before and after included).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from photo_sets import DEFAULT_LFW, REPO, machine, pick_photos


def face_chips(lfw, n_faces: int) -> tuple[np.ndarray, int]:
    from anonfaces.detect import make_detector
    from anonfaces.encode import DlibEncoder
    from anonfaces.utils.images import read_image

    detector, encoder = make_detector("hog", upsample=1), DlibEncoder()
    chips, n_photos = [], 0
    for path in pick_photos(lfw, max(2 * n_faces, 64)):
        n_photos += 1
        faces = detector.detect(read_image(path))
        if faces:
            chips.extend(encoder.prepare(read_image(path), faces))
        if len(chips) >= n_faces:
            break
    return np.stack(chips[:n_faces]), n_photos


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lfw", type=Path, default=DEFAULT_LFW, help="any folder of photos in person sub-folders")
    ap.add_argument("--faces", type=int, default=1000, help="faces compared with dlib")
    ap.add_argument("--timing-faces", type=int, default=64, help="faces each timing runs over")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)

    sys.path.insert(0, str(REPO))  # this checkout's anonfaces, whatever is installed
    from anonfaces.detect import _models
    from anonfaces.encode import _dlib_onnx

    if not args.lfw.is_dir():
        raise SystemExit(f"LFW not found at {args.lfw}; pass --lfw (any folder of photos in person sub-folders works)")
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    chips, n_photos = face_chips(args.lfw, args.faces)
    recognizer = _models.face_recognizer()

    def dlib_embed(batch):
        return np.asarray([np.asarray(v) for v in recognizer.compute_face_descriptor(list(batch))], np.float32)

    sessions = {t: _dlib_onnx.make_session(_dlib_onnx.model_path(), t) for t in (1, 2)}

    # equality on every chip
    ours = np.concatenate([_dlib_onnx.run(sessions[1], chips[i : i + 32]) for i in range(0, len(chips), 32)])
    ref = np.concatenate([dlib_embed(chips[i : i + 32]) for i in range(0, len(chips), 32)])
    diff = np.abs(ours - ref)
    dist_diff = np.abs(np.linalg.norm(ours[:, None] - ours[None], axis=2) - np.linalg.norm(ref[:, None] - ref[None], axis=2))

    # timing, interleaved
    sample = chips[: args.timing_faces]
    times: dict[str, list[float]] = {}

    def timed(key, fn, batch):
        t = time.perf_counter()
        for i in range(0, len(sample), batch):
            fn(sample[i : i + batch])
        times.setdefault(key, []).append((time.perf_counter() - t) / len(sample) * 1e3)

    for s in sessions.values():  # warm-up
        _dlib_onnx.run(s, sample[:32])
    for _ in range(args.repeats):
        for batch in (1, 32):
            timed(f"dlib_b{batch}", dlib_embed, batch)
            for t, s in sessions.items():
                timed(f"onnx_b{batch}_t{t}", lambda b, s=s: _dlib_onnx.run(s, b), batch)
    ms = {k: round(statistics.median(v), 2) for k, v in times.items()}
    record = {
        "benchmark": "embed",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine(),
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "faces_compared": len(chips),
        "from_photos": n_photos,
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
        "max_pairwise_distance_diff": float(dist_diff.max()),
        "timing_faces": len(sample),
        "repeats": args.repeats,
        "ms_per_face_median": ms,
        "speedup_vs_dlib": {k: round(ms[f"dlib_b{k.split('_')[1][1:]}"] / v, 1) for k, v in ms.items() if k.startswith("onnx")},
        "seconds": round(time.perf_counter() - t0, 1),
    }
    print(json.dumps(record, indent=1))
    return record


if __name__ == "__main__":
    main()
