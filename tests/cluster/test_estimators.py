"""scikit-learn conventions and validation messages, for every registered clusterer."""

import numpy as np
import pytest
from sklearn.base import clone

from anonfaces.cluster import (
    CLUSTERERS,
    FixedSizeKMeans,
    HDBSCANClusterer,
    make_clusterer,
)
from anonfaces.errors import BadInputError

NAMES = CLUSTERERS.names()


@pytest.mark.parametrize("name", NAMES)
def test_settings_are_keyword_only_and_stored_unchanged(name):
    cls = CLUSTERERS.get(name)
    with pytest.raises(TypeError):
        cls(3)
    est = cls(k=3, random_state=7)
    params = est.get_params()
    assert params["k"] == 3 and params["random_state"] == 7
    assert clone(est).get_params() == params
    assert est.registry_name == name


@pytest.mark.parametrize("name", NAMES)
def test_fit_returns_self_and_sets_labels(name):
    X = np.random.RandomState(0).randn(30, 4)
    est = make_clusterer(name, k=3, random_state=0)
    assert est.fit(X) is est
    assert est.labels_.shape == (30,)
    assert np.array_equal(est.fit_predict(X), est.labels_)
    assert est.n_clusters_ == np.unique(est.labels_).size


@pytest.mark.parametrize("name", NAMES)
def test_data_validation_shows_values(name):
    est = make_clusterer(name, k=5)
    with pytest.raises(BadInputError, match=r"n_samples=3 must be >= k=5"):
        est.fit(np.zeros((3, 2)))
    X = np.zeros((8, 2))
    X[2, 1] = np.nan
    with pytest.raises(BadInputError, match="non-finite .* in 1 of 8 rows"):
        est.fit(X)
    with pytest.raises(BadInputError, match=r"2-D .* got shape \(8,\)"):
        est.fit(np.zeros(8))
    with pytest.raises(BadInputError, match=r"n_identities=2 must be >= k=5"):
        est.fit(np.zeros((8, 2)), identities=["a"] * 4 + ["b"] * 4)
    with pytest.raises(BadInputError, match=r"one entry per face.*shape \(3,\) for 8 faces"):
        est.fit(np.zeros((8, 2)), identities=["a", "b", "c"])


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("k", [0, -2, 2.5, "3", True])
def test_bad_k_refused_with_value(name, k):
    with pytest.raises(BadInputError, match=f"k={k!r}"):
        CLUSTERERS.get(name)(k=k).fit(np.zeros((10, 2)))


def test_bad_settings_refused_with_value():
    with pytest.raises(BadInputError, match="method='fast'"):
        FixedSizeKMeans(method="fast").fit(np.zeros((10, 2)))
    with pytest.raises(BadInputError, match="outliers='drop'"):
        make_clusterer("dbscan", k=2, outliers="drop").fit(np.zeros((10, 2)))
    with pytest.raises(BadInputError, match="eps=-1"):
        make_clusterer("dbscan", k=2, params={"eps": -1}).fit(np.zeros((10, 2)))
    with pytest.raises(BadInputError, match="n_components=0"):
        HDBSCANClusterer(k=2, n_components=0).fit(np.random.RandomState(0).randn(10, 60))
    with pytest.raises(BadInputError, match="unknown param.*bogus.*valid: "):
        make_clusterer("aroc", k=2, params={"bogus": 1})
    with pytest.raises(BadInputError, match="unknown clusterer 'nope'; valid names: aroc"):
        make_clusterer("nope", k=2)


def test_fixed_kmeans_sizes_and_partition_quality():
    rng = np.random.RandomState(0)
    X = np.vstack([rng.randn(100, 8) + c for c in rng.randn(10, 8) * 6])
    exact = FixedSizeKMeans(k=10, method="exact", random_state=0).fit(X).labels_
    part = FixedSizeKMeans(k=10, method="partition", leaf_size=200, random_state=0).fit(X).labels_
    from anonfaces.cluster.metrics import ssd

    for labels in (exact, part):
        sizes = np.bincount(labels)
        assert sizes.size == 100 and sizes.min() >= 10 and sizes.max() <= 19
    assert ssd(X, part) <= 1.10 * ssd(X, exact)


def test_balanced_bisection_leaf_sizes():
    from anonfaces.cluster._fixed_kmeans import balanced_bisection

    X = np.random.RandomState(0).randn(1003, 5)
    leaves = balanced_bisection(X, k=10, leaf_size=100, random_state=0)
    sizes = sorted(len(leaf) for leaf in leaves)
    assert sum(sizes) == 1003 and max(sizes) <= 100
    assert sum(s % 10 for s in sizes) == 3  # only one leaf carries the remainder
    assert np.array_equal(np.sort(np.concatenate(leaves)), np.arange(1003))


def test_hdbscan_reduces_high_dimensional_data():
    rng = np.random.RandomState(0)
    X = np.vstack([rng.randn(40, 128) * 0.05 + c for c in rng.randn(3, 128)])
    est = HDBSCANClusterer(k=5, split_large=False, random_state=0)
    assert est._reduced(X, np.random.RandomState(0)).shape == (120, 8)
    labels = est.fit(X).labels_
    assert np.unique(labels).size == 3


@pytest.mark.parametrize("name", ["aroc", "dbscan", "hdbscan", "optics"])
def test_density_methods_split_large_clusters_by_default(name):
    # two tight, distant blobs of 30: every algorithm finds them; by default each is
    # split into clusters of k..2k-1, with split_large=False they are kept whole
    rng = np.random.RandomState(1)
    X = np.vstack([rng.randn(30, 16) * 0.01, rng.randn(30, 16) * 0.01 + 5.0])
    sizes = np.bincount(CLUSTERERS[name](k=5, random_state=0).fit(X).labels_)
    assert sizes.min() >= 5 and sizes.max() <= 9 and sizes.size == 12
    kept = np.bincount(CLUSTERERS[name](k=5, split_large=False, random_state=0).fit(X).labels_)
    assert kept.tolist() == [30, 30]
