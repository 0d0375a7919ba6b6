"""Anonymizing a 720p video: frames per second and the share of each stage.

Makes a 1280 x 720, 25 fps video from LFW photos (three people on a plain
background, moving; one enters and leaves; a scene cut half-way; an AAC tone),
then runs `anonfaces.pipeline.anonymize_dataset` on it (k = 2, both cores) once
per detector setting, each in its own process:

- ``full``: the detector on every full-size frame (HOG, upsample 1: the photo default);
- ``scale0.5``: on every frame, downscaled by 2 (landmarks at full size);
- ``scale0.5-roiN`` (N = 3, 4, 5, 6, 8, 10): the whole frame, downscaled by 2, on every Nth frame (and at a
  scene cut); in between only windows around the tracked faces (`anonfaces.video.encode.roi_detect`), and faces
  found at a full-frame pass followed back to where they entered (``--detect-every N``); ``full-roiN`` the same
  with the full-frame passes at full size;
- ``scale0.5-up0``: on every frame, downscaled by 2, without upsampling (faces >= ~160 px);
- ``<setting>-exact``: the same with the photo blend (`blend_surrogate`) in place of
  the video one (`anonfaces.video.fastblend.fast_blend`, the default for videos); ``<setting>-nocheck``
  without the per-track privacy check and the safety net (`anonfaces.video.privacy`).

``--compare-blend N``: instead, on N frames of the clip, each face replaced by both
blends (a surrogate made from another LFW photo): milliseconds per face of each
and the SSIM of the video blend against the photo blend over the changed box.

Each row: frames, wall seconds, frames/s, CPU seconds of the process tree (user +
system; they do not depend on the machine's load) and CPU seconds per frame, and
the share of each stage (encode = decode + detect + embed + track; synthesize =
surrogates; write = decode + replace in the workers + H.264 encode + audio copy).
``ideal 2-core fps`` = 2 / (CPU seconds per frame): what both cores would give if
nothing else ran and the stages kept them busy.

    python bench/bench_video.py [--frames 150] [--configs full,scale0.5,scale0.5-roi6]
    python bench/bench_video.py --frames 100 --compare-blend 25
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
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's anonfaces and tests, not an installed one

CONFIGS = {"full": {"detect_scale": 1.0, "detect_every": 1}, "scale0.5": {"detect_scale": 0.5, "detect_every": 1},
           "scale0.5-up0": {"detect_scale": 0.5, "upsample": 0}}
# the full frame every N frames and detection near the tracked faces in between (`--detect-every N`)
CONFIGS.update({f"scale0.5-roi{n}": {"detect_scale": 0.5, "detect_every": n} for n in (3, 4, 5, 6, 8, 10)})
CONFIGS.update({f"full-roi{n}": {"detect_scale": 1.0, "detect_every": n} for n in (5, 8)})
# the same settings with the photo blend (`blend_surrogate`) in place of the video one (`fast_blend`), or without the
# per-track privacy check
CONFIGS.update({f"{name}-exact": {**value, "fast_blend": False} for name, value in list(CONFIGS.items())})
CONFIGS.update({f"{name}-nocheck": {**value, "privacy_check": False, "safety_net": False}
                for name, value in list(CONFIGS.items()) if not name.endswith("-exact")})


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
    video = make_video(path, apps, frames=frames, fps=25, width=1280, height=720, cuts=(half,), crf=20)
    return root, video


def worker(video: str, out: str, config: str) -> dict:
    import anonfaces.pipeline.video as pipeline_video
    from anonfaces.pipeline import anonymize_dataset

    settings = CONFIGS[config]
    for folder in (Path(out), Path(out + ".private")):  # a new run each time (the worker may be timed run after run)
        shutil.rmtree(folder, ignore_errors=True)
    # the pipeline has no option for it (yet): the default of anonymize_videos' keyword, in this process only
    pipeline_video.anonymize_videos.__kwdefaults__["fast_blend"] = settings.get("fast_blend", True)
    t, cpu = time.perf_counter(), time.process_time()
    run = anonymize_dataset(video, out, k=2, jobs=int(os.environ.get("BENCH_VIDEO_JOBS", "2")), progress=False, detect_scale=settings.get("detect_scale", 1.0),
                            detect_every=settings.get("detect_every", 1), upsample=settings.get("upsample", 1),
                            privacy_check=settings.get("privacy_check", True), safety_net=settings.get("safety_net", True))
    wall, cpu = time.perf_counter() - t, time.process_time() - cpu
    record = json.loads(run.video_record.read_text())
    [v] = run.videos
    return {"config": config, "frames": v.frames, "faces": v.faces, "filled": v.filled, "tracks": v.tracks,
            "inner_wall": wall, "process_cpu": cpu, "stages": record["seconds"], "write_parts": v.seconds, "privacy": record.get("privacy") or {},
            "net_findings": sum(len(n["findings"]) for n in record["safety_net"]["videos"].values()),
            "nearest_own": _nearest_own(run.private / "videos" / "privacy.csv")}


def _nearest_own(path: Path) -> float:
    """The smallest ``nearest_own_after`` of the privacy check's tracks (NaN without the check)."""
    import csv

    if not path.is_file():
        return float("nan")
    with open(path, newline="") as fh:
        return min((float(r["nearest_own_after"]) for r in csv.DictReader(fh)), default=float("nan"))


def recall(out: Path, truth) -> dict:
    """The run's encoded faces against the clip's ground truth: the share of face-frames found (a row with IoU > 0.3),
    and per appearance the frames from its first on screen to its first found (entry delay)."""
    import numpy as np

    from anonfaces.encode import Encodings
    from anonfaces.video.track import box_iou

    enc = Encodings.load(Path(str(out) + ".private") / "videos" / "encodings.npz")
    found, first, start = set(), {}, {}
    for f, faces in sorted(truth.items()):
        rows = np.flatnonzero(enc.frames == f)
        for a, box in faces:
            start.setdefault(a, f)
            if len(rows) and box_iou(enc.boxes_ltrb[rows], np.asarray(box)[None]).max() > 0.3:
                found.add((f, a))
                first.setdefault(a, f)
    total = sum(len(v) for v in truth.values())
    delays = [first.get(a, 10**6) - start[a] for a in start]
    return {"recall": len(found) / max(1, total), "missed": total - len(found), "entry_delay": max(delays)}


def compare_blend(video: Path, source: Path, n: int) -> None:
    """Both blends on the faces of ``n`` frames spread over the clip (one process, OpenCV on one thread as in the workers)."""
    import cv2
    import numpy as np
    from skimage.metrics import structural_similarity

    from anonfaces.detect.align import align_face
    from anonfaces.detect.detectors import detect_faces
    from anonfaces.synthesize.base import Surrogate
    from anonfaces.synthesize.blend import BlendSettings, blend_surrogate
    from anonfaces.utils.images import read_image
    from anonfaces.video.fastblend import FastSurrogate, fast_blend
    from anonfaces.video.io import read_frames

    cv2.setNumThreads(1)
    donor_path = source / ("Gerhard_Schroeder/Gerhard_Schroeder_0001.jpg" if (source / "Gerhard_Schroeder").is_dir()
                           else "Bill_Gates/Bill_Gates_0002.jpg")
    donor = read_image(donor_path)
    [face] = detect_faces(donor)[:1]
    aligned = align_face(donor, face.landmarks68, size=256)
    surrogate = Surrogate(aligned.image, aligned.landmarks68)
    fast_surrogate = FastSurrogate(surrogate)
    settings = BlendSettings()
    frames = list(read_frames(video))
    picks = np.linspace(0, len(frames) - 1, n).round().astype(int)
    rows = []
    for i in picks.tolist():
        image = frames[i][2]
        for det in detect_faces(image):
            lm = det.landmarks68.astype(np.float64)
            t = time.process_time()
            exact = blend_surrogate(image, surrogate, lm, settings=settings)
            t_exact = time.process_time() - t
            t = time.process_time()
            fast = fast_blend(image, fast_surrogate, lm, settings=settings)
            t_fast = time.process_time() - t
            changed = (exact != image).any(2) | (fast != image).any(2)
            ys, xs = np.nonzero(changed)
            box = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
            ssim = structural_similarity(exact[box], fast[box], channel_axis=2)
            diff = np.abs(exact[box].astype(int) - fast[box].astype(int))
            rows.append((t_exact, t_fast, ssim, diff.mean(), float((diff.max(2) > 8).mean()), ys.max() - ys.min() + 1))
    r = np.array(rows)
    print(f"# compare-blend: {len(r)} faces on {n} frames, face box {int(np.median(r[:, 5]))} px tall (median), "
          f"surrogate from {donor_path.parent.name}, BlendSettings() defaults")
    print("| blend | CPU ms / face (median) | SSIM vs photo blend (median, min) | mean abs diff | pixels off by > 8 |")
    print("|---|---|---|---|---|")
    print(f"| photo (`blend_surrogate`) | {np.median(r[:, 0]) * 1000:.1f} | 1 | 0 | 0 |")
    print(f"| video (`fast_blend`) | {np.median(r[:, 1]) * 1000:.1f} | {np.median(r[:, 2]):.4f}, {r[:, 2].min():.4f} | "
          f"{r[:, 3].mean():.2f} | {r[:, 4].mean():.2%} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--configs", default="scale0.5,scale0.5-roi6")
    ap.add_argument("--compare-blend", type=int, default=0, metavar="N",
                    help="compare the video blend with the photo blend on N frames (no pipeline run)")
    ap.add_argument("--evaluate", action="store_true",
                    help="also score each output (anonfaces.video.evaluate, 5 frames/s; not timed): faces left, flicker")
    ap.add_argument("--worker", nargs=3, metavar=("VIDEO", "OUT", "CONFIG"),
                    help="run one setting on VIDEO into OUT (replaced) and print its record as JSON: to time one "
                         "setting as a whole process, e.g. two settings in turn on the clip of --make-clip")
    ap.add_argument("--make-clip", metavar="PATH", help="only write the clip (--frames frames) to PATH")
    ap.add_argument("--jobs", type=int, default=2,
                    help="worker processes of each run; 1: everything in one process, whose CPU seconds (the "
                         "'1-process CPU s' column) are then exact whatever the load")
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker)))
        return
    if args.make_clip:
        make_clip(Path(args.make_clip), args.frames)
        return
    from bench_cluster_common import run_measured

    tmp = Path(tempfile.mkdtemp(prefix="bench-video-"))
    try:
        video = tmp / "clip720.mp4"
        source, synthetic = make_clip(video, args.frames)
        truth = dict(enumerate(synthetic.truth))
        if args.compare_blend:
            compare_blend(video, source, args.compare_blend)
            return
        print(f"# bench_video {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.machine()}, "
              f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; 1280x720 25 fps, {args.frames} frames, photos from {source}")
        print("| setting | frames | faces (filled) | face-frames found (missed; latest entry, frames) | wall s | frames/s | "
              "CPU s | 1-process CPU s | CPU s/frame | ideal 2-core fps | encode | cluster | synthesize | privacy check | safety net | "
              "write (decode/replace/encode) | tracks passed/escalated/fell back (nearest own face) | safety-net findings |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        scored = []
        os.environ["BENCH_VIDEO_JOBS"] = str(args.jobs)
        for config in args.configs.split(","):
            out = tmp / f"out-{config}"
            r = run_measured([sys.executable, __file__, "--worker", str(video), str(out), config], timeout=3600)
            if r["status"] != "ok":
                print(f"| {config} | {r['status']} |", flush=True)
                continue
            stages, parts = r["stages"], r["write_parts"]
            total = sum(stages.values())
            share = {k: stages.get(k, 0.0) / total for k in ("encode", "cluster", "synthesize", "privacy", "safety_net", "write")}
            rec = recall(out, truth)
            p = r.get("privacy") or {}
            w = stages.get("write", 0.0) or 1.0
            cpu_per = r["cpu_s"] / r["frames"]
            print(f"| {config} | {r['frames']} | {r['faces']} ({r['filled']}) | {rec['recall']:.3f} ({rec['missed']}; "
                  f"{rec['entry_delay']}) | {r['wall_s']:.1f} | "
                  f"{r['frames'] / r['wall_s']:.2f} | {r['cpu_s']:.1f} | {r['process_cpu'] if args.jobs == 1 else float('nan'):.1f} | {cpu_per:.3f} | {2 / cpu_per:.1f} | "
                  f"{share['encode']:.0%} | {share['cluster']:.0%} | {share['synthesize']:.0%} | {share['privacy']:.0%} | "
                  f"{share['safety_net']:.0%} | "
                  f"{share['write']:.0%} ({parts['decode'] / w:.0%}/{parts['replace'] / w:.0%}/{parts['encode'] / w:.0%}) | "
                  f"{p.get('passed', '-')}/{p.get('escalated', '-')}/{p.get('blurred', 0) + p.get('surrogate', 0) if p else '-'} "
                  f"({r.get('nearest_own', float('nan')):.3f}) | "
                  f"{r.get('net_findings', '-')} |",
                  flush=True)
            if args.evaluate:
                from anonfaces.pipeline.video import evaluate_video_run

                summary = evaluate_video_run(out, tmp / f"eval-{config}", fps=5.0)
                scored.append((config, summary))
            shutil.rmtree(out, ignore_errors=True)
            shutil.rmtree(Path(str(out) + ".private"), ignore_errors=True)
        if scored:
            print("\n| setting | frames with a face left unreplaced (< 0.5 or unchanged) | faces left | faces < 0.6 | "
                  "flicker (output / original) | tracks re-identified (rank 1) |")
            print("|---|---|---|---|---|---|")
            for config, m in scored:
                print(f"| {config} | {m['unreplaced_frame_share']:.3f} | {m['unreplaced_face_share']:.3f} | "
                      f"{m['same_person_face_share']:.3f} | "
                      f"{m['flicker_ratio']:.3f} | {m.get('track_rank1', float('nan')):.3f} |", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
