"""Scores for a clustering: SSD, information loss, silhouette, sizes, pairwise F, elbows.

All functions take ``X`` of shape (n_faces, dim) and ``labels`` of shape
(n_faces,); faces labelled NOISE (-1) are left out of every score.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from anonfaces.cluster._base import NOISE, centroids, relabel_consecutive
from anonfaces.errors import BadInputError


def _check(X, labels) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=np.float64)
    labels = np.asarray(labels)
    if X.ndim != 2 or labels.shape != (X.shape[0],):
        raise BadInputError(f"X has shape {X.shape} and labels {labels.shape}; expected (n, d) and (n,)")
    keep = labels != NOISE
    return X[keep], relabel_consecutive(labels[keep])


def ssd(X, labels) -> float:
    """Sum of squared distances as the original research defined it.

    For each cluster c: sum over ordered pairs (i, j) of members of
    ``||x_i - x_j||²``, divided by ``|c|``; summed over clusters. Computed
    exactly with ``sum_{i,j} ||x_i - x_j||² = 2 |c| sum_i ||x_i||² - 2 ||sum_i x_i||²``,
    so the total equals twice the within-cluster sum of squares.
    """
    X, labels = _check(X, labels)
    if X.shape[0] == 0:
        return 0.0
    m = int(labels.max()) + 1
    sizes = np.bincount(labels, minlength=m).astype(np.float64)
    sq = np.bincount(labels, weights=np.einsum("ij,ij->i", X, X), minlength=m)
    sums = np.zeros((m, X.shape[1]))
    np.add.at(sums, labels, X)
    pair_sums = 2.0 * sizes * sq - 2.0 * np.einsum("ij,ij->i", sums, sums)
    return float(np.sum(np.maximum(pair_sums, 0.0) / sizes))


def within_cluster_sum_of_squares(X, labels) -> float:
    """Sum over faces of the squared distance to the cluster centroid (k-means inertia)."""
    X, labels = _check(X, labels)
    if X.shape[0] == 0:
        return 0.0
    C = centroids(X, labels)
    diff = X - C[labels]
    return float(np.einsum("ij,ij->", diff, diff))


def information_loss(X, labels) -> float:
    """Mean Euclidean distance from each face to its cluster centroid (its surrogate's seed)."""
    X, labels = _check(X, labels)
    if X.shape[0] == 0:
        return 0.0
    C = centroids(X, labels)
    return float(np.linalg.norm(X - C[labels], axis=1).mean())


def silhouette(X, labels, *, sample_size: int | None = 10000, random_state=0) -> float:
    """Mean silhouette (scikit-learn), on a sample of ``sample_size`` faces when n is larger.

    NaN when there are fewer than 2 clusters or every cluster is one face.
    """
    from sklearn.metrics import silhouette_score

    X, labels = _check(X, labels)
    m = int(labels.max()) + 1 if labels.size else 0
    if m < 2 or m >= X.shape[0]:
        return float("nan")
    if sample_size is not None and X.shape[0] > sample_size:
        return float(silhouette_score(X, labels, sample_size=sample_size, random_state=random_state))
    return float(silhouette_score(X, labels))


def size_histogram(labels) -> dict[int, int]:
    """{cluster size: number of clusters of that size}, sizes ascending (NOISE left out)."""
    labels = np.asarray(labels)
    sizes = Counter(labels[labels != NOISE].tolist()).values()
    return dict(sorted(Counter(sizes).items()))


def distinct_identities(labels, identities) -> np.ndarray:
    """Number of distinct identities in each cluster (clusters renumbered 0..m-1); shape (m,)."""
    labels = np.asarray(labels)
    ids = np.asarray(identities)
    keep = labels != NOISE
    lab = relabel_consecutive(labels[keep])
    if lab.size == 0:
        return np.zeros(0, dtype=np.int64)
    _, idn = np.unique(ids[keep], return_inverse=True)
    width = int(idn.max()) + 1
    joint = np.unique(lab * width + idn.ravel())
    return np.bincount(joint // width, minlength=int(lab.max()) + 1)


def _pairs(counts: np.ndarray) -> float:
    counts = counts.astype(np.float64)
    return float((counts * (counts - 1) / 2).sum())


def pairwise_scores(labels, identities) -> dict[str, float]:
    """Pairwise precision, recall and F-measure of ``labels`` against true ``identities``.

    A pair of faces is a true positive when both share a cluster and an identity;
    precision = TP / pairs sharing a cluster, recall = TP / pairs sharing an
    identity (the way rank-order clustering is judged, Otto et al. 2017).
    NOISE faces count as singletons.
    """
    labels = np.asarray(labels)
    ids = np.asarray(identities)
    if labels.shape != ids.shape:
        raise BadInputError(f"labels {labels.shape} and identities {ids.shape} must have the same shape")
    labels = labels.copy()
    noise = labels == NOISE
    if noise.any():
        labels[noise] = labels.max() + 1 + np.arange(int(noise.sum()))
    _, lab = np.unique(labels, return_inverse=True)
    _, idn = np.unique(ids, return_inverse=True)
    joint = lab.ravel().astype(np.int64) * (idn.max() + 1) + idn.ravel()
    tp = _pairs(np.unique(joint, return_counts=True)[1])
    pred = _pairs(np.bincount(lab.ravel()))
    true = _pairs(np.bincount(idn.ravel()))
    precision = tp / pred if pred else 1.0
    recall = tp / true if true else 1.0
    f = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f_measure": f}


def knee_point(x, y) -> int:
    """Index of the point of a curve farthest from the chord joining its ends (the elbow)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.size < 3:
        return int(x.size - 1) if x.size else 0
    xs = (x - x[0]) / ((x[-1] - x[0]) or 1.0)
    ys = (y - y[0]) / ((y[-1] - y[0]) or 1.0)
    return int(np.argmax(np.abs(ys - xs)))


def kmeans_elbow(X, n_clusters_list, *, random_state=0) -> dict:
    """Inertia of plain K-Means for each number of clusters, and the elbow among them."""
    from sklearn.cluster import KMeans

    X = np.asarray(X, dtype=np.float64)
    ns = [int(c) for c in n_clusters_list]
    inertia = [float(KMeans(n_clusters=c, n_init=1, random_state=random_state).fit(X).inertia_) for c in ns]
    return {"n_clusters": ns, "inertia": inertia, "elbow": ns[knee_point(ns, inertia)]}


def dbscan_eps_elbow(X, *, min_samples: int = 5) -> dict:
    """Sorted distance of each face to its ``min_samples``-th neighbour; the knee is an eps for DBSCAN."""
    from anonfaces.cluster._neighbors import knn

    X = np.asarray(X, dtype=np.float64)
    m = min(min_samples, X.shape[0] - 1)
    if m < 1:
        raise BadInputError(f"need at least 2 faces for an eps elbow; got {X.shape[0]}")
    dist, _ = knn(X, m)
    curve = np.sort(dist[:, -1])
    i = knee_point(np.arange(curve.size), curve)
    return {"k_distance": curve, "eps": float(curve[i])}


def summarize(X, labels, *, identities=None, seconds: float | None = None, silhouette_sample: int | None = 10000) -> dict:
    """One row of scores for a clustering (what the CLI prints)."""
    labels = np.asarray(labels)
    kept = labels[labels != NOISE]
    sizes = np.bincount(relabel_consecutive(kept)) if kept.size else np.zeros(0, dtype=np.int64)
    row = {
        "clusters": int(sizes.size),
        "min_size": int(sizes.min()) if sizes.size else 0,
        "max_size": int(sizes.max()) if sizes.size else 0,
        "noise": int((labels == NOISE).sum()),
        "ssd": ssd(X, labels),
        "info_loss": information_loss(X, labels),
        "silhouette": silhouette(X, labels, sample_size=silhouette_sample),
    }
    if identities is not None:
        distinct = distinct_identities(labels, identities)
        row["min_identities"] = int(distinct.min()) if distinct.size else 0
        row["mean_identities"] = float(distinct.mean()) if distinct.size else 0.0
    if seconds is not None:
        row["seconds"] = float(seconds)
    return row
