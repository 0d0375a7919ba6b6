#!/usr/bin/env python
"""Inference-side settings of the learned de-identifiers, side by side: detection against identity.

For each setting (``method`` plus `anonfaces.synthesize.baselines` parameters) the same
probe photos of an LFW subset are anonymized and measured as ``anonfaces evaluate`` measures
them, on a smaller scale so that many settings fit in a few minutes:

* ``detected``: dlib's HOG detector (upsample 1, as the sweep; ``--detector cnn``: dlib's CNN) re-run on the anonymized
  photo finds the face (IoU >= 0.5 with the original box);
* ``dlib`` / ``fisherfaces``: identity-level re-identification (the anonymized face's nearest
  face among the *other* original photos of all the subset's people shows the same person);
  Fisherfaces fitted on the originals, as the sweep fits it;
* ``ssim``: whole-photo SSIM against the original;
* ``tone``: the mean lightness (CIE L, 0..100) of the face region, anonymized minus original, as
  a mean absolute shift and the share of faces shifted by more than 10 (a skin tone made lighter
  or darker, which no identity or quality figure above shows).

The probes are the first ``--photos-per-person`` photos of every person with at least
``--min-photos`` faces; the gallery is every face of the encodings. Without ``--encodings``
the subset (``--people`` x 10 photos, min 10, as the sweep's) is encoded first.

    python bench/bench_deid_variants.py --encodings ENC.npz --variants d2gan 'd2gan:{"region":"inner"}'

Prints one JSON line per setting and a table at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def parse_variant(text: str) -> tuple[str, str, dict]:
    method, sep, params = text.partition(":")
    return text, method, (json.loads(params) if sep else {})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    shared = Path(os.environ.get("ANONFACES_SHARED_DATA", REPO.parent / "shared" / "data"))
    ap.add_argument("--dataset", default=str(shared / "lfw"))
    ap.add_argument("--encodings", default=None, help="dlib encodings of the subset (relative paths under --dataset)")
    ap.add_argument("--people", type=int, default=60)
    ap.add_argument("--photos-per-person", type=int, default=4, help="probe photos per person")
    ap.add_argument("--min-photos", type=int, default=10)
    ap.add_argument("--detector", default="hog", help="the re-detection detector (hog as the sweep; cnn: dlib's MMOD CNN, "
                                                     "a second opinion the structure term was not modelled on)")
    ap.add_argument("--upsample", type=int, default=1, help="the re-detection's upsampling (1 as the sweep)")
    ap.add_argument("--variants", nargs="+", required=True, help='METHOD or METHOD:{"param": value, ...}')
    args = ap.parse_args()

    import cv2

    from anonfaces.detect import make_detector
    from anonfaces.encode.encodings import Encodings
    from anonfaces.evaluate import detectability, quality
    from anonfaces.evaluate.measure import faces_of
    from anonfaces.evaluate.protocols import identity_reid_hits
    from anonfaces.evaluate.recognizers import make_recognizer
    from anonfaces.synthesize.baselines import apply_baseline
    from anonfaces.synthesize.blend import face_mask
    from anonfaces.utils.images import read_image

    root = Path(args.dataset)
    if args.encodings:
        enc = Encodings.load(args.encodings)
    else:
        import tempfile

        from anonfaces.encode import encode_photos
        from anonfaces.evaluate import DatasetSubset
        from anonfaces.evaluate.subset import link_subset

        sub = DatasetSubset(people=args.people, photos_per_person=10, min_photos=10)
        tmp = Path(tempfile.mkdtemp())
        root = link_subset(root, sub.select(root), tmp / "subset")
        enc = encode_photos(root, tmp / "enc.npz", encoder="dlib").encodings
    ids = enc.identities
    people, counts = np.unique(ids, return_counts=True)
    probed = set(people[counts >= args.min_photos])
    photos = sorted(set(enc.paths))
    by_person: dict = {}
    for p in photos:
        rows = np.flatnonzero(enc.paths == p)
        person = ids[rows[0]]
        if person in probed and len(by_person.setdefault(person, [])) < args.photos_per_person:
            by_person[person].append(p)
    probe_photos = [p for v in by_person.values() for p in v]

    images = {p: read_image(root / p) for p in photos}
    fisher = make_recognizer("fisherfaces")
    dlib_rec = make_recognizer("dlib")
    crops = np.concatenate([fisher.prepare(images[p], faces_of(enc, np.flatnonzero(enc.paths == p))) for p in photos])
    order = np.concatenate([np.flatnonzero(enc.paths == p) for p in photos])
    fisher.fit(crops, ids[order])
    gallery = {"dlib": np.asarray(enc.embeddings, np.float32)[order], "fisherfaces": fisher.embed(crops)}
    g_ids, g_keys = ids[order], enc.paths[order]
    detector = make_detector(args.detector, upsample=args.upsample)
    print(json.dumps({"photos": len(photos), "faces": len(enc), "probe_photos": len(probe_photos),
                      "detector": args.detector, "upsample": args.upsample, "load_avg_1min": os.getloadavg()[0]}), flush=True)

    table = []
    for text, method, params in map(parse_variant, args.variants):
        t0 = time.perf_counter()
        det, feats, p_ids, p_keys, ssims, tone = [], {"dlib": [], "fisherfaces": []}, [], [], [], []
        for p in probe_photos:
            rows = np.flatnonzero(enc.paths == p)
            image = images[p]
            out = image if method == "none" else apply_baseline(image, method, list(enc.landmarks68[rows]), random_state=0,
                                                                 **params)
            found = detector.detect(out)
            boxes = np.array([f.box_ltrb for f in found], np.float64).reshape(-1, 4)
            det.extend(detectability.match_faces(enc.boxes_ltrb[rows], boxes) >= 0)
            faces = faces_of(enc, rows)
            feats["dlib"].append(dlib_rec.embed(dlib_rec.prepare(out, faces)))
            feats["fisherfaces"].append(fisher.embed(fisher.prepare(out, faces)))
            p_ids.extend(ids[rows]), p_keys.extend(enc.paths[rows])
            ssims.append(quality.ssim(image, out))
            light = [cv2.cvtColor(x.astype(np.float32) / 255, cv2.COLOR_RGB2LAB)[..., 0] for x in (image, out)]
            for lm in enc.landmarks68[rows]:
                m = face_mask(image.shape[:2], lm, feather=0) > 0
                tone.append(float(light[1][m].mean() - light[0][m].mean()) if m.any() else 0.0)
        row = {"setting": text, "faces": len(det), "detected": round(float(np.mean(det)), 3)}
        for name in ("dlib", "fisherfaces"):
            hits = identity_reid_hits(np.concatenate(feats[name]), np.array(p_ids), gallery[name], g_ids,
                                      probe_keys=np.array(p_keys), gallery_keys=g_keys)
            row[name] = round(float(np.nanmean(hits)), 3)
        row["ssim"] = round(float(np.mean(ssims)), 3)
        row["tone_shift"] = round(float(np.mean(np.abs(tone))), 2)
        row["tone_over_10"] = round(float(np.mean(np.abs(tone) > 10)), 3)
        row["seconds"] = round(time.perf_counter() - t0, 1)
        print(json.dumps(row), flush=True)
        table.append(row)
    print("| setting | faces | detected | dlib | fisherfaces | SSIM | tone shift (share > 10) |")
    print("|---|---|---|---|---|---|---|")
    for r in table:
        print(f"| `{r['setting']}` | {r['faces']} | {r['detected']:.3f} | {r['dlib']:.3f} | {r['fisherfaces']:.3f} | {r['ssim']:.3f} | "
              f"{r['tone_shift']:.1f} ({r['tone_over_10']:.3f}) |")


if __name__ == "__main__":
    main()
