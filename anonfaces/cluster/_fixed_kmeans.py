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
    N_JOBS,
    POSITIVE_INT,
    RANDOM_STATE,
    BaseKClusterer,
    Interval,
    K,
    Options,
)

logger = logging.getLogger(__name__)

#: Above this many samples ``method="auto"`` switches from exact to partition.
EXACT_MAX_SAMPLES = 2000
#: ``leaf_size="auto"``: leaves of 4,000 up to this many samples, 1,000 above. A leaf
#: solve costs about m^2..m^3 (linear assignment), so big leaves give a lower SSD
#: but only small ones keep 100,000 faces under a minute on two cores.
BIG_LEAVES_MAX_SAMPLES = 50000


def _auto_leaf_size(n: int) -> int:
    return 4000 if n <= BIG_LEAVES_MAX_SAMPLES else 1000


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


def _constrained_lloyd(X: np.ndarray, k: int, n_init: int, max_iter: int, seed: int) -> np.ndarray:
    """Constrained k-means for one leaf: m // k clusters of k..2k-1; labels of shape (m,).

    k-means++ seeding, then Lloyd iterations whose assignment step is solved exactly
    as a linear assignment onto slots: each cluster has k mandatory slots (cost
    lowered by a constant larger than any distance gap, so all get filled) and
    ``min(k - 1, m mod k)`` optional ones (enough for any feasible sizes, and
    none when k divides m). Best of ``n_init`` restarts by within-cluster sum of squares.
    """
    from scipy.optimize import linear_sum_assignment
    from sklearn.cluster import kmeans_plusplus

    m = X.shape[0]
    C = m // k
    if C <= 1:
        return np.zeros(m, dtype=np.int64)
    extra = min(k - 1, m - C * k)
    rng = np.random.RandomState(seed)
    x2 = np.einsum("ij,ij->i", X, X)
    best, best_cost = None, np.inf
    for _ in range(n_init):
        centres, _ = kmeans_plusplus(X, C, random_state=rng.randint(2**31 - 1))
        labels = None
        for _ in range(max_iter):
            d = np.maximum(x2[:, None] - 2.0 * X @ centres.T + np.einsum("ij,ij->i", centres, centres)[None, :], 0.0)
            big = d.max() - d.min() + 1.0
            cost = np.repeat(d - big, k, axis=1)
            if extra:
                cost = np.concatenate([cost, np.repeat(d, extra, axis=1)], axis=1)
            _, slot = linear_sum_assignment(cost)
            new = np.where(slot < C * k, slot // k, (slot - C * k) // max(extra, 1))
            if labels is not None and np.array_equal(new, labels):
                break
            labels = new
            sums = np.zeros_like(centres)
            np.add.at(sums, labels, X)
            centres = sums / np.bincount(labels, minlength=C)[:, None]
        total = float(((X - centres[labels]) ** 2).sum())
        if total < best_cost:
            best, best_cost = labels, total
    return best.astype(np.int64)


def pairwise_refine(X: np.ndarray, labels: np.ndarray, *, n_neighbors: int = 6, sweeps: int = 2) -> np.ndarray:
    """Lower the within-cluster sum of squares while keeping every cluster's size.

    For each cluster A and each of its ``n_neighbors`` nearest clusters B (by
    centroid), the members of A and B are re-split with sizes kept: ordered by
    ``|x - c_A|² - |x - c_B|²``, the first ``|A|`` go to A (the optimal split for
    those centres), then both centroids move. Each step can only lower the
    objective, and it works across the leaves of the bisection tree, which
    repairs the seams between them. Labels of shape (n,).
    """
    from anonfaces.cluster._neighbors import knn

    labels = labels.copy()
    m = int(labels.max()) + 1
    if m < 2:
        return labels
    order = np.argsort(labels, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(labels, minlength=m))])
    members = [order[bounds[c] : bounds[c + 1]].copy() for c in range(m)]
    centres = np.stack([X[idx].mean(axis=0) for idx in members])
    for _ in range(sweeps):
        _, neigh = knn(centres, min(n_neighbors, m - 1))
        moved = 0
        for a in range(m):
            for b in neigh[a]:
                idx = np.concatenate([members[a], members[b]])
                P = X[idx]
                w = centres[b] - centres[a]
                score = P @ w  # |x-cA|^2 - |x-cB|^2 = 2 x.(cB-cA) + |cA|^2 - |cB|^2 : same order
                na = members[a].size
                part = np.argpartition(score, na - 1)
                new_a, new_b = idx[part[:na]], idx[part[na:]]
                if not np.array_equal(np.sort(new_a), np.sort(members[a])):
                    moved += 1
                    members[a], members[b] = new_a, new_b
                    centres[a] = X[new_a].mean(axis=0)
                    centres[b] = X[new_b].mean(axis=0)
        if moved == 0:
            break
    for c, idx in enumerate(members):
        labels[idx] = c
    return labels


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
    leaf_size: int | str = "auto",
    n_init: int = 1,
    max_iter: int = 50,
    refine_sweeps: int = 3,
    n_jobs: int | None = None,
    random_state=None,
) -> np.ndarray:
    """Labels of shape (n,) for ``n // k`` clusters of ``k`` to ``2k - 1`` rows of ``X``."""
    rng = random_state if isinstance(random_state, np.random.RandomState) else np.random.RandomState(random_state)
    n = X.shape[0]
    if method == "auto":
        method = "exact" if n <= EXACT_MAX_SAMPLES else "partition"
    if leaf_size == "auto":
        leaf_size = _auto_leaf_size(n)
    if method == "exact":
        labels = _exact(X, k, n_init, max_iter, rng.randint(2**31 - 1))
    else:
        leaves = [np.arange(n)] if n <= leaf_size else balanced_bisection(X, k=k, leaf_size=leaf_size, random_state=rng)
        seeds = rng.randint(2**31 - 1, size=len(leaves))
        logger.info("fixed-kmeans: %d points -> %d leaves of <= %d", n, len(leaves), leaf_size)
        jobs = 1 if len(leaves) == 1 else (n_jobs or 1)
        parts = Parallel(n_jobs=jobs)(
            delayed(_constrained_lloyd)(X[idx], k, n_init, max_iter, int(s)) for idx, s in zip(leaves, seeds)
        )
        labels = np.empty(n, dtype=np.int64)
        offset = 0
        for idx, lab in zip(leaves, parts):
            labels[idx] = lab + offset
            offset += int(lab.max()) + 1
    if refine_sweeps:
        labels = pairwise_refine(X, labels, sweeps=refine_sweeps)
    return labels


class _LeafSize:
    def check(self, name, value):
        if value != "auto":
            Interval(numbers.Integral, 2).check(name, value)


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
    leaf_size : int or "auto", default="auto"
        Largest leaf of the bisection tree (``partition`` only); "auto" is 4,000
        up to 50,000 units and 1,000 above.
    n_init : int, default=1
        Restarts of each constrained k-means solve (``exact``: of k-means-constrained;
        ``partition``: of each leaf).
    max_iter : int, default=50
    refine_sweeps : int, default=3
        ``partition`` only: sweeps of `pairwise_refine` over neighbouring clusters
        after the leaves are solved (0 = none).
    n_jobs : int, default=None
        Processes for the leaf solves (None = 1, -1 = all cores).
    random_state : int, RandomState or None
    """

    _parameter_constraints = {
        "k": K,
        "method": Options(("auto", "exact", "partition")),
        "leaf_size": _LeafSize(),
        "n_init": POSITIVE_INT,
        "max_iter": POSITIVE_INT,
        "refine_sweeps": Interval(numbers.Integral, 0),
        "n_jobs": N_JOBS,
        "random_state": RANDOM_STATE,
    }

    def __init__(
        self,
        *,
        k=5,
        method="auto",
        leaf_size="auto",
        n_init=1,
        max_iter=50,
        refine_sweeps=3,
        n_jobs=None,
        random_state=None,
    ):
        self.k = k
        self.method = method
        self.leaf_size = leaf_size
        self.n_init = n_init
        self.max_iter = max_iter
        self.refine_sweeps = refine_sweeps
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
            refine_sweeps=self.refine_sweeps,
            n_jobs=self.n_jobs,
            random_state=rng,
        )
