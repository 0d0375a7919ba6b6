"""Before/after contact sheet of an anonymization run (for the demo and for eyeballing results).

The sheet shows original photos, so it is sensitive: write it outside OUT.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
from sklearn.utils import check_random_state

from anonfaces.errors import BadInputError
from anonfaces.utils.images import read_image, write_image


def contact_sheet(dataset: str | os.PathLike, out: str | os.PathLike, *, paths: list[str] | None = None, n: int = 8,
                  thumb: int = 160, columns: int = 8, random_state=0, private: str | os.PathLike | None = None) -> np.ndarray:
    """A grid of thumbnails: each original photo with its anonymized copy below it.

    Parameters
    ----------
    dataset, out : paths
        The input folder and the output folder of `anonymize_dataset`.
    paths : list of str, optional
        Photos to show (relative paths); default: ``n`` photos drawn from ``OUT/mapping.csv``.
    thumb : int
        Side of each thumbnail (photos are letterboxed into a square).
    columns : int
        Photos per row of pairs.
    private : path, optional
        The run's private folder (default ``OUT.private``), whose ``mapping.csv`` names the outputs.

    Returns
    -------
    ndarray of shape (H, W, 3), uint8
    """
    from anonfaces.pipeline.layout import default_private_dir
    from anonfaces.synthesize.mapping import read_mapping

    dataset, out = Path(dataset), Path(out)
    mapping = Path(private or default_private_dir(out)) / "mapping.csv"
    if not mapping.is_file():
        mapping = out / "mapping.csv"  # a run from before the private folder
    if not mapping.is_file():
        raise BadInputError(f"{mapping} not found: run anonymize first")
    rows = read_mapping(mapping)
    output_of = {r["path"]: r.get("output") or r["path"] for r in rows}
    if paths is None:
        with_faces = sorted({r["path"] for r in rows if (out / output_of[r["path"]]).is_file()})
        if not with_faces:
            raise BadInputError(f"{mapping} lists no faces")
        rng = check_random_state(random_state)
        paths = [with_faces[i] for i in sorted(rng.choice(len(with_faces), min(n, len(with_faces)), replace=False))]
    if not paths:
        raise BadInputError("no photos to show")
    pairs = [np.concatenate([_thumb(read_image(dataset / p), thumb), _thumb(read_image(out / output_of.get(p, p)), thumb)], axis=0)
             for p in paths]
    gap = 4
    columns = max(1, min(columns, len(pairs)))
    rows = []
    for start in range(0, len(pairs), columns):
        row = pairs[start:start + columns]
        row += [np.full_like(pairs[0], 255)] * (columns - len(row))
        spaced = []
        for tile in row:
            spaced += [tile, np.full((tile.shape[0], gap, 3), 255, np.uint8)]
        rows += [np.concatenate(spaced[:-1], axis=1), np.full((gap * 2, spaced[0].shape[1] * 0 + sum(t.shape[1] for t in spaced[:-1]), 3), 255, np.uint8)]
    return np.concatenate(rows[:-1], axis=0)


def write_contact_sheet(path: str | os.PathLike, dataset, out, **kwargs) -> Path:
    """`contact_sheet` written to ``path`` (PNG or JPEG by suffix, no metadata)."""
    sheet = contact_sheet(dataset, out, **kwargs)
    write_image(path, sheet)
    return Path(path)


def _thumb(image: np.ndarray, side: int) -> np.ndarray:
    h, w = image.shape[:2]
    scale = side / max(h, w)
    small = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    canvas = np.full((side, side, 3), 255, np.uint8)
    y, x = (side - small.shape[0]) // 2, (side - small.shape[1]) // 2
    canvas[y:y + small.shape[0], x:x + small.shape[1]] = small
    return canvas
