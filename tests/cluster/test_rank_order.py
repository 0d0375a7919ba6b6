"""Approximate rank-order distances on neighbour lists small enough to check by hand."""

import numpy as np
import pytest

from anonfaces.cluster import NOISE, ApproximateRankOrder
from anonfaces.cluster._rank_order import (
    neighbour_lists,
    rank_order_distances,
    rank_order_labels,
)


def test_symmetric_lists_by_hand():
    # lists with the face itself first; K = 3
    idx = np.array([[0, 1, 2], [1, 0, 3], [2, 3, 0], [3, 2, 1]])
    D = rank_order_distances(idx)
    # D(0,1): d(0,1) = [0 not in L1] + [1 not in L1] = 0; d(1,0) = 0; / min(1, 1) -> 0
    # D(0,2): d(0,2) = 0,1,2 vs L2={2,3,0}: 1 missing -> 1; d(2,0) = 2,3,0 vs L0={0,1,2}: 3 missing -> 1; / 2 -> 1
    # D(1,3): d(1,3) = 1,0,3 vs {3,2,1}: 0 missing -> 1; d(3,1) = 3,2,1 vs {1,0,3}: 2 missing -> 1; / 2 -> 1
    # D(2,3) = D(3,2) = 0 (each is the other's first neighbour and both lists hold both)
    expected = np.array([[0, 0, 1], [0, 0, 1], [0, 0, 1], [0, 0, 1]], dtype=float)
    np.testing.assert_allclose(D, expected)


def test_asymmetric_lists_by_hand():
    idx = np.array([[0, 1, 2], [1, 3, 4], [2, 0, 1], [3, 4, 1], [4, 3, 1]])
    D = rank_order_distances(idx)
    # D(0,1): O_0(1)=1, O_1(0)=K=3 (absent). d(0,1) = [0 not in L1] + [1 not in L1] = 1.
    #         d(1,0) = over all of L1 (1,3,4) vs L0={0,1,2}: 3 and 4 missing -> 2. D = 3 / min(1,3) = 3
    assert D[0, 1] == pytest.approx(3.0)
    # D(0,2): O_0(2)=2, O_2(0)=1; d(0,2) = 0 (0,1,2 all in L2); d(2,0) = 0 (2,0 in L0) -> 0
    assert D[0, 2] == pytest.approx(0.0)
    # D(2,1): O_2(1)=2, O_1(2)=3 (absent); d(2,1) = 2,0,1 vs L1: 2 missing -> 2;
    #         d(1,2) = 1,3,4 vs L2={2,0,1}: 2 missing -> 2; D = 4 / 2 = 2
    assert D[2, 2] == pytest.approx(2.0)
    assert D[1, 1] == pytest.approx(0.0)  # D(1,3): 1,3 in L3; 3,4,1 in L1 -> 0
    assert D[1, 2] == pytest.approx(0.0)  # D(1,4)
    assert D[3, 1] == pytest.approx(0.0)  # D(3,4)
    assert (D[:, 0] == 0).all()


def test_neighbour_lists_put_self_first_even_with_duplicates():
    X = np.zeros((5, 2))
    idx, _dist = neighbour_lists(X, 3)
    assert (idx[:, 0] == np.arange(5)).all()
    assert all(len(set(row)) == 3 for row in idx.tolist())


def test_two_blobs_and_a_loner():
    rng = np.random.RandomState(0)
    X = np.vstack([rng.randn(20, 4) * 0.05, rng.randn(20, 4) * 0.05 + 5, [[50, 50, 50, 50]]])
    labels = rank_order_labels(X, n_neighbors=10, threshold=2.0, max_distance=1.0)
    assert labels[-1] == NOISE
    assert np.unique(labels[:20]).size == 1 and np.unique(labels[20:40]).size == 1
    assert labels[0] != labels[20]
    # and the estimator puts the loner somewhere, keeping >= k
    fitted = ApproximateRankOrder(k=5, n_neighbors=10, threshold=2.0, max_distance=1.0).fit(X).labels_
    assert fitted.min() >= 0 and np.bincount(fitted).min() >= 5
