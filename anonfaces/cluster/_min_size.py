"""The "no noise, every cluster >= k" step, shared by the density and rank-order methods.

`enforce_min_size` takes raw labels (NOISE = -1 for points in no cluster, and
clusters of any size) and returns labels where every point has a cluster and
every cluster has at least ``k`` points:

1. Noise, by policy ``outliers``:
   - ``"nearest"``: each noise point joins the cluster with the nearest centroid
     (if there is no cluster at all, the noise is grouped as with ``"group"``);
   - ``"group"``: the noise points are grouped among themselves into clusters of
     ``k`` to ``2k - 1`` (fixed-size K-Means); fewer than ``k`` left over join
     the nearest cluster;
   - ``"none"``: nothing is done at all; the labels are returned as they are
     (this is the only way a cluster smaller than ``k``, or NOISE, survives).
2. Every cluster smaller than ``k`` is merged into the cluster with the nearest
   centroid, in rounds, until none is left.
3. Optionally (``split_large=True``), each cluster of ``2k`` or more is split
   into ``size // k`` clusters of ``k`` to ``2k - 1`` (fixed-size K-Means inside
   the cluster), which lowers the information loss of a shared surrogate.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from sklearn.utils import check_random_state

from anonfaces.cluster._base import (
    NOISE,
    OUTLIER_POLICIES,
    centroids,
    relabel_consecutive,
)
from anonfaces.errors import BadInputError


def _nearest_rows(A: np.ndarray, B: np.ndarray, *, exclude: np.ndarray | None = None, chunk: int = 2048) -> np.ndarray:
    """Index into B of the nearest row (Euclidean) for each row of A; shape (len(A),).

    ``exclude[i]``, when given, is a row of B that row i of A may not pick (itself).
    """
    out = np.empty(A.shape[0], dtype=np.int64)
    b2 = (B * B).sum(axis=1)
    for start in range(0, A.shape[0], chunk):
        a = A[start : start + chunk]
        d = b2[None, :] - 2.0 * (a @ B.T)  # + |a|^2, the same along each row
        if exclude is not None:
            d[np.arange(a.shape[0]), exclude[start : start + chunk]] = np.inf
        out[start : start + chunk] = np.argmin(d, axis=1)
    return out


def _merge_small(X: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Merge every cluster smaller than k into the nearest-centroid cluster (in rounds)."""
    labels = relabel_consecutive(labels)
    while True:
        m = int(labels.max()) + 1
        sizes = np.bincount(labels, minlength=m)
        small = np.flatnonzero(sizes < k)
        if small.size == 0 or m == 1:
            return labels
        C = centroids(X, labels, m)
        # each small cluster points at its nearest other cluster; follow the links
        target = np.arange(m)
        target[small] = _nearest_rows(C[small], C, exclude=small)
        graph = coo_matrix((np.ones(m), (np.arange(m), target)), shape=(m, m))
        _, comp = connected_components(graph, directed=False)
        labels = relabel_consecutive(comp[labels])


def _split_large(X: np.ndarray, labels: np.ndarray, k: int, rng) -> np.ndarray:
    from anonfaces.cluster._fixed_kmeans import fixed_size_labels

    labels = labels.copy()
    next_label = int(labels.max()) + 1
    for c in np.flatnonzero(np.bincount(labels) >= 2 * k):
        idx = np.flatnonzero(labels == c)
        sub = fixed_size_labels(X[idx], k=k, random_state=rng)
        moved = sub > 0
        labels[idx[moved]] = next_label + sub[moved] - 1
        next_label += int(sub.max())
    return relabel_consecutive(labels)


def enforce_min_size(
    X: np.ndarray,
    labels,
    *,
    k: int,
    outliers: str = "nearest",
    split_large: bool = False,
    random_state=None,
) -> np.ndarray:
    """Return labels of shape (n,) with no NOISE and every cluster of at least ``k``.

    Parameters
    ----------
    X : ndarray of shape (n, dim)
    labels : array-like of shape (n,)
        Raw labels; NOISE (-1) marks points in no cluster.
    k : int
    outliers : {"nearest", "group", "none"}
        ``"none"`` returns the labels unchanged (renumbered), small clusters and
        NOISE included.
    split_large : bool
        Split clusters of ``2k`` or more into clusters of ``k`` to ``2k - 1``.
    random_state : int, RandomState or None
    """
    if outliers not in OUTLIER_POLICIES:
        raise BadInputError(f"outliers={outliers!r} must be one of {', '.join(map(repr, OUTLIER_POLICIES))}")
    labels = np.asarray(labels, dtype=np.int64)
    n = X.shape[0]
    if labels.shape != (n,):
        raise BadInputError(f"labels has shape {labels.shape}; expected ({n},)")
    if (labels < NOISE).any():
        raise BadInputError(f"labels must be >= {NOISE}; got min {labels.min()}")
    if outliers == "none":
        return relabel_consecutive(labels)
    if n < k:
        raise BadInputError(f"n_samples={n} must be >= k={k}")
    rng = check_random_state(random_state)
    labels = relabel_consecutive(labels)
    noise = np.flatnonzero(labels == NOISE)
    if noise.size:
        have_clusters = noise.size < n
        if outliers == "group" or not have_clusters:
            labels = _group_noise(X, labels, noise, k, rng)
        else:
            m = int(labels.max()) + 1
            C = centroids(X, labels, m)
            labels[noise] = _nearest_rows(X[noise], C)
    labels = _merge_small(X, labels, k)
    if split_large:
        labels = _split_large(X, labels, k, rng)
    return labels


def _group_noise(X, labels, noise, k, rng):
    from anonfaces.cluster._fixed_kmeans import fixed_size_labels

    labels = labels.copy()
    next_label = int(labels.max()) + 1 if (labels >= 0).any() else 0
    if noise.size >= k:
        sub = fixed_size_labels(X[noise], k=k, random_state=rng)
        labels[noise] = next_label + sub
    else:  # fewer than k noise points and at least one cluster (n >= k): nearest
        m = int(labels.max()) + 1
        C = centroids(X, labels, m)
        labels[noise] = _nearest_rows(X[noise], C)
    return labels
