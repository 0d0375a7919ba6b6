#!/usr/bin/env python
"""Encoding speed: anonfaces' parallel pipeline against face_recognition's usual loop,
or against another checkout of anonfaces (the release), side by side in one run.

Every side runs on the same LFW photos, each in a fresh process (no model loaded,
no cache warm).

* default: the loop researchers write with face_recognition (load the image,
  HOG-detect with one upsampling, 5-point landmarks, dlib's 128-D encoding; one
  process), made of the same dlib calls face_recognition makes, against
  `encode_photos(..., jobs=N)`, which also computes 68-point landmarks and writes
  the encodings file;
* ``--base PATH``: `encode_photos` of the checkout at PATH (imported from there)
  against this checkout's; ``--rounds 2`` runs them in the order A B B A. The two
  encodings files are compared: the same faces (photo, box) and the largest
  difference of any descriptor element;
* ``--stages``: one process, each stage timed on its own (read, HOG detection,
  5- and 68-point landmarks, chip, network), for the shares after the change;
  beside it HOG without upsampling (time, faces found, photos where it finds fewer).

    python bench/bench_encode.py [--photos 200] [--jobs 2] [--lfw ../shared/data/lfw]
    python bench/bench_encode.py --base ../base --photos 1000 --jobs 2 [--rounds 2]
    python bench/bench_encode.py --stages --photos 200

Prints a JSON record (photos/s per side, ratio, load average, peak memory).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from photo_sets import REPO, add_photo_options, chosen_photos, link_dataset, machine


def baseline(photos: list[Path]) -> tuple[float, int]:
    t0 = time.perf_counter()  # model loading counts on both sides (face_recognition loads at import)
    import dlib

    from anonfaces import face_api as fr
    from anonfaces.detect import _models

    # face_recognition.face_encodings: dlib's compute_face_descriptor per face (not
    # anonfaces.face_api's, which runs the network on ONNX Runtime)
    predictor, recognizer = _models.shape_predictor(5), _models.face_recognizer()
    faces = 0
    for p in photos:
        image = fr.load_image_file(p)
        boxes = fr.face_locations(image, number_of_times_to_upsample=1, model="hog")
        for top, right, bottom, left in boxes:
            shape = predictor(image, dlib.rectangle(left, top, right, bottom))
            recognizer.compute_face_descriptor(image, shape, 1)
            faces += 1
    return time.perf_counter() - t0, faces


def pipeline(photos: list[Path], jobs: int, keep: Path | None = None) -> tuple[float, int]:
    try:
        from anonfaces.encode import encode_photos
    except ImportError:  # a --base checkout from before 2026-12-02
        from anonfaces.encode import encode_dataset as encode_photos

    with tempfile.TemporaryDirectory() as tmp:
        ds = link_dataset(photos, Path(tmp) / "photos")
        out = keep or Path(tmp) / "enc.npz"
        t0 = time.perf_counter()
        report = encode_photos(ds, out, jobs=jobs, progress=False)
        return time.perf_counter() - t0, report.n_faces


def stages(photos: list[Path]) -> dict:
    """Seconds per photo of each stage, one process, the network batched per 32 photos."""
    sys.path.insert(0, str(REPO))  # this checkout's anonfaces, whatever is installed
    import dlib
    import numpy as np

    from anonfaces.detect import _models
    from anonfaces.encode import DlibEncoder
    from anonfaces.utils.images import read_image

    enc = DlibEncoder()
    enc.warm_up()
    hog, p5, p68 = _models.hog_detector(), _models.shape_predictor(5), _models.shape_predictor(68)
    t = dict.fromkeys(("read", "detect", "landmarks5", "landmarks68", "chip", "network"), 0.0)
    chips, faces = [], 0
    no_upsample = {"seconds": 0.0, "faces": 0, "photos_with_fewer_faces": 0}

    def flush():
        nonlocal chips
        if chips:
            t1 = time.perf_counter()
            enc.embed(np.stack(chips))
            t["network"] += time.perf_counter() - t1
            chips = []

    enc.embed(np.zeros((1, 150, 150, 3), np.uint8))  # session opened outside the timing
    for i, p in enumerate(photos):
        t1 = time.perf_counter()
        image = read_image(p)
        t2 = time.perf_counter()
        rects, _, _ = hog.run(image, 1, 0.0)
        t3 = time.perf_counter()
        t["read"] += t2 - t1
        t["detect"] += t3 - t2
        # the alternative: no upsampling (not part of the pipeline's time)
        t4 = time.perf_counter()
        n0 = len(hog.run(image, 0, 0.0)[0])
        no_upsample["seconds"] += time.perf_counter() - t4
        no_upsample["faces"] += n0
        no_upsample["photos_with_fewer_faces"] += n0 < len(rects)
        for r in rects:
            t1 = time.perf_counter()
            s5 = p5(image, r)
            t2 = time.perf_counter()
            p68(image, r)
            t3 = time.perf_counter()
            chips.append(dlib.get_face_chip(image, s5, 150, 0.25))
            t4 = time.perf_counter()
            t["landmarks5"] += t2 - t1
            t["landmarks68"] += t3 - t2
            t["chip"] += t4 - t3
            faces += 1
        if (i + 1) % 32 == 0:
            flush()
    flush()
    total = sum(t.values())
    return {
        "photos": len(photos),
        "faces": faces,
        "ms_per_photo": {k: round(v / len(photos) * 1e3, 2) for k, v in t.items()},
        "share": {k: round(v / total, 3) for k, v in t.items()},
        "detect_without_upsampling": {
            "ms_per_photo": round(no_upsample["seconds"] / len(photos) * 1e3, 2),
            "faces": no_upsample["faces"],
            "photos_with_fewer_faces": no_upsample["photos_with_fewer_faces"],
        },
    }


def _side(side: str, args, base: Path | None, keep: Path | None) -> dict:
    cmd = [sys.executable, __file__, "--side", side, "--photos", str(args.photos), "--jobs", str(args.jobs), "--lfw", str(args.lfw)]
    if keep is not None:
        cmd += ["--keep", str(keep)]
    env = dict(os.environ)
    env["PYTHONPATH"] = str(base or REPO)  # import anonfaces from the checkout measured
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def compare_files(a: Path, b: Path) -> dict:
    import numpy as np

    with np.load(a, allow_pickle=False) as x, np.load(b, allow_pickle=False) as y:
        same_faces = x["paths"].shape == y["paths"].shape and bool((x["paths"] == y["paths"]).all()) and bool(
            np.array_equal(x["boxes_ltrb"], y["boxes_ltrb"]))
        out = {"faces_a": len(x["paths"]), "faces_b": len(y["paths"]), "same_faces": same_faces}
        if same_faces:
            out["max_abs_embedding_diff"] = float(np.abs(x["embeddings"] - y["embeddings"]).max())
            out["same_landmarks"] = bool(np.array_equal(x["landmarks68"], y["landmarks68"]))
        return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_photo_options(ap, photos=200)
    ap.add_argument("--base", type=Path, default=None, help="another anonfaces checkout to compare with (e.g. the release)")
    ap.add_argument("--rounds", type=int, choices=[1, 2], default=1, help="2: run the sides A B B A")
    ap.add_argument("--stages", action="store_true", help="time each stage in one process instead")
    ap.add_argument("--side", choices=["baseline", "anonfaces"], help=argparse.SUPPRESS)
    ap.add_argument("--keep", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    photos = chosen_photos(args)
    if args.side:  # one side, in this fresh process
        seconds, faces = baseline(photos) if args.side == "baseline" else pipeline(photos, args.jobs, args.keep)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps({"seconds": seconds, "faces": faces, "peak_rss_mb": peak}))
        return {}
    load_before = os.getloadavg()
    if args.stages:
        record = {"benchmark": "encode-stages", "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine(),
                  "load_average_before": [round(v, 2) for v in load_before], **stages(photos),
                  "load_average_after": [round(v, 2) for v in os.getloadavg()]}
        print(json.dumps(record, indent=1))
        return record
    if args.base is None:
        runs = {side: _side(side, args, None, None) for side in ("baseline", "anonfaces")}
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
            "load_average_before": [round(v, 2) for v in load_before],
            "load_average_after": [round(v, 2) for v in os.getloadavg()],
        }
        print(json.dumps(record, indent=1))
        return record

    # this checkout against --base, A B (B A)
    checkouts = {"base": args.base.resolve(), "this": REPO}
    order = ["base", "this"] if args.rounds == 1 else ["base", "this", "this", "base"]
    seconds: dict[str, list[float]] = {"base": [], "this": []}
    faces: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, name in enumerate(order):
            keep = Path(tmp) / f"{name}-{i}.npz"
            run = _side("anonfaces", args, checkouts[name], keep)
            seconds[name].append(run["seconds"])
            faces[name] = run["faces"]
        comparison = compare_files(Path(tmp) / "base-0.npz", Path(tmp) / "this-1.npz")
    t_base, t_this = (sum(seconds[k]) / len(seconds[k]) for k in ("base", "this"))
    record = {
        "benchmark": "encode-ab",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine(),
        "base": str(checkouts["base"]),
        "this": str(REPO),
        "photos": len(photos),
        "jobs": args.jobs,
        "order": order,
        "seconds": seconds,
        "base_photos_per_s": round(len(photos) / t_base, 2),
        "this_photos_per_s": round(len(photos) / t_this, 2),
        "speedup": round(t_base / t_this, 2),
        "faces": faces,
        **comparison,
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
    }
    print(json.dumps(record, indent=1))
    return record


if __name__ == "__main__":
    main()
