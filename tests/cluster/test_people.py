"""Pseudo-identities: graph-restricted average linkage and filling unknown identities."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anonfaces.cluster import PSEUDO_DEFAULTS, fill_identities, pseudo_identity_labels
from anonfaces.cluster._people import PSEUDO_PREFIX, graph_average_linkage
from anonfaces.errors import BadInputError


def _same_partition(a, b):
    a, b = np.asarray(a), np.asarray(b)
    pairs = {(x, y) for x, y in zip(a.tolist(), b.tolist())}
    return len(pairs) == np.unique(a).size == np.unique(b).size


def test_average_linkage_by_hand():
    # points 0, 1, 3 on a line: d(0,1)=1 merges first; then mean distance of {0,1} to 3 is (3+2)/2 = 2.5
    X = np.array([[0.0], [1.0], [3.0]])
    assert _same_partition(graph_average_linkage(X, threshold=2.4, n_neighbors=2), [0, 0, 1])
    assert _same_partition(graph_average_linkage(X, threshold=2.6, n_neighbors=2), [0, 0, 0])
    # single linkage would merge at 2.0 (the gap 1 -> 3); average linkage must not
    assert _same_partition(graph_average_linkage(X, threshold=2.1, n_neighbors=2), [0, 0, 1])


def test_missing_edges_use_exact_distances():
    # with 1 neighbour, 0-2 has no edge; the merged {0,1} vs 2 distance must still be the true mean
    X = np.array([[0.0], [1.0], [3.0]])
    assert _same_partition(graph_average_linkage(X, threshold=2.4, n_neighbors=1), [0, 0, 1])
    assert _same_partition(graph_average_linkage(X, threshold=2.6, n_neighbors=1), [0, 0, 0])


@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 40), seed=st.integers(0, 10**6), thr=st.floats(0.2, 3.0))
def test_matches_scipy_average_linkage_when_the_graph_is_complete(n, seed, thr):
    from scipy.cluster.hierarchy import fcluster, linkage

    X = np.random.RandomState(seed).randn(n, 3)
    ours = graph_average_linkage(X, threshold=thr, n_neighbors=n)
    Z = linkage(X, method="average")
    theirs = fcluster(Z, thr, criterion="distance")
    # fcluster cuts at <= thr, we merge at < thr: equal unless a merge height is exactly thr
    if not np.isclose(Z[:, 2], thr).any():
        assert _same_partition(ours, theirs)


def test_pseudo_identity_methods_and_errors():
    rng = np.random.RandomState(0)
    X = np.vstack([rng.randn(6, 8) * 0.01 + c for c in rng.randn(4, 8)])
    truth = np.repeat(np.arange(4), 6)
    for method in ("average", "aroc", "components"):
        labels = pseudo_identity_labels(X, method=method, threshold=0.55 if method == "average" else 2.0, max_distance=0.5)
        assert _same_partition(labels, truth), method
    with pytest.raises(BadInputError, match="method='magic'"):
        pseudo_identity_labels(X, method="magic")
    assert PSEUDO_DEFAULTS["method"] == "average"


def test_fill_identities_keeps_known_and_names_pseudo():
    rng = np.random.RandomState(0)
    X = np.vstack([rng.randn(3, 8) * 0.01 + c for c in rng.randn(4, 8)])
    ids = np.array(["ann"] * 3 + ["bob"] * 3 + [""] * 6)
    units, n_pseudo = fill_identities(X, ids)
    assert n_pseudo == 2
    assert units[:6].tolist() == ids[:6].tolist()
    assert all(u.startswith(PSEUDO_PREFIX) for u in units[6:])
    assert len(set(units[6:9])) == 1 and len(set(units[9:])) == 1 and units[6] != units[9]
    with pytest.raises(BadInputError, match=r"shape \(2,\)"):
        fill_identities(X, ["a", "b"])
