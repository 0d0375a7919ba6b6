"""`mapping.csv`: which face of which photo became which cluster's surrogate (the `Mapping` record).

Columns: ``path,face,cluster,left,top,right,bottom``

- ``path``, ``face``: the face (dataset-relative POSIX path, index in its photo);
- ``cluster``: the surrogate that replaced it, or `NOT_CLUSTERED` (-1) for the
  baselines, which obfuscate each face in place;
- ``left,top,right,bottom``: the face's box in the original photo (pixels).

It is the only link from the original photos to the clusters: it is sensitive.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from anonfaces.errors import FileFormatError
from anonfaces.utils.atomic import atomic_open

#: ``cluster`` in mapping.csv for faces that were not clustered (baseline methods).
NOT_CLUSTERED = -1
MAPPING_COLUMNS = ("path", "face", "cluster", "left", "top", "right", "bottom")


@dataclass
class Mapping:
    """The hand-off of the synthesis stage: one row per replaced face, sorted by (path, face).

    Attributes
    ----------
    paths : ndarray of shape (n_faces,), str
    face_index : ndarray of shape (n_faces,), int
    clusters : ndarray of shape (n_faces,), int
        The surrogate's cluster, `NOT_CLUSTERED` for the baselines.
    boxes_ltrb : ndarray of shape (n_faces, 4), float
        (left, top, right, bottom) in the original photo.
    """

    paths: np.ndarray
    face_index: np.ndarray
    clusters: np.ndarray
    boxes_ltrb: np.ndarray

    def __post_init__(self):
        order = np.lexsort((self.face_index, self.paths))
        self.paths = np.asarray(self.paths, dtype=str)[order]
        self.face_index = np.asarray(self.face_index, dtype=np.int64)[order]
        self.clusters = np.asarray(self.clusters, dtype=np.int64)[order]
        self.boxes_ltrb = np.asarray(self.boxes_ltrb, dtype=np.float64).reshape(-1, 4)[order]

    def __len__(self) -> int:
        return int(self.paths.shape[0])

    @property
    def n_clusters(self) -> int:
        return int(np.unique(self.clusters[self.clusters != NOT_CLUSTERED]).size)

    def save(self, path) -> Path:
        path = Path(path)
        with atomic_open(path, "w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(MAPPING_COLUMNS)
            for rel, face, cluster, box in zip(self.paths.tolist(), self.face_index.tolist(), self.clusters.tolist(),
                                               self.boxes_ltrb.tolist()):
                w.writerow([rel, face, cluster, *(f"{v:.1f}" for v in box)])
        return path

    @classmethod
    def load(cls, path) -> Mapping:
        path = Path(path)
        try:
            with open(path, encoding="utf-8", newline="") as fh:
                reader = csv.reader(fh)
                header = next(reader, None)
                rows = list(reader)
        except OSError as exc:
            raise FileFormatError(f"cannot read {path}: {exc}") from None
        if header is None or tuple(header[:3]) != MAPPING_COLUMNS[:3]:
            raise FileFormatError(f"{path}: not a mapping.csv (header {header!r}; expected {','.join(MAPPING_COLUMNS)})")
        try:
            boxes = [[float(v) for v in r[3:7]] if len(r) >= 7 else [np.nan] * 4 for r in rows]
            return cls(np.array([r[0] for r in rows], dtype=str), np.array([int(r[1]) for r in rows], np.int64),
                       np.array([int(r[2]) for r in rows], np.int64), np.array(boxes, np.float64).reshape(-1, 4))
        except (ValueError, IndexError) as exc:
            raise FileFormatError(f"{path}: bad row ({exc})") from None


def read_mapping(path) -> list[dict]:
    """Rows of a ``mapping.csv`` as dicts (``face`` and ``cluster`` as int, the box as float)."""
    m = Mapping.load(path)
    return [{"path": p, "face": f, "cluster": c, "left": b[0], "top": b[1], "right": b[2], "bottom": b[3]}
            for p, f, c, b in zip(m.paths.tolist(), m.face_index.tolist(), m.clusters.tolist(), m.boxes_ltrb.tolist())]
