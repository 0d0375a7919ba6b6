"""MDAV microaggregation (Maximum Distance to Average Vector; Domingo-Ferrer and Torra).

While at least 3k faces remain: r is the face farthest from the centroid of the
remaining faces, s the face farthest from r; the k faces nearest r form a group,
then the k faces nearest s. With 2k..3k-1 left, the k nearest the face
farthest from the centroid form a group and the rest another; with fewer than
2k left, they form one group. Groups have k members, the last one up to 2k - 1.
Time O(n² d / k).
"""

from __future__ import annotations

import numpy as np

from anonfaces.cluster._base import RANDOM_STATE, BaseKClusterer, K


def _sqdist(X: np.ndarray, x: np.ndarray) -> np.ndarray:
    diff = X - x
    return np.einsum("ij,ij->i", diff, diff)


def mdav_labels(X: np.ndarray, k: int) -> np.ndarray:
    """MDAV groups; labels of shape (n,). Deterministic (ties: lowest index)."""
    n = X.shape[0]
    labels = np.full(n, -1, dtype=np.int64)
    remaining = np.arange(n)
    label = 0

    def take_nearest(center: np.ndarray) -> None:
        nonlocal remaining, label
        d = _sqdist(X[remaining], center)
        pick = np.argsort(d, kind="stable")[:k]
        labels[remaining[pick]] = label
        label += 1
        remaining = np.delete(remaining, pick)

    while remaining.size >= 3 * k:
        c = X[remaining].mean(axis=0)
        r = X[remaining[np.argmax(_sqdist(X[remaining], c))]].copy()
        s = X[remaining[np.argmax(_sqdist(X[remaining], r))]].copy()
        take_nearest(r)
        take_nearest(s)
    if remaining.size >= 2 * k:
        c = X[remaining].mean(axis=0)
        take_nearest(X[remaining[np.argmax(_sqdist(X[remaining], c))]].copy())
    if remaining.size:
        labels[remaining] = label
    return labels


class MDAV(BaseKClusterer):
    """MDAV microaggregation: groups of ``k`` (the last up to ``2k - 1``).

    Parameters
    ----------
    k : int, default=5
    random_state : ignored (MDAV is deterministic); kept for a uniform interface.
    """

    _parameter_constraints = {"k": K, "random_state": RANDOM_STATE}

    def __init__(self, *, k=5, random_state=None):
        self.k = k
        self.random_state = random_state

    def _cluster_units(self, X, rng):
        return mdav_labels(X, self.k)
