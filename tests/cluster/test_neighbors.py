"""`knn`: the nearest-neighbour search every clusterer uses (faiss or scikit-learn)."""

import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors, kneighbors_graph

from anonfaces.cluster import _neighbors
from anonfaces.cluster._neighbors import have_faiss, knn, knn_graph
from anonfaces.errors import BadInputError

BACKENDS = ["sklearn", pytest.param("faiss", marks=pytest.mark.skipif(not have_faiss(), reason="faiss not installed"))]


def faces(n=600, d=128, people=60, seed=0):
    """Embedding-like data: people's means ~ N(0, 0.07²) per dimension, photos around them."""
    rng = np.random.RandomState(seed)
    means = rng.normal(0, 0.07, size=(people, d))
    return means[rng.randint(people, size=n)] + rng.normal(0, 0.03, size=(n, d))


@pytest.mark.parametrize("backend", BACKENDS)
def test_equal_to_scikit_learn(backend):
    X = faces()
    dist, idx = knn(X, 10, backend=backend)
    ref_dist, ref_idx = NearestNeighbors(n_neighbors=10).fit(X).kneighbors()
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(dist, ref_dist, rtol=1e-6, atol=1e-7)
    assert dist.dtype == np.float64 and idx.shape == (600, 10)
    # neighbours of other points: the point itself is not left out
    Q = faces(n=40, seed=1)
    dist, idx = knn(X, 7, queries=Q, backend=backend)
    ref_dist, ref_idx = NearestNeighbors(n_neighbors=7).fit(X).kneighbors(Q)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(dist, ref_dist, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("backend", BACKENDS)
def test_hand_made_case_and_duplicates(backend):
    X = np.array([[0.0], [1.0], [3.0], [7.0], [7.0]])
    dist, idx = knn(X, 2, backend=backend)
    np.testing.assert_array_equal(idx[:3], [[1, 2], [0, 2], [1, 0]])
    np.testing.assert_allclose(dist[:3], [[1, 3], [1, 2], [2, 3]])
    # two equal points: each is the other's nearest, never itself
    assert idx[3, 0] == 4 and idx[4, 0] == 3 and dist[3, 0] == dist[4, 0] == 0
    assert not (idx == np.arange(5)[:, None]).any()


def test_input_not_modified_and_bad_arguments():
    X = faces(50)
    before = X.copy()
    knn(X, 3)
    np.testing.assert_array_equal(X, before)
    with pytest.raises(BadInputError, match="k=50"):
        knn(X, 50)
    with pytest.raises(BadInputError, match="method"):
        knn(X, 3, method="annoy")
    with pytest.raises(BadInputError, match="queries"):
        knn(X, 3, queries=np.zeros((2, 5)))


def test_graph_equals_scikit_learns():
    X = faces(300)
    ours = knn_graph(X, 6)
    ref = kneighbors_graph(X, 6, include_self=False)
    assert (ours != ref).nnz == 0


@pytest.mark.skipif(not have_faiss(), reason="faiss not installed")
def test_ivf_index_finds_nearly_all_true_neighbours(monkeypatch):
    """Above the exact threshold the IVF index is used; on clustered data it misses few neighbours."""
    X = faces(n=20000, people=2000, seed=2)
    monkeypatch.setattr(_neighbors, "EXACT_MAX_SAMPLES", 5000)
    Q = X[:500]
    dist, idx = knn(X, 10, queries=Q)
    _, ref_idx = knn(X, 10, queries=Q, method="exact")
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(idx, ref_idx)])
    assert recall >= 0.95, recall
    # the distances returned are true distances of the pairs returned
    np.testing.assert_allclose(dist, np.linalg.norm(X[idx] - Q[:, None], axis=2), rtol=1e-9)
    assert np.all(np.diff(dist, axis=1) >= 0)
