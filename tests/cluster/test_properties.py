"""Invariants of every clusterer on hypothesis-generated data.

For any data of n >= k faces and any k: every face is labelled, no label is
negative, every cluster has at least k members; with identities, at least k
distinct identities per cluster and each identity in exactly one cluster; the
input is not modified; the same random_state gives the same labels.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anonfaces.cluster import CLUSTERERS, make_clusterer

# (algo, extra params): every registered algorithm, plus the variants that take
# other code paths (partition method, noise grouping, no splitting, no PCA, ...).
CONFIGS = [(name, {}) for name in CLUSTERERS.names()] + [
    ("fixed-kmeans", {"method": "partition", "leaf_size": 6}),
    ("aroc", {"n_neighbors": 4, "threshold": 3.0, "split_large": False}),
    ("aroc", {"max_distance": 0.5}),
    ("dbscan", {"eps": 2.0, "min_samples": 2}),
    ("hdbscan", {"n_components": 2}),
    ("hdbscan", {"split_large": False}),
    ("dbscan", {"split_large": False}),
    ("optics", {"min_samples": 2}),
    ("hierarchical", {"connectivity_above": 10, "n_neighbors": 3}),
]
OUTLIER_CONFIGS = [("aroc", {}), ("dbscan", {"eps": 1.0}), ("hdbscan", {}), ("optics", {})]
# scikit-learn's OPTICS costs about 0.3 s per fit even on 40 points: fewer examples for it
SLOW = {"optics"}


@st.composite
def problems(draw, with_identities: bool):
    """(X, k, identities or None): small data with ties and duplicates now and then."""
    n = draw(st.integers(1, 40))
    d = draw(st.integers(1, 5))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.RandomState(seed)
    kind = draw(st.sampled_from(["normal", "blobs", "duplicates"]))
    if kind == "normal":
        X = rng.randn(n, d) * draw(st.sampled_from([0.01, 1.0, 100.0]))
    elif kind == "blobs":
        centres = rng.randn(max(1, n // 5), d) * 10
        X = centres[rng.randint(len(centres), size=n)] + rng.randn(n, d) * 0.1
    else:
        X = rng.randint(0, 3, size=(n, d)).astype(np.float64)
    if with_identities:
        n_ids = draw(st.integers(1, n))
        ids = np.array([f"p{i}" for i in rng.randint(n_ids, size=n)])
        n_units = np.unique(ids).size
        k = draw(st.integers(1, n_units))
    else:
        ids = None
        k = draw(st.integers(1, n))
    return X.astype(draw(st.sampled_from([np.float32, np.float64]))), k, ids


def _check_guarantee(labels, X, k, ids):
    assert labels.shape == (X.shape[0],)
    assert labels.min() >= 0
    sizes = np.bincount(labels)
    assert (sizes[sizes > 0] >= k).all(), f"cluster sizes {sizes.tolist()} with k={k}"
    assert set(np.unique(labels)) == set(range(sizes.size)), "labels are 0..m-1"
    if ids is not None:
        for c in np.unique(labels):
            assert np.unique(ids[labels == c]).size >= k
        for person in np.unique(ids):
            assert np.unique(labels[ids == person]).size == 1, f"{person} is split over clusters"


FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEWER = settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _split(configs):
    fast = [c for c in configs if c[0] not in SLOW]
    slow = [c for c in configs if c[0] in SLOW]
    return fast, slow


def _ids(configs):
    return [f"{a}{p or ''}" for a, p in configs]


FAST_CONFIGS, SLOW_CONFIGS = _split(CONFIGS)


def _photo_guarantee(algo, params, problem, seed):
    X, k, _ = problem
    before = X.copy()
    labels = make_clusterer(algo, k=k, params=params, random_state=seed).fit(X).labels_
    assert np.array_equal(X, before), "input modified"
    _check_guarantee(labels, X, k, None)
    again = make_clusterer(algo, k=k, params=params, random_state=seed).fit(X).labels_
    assert np.array_equal(labels, again), "same random_state, different labels"


def _identity_guarantee(algo, params, problem, seed):
    X, k, ids = problem
    before, ids_before = X.copy(), ids.copy()
    est = make_clusterer(algo, k=k, params=params, random_state=seed).fit(X, identities=ids)
    assert np.array_equal(X, before) and np.array_equal(ids, ids_before), "input modified"
    _check_guarantee(est.labels_, X, k, ids)
    again = make_clusterer(algo, k=k, params=params, random_state=seed).fit(X, identities=ids).labels_
    assert np.array_equal(est.labels_, again)


@pytest.mark.parametrize("algo,params", FAST_CONFIGS, ids=_ids(FAST_CONFIGS))
@FAST
@given(problem=problems(with_identities=False), seed=st.integers(0, 1000))
def test_photo_guarantee(algo, params, problem, seed):
    _photo_guarantee(algo, params, problem, seed)


@pytest.mark.parametrize("algo,params", SLOW_CONFIGS, ids=_ids(SLOW_CONFIGS))
@FEWER
@given(problem=problems(with_identities=False), seed=st.integers(0, 1000))
def test_photo_guarantee_slow_algorithms(algo, params, problem, seed):
    _photo_guarantee(algo, params, problem, seed)


@pytest.mark.parametrize("algo,params", FAST_CONFIGS, ids=_ids(FAST_CONFIGS))
@FAST
@given(problem=problems(with_identities=True), seed=st.integers(0, 1000))
def test_identity_guarantee(algo, params, problem, seed):
    _identity_guarantee(algo, params, problem, seed)


@pytest.mark.parametrize("algo,params", SLOW_CONFIGS, ids=_ids(SLOW_CONFIGS))
@FEWER
@given(problem=problems(with_identities=True), seed=st.integers(0, 1000))
def test_identity_guarantee_slow_algorithms(algo, params, problem, seed):
    _identity_guarantee(algo, params, problem, seed)


@pytest.mark.parametrize("outliers", ["nearest", "group"])
@pytest.mark.parametrize("algo,params", OUTLIER_CONFIGS, ids=[a for a, _ in OUTLIER_CONFIGS])
@settings(max_examples=10, deadline=None)
@given(problem=problems(with_identities=False))
def test_outlier_policies_keep_guarantee(algo, params, outliers, problem):
    X, k, _ = problem
    labels = make_clusterer(algo, k=k, outliers=outliers, params=params, random_state=0).fit(X).labels_
    _check_guarantee(labels, X, k, None)


@pytest.mark.parametrize("algo", ["fixed-kmeans", "random"])
@settings(max_examples=20, deadline=None)
@given(problem=problems(with_identities=False))
def test_fixed_size_methods_give_n_div_k_clusters(algo, problem):
    X, k, _ = problem
    labels = make_clusterer(algo, k=k, random_state=0).fit(X).labels_
    sizes = np.bincount(labels)
    assert sizes.size == X.shape[0] // k
    if X.shape[0] >= 2 * k:
        assert sizes.max() <= 2 * k - 1
