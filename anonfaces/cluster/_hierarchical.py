"""Hierarchical fixed-size partition: a Ward tree, peeled into clusters of exactly k.

The Ward linkage tree is walked bottom-up in merge order. Each node carries its
members not yet in a cluster; as soon as a node holds k or more of them, the k
nearest their centroid are peeled off as one cluster and the rest (fewer than
k) move up to the parent. The fewer than k faces left at the root each join the
cluster whose centroid is nearest. Clusters have k members, plus at most k - 1
leftovers in total.

Ward linkage needs O(n²) memory; above ``connectivity_above`` faces the tree is
built on a k-nearest-neighbour connectivity graph instead (scikit-learn's
`ward_tree`), which keeps memory linear.
"""

from __future__ import annotations

import numbers

import numpy as np

from anonfaces.cluster._base import RANDOM_STATE, BaseKClusterer, Interval, K
from anonfaces.cluster._min_size import _nearest_rows


def _ward_children(X: np.ndarray, connectivity_above: int, n_neighbors: int) -> np.ndarray:
    """Merges of the Ward tree, shape (n - 1, 2); node ids >= n are earlier merges."""
    n = X.shape[0]
    if n <= connectivity_above:
        from scipy.cluster.hierarchy import linkage

        Z = linkage(X, method="ward")
        return Z[:, :2].astype(np.int64)
    import warnings

    from sklearn.cluster import ward_tree

    from anonfaces.cluster._neighbors import knn_graph

    conn = knn_graph(X, min(n_neighbors, n - 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "the number of connected components ... is > 1": it completes them
        children, *_ = ward_tree(X, connectivity=conn)
    return np.asarray(children, dtype=np.int64)


def peel_labels(X: np.ndarray, children: np.ndarray, k: int) -> np.ndarray:
    """Peel clusters of exactly k off a merge tree; labels of shape (n,)."""
    n = X.shape[0]
    labels = np.full(n, -1, dtype=np.int64)
    if n < 2 * k:
        labels[:] = 0
        return labels
    pending: dict[int, list[int]] = {}
    label = 0
    last = None
    for step, (a, b) in enumerate(children):
        node = n + step
        members = pending.pop(int(a), [int(a)] if a < n else []) + pending.pop(int(b), [int(b)] if b < n else [])
        if len(members) >= k:
            idx = np.asarray(members)
            centre = X[idx].mean(axis=0)
            order = np.argsort(((X[idx] - centre) ** 2).sum(axis=1), kind="stable")
            labels[idx[order[:k]]] = label
            label += 1
            members = idx[order[k:]].tolist()
        pending[node] = members
        last = node
    rest = np.asarray(pending.get(last, []), dtype=np.int64)
    if rest.size:
        cent = np.zeros((label, X.shape[1]))
        np.add.at(cent, labels[labels >= 0], X[labels >= 0])
        cent /= np.bincount(labels[labels >= 0], minlength=label)[:, None]
        labels[rest] = _nearest_rows(X[rest], cent)
    return labels


class HierarchicalFixedSize(BaseKClusterer):
    """Ward tree peeled into clusters of ``k`` (plus the leftovers).

    Parameters
    ----------
    k : int, default=5
    connectivity_above : int, default=20000
        Above this many units, build the tree on a kNN graph (memory linear in n).
    n_neighbors : int, default=10
        Neighbours in that graph.
    random_state : ignored (deterministic); kept for a uniform interface.
    """

    _parameter_constraints = {
        "k": K,
        "connectivity_above": Interval(numbers.Integral, 2),
        "n_neighbors": Interval(numbers.Integral, 1),
        "random_state": RANDOM_STATE,
    }

    def __init__(self, *, k=5, connectivity_above=20000, n_neighbors=10, random_state=None):
        self.k = k
        self.connectivity_above = connectivity_above
        self.n_neighbors = n_neighbors
        self.random_state = random_state

    def _cluster_units(self, X, rng):
        if X.shape[0] < 2 * self.k:
            return np.zeros(X.shape[0], dtype=np.int64)
        children = _ward_children(X, self.connectivity_above, self.n_neighbors)
        return peel_labels(X, children, self.k)
