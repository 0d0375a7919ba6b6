"""Nearest neighbours for every algorithm that needs them: one `knn` function.

Backed by faiss (``faiss-cpu``, ``pip install anonfaces[scale]``) when it is
installed, by scikit-learn otherwise:

- up to `EXACT_MAX_SAMPLES` points, an exact search (faiss ``IndexFlatL2``, or
  scikit-learn's brute force): the same neighbours as
  ``NearestNeighbors(n_neighbors=k).fit(X).kneighbors()``;
- above it, with faiss, a graph index (``IndexHNSWFlat``, `HNSW_M` links per
  point, `HNSW_EF_SEARCH` candidates per query), built and searched on every
  thread faiss is given; or on request (``method="ivf"``) an inverted-file
  index (``IndexIVFFlat``: ``sqrt(n)`` k-means cells trained on 40 points each,
  `IVF_NPROBE` searched per query). Both are approximate: IVF's measured recall
  at 1,000,000 faces is in docs/scaling.md; HNSW's is still to be measured there.
  Without faiss the search stays exact (and slow).

Distances are Euclidean, recomputed in float64 from the rows for every pair
returned (faiss searches in float32), and each row is ordered by them.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from anonfaces.errors import BadInputError

logger = logging.getLogger(__name__)

#: Above this many indexed points ``method="auto"`` uses an approximate IVF index (with faiss).
EXACT_MAX_SAMPLES = 200_000
#: IVF cells searched per query (of ``sqrt(n)``). On 1,000,000 synthetic faces
#: (bench/bench_scale.py, 1,000 cells) 10 / 30 / 100 probes found 76 / 89 / 98 % of
#: the neighbours nearer than 0.55 (the ones pseudo-identities can merge) and
#: 64 / 82 / 96 % of all 10 nearest; a missed neighbour can split a person, so 100.
#: The search time grows with it: 364 CPU s for the 10-NN graph of 1,000,000 faces at 10.
IVF_NPROBE = 100
#: HNSW: links per point (faiss' M), candidates kept while building and while searching.
#: Common faiss settings for 128-D data, not tuned here yet: the recall at 1,000,000
#: faces (bench/bench_scale.py --tasks recall, efSearch 32/64/128) is still to be
#: measured (docs/scaling.md); on 3,132 faces around the sample's real ones it
#: finds more than 97 % of the 10 nearest (tests/scale/test_scale_cluster.py).
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 40
HNSW_EF_SEARCH = 64
#: Training points per IVF cell (faiss asks for at least 39). Training costs about
#: n_train * n_cells * d * 25 iterations, so it is kept small.
IVF_TRAIN_PER_CELL = 40

_METHODS = ("auto", "exact", "ivf", "hnsw")


def have_faiss() -> bool:
    """True when faiss can be imported."""
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def knn(
    X: np.ndarray,
    k: int,
    *,
    queries: np.ndarray | None = None,
    method: str = "auto",
    backend: str = "auto",
    n_jobs: int | None = None,
    nprobe: int | None = None,
    ef_search: int | None = None,
    random_state: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest rows of ``X`` (n, d) to each query; ``(dist, idx)``, each of shape (m, k).

    With ``queries=None`` the queries are the rows of ``X`` themselves and each
    row's own index is left out (as scikit-learn's ``kneighbors()`` without an
    argument does; with duplicate rows, the first hit is dropped when the row
    itself is not among the hits). ``dist`` is Euclidean, float64; each row is
    sorted by distance.

    Parameters
    ----------
    method : {"auto", "exact", "hnsw", "ivf"}
        ``auto``: exact up to `EXACT_MAX_SAMPLES` indexed rows, else ``hnsw``
        (approximate; needs faiss, falls back to exact without it).
    backend : {"auto", "faiss", "sklearn"}
        ``auto``: faiss when installed.
    n_jobs : int or None
        Threads (faiss) or processes (scikit-learn); None: the library's default.
    nprobe : int or None
        ``ivf``: cells searched per query (None: `IVF_NPROBE`); more is slower and
        finds more of the true neighbours.
    ef_search : int or None
        ``hnsw``: candidates kept per query (None: `HNSW_EF_SEARCH`, at least k + 1);
        more is slower and finds more of the true neighbours.
    """
    X = np.asarray(X)
    if X.ndim != 2:
        raise BadInputError(f"X has shape {X.shape}; expected (n_samples, n_features)")
    if method not in _METHODS:
        raise BadInputError(f"method={method!r} must be one of {', '.join(_METHODS)}")
    if backend not in ("auto", "faiss", "sklearn"):
        raise BadInputError(f"backend={backend!r} must be 'auto', 'faiss' or 'sklearn'")
    n = X.shape[0]
    self_query = queries is None
    Q = X if self_query else np.asarray(queries)
    if Q.ndim != 2 or Q.shape[1] != X.shape[1]:
        raise BadInputError(f"queries have shape {Q.shape}; expected (m, {X.shape[1]})")
    available = n - 1 if self_query else n
    k = int(k)
    if not 1 <= k <= available:
        raise BadInputError(f"k={k} neighbours must be between 1 and {available} (n_samples={n})")
    use_faiss = backend == "faiss" or (backend == "auto" and have_faiss())
    if backend == "faiss" and not have_faiss():
        raise BadInputError("backend='faiss' needs faiss: pip install 'anonfaces[scale]'")
    if method == "auto":
        method = "hnsw" if use_faiss and n > EXACT_MAX_SAMPLES else "exact"
    if method in ("ivf", "hnsw") and not use_faiss:
        logger.warning("knn: method=%r needs faiss; searching exactly with scikit-learn instead", method)
        method = "exact"
    extra = 1 if self_query else 0
    if use_faiss:
        idx = _faiss_search(X, Q, k + extra, method, n_jobs, nprobe or IVF_NPROBE, random_state,
                            max(ef_search or HNSW_EF_SEARCH, k + extra))
    else:
        idx = _sklearn_search(X, Q, k + extra, n_jobs)
    if self_query:
        idx = _drop_self(idx, k)
    return _exact_distances(X, Q, idx)


def _faiss_search(X, Q, kk, method, n_jobs, nprobe, random_state, ef_search=HNSW_EF_SEARCH) -> np.ndarray:
    import faiss

    Xf = np.ascontiguousarray(X, dtype=np.float32)
    Qf = Xf if Q is X else np.ascontiguousarray(Q, dtype=np.float32)
    n, d = Xf.shape
    threads = faiss.omp_get_max_threads()
    if n_jobs is not None:
        faiss.omp_set_num_threads(threads if n_jobs < 0 else max(1, int(n_jobs)))
    try:
        if method == "exact":
            index = faiss.IndexFlatL2(d)
        elif method == "hnsw":
            index = faiss.IndexHNSWFlat(d, HNSW_M, faiss.METRIC_L2)
            index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
            index.hnsw.efSearch = int(ef_search)
            logger.info("knn: HNSW index (M=%d, efSearch=%d) over %d points", HNSW_M, ef_search, n)
        else:
            nlist = max(1, min(int(math.sqrt(n)), n // 39))
            quantizer = faiss.IndexFlatL2(d)
            index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_L2)
            rng = np.random.RandomState(random_state)
            n_train = min(n, IVF_TRAIN_PER_CELL * nlist)
            train = Xf if n_train == n else Xf[np.sort(rng.choice(n, n_train, replace=False))]
            index.cp.seed = int(random_state)
            index.train(train)
            index.nprobe = min(int(nprobe), nlist)
            logger.info("knn: IVF index of %d cells over %d points, nprobe=%d", nlist, n, index.nprobe)
        index.add(Xf)
        idx = np.empty((Qf.shape[0], kk), dtype=np.int64)
        step = 65536  # bounds the (step, kk) result buffers
        for start in range(0, Qf.shape[0], step):
            _, idx[start : start + step] = index.search(Qf[start : start + step], kk)
    finally:
        faiss.omp_set_num_threads(threads)
    if (idx < 0).any():  # IVF found fewer than kk points in the cells it searched (HNSW: rarely): fill exactly
        bad = np.flatnonzero((idx < 0).any(axis=1))
        logger.info("knn: %d queries short of neighbours in the IVF cells; searching them exactly", bad.size)
        exact = faiss.IndexFlatL2(d)
        exact.add(Xf)
        _, idx[bad] = exact.search(np.ascontiguousarray(Qf[bad]), kk)
    return idx


def _sklearn_search(X, Q, kk, n_jobs) -> np.ndarray:
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=kk, algorithm="brute", n_jobs=n_jobs).fit(X)
    return nn.kneighbors(Q, return_distance=False)


def _drop_self(idx: np.ndarray, k: int) -> np.ndarray:
    """Remove each row's own index from its k + 1 hits (the first hit when it is absent)."""
    n = idx.shape[0]
    keep = idx != np.arange(n)[:, None]
    absent = keep.all(axis=1)
    keep[absent, 0] = False
    return idx[keep].reshape(n, k)


def _exact_distances(X, Q, idx, chunk: int = 8192) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distances (float64) of the pairs (Q[i], X[idx[i, j]]); rows re-sorted by them."""
    m, kk = idx.shape
    dist = np.empty((m, kk), dtype=np.float64)
    for start in range(0, m, chunk):
        rows = slice(start, start + chunk)
        q = np.asarray(Q[rows], dtype=np.float64)[:, None, :]
        diff = np.asarray(X[idx[rows]], dtype=np.float64) - q
        dist[rows] = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
    order = np.argsort(dist, axis=1, kind="stable")
    return np.take_along_axis(dist, order, axis=1), np.take_along_axis(idx, order, axis=1)


def knn_graph(X: np.ndarray, k: int, **kwargs):
    """Connectivity graph of the ``k`` nearest neighbours (no self loops), CSR of shape (n, n).

    The same as scikit-learn's ``kneighbors_graph(X, k, include_self=False)``.
    """
    from scipy.sparse import csr_matrix

    _, idx = knn(X, k, **kwargs)
    n = X.shape[0]
    return csr_matrix((np.ones(idx.size), idx.ravel(), np.arange(0, n * k + 1, k)), shape=(n, n))
