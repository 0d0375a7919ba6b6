"""Scores on toy cases computed by hand."""

import numpy as np
import pytest

from anonfaces.cluster import metrics
from anonfaces.cluster._base import NOISE


def test_ssd_by_hand():
    # cluster 0: (0,0),(2,0): ordered pairs 4 + 4 = 8, / 2 -> 4
    # cluster 1: (0,0),(0,1),(0,2): ordered pairs 2*(1 + 4 + 1) = 12, / 3 -> 4
    X = np.array([[0, 0], [2, 0], [0, 0], [0, 1], [0, 2]], dtype=float)
    labels = np.array([0, 0, 1, 1, 1])
    assert metrics.ssd(X, labels) == pytest.approx(8.0)
    # cross-check: twice the within-cluster sum of squares (2 + 2) * 2
    assert metrics.within_cluster_sum_of_squares(X, labels) == pytest.approx(4.0)


def test_ssd_matches_brute_force_and_ignores_noise():
    rng = np.random.RandomState(1)
    X = rng.randn(60, 7)
    labels = rng.randint(-1, 6, size=60)
    brute = 0.0
    for c in range(6):
        P = X[labels == c]
        if len(P):
            brute += ((P[:, None, :] - P[None, :, :]) ** 2).sum() / len(P)
    assert metrics.ssd(X, labels) == pytest.approx(brute)
    assert metrics.ssd(X, labels) == pytest.approx(2 * metrics.within_cluster_sum_of_squares(X, labels))


def test_information_loss_by_hand():
    X = np.array([[0, 0], [2, 0], [0, 0], [0, 4]], dtype=float)
    # each member is 1 (first cluster) or 2 (second) from its centroid
    assert metrics.information_loss(X, [0, 0, 1, 1]) == pytest.approx(1.5)


def test_pairwise_scores_by_hand():
    labels = [0, 0, 0, 1, 1]
    ids = ["a", "a", "b", "b", "b"]
    # cluster pairs: 3 + 1 = 4; identity pairs: 1 + 3 = 4; shared: (a,a) in 0 and (b,b) in 1 -> 2
    s = metrics.pairwise_scores(labels, ids)
    assert s["precision"] == pytest.approx(0.5)
    assert s["recall"] == pytest.approx(0.5)
    assert s["f_measure"] == pytest.approx(0.5)
    perfect = metrics.pairwise_scores([3, 3, 7], ["x", "x", "y"])
    assert perfect["f_measure"] == pytest.approx(1.0)


def test_noise_counts_as_singletons_in_pairwise_scores():
    s = metrics.pairwise_scores([NOISE, NOISE, 0, 0], ["a", "a", "b", "b"])
    assert s["precision"] == pytest.approx(1.0)
    assert s["recall"] == pytest.approx(0.5)


def test_size_histogram_and_distinct_identities():
    labels = np.array([0, 0, 1, 1, 1, 2, 2, NOISE])
    assert metrics.size_histogram(labels) == {2: 2, 3: 1}
    ids = np.array(["a", "a", "a", "b", "c", "d", "e", "z"])
    assert metrics.distinct_identities(labels, ids).tolist() == [1, 3, 2]


def test_knee_point_and_elbows():
    x = np.arange(10)
    y = np.array([100, 50, 20, 10, 9, 8, 7, 6, 5, 4], dtype=float)
    assert metrics.knee_point(x, y) == 3 or metrics.knee_point(x, y) == 2
    rng = np.random.RandomState(0)
    X = np.vstack([rng.randn(30, 2) * 0.1 + c for c in ([0, 0], [5, 5], [0, 5])])
    assert metrics.kmeans_elbow(X, [1, 2, 3, 4, 5, 6, 8])["elbow"] == 3
    eps = metrics.dbscan_eps_elbow(X, min_samples=4)["eps"]
    assert 0.0 < eps < 2.0


def test_silhouette_nan_for_one_cluster_and_high_for_blobs():
    rng = np.random.RandomState(0)
    X = np.vstack([rng.randn(20, 2) * 0.1, rng.randn(20, 2) * 0.1 + 10])
    assert np.isnan(metrics.silhouette(X, np.zeros(40, int)))
    assert metrics.silhouette(X, np.repeat([0, 1], 20)) > 0.9


def test_summarize_row():
    X = np.array([[0, 0], [2, 0], [0, 0], [0, 1], [0, 2]], dtype=float)
    row = metrics.summarize(X, [0, 0, 1, 1, 1], identities=["a", "b", "c", "c", "d"], seconds=1.5)
    assert row["clusters"] == 2 and row["min_size"] == 2 and row["max_size"] == 3
    assert row["ssd"] == pytest.approx(8.0)
    assert row["min_identities"] == 2 and row["mean_identities"] == pytest.approx(2.0)
