"""k-Same random grouping: the baseline of the k-Same family.

Faces are shuffled and cut into ``n // k`` groups of ``k``; the ``n mod k``
left over are dealt one each to the first groups (so sizes are k or k + 1).
"""

from __future__ import annotations

import numpy as np

from anonfaces.cluster._base import RANDOM_STATE, BaseKClusterer, K


def random_groups(n: int, k: int, rng: np.random.RandomState) -> np.ndarray:
    """Labels of shape (n,) for n // k random groups of k or k + 1."""
    n_groups = n // k
    labels = np.empty(n, dtype=np.int64)
    slots = np.arange(n) % n_groups  # round-robin: sizes differ by at most one
    labels[rng.permutation(n)] = slots
    return labels


class RandomGrouping(BaseKClusterer):
    """k-Same random: ``n // k`` random groups of ``k`` or ``k + 1`` units.

    Parameters
    ----------
    k : int, default=5
    random_state : int, RandomState or None
    """

    _parameter_constraints = {"k": K, "random_state": RANDOM_STATE}

    def __init__(self, *, k=5, random_state=None):
        self.k = k
        self.random_state = random_state

    def _cluster_units(self, X, rng):
        return random_groups(X.shape[0], self.k, rng)
