#!/usr/bin/env python
"""What SSIM a perfect surrogate could reach: each face replaced by a *real* other person's face (issue 16).

An ideal generator would give every photo a sharp, natural face of someone else, in the photo's own
pose. This benchmark stands in for it with real faces: for each face of a `bench/probe_kanon.py`
output, the donor is the LFW photo, of a person with a single LFW photo (so in neither the probe's
nor the README sweep's subset), nearest the face in pose: the face's coefficients on the
``--match-modes`` leading modes of the shipped shape model (`anonfaces.synthesize.shape_modes`:
yaw and pitch, which vary mostly between photos of one person, not between people), among
``--donors`` people. ``--match-modes 0`` matches all 68 landmarks instead, which also picks a donor
with the face's own shape (identity geometry, so not an ideal generator's output). The donor's canonical
crop then goes into the photo exactly as a cluster's surrogate would (`blend_surrogate`), under
each of a few settings, and every run folder is scored as `bench/hybrid_attribution.py` scores
one: SSIM against the original, and Fisherfaces and dlib re-identification of the original person.

Since no donor is anybody in the gallery, what the attackers still recover comes from what the
setting keeps of the photo (its geometry, outline, hair, background), and the SSIM is what a
natural face of another person, not an average, costs under that setting.

    python bench/donor_ceiling.py PROBE_OUT --dataset ../shared/data/lfw --donors 800

writes ``PROBE_OUT/donor<match-modes>-<setting>/`` and prints one line per setting.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

#: name -> BlendSettings keywords (the surrogate is the donor's crop in each).
SETTINGS = {
    "default": {},
    "member-shape": {"shape": "member"},
    "member-shape-inner": {"shape": "member", "region": "inner"},
    "photo-first": {"ring": 1.08, "pose": 4, "region": "forehead", "detail": 1.0},
    "photo-first-pose2": {"ring": 1.08, "pose": 2, "region": "forehead", "detail": 1.0},
    "ring1.08": {"ring": 1.08},
    "chip": {"region": "chip"},
}


def pose_key(landmarks68, modes: int):
    """The face's coefficients on the ``modes`` leading shape modes (all 68 canonical landmarks with 0)."""
    from anonfaces.synthesize.shape_modes import canonical_shapes, load_shape_modes

    shape = canonical_shapes(landmarks68)[0]
    if not modes:
        return shape.reshape(-1)
    mean, components = load_shape_modes()
    return components[:modes].reshape(modes, -1) @ (shape - mean).reshape(-1)


def donor_surrogates(dataset: Path, cache: Path, n: int, *, size: int, modes: int, jobs: int):
    """(pose keys, [Surrogate]) of the first face of ``n`` people with one photo, evenly spread."""
    import numpy as np

    from anonfaces.detect import align_face
    from anonfaces.evaluate import DatasetSubset
    from anonfaces.evaluate.subset import link_subset
    from anonfaces.pipeline.sweep import cached_encodings
    from anonfaces.synthesize.base import Surrogate
    from anonfaces.utils.images import read_image

    singles = sorted(p for p in DatasetSubset(people=None, photos_per_person=1, min_photos=1).select(dataset)
                     if len(list((dataset / Path(p).parts[0]).iterdir())) == 1)
    chosen = [singles[i] for i in np.round(np.linspace(0, len(singles) - 1, min(n, len(singles)))).astype(int)]
    root = link_subset(dataset, chosen, cache / "subset" / dataset.name)
    enc = cached_encodings(root, cache, jobs=jobs, progress=False)
    keys, surrogates, seen = [], [], set()
    for rel, lm in zip(enc.paths, enc.landmarks68):
        if rel in seen:  # one face per donor photo
            continue
        seen.add(rel)
        face = align_face(read_image(root / rel), lm, size=size)
        keys.append(pose_key(lm, modes))
        surrogates.append(Surrogate(face.image, face.landmarks68))
    return np.stack(keys), surrogates


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("probe_out", help="a bench/probe_kanon.py --out folder")
    ap.add_argument("--dataset", type=Path, default=Path("../shared/data/lfw"))
    ap.add_argument("--donors", type=int, default=800)
    ap.add_argument("--match-modes", type=int, default=2,
                    help="match donors on this many leading shape modes (2: yaw and pitch); 0: all 68 landmarks")
    ap.add_argument("--settings", default=",".join(SETTINGS), help=f"comma-separated, of {', '.join(SETTINGS)}")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args(argv)
    names = args.settings.split(",")
    if unknown := [n for n in names if n not in SETTINGS]:
        ap.error(f"unknown setting(s) {', '.join(unknown)}; choose from {', '.join(SETTINGS)}")

    import numpy as np
    from hybrid_attribution import attack_runs
    from probe_kanon import load_probe_output

    from anonfaces.synthesize.blend import BlendSettings, blend_surrogate
    from anonfaces.synthesize.surrogates import auto_crop_size
    from anonfaces.utils.images import read_image, write_image

    if not args.dataset.is_dir():
        ap.error(f"--dataset {args.dataset} is not a folder")
    out = Path(args.probe_out)
    enc, root = load_probe_output(out, ap)
    keys, donors = donor_surrogates(args.dataset, out / "donors", args.donors,
                                    size=auto_crop_size(enc.landmarks68), modes=args.match_modes, jobs=args.jobs)
    pose = np.stack([pose_key(lm, args.match_modes) for lm in enc.landmarks68])
    nearest = ((pose[:, None, :] - keys[None]) ** 2).sum(-1).argmin(1)
    matched = f"{args.match_modes} leading shape modes" if args.match_modes else "all 68 landmarks"
    print(f"{len(donors)} donors, matched on {matched}; {len(set(nearest.tolist()))} of them used", flush=True)
    paths = np.asarray(enc.paths)
    runs = []
    for name in names:
        settings = BlendSettings(**SETTINGS[name])
        run = f"donor{args.match_modes}-{name}"
        for rel in sorted(set(paths.tolist())):
            image = read_image(root / rel).copy()
            for row in np.flatnonzero(paths == rel):
                blend_surrogate(image, donors[nearest[row]], enc.landmarks68[row], out=image, settings=settings)
            (out / run / rel).parent.mkdir(parents=True, exist_ok=True)
            write_image(out / run / rel, image)
        runs.append(run)
    rows = attack_runs(out, runs, jobs=args.jobs)
    with open(out / "donor_ceiling.jsonl", "a") as fh:
        for name, row in zip(names, rows):
            fh.write(json.dumps({"setting": name, **SETTINGS[name], "donors": len(donors),
                                 "match_modes": args.match_modes, **row}) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
