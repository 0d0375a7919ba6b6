"""Anonymizing a 720p video: frames per second and the share of each stage.

Makes a 1280 x 720, 25 fps video from LFW photos (three people on a plain
background, moving; one enters and leaves; a scene cut half-way; an AAC tone),
then runs `anonfaces.pipeline.anonymize_dataset` on it (k = 2, both cores) once
per detector setting, each in its own process:

- ``full``: the detector on every full-size frame (HOG, upsample 1: the photo default);
- ``scale0.5``: on every frame, downscaled by 2 (landmarks at full size);
- ``scale0.5-every5``: on every 5th frame, downscaled by 2; the faces followed in
  between by dlib's landmark predictor.

Each row: frames, wall seconds, frames/s, CPU seconds of the process tree (user +
system; they do not depend on the machine's load) and CPU seconds per frame, and
the share of each stage (encode = decode + detect + embed + track; synthesize =
surrogates; write = decode + replace in the workers + H.264 encode + audio copy).
``ideal 2-core fps`` = 2 / (CPU seconds per frame): what both cores would give if
nothing else ran and the stages kept them busy.

    python bench/bench_video.py [--frames 150] [--configs full,scale0.5,scale0.5-every5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

CONFIGS = {"full": {"detect_scale": 1.0, "detect_every": 1}, "scale0.5": {"detect_scale": 0.5, "detect_every": 1},
           "scale0.5-every5": {"detect_scale": 0.5, "detect_every": 5}, "scale0.5-up0": {"detect_scale": 0.5, "upsample": 0}}


def _photos():
    from tests.conftest import LFW, SAMPLE

    root = LFW if (LFW / "George_W_Bush").is_dir() else SAMPLE
    names = ["George_W_Bush/George_W_Bush_0001.jpg", "Colin_Powell/Colin_Powell_0001.jpg",
             "Tony_Blair/Tony_Blair_0001.jpg", "George_W_Bush/George_W_Bush_0002.jpg"]
    if root == SAMPLE:
        names = ["Tiger_Woods/Tiger_Woods_0001.jpg", "Bill_Gates/Bill_Gates_0001.jpg", "Kate_Hudson/Kate_Hudson_0001.jpg",
                 "Tiger_Woods/Tiger_Woods_0002.jpg"]
    return root, [str(root / n) for n in names]


def make_clip(path: Path, frames: int):
    from anonfaces.video.synthetic import Appearance, make_video

    root, p = _photos()
    half = frames // 2
    apps = [Appearance("a", p[0], 0, half - 1, (100, 200), (400, 260), 240),
            Appearance("b", p[1], frames // 6, half - frames // 8, (800, 150), (700, 300), 220),
            Appearance("c", p[2], half, frames - 1, (900, 250), (600, 200), 240),
            Appearance("a", p[3], half, frames - 1, (80, 300), (300, 220), 230)]
    make_video(path, apps, frames=frames, fps=25, width=1280, height=720, cuts=(half,), crf=20)
    return root


def worker(video: str, out: str, config: str) -> dict:
    from anonfaces.pipeline import anonymize_dataset

    settings = CONFIGS[config]
    t = time.perf_counter()
    run = anonymize_dataset(video, out, k=2, jobs=2, progress=False, detect_scale=settings.get("detect_scale", 1.0),
                            detect_every=settings.get("detect_every", 1), upsample=settings.get("upsample", 1))
    wall = time.perf_counter() - t
    record = json.loads(run.video_record.read_text())
    [v] = run.videos
    return {"config": config, "frames": v.frames, "faces": v.faces, "filled": v.filled, "tracks": v.tracks,
            "inner_wall": wall, "stages": record["seconds"], "write_parts": v.seconds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--configs", default="full,scale0.5,scale0.5-every5")
    ap.add_argument("--worker", nargs=3, metavar=("VIDEO", "OUT", "CONFIG"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker)))
        return
    from bench_cluster_common import run_measured

    tmp = Path(tempfile.mkdtemp(prefix="bench-video-"))
    try:
        video = tmp / "clip720.mp4"
        source = make_clip(video, args.frames)
        print(f"# bench_video {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.machine()}, "
              f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; 1280x720 25 fps, {args.frames} frames, photos from {source}")
        print("| setting | frames | faces (filled) | wall s | frames/s | CPU s | CPU s/frame | ideal 2-core fps | "
              "encode | cluster | synthesize | write (decode/replace/encode) |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for config in args.configs.split(","):
            out = tmp / f"out-{config}"
            r = run_measured([sys.executable, __file__, "--worker", str(video), str(out), config], timeout=3600)
            if r["status"] != "ok":
                print(f"| {config} | {r['status']} |", flush=True)
                continue
            stages, parts = r["stages"], r["write_parts"]
            total = sum(stages.values())
            share = {k: stages.get(k, 0.0) / total for k in ("encode", "cluster", "synthesize", "write")}
            w = stages.get("write", 0.0) or 1.0
            cpu_per = r["cpu_s"] / r["frames"]
            print(f"| {config} | {r['frames']} | {r['faces']} ({r['filled']}) | {r['wall_s']:.1f} | "
                  f"{r['frames'] / r['wall_s']:.2f} | {r['cpu_s']:.1f} | {cpu_per:.3f} | {2 / cpu_per:.1f} | "
                  f"{share['encode']:.0%} | {share['cluster']:.0%} | {share['synthesize']:.0%} | {share['write']:.0%} "
                  f"({parts['decode'] / w:.0%}/{parts['replace'] / w:.0%}/{parts['encode'] / w:.0%}) |", flush=True)
            shutil.rmtree(out, ignore_errors=True)
            shutil.rmtree(Path(str(out) + ".private"), ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
