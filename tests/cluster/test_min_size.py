"""The "no noise, every cluster >= k" step on its own."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anonfaces.cluster import NOISE, enforce_min_size
from anonfaces.errors import BadInputError


def _line(n):
    return np.arange(n, dtype=float)[:, None]


def test_nearest_sends_noise_to_nearest_centroid():
    X = np.array([[0.0], [0.1], [0.2], [10.0], [10.1], [10.2], [9.0], [0.5]])
    raw = np.array([0, 0, 0, 1, 1, 1, NOISE, NOISE])
    out = enforce_min_size(X, raw, k=3, outliers="nearest")
    assert out.tolist() == [0, 0, 0, 1, 1, 1, 1, 0]


def test_group_makes_clusters_of_the_noise():
    X = np.vstack([np.zeros((4, 1)), np.full((6, 1), 100.0) + _line(6) * 0.01])
    raw = np.array([0] * 4 + [NOISE] * 6)
    out = enforce_min_size(X, raw, k=3, outliers="group")
    assert np.unique(out[:4]).size == 1
    assert set(out[4:]).isdisjoint(set(out[:4]))  # noise grouped among itself
    assert np.bincount(out).min() >= 3


def test_small_clusters_merge_into_nearest():
    X = np.array([[0.0], [0.1], [0.2], [5.0], [5.1], [5.2], [0.4]])
    raw = np.array([0, 0, 0, 1, 1, 1, 2])  # cluster 2 is one point, nearest to cluster 0
    out = enforce_min_size(X, raw, k=3)
    assert out.tolist() == [0, 0, 0, 1, 1, 1, 0]


def test_all_noise_is_grouped():
    out = enforce_min_size(_line(10), np.full(10, NOISE), k=3, outliers="nearest")
    assert out.min() >= 0 and np.bincount(out).min() >= 3


def test_none_keeps_noise_and_small_clusters():
    raw = np.array([NOISE, 0, 0, 1])
    out = enforce_min_size(_line(4), raw, k=3, outliers="none")
    assert out.tolist() == [NOISE, 0, 0, 1]


def test_split_large():
    X = np.vstack([_line(10) * 0.01, _line(10) * 0.01 + 5])
    out = enforce_min_size(X, np.zeros(20, int), k=3, split_large=True, random_state=0)
    sizes = np.bincount(out)
    assert sizes.size == 6 and sizes.min() >= 3 and sizes.max() <= 5


def test_bad_input():
    with pytest.raises(BadInputError, match="outliers='drop'"):
        enforce_min_size(_line(4), np.zeros(4, int), k=2, outliers="drop")
    with pytest.raises(BadInputError, match=r"n_samples=2 must be >= k=3"):
        enforce_min_size(_line(2), np.zeros(2, int), k=3)
    with pytest.raises(BadInputError, match=r"shape \(3,\)"):
        enforce_min_size(_line(4), np.zeros(3, int), k=2)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 60),
    data=st.data(),
    outliers=st.sampled_from(["nearest", "group"]),
    split=st.booleans(),
)
def test_any_raw_labels_become_valid(n, data, outliers, split):
    k = data.draw(st.integers(1, n))
    raw = np.array(data.draw(st.lists(st.integers(-1, 8), min_size=n, max_size=n)))
    X = np.random.RandomState(n).randn(n, 3)
    raw_before = raw.copy()
    out = enforce_min_size(X, raw, k=k, outliers=outliers, split_large=split, random_state=0)
    assert np.array_equal(raw, raw_before)
    assert out.min() >= 0 and np.bincount(out).min() >= k
    if split:
        assert np.bincount(out).max() < 2 * k or np.unique(out).size == 1 and n < 2 * k
