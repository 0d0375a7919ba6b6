"""One-pass k-means for k-anonymity (OKA; Lin and Wei, 2008).

1. Clustering stage: ``n // k`` centres are random faces; one pass over the faces
   in random order assigns each to the nearest centre and moves that centre to
   the mean of its members.
2. Adjustment stage: every cluster larger than k keeps its k faces nearest its
   centroid and gives up the rest to a pool; every cluster smaller than k takes
   the pool faces nearest its centroid until it has k (the pool is always large
   enough: there are n // k clusters); what is left of the pool joins the
   nearest cluster. Sizes: k plus the final leftovers.
"""

from __future__ import annotations

import numpy as np

from anonfaces.cluster._base import RANDOM_STATE, BaseKClusterer, K
from anonfaces.cluster._min_size import _nearest_rows


def oka_labels(X: np.ndarray, k: int, rng: np.random.RandomState) -> np.ndarray:
    """OKA groups; labels of shape (n,)."""
    n = X.shape[0]
    m = n // k
    C = X[rng.choice(n, m, replace=False)].copy()
    counts = np.zeros(m)
    labels = np.empty(n, dtype=np.int64)
    c2 = (C * C).sum(axis=1)
    for i in rng.permutation(n):
        x = X[i]
        j = int(np.argmin(c2 - 2.0 * (C @ x)))
        labels[i] = j
        counts[j] += 1
        C[j] += (x - C[j]) / (counts[j] + 1)  # the initial face counts as one member
        c2[j] = C[j] @ C[j]
    # adjustment
    pool = []
    for j in range(m):
        members = np.flatnonzero(labels == j)
        if members.size > k:
            centre = X[members].mean(axis=0)
            d = ((X[members] - centre) ** 2).sum(axis=1)
            extra = members[np.argsort(d, kind="stable")[k:]]
            labels[extra] = -1
            pool.extend(extra.tolist())
    pool = np.asarray(pool, dtype=np.int64)
    sizes = np.bincount(labels[labels >= 0], minlength=m)
    for j in np.flatnonzero(sizes < k):
        members = np.flatnonzero(labels == j)
        centre = X[members].mean(axis=0) if members.size else C[j]
        need = k - members.size
        d = ((X[pool] - centre) ** 2).sum(axis=1)
        take = np.argsort(d, kind="stable")[:need]
        labels[pool[take]] = j
        pool = np.delete(pool, take)
    if pool.size:
        cent = np.zeros((m, X.shape[1]))
        np.add.at(cent, labels[labels >= 0], X[labels >= 0])
        cent /= np.bincount(labels[labels >= 0], minlength=m)[:, None]
        labels[pool] = _nearest_rows(X[pool], cent)
    return labels


class OneKMeans(BaseKClusterer):
    """OKA: one-pass k-means with an adjustment stage; ``n // k`` clusters of at least ``k``.

    Parameters
    ----------
    k : int, default=5
    random_state : int, RandomState or None
    """

    _parameter_constraints = {"k": K, "random_state": RANDOM_STATE}

    def __init__(self, *, k=5, random_state=None):
        self.k = k
        self.random_state = random_state

    def _cluster_units(self, X, rng):
        return oka_labels(X, self.k, rng)
