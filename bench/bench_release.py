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
    from anonfaces.pipeline.anonymize import anonymize_dataset
    from anonfaces.release.naming import name_contains
    from anonfaces.release.verify import verify_release

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


# --- part "net": recall and cost of cheaper safety-net settings -----------------------------------
#: The variants measured, each a set of components whose faces are merged (IoU > 0.3 is one face).
#: "known" = the replaced faces' own boxes (landmarks refitted on the output), "crop1" = the CNN at
#: upsample 1 on a crop around each replaced face, the others whole-image detectors at an upsample.
NET_VARIANTS = {
    "full (cnn1+hog1, before)": ("cnn1", "hog1"),
    "cnn1": ("cnn1",),
    "cnn0+hog0 (--sensitive-upsample 0)": ("cnn0", "hog0"),
    "hog1": ("hog1",),
    "cnn0+hog1": ("cnn0", "hog1"),
    "known+hog1": ("known", "hog1"),
    "known+cnn0+hog1": ("known", "cnn0", "hog1"),
    "known+crop1+hog1": ("known", "crop1", "hog1"),
    "known+crop1+cnn0+hog1": ("known", "crop1", "cnn0", "hog1"),
}
#: Margin around a replaced face (share of its side, each way) for the "crop1" component.
CROP_MARGIN = 0.5


def _net_components(task) -> dict:
    """Boxes, embeddings and CPU seconds of every component on one output photo (one worker)."""
    import dlib

    from anonfaces.detect import _models
    from anonfaces.detect.detectors import _shape_to_array
    from anonfaces.detect.types import FaceDetection
    from anonfaces.encode._dlib import DlibEncoder
    from anonfaces.utils.images import read_image

    path, known = task
    image = read_image(path)
    h, w = image.shape[:2]
    enc = DlibEncoder()

    def encode(boxes):
        faces = []
        for box in boxes:
            l, t, r, b = (round(float(v)) for v in box)
            rect = dlib.rectangle(max(l, -w), max(t, -h), min(r, 2 * w), min(b, 2 * h))
            faces.append(FaceDetection(len(faces), np.asarray(box, np.float32), 0.0,
                                       _shape_to_array(_models.shape_predictor(5)(image, rect)),
                                       _shape_to_array(_models.shape_predictor(68)(image, rect))))
        return enc.encode(image, faces) if faces else np.empty((0, 128), np.float32)

    def ltrb(r):
        return [r.left(), r.top(), r.right(), r.bottom()]

    def crop1():
        found = []
        for box in known:
            l, t, r, b = box
            m = CROP_MARGIN * max(r - l, b - t)
            x0, y0 = max(0, int(l - m)), max(0, int(t - m))
            x1, y1 = min(w, int(r + m) + 1), min(h, int(b + m) + 1)
            if x1 - x0 < 8 or y1 - y0 < 8:
                continue
            sub = np.ascontiguousarray(image[y0:y1, x0:x1])
            found += [[d.rect.left() + x0, d.rect.top() + y0, d.rect.right() + x0, d.rect.bottom() + y0]
                      for d in _models.cnn_detector()(sub, 1)]
        return found

    detectors = {
        "cnn1": lambda: [ltrb(d.rect) for d in _models.cnn_detector()(image, 1)],
        "cnn0": lambda: [ltrb(d.rect) for d in _models.cnn_detector()(image, 0)],
        "hog1": lambda: [ltrb(r) for r in _models.hog_detector().run(image, 1, 0.0)[0]],
        "hog0": lambda: [ltrb(r) for r in _models.hog_detector().run(image, 0, 0.0)[0]],
        "crop1": crop1,
        "known": lambda: [list(map(float, b)) for b in known],
    }
    out = {}
    for name, run in detectors.items():
        t = time.process_time()
        boxes = run()
        t_detect = time.process_time() - t
        t = time.process_time()
        emb = encode(boxes)
        out[name] = {"boxes": np.asarray(boxes, np.float64).reshape(-1, 4), "emb": np.asarray(emb, np.float32),
                     "detect_s": t_detect, "encode_s": time.process_time() - t}
    return out


def _warm(_=None):
    from anonfaces.detect import _models

    _models.cnn_detector(), _models.hog_detector(), _models.shape_predictor(5), _models.shape_predictor(68)


def _variant_faces(comps: dict, parts) -> tuple[np.ndarray, np.ndarray, float]:
    """Merged faces of a variant: boxes (n, 4), embeddings (n, 128) and its CPU seconds on this photo."""
    from anonfaces.detect.sensitive import SAME_FACE_IOU, box_iou

    boxes, embs, seconds = [], [], 0.0
    for p in parts:
        c = comps[p]
        seconds += c["detect_s"]
        n = len(c["boxes"])
        per_face = c["encode_s"] / n if n else 0.0
        for b, e in zip(c["boxes"], c["emb"]):
            if all(box_iou(b, o) <= SAME_FACE_IOU for o in boxes):
                boxes.append(b)
                embs.append(e)
                seconds += per_face  # only faces the variant keeps are encoded
    return (np.asarray(boxes, np.float64).reshape(-1, 4), np.asarray(embs, np.float32).reshape(-1, 128), seconds)


def _flags(boxes, embs, replaced, reference, persons, person, threshold=0.5):
    """Indices of faces flagged (match or unanonymized), as `find_unprotected` with ``sources`` decides."""
    from anonfaces.detect.sensitive import SAME_FACE_IOU, box_iou
    from anonfaces.release.nofaces import nearest_original

    rows = np.flatnonzero(persons == person)
    dist, _ = nearest_original(embs, reference[rows])
    flagged = []
    for i, (b, d) in enumerate(zip(boxes, dist.tolist())):
        if d < threshold:
            flagged.append((i, "match"))
        elif all(box_iou(b, r) <= SAME_FACE_IOU for r in replaced):
            flagged.append((i, "unanonymized"))
    return flagged


NET_SETTINGS = {
    "default": {},
    "old": {"shape": "member", "region": "inner", "color": "lab", "privacy_check": False},
}


def part_net(args) -> dict:
    from anonfaces.detect.sensitive import SAME_FACE_IOU, box_iou
    from anonfaces.encode import Encodings
    from anonfaces.pipeline.anonymize import anonymize_dataset
    from anonfaces.release.nofaces import original_dlib_embeddings, person_of

    roots = {"lfw": args.lfw, "celeba": args.lfw.parent / "celeba-aligned" / "images"}
    ctx = mp.get_context("forkserver")
    result = {"variants": {k: list(v) for k, v in NET_VARIANTS.items()}}
    totals = {v: {"flagged": 0, "recalled": 0, "photos_flagged": 0, "photos_recalled": 0, "extra": 0, "seconds": 0.0}
              for v in NET_VARIANTS}
    with tempfile.TemporaryDirectory(prefix="bench-net-") as tmp, ctx.Pool(args.jobs, initializer=_warm) as pool:
        for data in args.datasets:
            root = roots[data]
            people = sorted(d for d in root.iterdir() if d.is_dir() and len(list(d.glob("*.jpg"))) >= 3)
            rng = np.random.default_rng(0)
            chosen = [people[i] for i in sorted(rng.choice(len(people), args.people, replace=False))]
            photos = [p for d in chosen for p in sorted(d.glob("*.jpg"))[:3]]
            ds = link_dataset(photos, Path(tmp) / f"{data}-dataset")
            for setting in args.settings:
                out = Path(tmp) / f"{data}-{setting}"
                t = time.perf_counter()
                run = anonymize_dataset(ds, out, k=args.k, jobs=args.jobs, progress=False, safety_net=False,
                                        **NET_SETTINGS[setting])
                anon_seconds = time.perf_counter() - t
                enc = Encodings.load(run.layout.encodings)
                reference = original_dlib_embeddings(ds, enc)
                persons = np.array([person_of(p) for p in enc.paths.tolist()], dtype=str)
                outputs = sorted(run.outputs.items())
                tasks = [(str(out / o), enc.boxes_ltrb[enc.paths == rel]) for rel, o in outputs]
                t = time.perf_counter()
                comps = pool.map(_net_components, tasks, chunksize=1)
                wall = time.perf_counter() - t
                stats = {v: {"flagged": 0, "recalled": 0, "photos_flagged": 0, "photos_recalled": 0, "extra": 0,
                             "seconds": 0.0, "missed": []} for v in NET_VARIANTS}
                component_seconds = {c: 0.0 for c in comps[0]} if comps else {}
                for (rel, o), (_, known), c in zip(outputs, tasks, comps):
                    for name in component_seconds:
                        component_seconds[name] += c[name]["detect_s"] + c[name]["encode_s"]
                    person = person_of(rel)
                    variants = {}
                    for v, parts in NET_VARIANTS.items():
                        boxes, embs, sec = _variant_faces(c, parts)
                        variants[v] = (boxes, _flags(boxes, embs, known, reference, persons, person))
                        stats[v]["seconds"] += sec
                    full_boxes, full_flags = variants["full (cnn1+hog1, before)"]
                    for v, (boxes, flags) in variants.items():
                        got = [boxes[i] for i, _ in flags]
                        hit = 0
                        for i, kind in full_flags:
                            if any(box_iou(full_boxes[i], g) > SAME_FACE_IOU for g in got):
                                hit += 1
                            else:
                                stats[v]["missed"].append(f"{o} ({kind})")
                        stats[v]["flagged"] += len(full_flags)
                        stats[v]["recalled"] += hit
                        stats[v]["photos_flagged"] += bool(full_flags)
                        stats[v]["photos_recalled"] += bool(full_flags) and bool(flags)
                        stats[v]["extra"] += sum(all(box_iou(boxes[i], full_boxes[j]) <= SAME_FACE_IOU
                                                     for j, _ in full_flags) for i, _ in flags)
                full_s = stats["full (cnn1+hog1, before)"]["seconds"]
                for v, s in stats.items():
                    s["recall"] = s["recalled"] / s["flagged"] if s["flagged"] else None
                    s["seconds_per_photo"] = s["seconds"] / len(outputs) if outputs else None
                    s["cost_ratio_to_full"] = s["seconds"] / full_s if full_s else None
                    for key in s:
                        if key in totals[v] and key != "missed":
                            totals[v][key] += s[key]
                    s["missed"] = s["missed"][:10]
                entry = {"photos": len(photos), "outputs": len(outputs), "anonymize_seconds": anon_seconds,
                         "component_wall_seconds": wall, "component_cpu_seconds": component_seconds,
                         "variants": stats}
                result[f"{data}/{setting}"] = entry
                print(f"== {data}/{setting}: {len(outputs)} outputs, anonymize {anon_seconds:.0f} s", flush=True)
                for v, s in stats.items():
                    print(f"  {v:38s} flagged {s['flagged']:3d} recalled {s['recalled']:3d} "
                          f"photos {s['photos_recalled']}/{s['photos_flagged']} extra {s['extra']:3d} "
                          f"cpu/photo {s['seconds_per_photo']:.3f} s  x{s['cost_ratio_to_full']:.3f} of full", flush=True)
    full_s = totals["full (cnn1+hog1, before)"]["seconds"]
    for v, s in totals.items():
        s["recall"] = s["recalled"] / s["flagged"] if s["flagged"] else None
        s["cost_ratio_to_full"] = s["seconds"] / full_s if full_s else None
    result["total"] = totals
    print("== total", flush=True)
    for v, s in totals.items():
        print(f"  {v:38s} recall {s['recalled']}/{s['flagged']} photos {s['photos_recalled']}/{s['photos_flagged']} "
              f"extra {s['extra']} cost x{s['cost_ratio_to_full']:.3f}", flush=True)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--part", choices=["detect", "ksame", "net"], required=True)
    ap.add_argument("--datasets", nargs="+", choices=["lfw", "celeba"], default=["lfw", "celeba"])
    ap.add_argument("--settings", nargs="+", choices=list(NET_SETTINGS), default=list(NET_SETTINGS))
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
    result = {"detect": part_detect, "ksame": part_ksame, "net": part_net}[args.part](args)
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
