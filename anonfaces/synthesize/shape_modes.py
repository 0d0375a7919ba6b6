"""A linear model of 68-point face shapes whose leading modes carry pose and expression.

Faces' landmarks, each moved by a similarity transform so that its eye centres and
mouth centre sit on `anonfaces.detect.align.CANONICAL_TEMPLATE` (a unit square),
are fitted with PCA. On LFW (13,893 faces) the leading mode is yaw (56% of the
variance; 91% of it varies between photos of one person, not between people), the
second pitch with chin and face width (19%; 76% within a person), the next ones
face width and mouth opening, mixed with identity (68%), and from the fifth on the
modes are mostly identity. `pose_shape` uses this to give a surrogate the pose of
the face it replaces while it keeps the cluster's shape for the rest:
``pose`` leading modes from the member, everything else from the cluster.

The model shipped in ``data/shape_modes.npz`` (the mean and the leading
`N_MODES` components, unit canonical coordinates; plain arrays, no pickle) is
fitted by ``python bench/fit_shape_modes.py`` (`fit_shape_modes`).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from anonfaces.detect.align import (
    CANONICAL_TEMPLATE,
    anchor_points,
    similarity_transform,
    transform_points,
)
from anonfaces.errors import BadInputError

MODEL_PATH = Path(__file__).with_name("data") / "shape_modes.npz"
#: Components kept in the shipped model (the most `BlendSettings.pose` may ask for).
N_MODES = 8


def canonical_shapes(landmarks68: np.ndarray) -> np.ndarray:
    """Each (68, 2) shape moved by a similarity transform onto the unit canonical template; (n, 68, 2)."""
    lm = np.asarray(landmarks68, dtype=np.float64).reshape(-1, 68, 2)
    return np.stack([transform_points(s, similarity_transform(anchor_points(s), CANONICAL_TEMPLATE)) for s in lm])


def fit_shape_modes(landmarks68: np.ndarray, *, n_modes: int = N_MODES, identities=None) -> dict:
    """PCA of canonical shapes: ``{"mean": (68, 2), "components": (n_modes, 68, 2) orthonormal, "explained": (n,)}``
    and, with ``identities``, ``"within"``: each mode's share of variance between photos of one person (over the
    people with at least 5 photos)."""
    x = canonical_shapes(landmarks68)
    finite = np.isfinite(x).all(axis=(1, 2))
    x = x[finite]
    if len(x) <= n_modes:
        raise BadInputError(f"fitting {n_modes} shape modes needs more than {n_modes} faces; got {len(x)}")
    mean = x.mean(0)
    d = (x - mean).reshape(len(x), -1)
    _, s, vt = np.linalg.svd(d, full_matrices=False)
    model = {"mean": mean, "components": vt[:n_modes].reshape(n_modes, 68, 2),
             "explained": (s ** 2 / (s ** 2).sum())[:n_modes], "faces": np.int64(len(x))}
    if identities is not None:
        ids = np.asarray(identities)[finite]
        _, inv = np.unique(ids, return_inverse=True)
        counts = np.bincount(inv)
        many = counts[inv] >= 5  # people with at least 5 photos
        coef, inv = (d @ vt[:n_modes].T)[many], inv[many]
        counts = np.maximum(np.bincount(inv), 1)
        means = np.stack([np.bincount(inv, coef[:, j]) / counts for j in range(n_modes)], 1)
        model["within"] = ((coef - means[inv]) ** 2).mean(0) / coef.var(0)
    return model


@functools.lru_cache(maxsize=1)
def load_shape_modes(path: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The shipped model's ``(mean (68, 2), components (N_MODES, 68, 2))``."""
    with np.load(path or MODEL_PATH, allow_pickle=False) as z:
        return z["mean"].astype(np.float64), z["components"].astype(np.float64)


def pose_shape(member: np.ndarray, cluster: np.ndarray, pose: int, *, size: float) -> np.ndarray:
    """The cluster's shape in the member's pose: ``cluster + P P^T (member - cluster)``, P the ``pose`` leading modes.

    ``member`` and ``cluster`` are (68, 2) landmarks in one canonical frame of side ``size``
    (the surrogate's crop); returns the new shape in that frame. ``pose = 0``: ``cluster``.
    """
    if not pose:
        return np.asarray(cluster, dtype=np.float64)
    if not 0 < int(pose) <= N_MODES:
        raise BadInputError(f"pose={pose!r} must be from 0 to {N_MODES} (shape modes taken from the member)")
    _, components = load_shape_modes()
    p = components[: int(pose)].reshape(int(pose), -1)  # orthonormal rows
    diff = (np.asarray(member, np.float64) - np.asarray(cluster, np.float64)).reshape(-1) / size
    return np.asarray(cluster, np.float64) + (p.T @ (p @ diff)).reshape(68, 2) * size
