"""95% intervals on the privacy figures: a bootstrap over people.

A privacy figure is a ratio of per-face counts (hits over probes, accepted
genuine pairs over genuine pairs). Faces of one person are not independent
(the same face, the same surrogate), so the unit resampled is the person:
`bootstrap_people` draws people with replacement (seeded), adds up each drawn
person's numerators and denominators as often as the person was drawn, and
takes percentiles of the resampled ratios.

The per-face outcomes are held fixed: the attack is not re-run on each
resample (a resampled gallery would hold the same person twice). The interval
says how much the figure depends on which people happened to be in the
dataset, at the attack's outcome on each of their faces.
"""

from __future__ import annotations

import numpy as np

from anonfaces.errors import BadInputError

#: Resamples of people and confidence level of every interval in metrics.csv.
DEFAULT_RESAMPLES = 1000
DEFAULT_CONFIDENCE = 0.95


def bootstrap_people(values, people, *, weights=None, n_resamples: int = DEFAULT_RESAMPLES,
                     confidence: float = DEFAULT_CONFIDENCE, random_state=0) -> tuple[float, float]:
    """Percentile interval of a per-face ratio, resampling people with replacement.

    The figure is ``sum(weights * values) / sum(weights)`` over the faces (a plain
    mean with unit weights). Faces whose value is NaN are no part of it, and
    people with none of their faces left are not drawn.

    Parameters
    ----------
    values : array of shape (n_faces,)
        Per face outcome (1/0 hits, or a per-face rate).
    people : array of shape (n_faces,)
        The person of each face (the unit resampled).
    weights : array of shape (n_faces,), optional
        Per face denominator (e.g. genuine pairs of a probe); default 1.
    n_resamples : int, default 1000
    confidence : float, default 0.95
    random_state : int
        Same seed, same interval.

    Returns
    -------
    (low, high) : floats; NaN when no face has a value.
    """
    from sklearn.utils import check_random_state

    v = np.asarray(values, np.float64)
    ids = np.asarray(people)
    w = np.ones_like(v) if weights is None else np.asarray(weights, np.float64)
    if v.ndim != 1 or ids.shape != v.shape or w.shape != v.shape:
        raise BadInputError(f"values {v.shape}, people {ids.shape} and weights {w.shape} must be 1-D of the same length")
    if not isinstance(n_resamples, (int, np.integer)) or n_resamples < 1:
        raise BadInputError(f"n_resamples={n_resamples!r} must be an integer >= 1")
    if not 0 < confidence < 1:
        raise BadInputError(f"confidence={confidence!r} must be in (0, 1)")
    keep = np.isfinite(v) & np.isfinite(w) & (w > 0)
    if not keep.any():
        return float("nan"), float("nan")
    _, person = np.unique(ids[keep], return_inverse=True)
    num = np.bincount(person, weights=(w * v)[keep])
    den = np.bincount(person, weights=w[keep])
    n_people = num.size
    rng = check_random_state(random_state)
    ratios = np.empty(n_resamples)
    step = max(1, 2_000_000 // n_people)  # bounds the draw matrix at about 16 MB
    for lo in range(0, n_resamples, step):
        hi = min(lo + step, n_resamples)
        drawn = rng.multinomial(n_people, np.full(n_people, 1.0 / n_people), size=hi - lo)  # (resamples, people)
        ratios[lo:hi] = (drawn @ num) / (drawn @ den)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(ratios, [alpha, 1.0 - alpha])
    return float(low), float(high)
