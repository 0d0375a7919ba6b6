"""One contact-sheet image per cluster, showing its members' faces."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from anonfaces.utils.atomic import atomic_open

logger = logging.getLogger(__name__)


def write_montages(
    clustering,
    encodings,
    out_dir,
    *,
    image_root=None,
    tile: int = 96,
    columns: int = 8,
    max_faces: int = 64,
) -> int:
    """Write ``out_dir/cluster_<c>.jpg`` for every cluster; returns how many were written.

    Faces are cut from the photos under ``image_root`` (default: the dataset root
    recorded in the encodings) with their ``boxes_ltrb``. A missing photo leaves a
    grey tile.
    """
    from PIL import Image

    root = Path(image_root or (getattr(encodings, "meta", {}) or {}).get("dataset") or ".")
    boxes = getattr(encodings, "boxes_ltrb", None)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    labels = clustering.labels
    cache: dict[str, Image.Image | None] = {}
    written = 0
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)[:max_faces]
        rows = int(np.ceil(members.size / columns))
        sheet = Image.new("RGB", (tile * min(columns, members.size), tile * rows), (128, 128, 128))
        for slot, i in enumerate(members):
            rel = str(clustering.paths[i])
            if rel not in cache:
                try:
                    cache[rel] = Image.open(root / rel).convert("RGB")
                except OSError:
                    logger.warning("montage: cannot open %s", root / rel)
                    cache[rel] = None
            img = cache[rel]
            if img is None:
                continue
            if boxes is not None and np.all(np.isfinite(boxes[i])):
                left, top, right, bottom = (round(v) for v in boxes[i])
                face = img.crop((left, top, right, bottom))
            else:
                face = img
            sheet.paste(face.resize((tile, tile)), ((slot % columns) * tile, (slot // columns) * tile))
        with atomic_open(out_dir / f"cluster_{int(c):05d}.jpg", "wb") as fh:
            sheet.save(fh, format="JPEG", quality=90)
        written += 1
    return written
