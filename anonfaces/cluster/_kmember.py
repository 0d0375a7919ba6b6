"""Greedy k-member clustering (Byun, Kamra, Bertino and Li, 2007), for numeric data.

Start from a random face r. Repeatedly: r becomes the remaining face farthest
from the previous r; a group grows from r by adding, k - 1 times, the remaining
face that increases the group's information loss least (here: the sum of
squared distances to the group centroid, so the face nearest the centroid).
The fewer than k faces left at the end each join the group whose centroid is
nearest. Groups have k members, plus at most k - 1 leftovers in total.
Time O(n² d).
"""

from __future__ import annotations

import numpy as np

from anonfaces.cluster._base import RANDOM_STATE, BaseKClusterer, K


def kmember_labels(X: np.ndarray, k: int, rng: np.random.RandomState) -> np.ndarray:
    """k-member groups; labels of shape (n,)."""
    n = X.shape[0]
    labels = np.full(n, -1, dtype=np.int64)
    alive = np.ones(n, dtype=bool)
    r = int(rng.randint(n))
    label = 0
    centres = []
    while alive.sum() >= k:
        cand = np.flatnonzero(alive)
        d = ((X[cand] - X[r]) ** 2).sum(axis=1)
        r = int(cand[np.argmax(d)])
        members = [r]
        alive[r] = False
        total = X[r].copy()
        for _ in range(k - 1):
            cand = np.flatnonzero(alive)
            centre = total / len(members)
            pick = int(cand[np.argmin(((X[cand] - centre) ** 2).sum(axis=1))])
            members.append(pick)
            alive[pick] = False
            total += X[pick]
        labels[members] = label
        centres.append(total / len(members))
        label += 1
    rest = np.flatnonzero(alive)
    if rest.size:
        C = np.asarray(centres)
        d = ((X[rest][:, None, :] - C[None, :, :]) ** 2).sum(axis=2)
        labels[rest] = np.argmin(d, axis=1)
    return labels


class KMember(BaseKClusterer):
    """Greedy k-member clustering: groups of ``k`` plus the leftovers.

    Parameters
    ----------
    k : int, default=5
    random_state : int, RandomState or None
        Picks the first face.
    """

    _parameter_constraints = {"k": K, "random_state": RANDOM_STATE}

    def __init__(self, *, k=5, random_state=None):
        self.k = k
        self.random_state = random_state

    def _cluster_units(self, X, rng):
        return kmember_labels(X, self.k, rng)
