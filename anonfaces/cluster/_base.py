"""What every clusterer shares: settings validation, data checks, identity units.

Each algorithm subclasses `BaseKClusterer` and implements ``_cluster_units(X, rng)``
returning one label per *unit* (a photo, or an identity when identities are
given). The base class turns identities into units (the mean embedding of each
identity), checks the data, calls the algorithm and spreads the unit labels back
to the photos, so every algorithm gets the identity-level guarantee the same way.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils import check_random_state

from anonfaces.errors import BadInputError
from anonfaces.utils.checks import (  # noqa: F401  (re-exported for the algorithm modules)
    N_JOBS,
    POSITIVE_INT,
    POSITIVE_REAL,
    RANDOM_STATE,
    Interval,
    Options,
    check_params,
    none_or,
)

#: The label the density and rank-order methods give to points in no cluster.
#: It survives `fit` only when the user turned outlier handling off (``outliers="none"``).
NOISE = -1

OUTLIER_POLICIES = ("nearest", "group", "none")


# Settings constraints: the shared rules of `anonfaces.utils.checks`.
K = POSITIVE_INT
OUTLIERS = Options(OUTLIER_POLICIES)


# ---------------------------------------------------------------------------
# Data checks


def check_embeddings(X, *, k: int, what: str = "n_samples") -> np.ndarray:
    """Return ``X`` as a float64 array of shape (n, d), refusing bad input.

    The caller's array is never modified (a copy is made when the dtype changes,
    and algorithms only read the result).
    """
    try:
        arr = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise BadInputError(f"embeddings must be numeric; got {type(X).__name__}: {exc}") from None
    if arr.ndim != 2:
        raise BadInputError(f"embeddings must be 2-D (n_faces, dim); got shape {arr.shape}")
    n, d = arr.shape
    if d < 1:
        raise BadInputError(f"embeddings must have at least one dimension; got shape {arr.shape}")
    if n < k:
        raise BadInputError(f"{what}={n} must be >= k={k}")
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).any(axis=1).sum())
        raise BadInputError(f"embeddings hold non-finite values (NaN or inf) in {bad} of {n} rows")
    return arr


def identity_units(X: np.ndarray, identities) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Group photos by identity.

    Returns ``(unit_X, inverse, names)``: ``unit_X`` of shape (n_identities, d) is the
    mean embedding of each identity, ``inverse`` of shape (n_photos,) maps each photo
    to its identity's row, ``names`` holds the identities in row order.
    """
    ids = np.asarray(identities)
    if ids.ndim != 1 or ids.shape[0] != X.shape[0]:
        raise BadInputError(
            f"identities must be 1-D with one entry per face: got shape {ids.shape} "
            f"for {X.shape[0]} faces"
        )
    names, inverse = np.unique(ids, return_inverse=True)
    inverse = inverse.ravel()
    counts = np.bincount(inverse, minlength=len(names)).astype(np.float64)
    sums = np.zeros((len(names), X.shape[1]))
    np.add.at(sums, inverse, X)
    return sums / counts[:, None], inverse, names


def relabel_consecutive(labels: np.ndarray) -> np.ndarray:
    """Renumber non-negative labels 0..m-1 in order of first appearance; keep NOISE."""
    labels = np.asarray(labels)
    out = np.full(labels.shape, NOISE, dtype=np.int64)
    mask = labels != NOISE
    if mask.any():
        _, first, inv = np.unique(labels[mask], return_index=True, return_inverse=True)
        order = np.argsort(np.argsort(first))  # rank of each unique label by first appearance
        out[mask] = order[inv.ravel()]
    return out


def centroids(X: np.ndarray, labels: np.ndarray, n_clusters: int | None = None) -> np.ndarray:
    """Mean of each cluster 0..n_clusters-1 (NOISE rows ignored), shape (n_clusters, d)."""
    mask = labels >= 0
    if n_clusters is None:
        n_clusters = int(labels[mask].max()) + 1 if mask.any() else 0
    sums = np.zeros((n_clusters, X.shape[1]))
    np.add.at(sums, labels[mask], X[mask])
    counts = np.bincount(labels[mask], minlength=n_clusters).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts[:, None]


# ---------------------------------------------------------------------------


class BaseKClusterer(ClusterMixin, BaseEstimator):
    """Base of every anonfaces clusterer: at least ``k`` units per cluster.

    Subclasses define ``_parameter_constraints`` and ``_cluster_units(X, rng)``,
    which returns labels of shape (n_units,) that already satisfy the guarantee
    (or may hold NOISE / small clusters when ``outliers="none"``).

    Attributes set by ``fit``: ``labels_`` of shape (n_faces,), ``n_clusters_``,
    ``unit_labels_`` (one label per unit) and, when identities were given,
    ``identity_names_`` (the units' identities, in the order of ``unit_labels_``).
    """

    _parameter_constraints: dict = {"k": K, "random_state": RANDOM_STATE}

    def fit(self, X, y=None, *, identities=None):
        """Cluster the faces ``X`` of shape (n_faces, dim).

        Parameters
        ----------
        X : array-like of shape (n_faces, dim)
        y : ignored
        identities : array-like of shape (n_faces,), optional
            Who each face is. When given, the units clustered are the identities
            (their mean embeddings): every cluster holds at least ``k`` distinct
            identities and all faces of one identity share one cluster.
        """
        check_params(self)
        if identities is None:
            X = check_embeddings(X, k=self.k)
            units, inverse, names = X, None, None
        else:
            X = check_embeddings(X, k=1)
            units, inverse, names = identity_units(X, identities)
            if units.shape[0] < self.k:
                raise BadInputError(f"n_identities={units.shape[0]} must be >= k={self.k}")
        rng = check_random_state(self.random_state)
        unit_labels = relabel_consecutive(self._cluster_units(units, rng))
        self.unit_labels_ = unit_labels
        self.labels_ = unit_labels if inverse is None else unit_labels[inverse]
        if names is not None:
            self.identity_names_ = names
        self.n_clusters_ = int(unit_labels.max()) + 1 if (unit_labels >= 0).any() else 0
        return self

    def fit_predict(self, X, y=None, *, identities=None):
        return self.fit(X, identities=identities).labels_

    def _cluster_units(self, X: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
        raise NotImplementedError


class OutlierHandlingMixin:
    """For methods that leave noise or small clusters (density, rank-order).

    Settings ``outliers`` ("nearest", "group" or "none") and ``split_large``
    (split clusters of 2k or more into groups of k..2k-1 to lower information
    loss) are applied through `anonfaces.cluster.enforce_min_size`.
    """

    def _finish(self, X: np.ndarray, raw_labels: np.ndarray, rng) -> np.ndarray:
        from anonfaces.cluster._min_size import enforce_min_size

        return enforce_min_size(
            X,
            raw_labels,
            k=self.k,
            outliers=self.outliers,
            split_large=self.split_large,
            random_state=rng,
        )
