"""Clustering stage: groups of faces where every group stands for at least k people.

Estimators (scikit-learn style, ``fit(X, identities=None)`` sets ``labels_``),
by CLI name in `CLUSTERERS`:

============== ======================================= =====================
name           class                                   module
============== ======================================= =====================
fixed-kmeans   `FixedSizeKMeans`                       ``_fixed_kmeans.py``
aroc           `ApproximateRankOrder`                  ``_rank_order.py``
dbscan         `DBSCANClusterer`                       ``_density.py``
hdbscan        `HDBSCANClusterer`                      ``_density.py``
optics         `OPTICSClusterer`                       ``_density.py``
hierarchical   `HierarchicalFixedSize`                 ``_hierarchical.py``
mdav           `MDAV`                                  ``_mdav.py``
kmember        `KMember`                               ``_kmember.py``
oka            `OneKMeans`                             ``_oka.py``
random         `RandomGrouping`                        ``_random.py``
============== ======================================= =====================

The library entry point is `cluster_encodings`; the at-least-k step is
`enforce_min_size`; scores are in `anonfaces.cluster.metrics`; the file format
in `anonfaces.cluster.io`.
"""

from __future__ import annotations

import logging
import time
import warnings

import numpy as np

from anonfaces.cluster._base import NOISE, BaseKClusterer
from anonfaces.cluster._density import (
    DBSCANClusterer,
    HDBSCANClusterer,
    OPTICSClusterer,
)
from anonfaces.cluster._fixed_kmeans import FixedSizeKMeans
from anonfaces.cluster._hierarchical import HierarchicalFixedSize
from anonfaces.cluster._kmember import KMember
from anonfaces.cluster._mdav import MDAV
from anonfaces.cluster._min_size import enforce_min_size
from anonfaces.cluster._oka import OneKMeans
from anonfaces.cluster._people import (
    PSEUDO_DEFAULTS,
    PSEUDO_PREFIX,
    fill_identities,
    pseudo_identity_labels,
)
from anonfaces.cluster._random import RandomGrouping
from anonfaces.cluster._rank_order import ApproximateRankOrder
from anonfaces.cluster.io import (
    Clustering,
    people_per_cluster,
    read_clusters,
    unit_names,
    write_clusters,
)
from anonfaces.errors import BadInputError
from anonfaces.registry import Registry

__all__ = [
    "CLUSTERERS",
    "MDAV",
    "NOISE",
    "PSEUDO_DEFAULTS",
    "PSEUDO_PREFIX",
    "ApproximateRankOrder",
    "BaseKClusterer",
    "Clustering",
    "DBSCANClusterer",
    "FixedSizeKMeans",
    "HDBSCANClusterer",
    "HierarchicalFixedSize",
    "KMember",
    "OPTICSClusterer",
    "OneKMeans",
    "RandomGrouping",
    "cluster_encodings",
    "enforce_min_size",
    "fill_identities",
    "make_clusterer",
    "people_per_cluster",
    "pseudo_identity_labels",
    "read_clusters",
    "unit_names",
    "write_clusters",
]

logger = logging.getLogger(__name__)

CLUSTERERS: Registry[type] = Registry("clusterer")
for _name, _cls in [
    ("fixed-kmeans", FixedSizeKMeans),
    ("aroc", ApproximateRankOrder),
    ("dbscan", DBSCANClusterer),
    ("hdbscan", HDBSCANClusterer),
    ("optics", OPTICSClusterer),
    ("hierarchical", HierarchicalFixedSize),
    ("mdav", MDAV),
    ("kmember", KMember),
    ("oka", OneKMeans),
    ("random", RandomGrouping),
]:
    CLUSTERERS.register(_name)(_cls)


def make_clusterer(algo: str, *, k: int, outliers: str = "nearest", params: dict | None = None, random_state=None):
    """Build the estimator registered as ``algo`` with ``k``, ``random_state`` and ``params``.

    ``outliers`` is passed to the methods that have noise (aroc, dbscan, hdbscan,
    optics) and ignored by the others, which never leave noise. Unknown
    ``params`` are refused with the list of valid ones.
    """
    cls = CLUSTERERS.get(algo)
    valid = cls._get_param_names()
    settings = dict(params or {})
    for reserved in ("k", "random_state", "outliers"):
        if reserved in settings:
            raise BadInputError(f"set {reserved!r} with its own option, not as a param of {algo!r}")
    unknown = sorted(set(settings) - set(valid))
    if unknown:
        allowed = [p for p in valid if p not in ("k", "random_state", "outliers")]
        raise BadInputError(f"unknown param(s) {', '.join(unknown)} for {algo!r}; valid: {', '.join(allowed)}")
    settings["k"] = k
    settings["random_state"] = random_state
    if "outliers" in valid:
        settings["outliers"] = outliers
    return cls(**settings)


def cluster_encodings(
    encodings,
    *,
    algo: str = "fixed-kmeans",
    k: int = 5,
    unit: str = "identity",
    identities=None,
    outliers: str = "nearest",
    params: dict | None = None,
    pseudo_params: dict | None = None,
    n_jobs: int | None = None,
    random_state=None,
) -> Clustering:
    """Cluster faces so that every cluster stands for at least ``k`` people.

    Parameters
    ----------
    encodings : Encodings-like or array-like of shape (n_faces, dim)
        An object with ``.embeddings`` (and optionally ``.paths``, ``.face_index``,
        ``.identities``), as `anonfaces.load_encodings` returns, or plain embeddings.
    algo : str
        A name in `CLUSTERERS`.
    k : int
        Minimum number of distinct identities (``unit="identity"``) or photos
        (``unit="photo"``) per cluster.
    unit : {"identity", "photo"}
        ``"identity"`` (default): identities are the unit; unknown faces ('' in
        the identities) are first grouped into pseudo-identities, the faces of one
        video face track (``encodings.tracks``) always together.
        ``"photo"``: the original research's photo-level behaviour (warns: a
        cluster may then hold k photos of one person).
    identities : array-like of shape (n_faces,), optional
        Overrides ``encodings.identities`` (for example from a labels file).
    outliers : {"nearest", "group", "none"}
        For aroc/dbscan/hdbscan/optics. With ``"none"`` noise faces become
        clusters of their own and clusters may be smaller than ``k``.
    params : dict, optional
        Further settings of the estimator.
    pseudo_params : dict, optional
        Settings of `pseudo_identity_labels` (default `PSEUDO_DEFAULTS`).
    n_jobs : int, optional
        Processes/threads for the estimators that take ``n_jobs`` (unless
        ``params`` sets it) and for the pseudo-identity neighbour search; -1 = all cores.
    random_state : int, RandomState or None

    Returns
    -------
    Clustering
        ``labels`` of shape (n_faces,), all >= 0, and ``info`` with the settings
        and the number of pseudo-identities formed.
    """
    X = getattr(encodings, "embeddings", encodings)
    X = np.asarray(X)
    if X.ndim != 2:
        raise BadInputError(f"embeddings must be 2-D (n_faces, dim); got shape {X.shape}")
    n = X.shape[0]
    paths = np.asarray(getattr(encodings, "paths", np.array([str(i) for i in range(n)])), dtype=str)
    faces = np.asarray(getattr(encodings, "face_index", np.zeros(n, dtype=np.int64)), dtype=np.int64)
    if identities is None:
        identities = getattr(encodings, "identities", None)
    if unit not in ("identity", "photo"):
        raise BadInputError(f"unit={unit!r} must be 'identity' or 'photo'")
    known = np.full(n, "", dtype=object) if identities is None else np.asarray(identities, dtype=object)
    if known.shape != (n,):
        raise BadInputError(f"identities has shape {known.shape}; expected ({n},)")
    known = np.array(["" if v is None else str(v) for v in known], dtype=str)

    params = dict(params or {})
    if n_jobs is not None and "n_jobs" in CLUSTERERS.get(algo)._get_param_names():
        params.setdefault("n_jobs", n_jobs)
    estimator = make_clusterer(algo, k=k, outliers=outliers, params=params, random_state=random_state)
    start = time.perf_counter()
    n_pseudo = 0
    if unit == "photo":
        warnings.warn(
            "unit='photo': clusters count photos, not people; a cluster may hold k photos of one "
            "person (no privacy for them). Use it only to compare with the original research.",
            UserWarning,
            stacklevel=2,
        )
        estimator.fit(X)
        units = unit_names(paths, faces)
    else:
        Xf = np.asarray(X, dtype=np.float64)
        groups = encodings.track_units() if hasattr(encodings, "track_units") else None  # video face tracks
        units, n_pseudo = fill_identities(Xf, known, groups=groups,
                                          **{**PSEUDO_DEFAULTS, "n_jobs": n_jobs, **(pseudo_params or {})})
        estimator.fit(Xf, identities=units)
    labels = np.asarray(estimator.labels_, dtype=np.int64).copy()
    noise = labels == NOISE
    if noise.any():  # only with outliers="none": each noise unit becomes its own cluster
        _, inv = np.unique(units[noise], return_inverse=True)
        labels[noise] = labels.max() + 1 + inv.ravel()
    seconds = time.perf_counter() - start
    info = {
        "algorithm": algo,
        "k": int(k),
        "unit": unit,
        "outliers": outliers,
        "params": estimator.get_params(),
        "random_state": random_state if isinstance(random_state, (int, type(None))) else str(random_state),
        "n_faces": int(n),
        "n_units": int(np.unique(units).size),
        "n_pseudo_identities": int(n_pseudo),
        "seconds": seconds,
    }
    if unit == "identity":
        info["pseudo_params"] = {**PSEUDO_DEFAULTS, **(pseudo_params or {})}
    return Clustering(paths, faces, labels, known, units, info)
