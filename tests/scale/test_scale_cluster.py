"""The 1,000,000-face pieces on small inputs: the HNSW search, and average linkage merged in vectorised rounds."""

from __future__ import annotations

import numpy as np
import pytest


def _partition(labels) -> set:
    groups: dict = {}
    for i, lab in enumerate(np.asarray(labels).tolist()):
        groups.setdefault(lab, []).append(i)
    return {tuple(g) for g in groups.values()}


def test_hnsw_finds_the_exact_neighbours_of_real_faces(sample_encodings):
    pytest.importorskip("faiss", reason="faiss is not installed (pip install 'anonfaces[scale]')")
    from anonfaces.cluster._neighbors import knn

    rng = np.random.RandomState(0)
    X = np.repeat(sample_encodings.embeddings.astype(np.float64), 12, axis=0)
    X += rng.normal(0, 0.02, X.shape)  # 3,132 faces around the sample's real ones
    d_exact, i_exact = knn(X, 10, method="exact")
    d_hnsw, i_hnsw = knn(X, 10, method="hnsw", n_jobs=2)
    recall = np.mean([np.isin(e, a).mean() for a, e in zip(i_hnsw, i_exact)])
    assert recall > 0.97
    assert np.all(np.diff(d_hnsw, axis=1) >= 0)  # each row sorted
    rows = np.arange(len(X))[:, None]
    assert np.allclose(d_hnsw, np.linalg.norm(X[i_hnsw] - X[rows], axis=2))  # exact float64 distances of the pairs found
    assert not (i_hnsw == rows).any()


def test_mean_distances_are_the_exact_means_over_member_pairs():
    from anonfaces.cluster._people import _mean_distances

    rng = np.random.RandomState(1)
    X = rng.normal(size=(60, 8))
    labels = rng.randint(0, 9, size=60)
    _, labels = np.unique(labels, return_inverse=True)
    size = np.bincount(labels)
    pa, pb = np.array([0, 1, 2, 3, 0]), np.array([1, 4, 5, 8, 8])
    got = _mean_distances(X, labels, size, pa, pb, budget=7)  # small blocks: the block seams are exercised
    for g, p, q in zip(got, pa, pb):
        P, Q = X[labels == p], X[labels == q]
        assert g == pytest.approx(np.linalg.norm(P[:, None] - Q[None], axis=2).mean())


def test_rounds_give_the_heap_loops_people_on_real_faces(sample_encodings):
    """The vectorised rounds and the one-merge-at-a-time heap: the same pseudo-identities on the sample's real faces."""
    from anonfaces.cluster._people import graph_average_linkage

    X = sample_encodings.embeddings.astype(np.float64)
    for threshold in (0.45, 0.55, 0.65):
        heap = graph_average_linkage(X, threshold=threshold, engine="heap")
        rounds = graph_average_linkage(X, threshold=threshold, engine="rounds")
        assert _partition(heap) == _partition(rounds), threshold
        assert 1 < rounds.max() + 1 < len(X)  # something merged, not everything


def test_rounds_agree_with_the_heap_on_many_noisy_faces(sample_encodings):
    from sklearn.metrics import adjusted_rand_score

    from anonfaces.cluster._people import graph_average_linkage

    rng = np.random.RandomState(2)
    base = sample_encodings.embeddings.astype(np.float64)
    X = np.concatenate([base + rng.normal(0, 0.03, base.shape) for _ in range(8)])  # 2,088 faces, 8 per real photo
    heap = graph_average_linkage(X, threshold=0.55, engine="heap")
    rounds = graph_average_linkage(X, threshold=0.55, engine="rounds")
    assert adjusted_rand_score(heap, rounds) > 0.99
    with pytest.raises(Exception, match="engine"):
        graph_average_linkage(X, threshold=0.55, engine="fast")
