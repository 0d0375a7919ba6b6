"""Approximate rank-order clustering (Otto, Wang and Jain, 2017).

Each face a has a neighbour list ``f_a(0), f_a(1), ..., f_a(K-1)`` of its K
nearest faces, with ``f_a(0) = a`` itself. ``O_a(b)`` is the rank of b in a's
list (``K`` when b is not in it). The approximate rank-order distance counts
how many of a's neighbours, up to b, are *not* in b's list::

    d(a, b) = sum_{i=0}^{min(O_a(b), K-1)} [f_a(i) not in list(b)]

    D(a, b) = (d(a, b) + d(b, a)) / min(O_a(b), O_b(a))

It is computed only for pairs where b is in a's list. Pairs with
``D < threshold`` (and, if ``max_distance`` is set, Euclidean distance below it)
are linked, and clusters are the connected components (transitive merging).
Faces linked to nobody are NOISE.
"""

from __future__ import annotations

import numbers

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from anonfaces.cluster._base import (
    N_JOBS,
    NOISE,
    OUTLIERS,
    POSITIVE_REAL,
    RANDOM_STATE,
    BaseKClusterer,
    Interval,
    K,
    Options,
    OutlierHandlingMixin,
    none_or,
)


def neighbour_lists(X: np.ndarray, n_neighbors: int, *, n_jobs=None) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(idx, dist)``, each of shape (n, K) with K = min(n_neighbors, n); column 0 is the face itself."""
    from anonfaces.cluster._neighbors import knn

    n = X.shape[0]
    K_ = min(n_neighbors, n)
    self_col = np.arange(n)[:, None]
    if K_ <= 1:
        return self_col, np.zeros((n, 1))
    dist, idx = knn(X, K_ - 1, n_jobs=n_jobs)  # excludes each point itself
    return np.hstack([self_col, idx]), np.hstack([np.zeros((n, 1)), dist])


def _rank_lookup(idx: np.ndarray):
    """Sorted keys a * n + b for every (a, b in list(a)) and the rank of b in list(a)."""
    n, K_ = idx.shape
    keys = (np.arange(n)[:, None] * n + idx).ravel()
    order = np.argsort(keys, kind="stable")
    ranks = np.tile(np.arange(K_), n)[order]
    return keys[order], ranks


def _lookup(sorted_keys, ranks, query: np.ndarray, missing: int) -> np.ndarray:
    """Rank of each query key, or ``missing`` when absent."""
    pos = np.searchsorted(sorted_keys, query)
    pos = np.minimum(pos, sorted_keys.size - 1)
    found = sorted_keys[pos] == query
    return np.where(found, ranks[pos], missing)


def rank_order_distances(idx: np.ndarray, *, chunk: int | None = None) -> np.ndarray:
    """Approximate rank-order distance D(a, f_a(j)) for every list entry; shape (n, K).

    ``idx`` of shape (n, K) holds the neighbour lists with the face itself in
    column 0. Column 0 of the result is 0 (a face and itself).
    """
    n, K_ = idx.shape
    D = np.zeros((n, K_))
    if K_ <= 1:
        return D
    keys, ranks = _rank_lookup(idx)
    chunk = chunk or max(1, 4_000_000 // (K_ * K_))  # rows per block: a few (r, K, K) arrays
    tri = np.tril(np.ones((K_, K_), dtype=bool))  # tri[j, i] = i <= j
    for start in range(0, n, chunk):
        rows = np.arange(start, min(start + chunk, n))
        A = idx[rows]  # (r, K): a's list
        # d(a, b) for b = f_a(j): how many of f_a(0..j) are missing from list(b)
        q = A[:, :, None] * n + A[:, None, :]  # key (b=f_a(j), f_a(i)), shape (r, K_j, K_i)
        miss_ab = _lookup(keys, ranks, q, K_) == K_
        d_ab = (miss_ab & tri[None]).sum(axis=2)  # (r, K)
        # O_b(a) and d(b, a): how many of f_b(0..O_b(a)) are missing from list(a)
        o_ab = np.broadcast_to(np.arange(K_), A.shape)
        o_ba = _lookup(keys, ranks, A * n + rows[:, None], K_)  # (r, K)
        B = idx[A]  # (r, K_j, K_i): b's list
        q2 = rows[:, None, None] * n + B  # key (a, f_b(i))
        miss_ba = _lookup(keys, ranks, q2, K_) == K_
        upto = np.minimum(o_ba, K_ - 1)
        keep = np.arange(K_)[None, None, :] <= upto[:, :, None]
        d_ba = (miss_ba & keep).sum(axis=2)
        denom = np.minimum(o_ab, o_ba).astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            Dr = (d_ab + d_ba) / denom
        Dr[:, 0] = 0.0
        D[rows] = Dr
    return D


def rank_order_labels(
    X: np.ndarray,
    *,
    n_neighbors: int = 20,
    threshold: float = 1.0,
    max_distance: float | None = None,
    n_jobs=None,
) -> np.ndarray:
    """Connected components of the rank-order graph; faces linked to nobody get NOISE."""
    n = X.shape[0]
    idx, dist = neighbour_lists(X, n_neighbors, n_jobs=n_jobs)
    D = rank_order_distances(idx)
    link = D < threshold
    if max_distance is not None:
        link &= dist < max_distance
    link[:, 0] = False
    a, j = np.nonzero(link)
    graph = coo_matrix((np.ones(a.size), (a, idx[a, j])), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    sizes = np.bincount(comp)
    return np.where(sizes[comp] > 1, comp, NOISE)


class ApproximateRankOrder(OutlierHandlingMixin, BaseKClusterer):
    """Approximate rank-order clustering, then the at-least-k step.

    Parameters
    ----------
    k : int, default=5
    n_neighbors : int, default=20
        Length K of each neighbour list (the face itself included).
    threshold : float, default=1.0
        Link two faces when their rank-order distance is below this.
    max_distance : float, default=None
        Also require the Euclidean distance to be below this (None: no limit).
    outliers : {"nearest", "group", "none"}, default="nearest"
        Faces linked to nobody are the noise.
    split_large : bool, default=True
        As for `DBSCANClusterer`: split clusters of 2k or more units.
    n_jobs : int, default=None
    random_state : int, RandomState or None
        Used by the outlier step only.
    """

    _parameter_constraints = {
        "k": K,
        "n_neighbors": Interval(numbers.Integral, 2),
        "threshold": POSITIVE_REAL,
        "max_distance": none_or(POSITIVE_REAL),
        "outliers": OUTLIERS,
        "split_large": Options((True, False)),
        "n_jobs": N_JOBS,
        "random_state": RANDOM_STATE,
    }

    def __init__(
        self,
        *,
        k=5,
        n_neighbors=20,
        threshold=1.0,
        max_distance=None,
        outliers="nearest",
        split_large=True,
        n_jobs=None,
        random_state=None,
    ):
        self.k = k
        self.n_neighbors = n_neighbors
        self.threshold = threshold
        self.max_distance = max_distance
        self.outliers = outliers
        self.split_large = split_large
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _cluster_units(self, X, rng):
        raw = rank_order_labels(
            X,
            n_neighbors=self.n_neighbors,
            threshold=self.threshold,
            max_distance=self.max_distance,
            n_jobs=self.n_jobs,
        )
        return self._finish(X, raw, rng)
