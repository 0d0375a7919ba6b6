#!/usr/bin/env python
"""Where anonymized photos lose SSIM: the SSIM deficit split into zones around each face (issue 16).

For each run folder of a `bench/probe_kanon.py` output (photos at the subset's relative paths),
computes the SSIM map of every photo against its original (scikit-image, 7 x 7 windows, averaged
over colour channels) and splits the photo's deficit (1 - SSIM, averaged over its pixels) into
zones drawn around each face's *original* landmarks:

* ``inner``: the jaw line and the brows raised by 15% of the face size (the ``inner`` region);
* ``head``: the ``head`` region (forehead to the hairline, under the chin, out toward the ears)
  minus ``inner``;
* ``ring``: the ``head`` outline scaled by 1.35 about the nose tip, minus ``head`` (where the
  photo is warped to meet the new outline);
* ``rest``: everything else.

    python bench/ssim_zones.py PROBE_OUT default photo-first

prints, per run, the mean SSIM and each zone's share of the photo, of the deficit, and its
own mean SSIM.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ZONES = ("inner", "head", "ring", "rest")


def zone_masks(landmarks, shape_hw) -> dict:
    """{zone: bool mask} for the faces with ``landmarks`` (n, 68, 2) in a photo of ``shape_hw``."""
    import cv2
    import numpy as np

    from anonfaces.synthesize._warp import face_outline
    from anonfaces.synthesize.blend import REGIONS
    from anonfaces.synthesize.blend import _fill as fill

    inner = np.zeros(shape_hw, bool)
    head = inner.copy()
    ring = inner.copy()
    for lm in landmarks:
        lm = np.asarray(lm, np.float64)
        inner |= fill(face_outline(lm, forehead=REGIONS["inner"][0], expand=REGIONS["inner"][1]), shape_hw) > 127
        outline = face_outline(lm, forehead=REGIONS["head"][0], expand=REGIONS["head"][1])
        head |= fill(outline, shape_hw) > 127
        ring |= fill(cv2.convexHull((lm[30] + (outline - lm[30]) * 1.35).astype(np.float32)).reshape(-1, 2)
                     .astype(np.float64), shape_hw) > 127
    return {"inner": inner, "head": head & ~inner, "ring": ring & ~head, "rest": ~ring}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("probe_out", help="a bench/probe_kanon.py --out folder (its cache/ holds the subset and encodings)")
    ap.add_argument("runs", nargs="+", help="configuration names (folders under PROBE_OUT)")
    args = ap.parse_args(argv)

    import numpy as np
    from probe_kanon import load_probe_output
    from skimage.metrics import structural_similarity

    from anonfaces.utils.images import read_image

    out = Path(args.probe_out)
    enc, root = load_probe_output(out, ap)
    paths = np.asarray(enc.paths)
    for run in args.runs:
        deficit = dict.fromkeys(ZONES, 0.0)
        area = dict.fromkeys(ZONES, 0.0)
        scores = []
        for rel in sorted(set(paths.tolist())):
            a, b = read_image(root / rel), read_image(out / run / rel)
            score, smap = structural_similarity(a, b, data_range=255, channel_axis=2, full=True)
            smap = smap.mean(2)
            scores.append(score)
            for zone, mask in zone_masks(enc.landmarks68[paths == rel], a.shape[:2]).items():
                deficit[zone] += float((1.0 - smap[mask]).sum()) / smap.size
                area[zone] += float(mask.mean())
        n = len(scores)
        print(f"{run:24s} SSIM {np.mean(scores):.3f} deficit {1 - np.mean(scores):.3f} | " + " | ".join(
            f"{z}: area {area[z] / n:.2f}, deficit {deficit[z] / n:.3f}, SSIM {1 - deficit[z] / max(area[z], 1e-9):.2f}"
            for z in ZONES))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
