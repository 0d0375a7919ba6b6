"""Density-based clusterers: DBSCAN, HDBSCAN (the `hdbscan` package) and OPTICS.

Each finds clusters and noise, then `enforce_min_size` removes the noise and the
clusters smaller than ``k`` according to ``outliers`` (see `_min_size`).
"""

from __future__ import annotations

import numbers

import numpy as np

from anonfaces.cluster._base import (
    N_JOBS,
    NOISE,
    OUTLIERS,
    POSITIVE_REAL,
    RANDOM_STATE,
    BaseKClusterer,
    Interval,
    K,
    Options,
    OutlierHandlingMixin,
    none_or,
)
from anonfaces.errors import BadInputError

_BOOL = Options((True, False))

#: PCA dimensions HDBSCAN works in when the data has more than 50 (``n_components="auto"``).
#: Measured on tiled LFW dlib embeddings, 30,000 faces: 6 s at 8 dimensions, 15 s at 16;
#: 100,000 faces at 8 dimensions: 38 s (bench/bench_cluster_hdbscan.py).
AUTO_COMPONENTS = 8


class DBSCANClusterer(OutlierHandlingMixin, BaseKClusterer):
    """DBSCAN, then the at-least-k step.

    Parameters
    ----------
    k : int, default=5
    eps : float, default=0.5
        Neighbourhood radius (dlib embeddings: same person below about 0.6).
    min_samples : int, default=None
        Points in a neighbourhood for a core point; None means ``k``.
    outliers : {"nearest", "group", "none"}, default="nearest"
    split_large : bool, default=True
        Split every cluster of 2k or more units into clusters of k..2k-1 (fixed-size
        K-Means inside it). On face embeddings the density methods find a few
        large clusters and much noise; without the split their surrogates stand for
        hundreds of people (4,000 LFW faces, k=5: HDBSCAN gives 2 clusters, mean
        distance to the centroid 0.57, against 468 clusters and 0.39 with it).
    n_jobs : int, default=None
    random_state : int, RandomState or None
        Used by the outlier step only (DBSCAN itself is deterministic).
    """

    _parameter_constraints = {
        "k": K,
        "eps": POSITIVE_REAL,
        "min_samples": none_or(Interval(numbers.Integral, 1)),
        "outliers": OUTLIERS,
        "split_large": _BOOL,
        "n_jobs": N_JOBS,
        "random_state": RANDOM_STATE,
    }

    def __init__(self, *, k=5, eps=0.5, min_samples=None, outliers="nearest", split_large=True, n_jobs=None, random_state=None):
        self.k = k
        self.eps = eps
        self.min_samples = min_samples
        self.outliers = outliers
        self.split_large = split_large
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _cluster_units(self, X, rng):
        from sklearn.cluster import DBSCAN

        min_samples = self.k if self.min_samples is None else self.min_samples
        raw = DBSCAN(eps=self.eps, min_samples=min_samples, n_jobs=self.n_jobs).fit_predict(X)
        return self._finish(X, raw, rng)


class OPTICSClusterer(OutlierHandlingMixin, BaseKClusterer):
    """OPTICS (scikit-learn), then the at-least-k step.

    Parameters
    ----------
    k : int, default=5
    min_samples : int, default=None
        None means ``max(2, k)``.
    max_eps : float, default=inf
    xi : float, default=0.05
    cluster_method : {"xi", "dbscan"}, default="xi"
    eps : float, default=None
        For ``cluster_method="dbscan"``.
    outliers, split_large, n_jobs, random_state : as for DBSCAN.
    """

    _parameter_constraints = {
        "k": K,
        "min_samples": none_or(Interval(numbers.Integral, 2)),
        "max_eps": Interval(numbers.Real, 0, closed_low=False, allow_inf=True),
        "xi": Interval(numbers.Real, 0, 1),
        "cluster_method": Options(("xi", "dbscan")),
        "eps": none_or(POSITIVE_REAL),
        "outliers": OUTLIERS,
        "split_large": _BOOL,
        "n_jobs": N_JOBS,
        "random_state": RANDOM_STATE,
    }

    def __init__(
        self,
        *,
        k=5,
        min_samples=None,
        max_eps=np.inf,
        xi=0.05,
        cluster_method="xi",
        eps=None,
        outliers="nearest",
        split_large=True,
        n_jobs=None,
        random_state=None,
    ):
        self.k = k
        self.min_samples = min_samples
        self.max_eps = max_eps
        self.xi = xi
        self.cluster_method = cluster_method
        self.eps = eps
        self.outliers = outliers
        self.split_large = split_large
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _cluster_units(self, X, rng):
        from sklearn.cluster import OPTICS

        n = X.shape[0]
        min_samples = max(2, self.k) if self.min_samples is None else self.min_samples
        if n < 2 or min_samples > n:
            raw = np.full(n, NOISE)  # too few points for a neighbourhood: all noise
        else:
            raw = OPTICS(
                min_samples=min_samples,
                max_eps=self.max_eps,
                xi=self.xi,
                cluster_method=self.cluster_method,
                eps=self.eps,
                n_jobs=self.n_jobs,
            ).fit_predict(X)
        return self._finish(X, raw, rng)


class HDBSCANClusterer(OutlierHandlingMixin, BaseKClusterer):
    """HDBSCAN (the `hdbscan` package) on optionally PCA-reduced data, then the at-least-k step.

    HDBSCAN slows sharply above about 50 dimensions, so by default
    (``n_components="auto"``) data with more than 50 dimensions is first
    projected onto its first 8 principal components (`AUTO_COMPONENTS`). The at-least-k step
    always works on the original embeddings.

    Parameters
    ----------
    k : int, default=5
    min_cluster_size : int, default=None
        None means ``max(2, k)``.
    min_samples : int, default=None
        None means ``min_cluster_size`` (the hdbscan default).
    cluster_selection_epsilon : float, default=0.0
    cluster_selection_method : {"eom", "leaf"}, default="eom"
    n_components : "auto", int or None, default="auto"
        PCA dimensions before HDBSCAN; None keeps all.
    outliers, split_large, n_jobs, random_state : as for DBSCAN (random_state
        also seeds the randomized PCA).
    """

    _parameter_constraints = {
        "k": K,
        "min_cluster_size": none_or(Interval(numbers.Integral, 2)),
        "min_samples": none_or(Interval(numbers.Integral, 1)),
        "cluster_selection_epsilon": Interval(numbers.Real, 0),
        "cluster_selection_method": Options(("eom", "leaf")),
        "outliers": OUTLIERS,
        "split_large": _BOOL,
        "n_jobs": N_JOBS,
        "random_state": RANDOM_STATE,
    }

    def __init__(
        self,
        *,
        k=5,
        min_cluster_size=None,
        min_samples=None,
        cluster_selection_epsilon=0.0,
        cluster_selection_method="eom",
        n_components="auto",
        outliers="nearest",
        split_large=True,
        n_jobs=None,
        random_state=None,
    ):
        self.k = k
        self.min_cluster_size = min_cluster_size
        self.min_samples = min_samples
        self.cluster_selection_epsilon = cluster_selection_epsilon
        self.cluster_selection_method = cluster_selection_method
        self.n_components = n_components
        self.outliers = outliers
        self.split_large = split_large
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _reduced(self, X, rng):
        n, d = X.shape
        n_components = self.n_components
        if n_components == "auto":
            n_components = AUTO_COMPONENTS if d > 50 else None
        elif n_components is not None and (
            not isinstance(n_components, numbers.Integral) or isinstance(n_components, bool) or n_components < 1
        ):
            raise BadInputError(f"n_components={n_components!r} must be 'auto', None or an integer >= 1")
        if n_components is None or n_components >= min(n, d):
            return X
        from sklearn.decomposition import PCA

        return PCA(n_components=n_components, svd_solver="randomized", random_state=rng.randint(2**31 - 1)).fit_transform(X)

    def _cluster_units(self, X, rng):
        import hdbscan

        n = X.shape[0]
        mcs = max(2, self.k) if self.min_cluster_size is None else self.min_cluster_size
        ms = mcs if self.min_samples is None else self.min_samples
        Z = self._reduced(X, rng)
        if n <= max(mcs, ms):
            raw = np.full(n, NOISE)  # too few points to form a cluster
        else:
            n_jobs = self.n_jobs or 1
            if n_jobs < 0:
                from anonfaces.utils.parallel import available_cores

                n_jobs = available_cores()
            raw = hdbscan.HDBSCAN(
                min_cluster_size=mcs,
                min_samples=ms,
                cluster_selection_epsilon=float(self.cluster_selection_epsilon),
                cluster_selection_method=self.cluster_selection_method,
                core_dist_n_jobs=n_jobs,
            ).fit_predict(np.ascontiguousarray(Z, dtype=np.float64))
        return self._finish(X, raw, rng)
