"""dlib's CNN face detector: dlib itself against the ONNX Runtime build, same photos, same run.

Two parts (both by default):

* ``agree``: on every photo and upsample, the two detection lists: same number, the
  IoU of each box with dlib's box at the same rank, the largest confidence difference,
  and the safety net's verdict (does the photo hold a face: any CNN detection) -- a
  verdict that differs is a defect;
* ``speed``: CPU seconds and wall seconds per photo for each engine at upsample 0 and 1,
  with one and with two threads (dlib: ``OMP_NUM_THREADS``/``OPENBLAS_NUM_THREADS`` set
  before it is loaded, in a child process per setting; ONNX Runtime: its session's
  threads), the engines interleaved photo by photo so that load changes hit both.

    python bench/bench_mmod.py --photos 200 --celeba 100            # agreement + speed
    python bench/bench_mmod.py --part speed --photos 20 --threads 1,2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.photo_sets import DEFAULT_LFW, machine, pick_photos

_SHARED = Path(os.environ["ANONFACES_SHARED_DATA"]) if os.environ.get("ANONFACES_SHARED_DATA") else DEFAULT_LFW.parent
DEFAULT_CELEBA = _SHARED / "celeba-aligned" / "images"


def _iou(a, b) -> float:
    # dlib's inclusive integer boxes
    iw = min(a[2], b[2]) - max(a[0], b[0]) + 1
    ih = min(a[3], b[3]) - max(a[1], b[1]) + 1
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    area = lambda r: (r[2] - r[0] + 1) * (r[3] - r[1] + 1)
    return inter / (area(a) + area(b) - inter)


def agree(photos: list[Path], ups: list[int]) -> dict:
    import dlib

    from anonfaces.detect import _mmod_onnx, _models
    from anonfaces.utils.images import read_image

    ours = _mmod_onnx.MmodDetector(_models._paths()["mmod"], threads=1)
    theirs = dlib.cnn_face_detection_model_v1(_models._paths()["mmod"])
    out = {}
    for up in ups:
        n = count_diff = verdict_diff = exact = boxes = 0
        min_iou, max_conf = 1.0, 0.0
        faces = 0
        for p in photos:
            image = read_image(p)
            a = ours.detect(image[None], up)[0]
            b = _mmod_onnx.dlib_detections(theirs, image, up)
            n += 1
            faces += bool(b)
            count_diff += len(a) != len(b)
            verdict_diff += bool(a) != bool(b)
            for (ba, ca), (bb, cb) in zip(a, b):
                boxes += 1
                exact += tuple(ba.tolist()) == tuple(bb.tolist())
                min_iou = min(min_iou, _iou(ba.tolist(), bb.tolist()))
                max_conf = max(max_conf, abs(ca - cb))
        out[f"upsample {up}"] = {"photos": n, "photos with a face (dlib)": faces, "count differs": count_diff,
                                 "verdict differs": verdict_diff, "boxes": boxes, "boxes identical": exact,
                                 "min IoU": round(min_iou, 4), "max confidence diff": float(f"{max_conf:.3g}")}
    return out


def _speed_child(photos: list[str], ups: list[int], threads: int) -> dict:
    """Runs in a child process whose thread variables were set before dlib/onnxruntime loaded."""
    import dlib

    from anonfaces.detect import _mmod_onnx, _models
    from anonfaces.utils.images import read_image

    images = [read_image(p) for p in photos]
    ours = _mmod_onnx.MmodDetector(_models._paths()["mmod"], threads=threads)
    theirs = dlib.cnn_face_detection_model_v1(_models._paths()["mmod"])
    res = {}
    for up in ups:
        ours.detect(images[0][None], up), theirs(images[0], up)  # warm-up
        t = {"onnx": [0.0, 0.0], "dlib": [0.0, 0.0]}
        for image in images:  # interleaved
            for name in ("onnx", "dlib"):
                c0, w0 = time.process_time(), time.perf_counter()
                if name == "onnx":
                    ours.detect(image[None], up)
                else:
                    theirs(image, up)
                t[name][0] += time.process_time() - c0
                t[name][1] += time.perf_counter() - w0
        n = len(images)
        res[f"upsample {up}"] = {name: {"cpu s/photo": round(v[0] / n, 4), "wall s/photo": round(v[1] / n, 4)} for name, v in t.items()}
        r = res[f"upsample {up}"]
        r["dlib/onnx cpu"] = round(r["dlib"]["cpu s/photo"] / r["onnx"]["cpu s/photo"], 2)
        r["dlib/onnx wall"] = round(r["dlib"]["wall s/photo"] / r["onnx"]["wall s/photo"], 2)
    return res


def speed(photos: list[Path], ups: list[int], threads: list[int]) -> dict:
    out = {}
    for n in threads:
        env = dict(os.environ, OMP_NUM_THREADS=str(n), OPENBLAS_NUM_THREADS=str(n), MKL_NUM_THREADS=str(n))
        cmd = [sys.executable, __file__, "--child", json.dumps({"photos": [str(p) for p in photos], "ups": ups, "threads": n})]
        res = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, check=True)
        out[f"{n} thread{'s' if n > 1 else ''}"] = json.loads(res.stdout.strip().splitlines()[-1])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lfw", type=Path, default=_SHARED / "lfw")
    ap.add_argument("--celeba", type=int, default=0, help="also this many CelebA photos (agreement only)")
    ap.add_argument("--celeba-dir", type=Path, default=DEFAULT_CELEBA)
    ap.add_argument("--photos", type=int, default=20, help="LFW photos (seeded choice)")
    ap.add_argument("--speed-photos", type=int, default=None, help="photos timed (default: --photos, at most 20)")
    ap.add_argument("--upsample", default="0,1")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--part", choices=["all", "agree", "speed"], default="all")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        spec = json.loads(args.child)
        print(json.dumps(_speed_child(spec["photos"], spec["ups"], spec["threads"])))
        return
    if not args.lfw.is_dir():
        sys.exit(f"LFW not found at {args.lfw}; pass --lfw")
    ups = [int(v) for v in args.upsample.split(",")]
    photos = pick_photos(args.lfw, args.photos)
    report = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine(),
              "load average (1, 5, 15 min) at start": [round(v, 2) for v in os.getloadavg()]}
    if args.part in ("all", "agree"):
        report["agreement, LFW"] = agree(photos, ups)
        if args.celeba:
            celeba = pick_photos(args.celeba_dir, args.celeba)  # identity sub-folders, seeded choice
            if celeba:
                report["agreement, CelebA"] = agree(celeba, ups)
    if args.part in ("all", "speed"):
        n = args.speed_photos or min(len(photos), 20)
        report[f"speed (LFW photos: {n})"] = speed(photos[:n], ups, [int(v) for v in args.threads.split(",")])
    report["load average at end"] = [round(v, 2) for v in os.getloadavg()]
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
