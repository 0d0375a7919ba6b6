"""`clusters.csv`: one row per face, written atomically.

Columns: ``path,face,cluster,identity,unit``

- ``path``: image path relative to the dataset root (POSIX separators);
- ``face``: index of the face within its image;
- ``cluster``: the cluster (>= 0); faces with one cluster share one surrogate;
- ``identity``: the known identity ('' when unknown);
- ``unit``: the identity the guarantee counted: ``identity``, or a pseudo-identity
  ``~pseudo-<i>`` for an unknown face, or the face itself (``path#face``) with
  ``--unit photo``.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from anonfaces.errors import FileFormatError
from anonfaces.utils.atomic import atomic_open

COLUMNS = ("path", "face", "cluster", "identity", "unit")


@dataclass
class Clustering:
    """The hand-off of the clustering stage: one cluster per face.

    Arrays all have shape (n_faces,). ``info`` holds the run's settings and
    scores (algorithm, k, unit, params, pseudo-identities formed, seconds, ...).
    """

    paths: np.ndarray
    face_index: np.ndarray
    labels: np.ndarray
    identities: np.ndarray
    units: np.ndarray
    info: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def n_clusters(self) -> int:
        return int(self.labels.max()) + 1 if len(self) else 0

    def save(self, path) -> None:
        write_clusters(path, self)

    @classmethod
    def load(cls, path) -> Clustering:
        return read_clusters(path)


def write_clusters(path, clustering: Clustering) -> None:
    """Write ``clustering`` to ``path`` (CSV) and its ``info`` beside it (``<path>.json``)."""
    with atomic_open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(COLUMNS)
        for row in zip(
            clustering.paths.tolist(),
            clustering.face_index.tolist(),
            clustering.labels.tolist(),
            clustering.identities.tolist(),
            clustering.units.tolist(),
        ):
            w.writerow(row)
    with atomic_open(f"{path}.json", "w", encoding="utf-8") as fh:
        json.dump(clustering.info, fh, indent=2, sort_keys=True, default=_jsonable)


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def read_clusters(path) -> Clustering:
    """Read a `clusters.csv` (and its ``.json`` info when present)."""
    path = Path(path)
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or list(header[:3]) != ["path", "face", "cluster"]:
            raise FileFormatError(f"{path}: not a clusters.csv (header {header!r}; expected path,face,cluster,...)")
        rows = list(reader)
    col = {name: i for i, name in enumerate(header)}
    try:
        paths = np.array([r[0] for r in rows], dtype=str)
        faces = np.array([int(r[1]) for r in rows], dtype=np.int64)
        labels = np.array([int(r[2]) for r in rows], dtype=np.int64)
    except (ValueError, IndexError) as exc:
        raise FileFormatError(f"{path}: bad row ({exc})") from None
    if labels.size and labels.min() < 0:
        raise FileFormatError(f"{path}: cluster must be >= 0; found {labels.min()}")
    ids = np.array([r[col["identity"]] for r in rows], dtype=str) if "identity" in col else np.full(len(rows), "")
    units = np.array([r[col["unit"]] for r in rows], dtype=str) if "unit" in col else ids.copy()
    info_path = Path(f"{path}.json")
    info = json.loads(info_path.read_text(encoding="utf-8")) if info_path.exists() else {}
    return Clustering(paths, faces, labels, ids, units, info)
