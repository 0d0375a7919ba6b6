"""Fixed-size K-Means: n // k clusters of k to 2k - 1 members.

Small inputs go straight to `k-means-constrained` (Lloyd iterations whose
assignment step is a minimum-cost flow with size bounds). Its time and memory
grow about as N², so large inputs use a two-level method:

1. *Balanced recursive bisection.* A node of ``m`` points is split by 2-means
   (fitted on a sample); points are ordered by how much closer they are to one
   centre than the other, and the first ``q_left * k`` go left, the rest right,
   where ``q_left`` is the natural 2-means split rounded to a multiple of ``k``
   (kept within 10–90 %). Every part therefore holds a multiple of ``k`` points
   except the one part that receives the remainder ``n mod k``, so the total
   number of clusters is still exactly ``n // k``.
2. *Exact constrained k-means in each leaf* (at most ``leaf_size`` points), run
   in parallel over ``n_jobs`` processes.

Cost: O(n d log(n / leaf_size)) for the tree plus O(n / leaf_size) small solves.
"""

from __future__ import annotations

import logging
import numbers

import numpy as np
from joblib import Parallel, delayed
from sklearn.cluster import KMeans

from anonfaces.cluster._base import (
    K,
    N_JOBS,
    POSITIVE_INT,
    RANDOM_STATE,
    BaseKClusterer,
    Interval,
    Options,
)

logger = logging.getLogger(__name__)

#: Above this many samples ``method="auto"`` switches from exact to partition.
EXACT_MAX_SAMPLES = 2000


def _exact(X: np.ndarray, k: int, n_init: int, max_iter: int, seed: int) -> np.ndarray:
    """k-means-constrained with n // k clusters of size k..2k-1; labels of shape (n,)."""
    n = X.shape[0]
    n_clusters = n // k
    if n_clusters <= 1:
        return np.zeros(n, dtype=np.int64)
    from k_means_constrained import KMeansConstrained

    model = KMeansConstrained(
        n_clusters=n_clusters,
        size_min=k,
        size_max=2 * k - 1,
        n_init=n_init,
        max_iter=max_iter,
        random_state=seed,
    )
    return model.fit_predict(np.array(X, dtype=np.float64, copy=True)).astype(np.int64)


def _split_scores(X: np.ndarray, rng: np.random.RandomState, sample_size: int = 4000) -> np.ndarray:
    """Signed score: negative = closer to the first 2-means centre. Shape (m,)."""
    m = X.shape[0]
    sample = X if m <= sample_size else X[rng.choice(m, sample_size, replace=False)]
    km = KMeans(n_clusters=2, n_init=1, max_iter=50, random_state=rng.randint(2**31 - 1))
    c = km.fit(sample).cluster_centers_
    w = c[1] - c[0]
    if not np.any(w):  # identical centres (duplicate points): split along any axis
        w = X.std(axis=0)
    # |x-c0|^2 - |x-c1|^2 = 2 x.(c1-c0) + |c0|^2 - |c1|^2  -> negative means "closer to c0"
    return -(2 * X @ w) + (c[1] @ c[1] - c[0] @ c[0])


def balanced_bisection(X: np.ndarray, *, k: int, leaf_size: int, random_state) -> list[np.ndarray]:
    """Split the rows of ``X`` (n, d) into leaves of at most ``leaf_size`` rows.

    Every leaf size is a multiple of ``k`` except one, which also holds ``n mod k``
    extra rows. Returns a list of index arrays.
    """
    rng = np.random.RandomState(random_state) if not isinstance(random_state, np.random.RandomState) else random_state
    leaf_size = max(leaf_size, 2 * k)
    n = X.shape[0]
    leaves: list[np.ndarray] = []
    stack = [np.arange(n)]
    while stack:
        idx = stack.pop()
        m = idx.shape[0]
        q = m // k
        if m <= leaf_size or q < 2:
            leaves.append(idx)
            continue
        scores = _split_scores(X[idx], rng)
        natural = int((scores < 0).sum())
        q_left = int(np.clip(round(natural / k), max(1, int(0.1 * q)), max(1, min(q - 1, int(np.ceil(0.9 * q))))))
        cut = q_left * k
        order = np.argpartition(scores, cut - 1) if cut < m else np.arange(m)
        stack.append(idx[order[cut:]])
        stack.append(idx[order[:cut]])
    return leaves


def fixed_size_labels(
    X: np.ndarray,
    *,
    k: int,
    method: str = "auto",
    leaf_size: int = 1000,
    n_init: int = 3,
    max_iter: int = 300,
    n_jobs: int | None = None,
    random_state=None,
) -> np.ndarray:
    """Labels of shape (n,) for ``n // k`` clusters of ``k`` to ``2k - 1`` rows of ``X``."""
    rng = random_state if isinstance(random_state, np.random.RandomState) else np.random.RandomState(random_state)
    n = X.shape[0]
    if method == "auto":
        method = "exact" if n <= EXACT_MAX_SAMPLES else "partition"
    if method == "exact" or n <= leaf_size:
        return _exact(X, k, n_init, max_iter, rng.randint(2**31 - 1))
    leaves = balanced_bisection(X, k=k, leaf_size=leaf_size, random_state=rng)
    seeds = rng.randint(2**31 - 1, size=len(leaves))
    logger.info("fixed-kmeans: %d points -> %d leaves of <= %d", n, len(leaves), leaf_size)
    parts = Parallel(n_jobs=n_jobs or 1)(
        delayed(_exact)(X[idx], k, n_init, max_iter, int(s)) for idx, s in zip(leaves, seeds)
    )
    labels = np.empty(n, dtype=np.int64)
    offset = 0
    for idx, lab in zip(leaves, parts):
        labels[idx] = lab + offset
        offset += int(lab.max()) + 1
    return labels


class FixedSizeKMeans(BaseKClusterer):
    """Fixed-size K-Means: ``n // k`` clusters of ``k`` to ``2k - 1`` units each.

    Parameters
    ----------
    k : int, default=5
        Minimum cluster size (units: photos, or identities when given to ``fit``).
    method : {"auto", "exact", "partition"}, default="auto"
        ``exact`` runs `k-means-constrained` on all data (time ~ N²);
        ``partition`` runs it inside leaves of a balanced bisection tree;
        ``auto`` picks ``exact`` up to 2,000 units.
    leaf_size : int, default=1000
        Largest leaf of the bisection tree (``partition`` only).
    n_init : int, default=3
        Restarts of each constrained k-means solve.
    max_iter : int, default=300
    n_jobs : int, default=None
        Processes for the leaf solves (None = 1, -1 = all cores).
    random_state : int, RandomState or None
    """

    _parameter_constraints = {
        "k": K,
        "method": Options(("auto", "exact", "partition")),
        "leaf_size": Interval(numbers.Integral, 2),
        "n_init": POSITIVE_INT,
        "max_iter": POSITIVE_INT,
        "n_jobs": N_JOBS,
        "random_state": RANDOM_STATE,
    }

    def __init__(
        self, *, k=5, method="auto", leaf_size=1000, n_init=3, max_iter=300, n_jobs=None, random_state=None
    ):
        self.k = k
        self.method = method
        self.leaf_size = leaf_size
        self.n_init = n_init
        self.max_iter = max_iter
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _cluster_units(self, X, rng):
        return fixed_size_labels(
            X,
            k=self.k,
            method=self.method,
            leaf_size=self.leaf_size,
            n_init=self.n_init,
            max_iter=self.max_iter,
            n_jobs=self.n_jobs,
            random_state=rng,
        )
