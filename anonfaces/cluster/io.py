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

from anonfaces.errors import BadInputError, FileFormatError
from anonfaces.utils.atomic import atomic_open
from anonfaces.utils.jsonable import jsonable

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

    def aligned_to(self, paths, face_index) -> Clustering:
        """This clustering's rows in the order of the faces (``paths``, ``face_index``) of an encodings file.

        The join of clusters to encodings on (path, face). A face the clustering has no
        row for is refused; rows of faces not asked for are dropped. Units left empty
        (an older clusters.csv) become the faces' unit names (`unit_names`).
        """
        paths = np.asarray(paths, dtype=str)
        face_index = np.asarray(face_index, dtype=np.int64)
        if np.array_equal(self.paths, paths) and np.array_equal(self.face_index, face_index):
            order = np.arange(len(self))
        else:
            index = {(p, int(f)): i for i, (p, f) in enumerate(zip(self.paths.tolist(), self.face_index.tolist()))}
            try:
                order = np.array([index[(p, int(f))] for p, f in zip(paths.tolist(), face_index.tolist())], np.int64)
            except KeyError as exc:
                raise BadInputError(f"the clustering has no row for face {exc.args[0]} of the encodings") from None
        units = np.asarray(self.units, dtype=str)[order]
        if units.size and np.all(units == ""):
            units = unit_names(paths, face_index)
        return Clustering(paths, face_index, np.asarray(self.labels, np.int64)[order],
                          np.asarray(self.identities, dtype=str)[order], units, dict(self.info))

    def people_per_cluster(self) -> dict[int, int]:
        """Distinct units (people, or faces with ``--unit photo``) in each cluster."""
        return people_per_cluster(self.labels, self.units)


def unit_names(paths, face_index) -> np.ndarray:
    """The unit name of each face when faces are the unit: ``path#face``; shape (n_faces,)."""
    return np.array([f"{p}#{int(f)}" for p, f in zip(np.asarray(paths).tolist(), np.asarray(face_index).tolist())], dtype=str)


def people_per_cluster(labels, units) -> dict[int, int]:
    """Cluster -> number of distinct ``units`` in it (labels must be >= 0)."""
    labels = np.asarray(labels, dtype=np.int64)
    units = np.asarray(units)
    if labels.size == 0:
        return {}
    _, unit_ids = np.unique(units, return_inverse=True)
    pairs = np.unique(np.stack([labels, unit_ids.ravel()], axis=1), axis=0)
    clusters, counts = np.unique(pairs[:, 0], return_counts=True)
    return {int(c): int(n) for c, n in zip(clusters.tolist(), counts.tolist())}


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
        json.dump(clustering.info, fh, indent=2, sort_keys=True, default=jsonable)


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
