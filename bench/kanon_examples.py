#!/usr/bin/env python
"""Example grid for issue 16: the same photos, original | old default | new default (one row per photo).

Reads photos at the same relative paths under an original folder and one or
more anonymized run folders (for example those `bench/probe_kanon.py` wrote)
and writes one small JPEG grid:

    python bench/kanon_examples.py --original /tmp/probe/cache/subset/lfw \\
        --runs /tmp/probe/old,/tmp/probe/cluster-head --photos A/A_0001.jpg,B/B_0002.jpg \\
        --out docs/images/kanon-examples.jpg
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--original", required=True)
    ap.add_argument("--runs", required=True, help="comma-separated anonymized folders (columns after the original)")
    ap.add_argument("--photos", required=True, help="comma-separated relative paths (rows)")
    ap.add_argument("--crop", type=float, default=0.7, help="keep this central share of each photo")
    ap.add_argument("--cell", type=int, default=160, help="side of each cell in pixels")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)

    import cv2
    import numpy as np

    from anonfaces.utils.images import read_image, write_image

    folders = [Path(args.original)] + [Path(r) for r in args.runs.split(",")]
    rows = []
    for rel in args.photos.split(","):
        cells = []
        for folder in folders:
            image = read_image(folder / rel)
            h, w = image.shape[:2]
            ch, cw = int(h * args.crop), int(w * args.crop)
            y0, x0 = (h - ch) // 2, (w - cw) // 2
            cells.append(cv2.resize(image[y0:y0 + ch, x0:x0 + cw], (args.cell, args.cell), interpolation=cv2.INTER_AREA))
        rows.append(np.concatenate(cells, axis=1))
    write_image(args.out, np.concatenate(rows, axis=0), quality=88)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
