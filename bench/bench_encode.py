#!/usr/bin/env python
"""Encoding speed: anonfaces' parallel pipeline against face_recognition's usual loop.

Both sides run on the same LFW photos in the same run. The baseline is the loop
researchers write with face_recognition (load the image, HOG-detect with one
upsampling, 5-point landmarks, 128-D encoding; one process), here through
`anonfaces.face_api`, which calls the same dlib models the same way
(face_recognition itself needs a source build of dlib). anonfaces' side is
`encode_dataset(..., jobs=N)`, which also computes 68-point landmarks and
writes the encodings file.

    python bench/bench_encode.py [--photos 200] [--jobs 2] [--lfw ../shared/data/lfw]

Prints a JSON record (photos/s both sides, ratio, peak memory of the run).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from photo_sets import add_photo_options, chosen_photos, link_dataset, machine


def baseline(photos: list[Path]) -> tuple[float, int]:
    t0 = time.perf_counter()  # model loading counts on both sides (face_recognition loads at import)
    from anonfaces import face_api as fr

    faces = 0
    for p in photos:
        image = fr.load_image_file(p)
        boxes = fr.face_locations(image, number_of_times_to_upsample=1, model="hog")
        faces += len(fr.face_encodings(image, boxes))
    return time.perf_counter() - t0, faces


def pipeline(photos: list[Path], jobs: int) -> tuple[float, int]:
    from anonfaces.encode import encode_dataset

    with tempfile.TemporaryDirectory() as tmp:
        ds = link_dataset(photos, Path(tmp) / "photos")
        t0 = time.perf_counter()
        report = encode_dataset(ds, Path(tmp) / "enc.npz", jobs=jobs, progress=False)
        return time.perf_counter() - t0, report.n_faces


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_photo_options(ap, photos=200)
    ap.add_argument("--side", choices=["baseline", "anonfaces"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    photos = chosen_photos(args)
    if args.side:  # one side, in this fresh process
        seconds, faces = baseline(photos) if args.side == "baseline" else pipeline(photos, args.jobs)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps({"seconds": seconds, "faces": faces, "peak_rss_mb": peak}))
        return {}
    # each side in a fresh process: no model is loaded yet, no cache is warm
    runs = {}
    for side in ("baseline", "anonfaces"):
        out = subprocess.run([sys.executable, __file__, "--side", side, "--photos", str(args.photos), "--jobs", str(args.jobs),
                              "--lfw", str(args.lfw)], capture_output=True, text=True, check=True)
        runs[side] = json.loads(out.stdout.strip().splitlines()[-1])
    t_base, f_base = runs["baseline"]["seconds"], runs["baseline"]["faces"]
    t_pipe, f_pipe = runs["anonfaces"]["seconds"], runs["anonfaces"]["faces"]
    record = {
        "benchmark": "encode",
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "photos": len(photos),
        "baseline_photos_per_s": round(len(photos) / t_base, 2),
        "baseline_faces": f_base,
        "anonfaces_jobs": args.jobs,
        "anonfaces_photos_per_s": round(len(photos) / t_pipe, 2),
        "anonfaces_faces": f_pipe,
        "speedup": round(t_base / t_pipe, 2),
        "peak_rss_mb_anonfaces_main_process": round(runs["anonfaces"]["peak_rss_mb"], 1),
    }
    print(json.dumps(record, indent=1))
    return record


if __name__ == "__main__":
    main()
