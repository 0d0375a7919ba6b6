"""Safe-by-default figures (issue 13): the fast detector's no-face rate, what the sensitive pass recovers
and what it costs, and the unprotected-face rate of ``ksame`` outputs.

Parts (``--part``):

``detect``  draw ``--photos`` photos from LFW and from CelebA (seed 0); run HOG as the encoder does
            (upsample 1); on the photos where it finds no face, run the sensitive detector
            (`anonfaces.detect.sensitive.SensitiveDetector`, CNN upsample 1 + HOG). Also times both
            detectors side by side on the same ``--timing`` photos (one process each, same run).
``ksame``   anonymize an LFW subset (``--people`` people with >= 3 photos, 3 photos each) with the
            defaults (``ksame``, morph, k=5, hashed names, second pass, safety net, no_face=skip); report
            the share of output faces still within 0.5 of an original face before the safety net handled
            them, the share left after (``verify``'s face check on OUT), and whether any name in OUT
            contains a dataset folder or file stem.

    python bench/bench_release.py --part detect --photos 1000 --jobs 2
    python bench/bench_release.py --part ksame --people 40 --jobs 2
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]
from photo_sets import DEFAULT_LFW, link_dataset, machine


def _draw(root: Path, n: int, seed: int = 0) -> list[Path]:
    photos = sorted(root.glob("*/*.jpg"))
    rng = np.random.default_rng(seed)
    return photos if n >= len(photos) else [photos[i] for i in sorted(rng.choice(len(photos), n, replace=False))]


def _hog_count(path: str) -> int:
    from anonfaces.detect import make_detector
    from anonfaces.utils.images import read_image

    return len(make_detector("hog", upsample=1).detect(read_image(path)))


def _sensitive(path: str) -> tuple[int, float]:
    from anonfaces.detect.sensitive import SensitiveDetector
    from anonfaces.utils.images import read_image

    image = read_image(path)
    t = time.perf_counter()
    n = len(SensitiveDetector(upsample=1).detect(image))
    return n, time.perf_counter() - t


def part_detect(args) -> dict:
    from anonfaces.detect import make_detector
    from anonfaces.detect.sensitive import SensitiveDetector
    from anonfaces.utils.images import read_image

    result = {}
    ctx = mp.get_context("forkserver")
    for name, root in (("lfw", args.lfw), ("celeba", args.lfw.parent / "celeba-aligned" / "images")):
        photos = _draw(root, args.photos)
        with ctx.Pool(args.jobs) as pool:
            counts = pool.map(_hog_count, [str(p) for p in photos], chunksize=8)
            missed = [p for p, c in zip(photos, counts) if c == 0]
            second = pool.map(_sensitive, [str(p) for p in missed], chunksize=1)
        recovered = [str(p.relative_to(root)) for p, (n, _) in zip(missed, second) if n > 0]
        result[name] = {
            "photos": len(photos), "hog_no_face": len(missed), "hog_no_face_rate": len(missed) / len(photos),
            "sensitive_recovered": len(recovered), "still_no_face": len(missed) - len(recovered),
            "sensitive_seconds_per_photo": float(np.mean([s for _, s in second])) if second else None,
            "recovered_examples": recovered[:10],
            "still_no_face_examples": [str(p.relative_to(root)) for p, (n, _) in zip(missed, second) if n == 0][:10],
        }
        print(name, json.dumps(result[name]), flush=True)
    # side-by-side time per photo, one process, same photos
    hog, sens = make_detector("hog", upsample=1), SensitiveDetector(upsample=1)
    hog.warm_up()
    sens.warm_up()
    images = [read_image(p) for p in _draw(args.lfw, args.timing, seed=1)]
    times = {}
    for label, det in (("hog_upsample1", hog), ("sensitive_cnn_upsample1_plus_hog", sens)):
        t = time.perf_counter()
        for im in images:
            det.detect(im)
        times[label] = (time.perf_counter() - t) / len(images)
    times["ratio_sensitive_over_hog"] = times["sensitive_cnn_upsample1_plus_hog"] / times["hog_upsample1"]
    result["seconds_per_photo_lfw_250px"] = times
    print("timing", json.dumps(times), flush=True)
    return result


def part_ksame(args) -> dict:
    from anonfaces.release.naming import name_contains
    from anonfaces.release.verify import verify_release
    from anonfaces.synthesize import anonymize_dataset

    people = sorted(d for d in args.lfw.iterdir() if d.is_dir() and len(list(d.glob("*.jpg"))) >= 3)
    rng = np.random.default_rng(0)
    chosen = [people[i] for i in sorted(rng.choice(len(people), args.people, replace=False))]
    photos = [p for d in chosen for p in sorted(d.glob("*.jpg"))[:3]]
    with tempfile.TemporaryDirectory(prefix="bench-release-") as tmp:
        ds = link_dataset(photos, Path(tmp) / "dataset")
        out = Path(tmp) / "out"
        t = time.perf_counter()
        report = anonymize_dataset(ds, out, k=args.k, jobs=args.jobs, progress=False)
        seconds = time.perf_counter() - t
        run = json.loads(report.run_path.read_text())
        net = run["safety_net"]
        t = time.perf_counter()
        ver = verify_release(out, report.private, jobs=args.jobs)
        verify_seconds = time.perf_counter() - t
        words = {p.parent.name for p in photos} | {p.stem for p in photos}
        names_out = [p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()]
        name_hits = [n for n in names_out if any(name_contains(part, words) for part in n.split("/"))]
        faces_after = sum(1 for f in ver.findings if f.check == "face")
        found = net["faces_found"]
        result = {
            "dataset": f"lfw: {args.people} people x 3 photos (seed 0)", "photos": len(photos), "k": args.k,
            "faces_replaced": report.n_faces, "faces_found_by_second_pass": report.recovered_faces,
            "output_faces_found_by_safety_net": found, "unprotected_before_net": net["unprotected_faces"],
            "unprotected_rate_before_net": net["unprotected_faces"] / found if found else None,
            "held_back": len(report.held_back), "written": run["counts"]["written"],
            "verify_face_findings_after": faces_after, "verify_findings": [str(f) for f in ver.findings][:20],
            "verify_ok": ver.ok, "names_with_dataset_words": name_hits,
            "seconds": {"anonymize_total": seconds, **{k: v for k, v in run["seconds"].items()},
                        "safety_net_per_photo": net["seconds_per_photo"], "verify": verify_seconds},
            "unprotected": net["unprotected"],
        }
    print(json.dumps(result, indent=1), flush=True)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--part", choices=["detect", "ksame"], required=True)
    ap.add_argument("--lfw", type=Path, default=DEFAULT_LFW)
    ap.add_argument("--photos", type=int, default=1000)
    ap.add_argument("--timing", type=int, default=20)
    ap.add_argument("--people", type=int, default=40)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None, help="also write the result here")
    args = ap.parse_args()
    if not args.lfw.is_dir():
        sys.exit(f"LFW not found at {args.lfw}; pass --lfw")
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}; {machine()}", flush=True)
    result = part_detect(args) if args.part == "detect" else part_ksame(args)
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
