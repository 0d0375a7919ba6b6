"""k people, not k photos: identities as the unit of the guarantee.

When identities are known, `BaseKClusterer.fit(X, identities=...)` clusters the
identities (their mean embeddings), so every cluster holds at least k distinct
identities and all photos of one identity share a cluster.

When they are not known (or only partly: '' marks an unknown face), the photos
of unknown faces are first grouped into *pseudo-identities* here, and the same
rule is applied to them.
"""

from __future__ import annotations

import heapq
import logging

import numpy as np

from anonfaces.errors import BadInputError

logger = logging.getLogger(__name__)

#: Prefix of the names given to pseudo-identities (real folder names never start with it).
PSEUDO_PREFIX = "~pseudo-"

#: Default pseudo-identity settings for dlib 128-D embeddings: average linkage over the
#: 10-nearest-neighbour graph, cut at mean distance 0.55 (pairwise F = 0.948 on all of LFW,
#: see bench/bench_cluster_pseudo.py). Below 0.55 people start to split into several
#: pseudo-identities (recall 0.91 at 0.5), which weakens the k-people guarantee; above
#: it different people merge (safe, but coarser).
PSEUDO_DEFAULTS = {"method": "average", "n_neighbors": 10, "threshold": 0.55, "max_distance": None}


#: From this many faces `graph_average_linkage` merges in vectorised rounds (`_average_linkage_rounds`)
#: instead of its one-merge-at-a-time heap loop (which stays the reference below it).
ROUNDS_MIN_SAMPLES = 50_000


def graph_average_linkage(X: np.ndarray, *, threshold: float, n_neighbors: int = 10, n_jobs=None,
                          engine: str = "auto") -> np.ndarray:
    """Average-linkage clustering restricted to the k-nearest-neighbour graph; labels of shape (n,).

    Clusters merge, closest first, while their *mean* pairwise Euclidean distance
    is below ``threshold``. Only clusters joined by a neighbour edge are candidates
    (so memory stays linear in n, unlike a full linkage matrix), but the distance
    between two candidates is exact: Lance-Williams updates of the mean, and the
    members' distances computed directly when a pair had no edge. On LFW it
    gives nearly the same clusters as SciPy's full average linkage (same number
    of groups, pairwise F 0.947 against 0.949), in half the time and linear memory.

    ``engine``: ``heap`` merges one pair at a time, closest first (a Python
    loop); ``rounds`` merges every pair of clusters that are each other's
    nearest (below ``threshold``) at once, in numpy, round after round (see
    `_average_linkage_rounds`); ``auto`` uses ``rounds`` from `ROUNDS_MIN_SAMPLES` faces.
    """
    from anonfaces.cluster._neighbors import knn

    if engine not in ("auto", "heap", "rounds"):
        raise BadInputError(f"engine={engine!r} must be 'auto', 'heap' or 'rounds'")
    n = X.shape[0]
    if n < 2:
        return np.zeros(n, dtype=np.int64)
    K = min(n_neighbors, n - 1)
    dist, idx = knn(X, K, n_jobs=n_jobs)
    rows = np.repeat(np.arange(n), K)
    a = np.minimum(rows, idx.ravel())
    b = np.maximum(rows, idx.ravel())
    _, first = np.unique(a.astype(np.int64) * n + b, return_index=True)
    if engine == "rounds" or (engine == "auto" and n >= ROUNDS_MIN_SAMPLES):
        return _average_linkage_rounds(X, a[first], b[first], dist.ravel()[first], threshold)
    a, b, d = a[first].tolist(), b[first].tolist(), dist.ravel()[first].tolist()
    mean_dist: list[dict[int, float]] = [{} for _ in range(n)]  # between adjacent clusters
    for i, j, w in zip(a, b, d):
        mean_dist[i][j] = w
        mean_dist[j][i] = w
    members = [[i] for i in range(n)]
    alive = np.ones(n, dtype=bool)
    heap = [(w, i, j) for i, j, w in zip(a, b, d) if w < threshold]
    heapq.heapify(heap)

    x2 = np.einsum("ij,ij->i", X, X)  # squared norms, once

    def exact(p: int, q: int) -> float:
        P, Q = members[p], members[q]
        d2 = x2[P][:, None] - 2 * X[P] @ X[Q].T + x2[Q][None, :]
        return float(np.sqrt(np.maximum(d2, 0.0, out=d2), out=d2).sum() / d2.size)

    while heap:
        w, i, j = heapq.heappop(heap)
        if not (alive[i] and alive[j]) or mean_dist[i].get(j) != w:
            continue  # stale entry
        if len(members[i]) < len(members[j]):
            i, j = j, i
        na, nb = len(members[i]), len(members[j])
        merged = {}
        for c in (set(mean_dist[i]) | set(mean_dist[j])) - {i, j}:
            dic = mean_dist[i].get(c)
            djc = mean_dist[j].get(c)
            dic = exact(i, c) if dic is None else dic
            djc = exact(j, c) if djc is None else djc
            merged[c] = (na * dic + nb * djc) / (na + nb)
        for c in mean_dist[j]:
            mean_dist[c].pop(j, None)
        for c in mean_dist[i]:
            mean_dist[c].pop(i, None)
        mean_dist[j] = {}
        alive[j] = False
        members[i].extend(members[j])
        members[j] = []
        mean_dist[i] = merged
        for c, v in merged.items():
            mean_dist[c][i] = v
            if v < threshold:
                heapq.heappush(heap, (v, i, c))
    labels = np.empty(n, dtype=np.int64)
    for lab, c in enumerate(np.flatnonzero(alive)):
        labels[members[c]] = lab
    return labels


def _average_linkage_rounds(X: np.ndarray, a: np.ndarray, b: np.ndarray, d: np.ndarray, threshold: float) -> np.ndarray:
    """Average linkage over a neighbour graph, merging reciprocal nearest pairs in vectorised rounds.

    ``(a, b, d)``: the graph's edges (a < b, each once) and their distances.
    Each round, every cluster finds its nearest adjacent cluster (exact mean
    pairwise distance); every pair that is each other's nearest, below
    ``threshold``, merges, all at once. A merged cluster's distance to a
    neighbour is the sum of its parts' (Lance-Williams), a part with no edge to
    that neighbour computed exactly over all member pairs (gathered in numpy,
    summed with ``bincount``); the other clusters keep theirs. Average linkage
    is reducible, so merging reciprocal nearest neighbours together gives the
    same hierarchy as merging the closest pair first (on the full distance
    matrix; over a neighbour graph nearly so: bench/bench_scale.py measures the
    agreement with the heap loop). Work is a few sorts of the edge list per round.
    """
    n = X.shape[0]
    labels = np.arange(n, dtype=np.int64)
    size = np.ones(n, dtype=np.int64)
    ea, eb, w = a.astype(np.int64), b.astype(np.int64), np.asarray(d, dtype=np.float64)
    m = n
    rounds = 0
    while True:
        near = w < threshold
        if not near.any():
            break
        rounds += 1
        src = np.concatenate([ea[near], eb[near]])
        dst = np.concatenate([eb[near], ea[near]])
        ww = np.concatenate([w[near], w[near]])
        order = np.lexsort((dst, ww, src))
        src, dst = src[order], dst[order]
        head = np.ones(src.size, dtype=bool)
        head[1:] = src[1:] != src[:-1]
        nn = np.full(m, -1, dtype=np.int64)
        nn[src[head]] = dst[head]
        p = np.flatnonzero(nn >= 0)
        q = nn[p]
        pair = (nn[q] == p) & (p < q)
        p, q = p[pair], q[pair]
        # new cluster ids: q joins p; ids compacted
        rep = np.arange(m, dtype=np.int64)
        rep[q] = p
        keep = np.ones(m, dtype=bool)
        keep[q] = False
        new_id = np.cumsum(keep) - 1
        remap = new_id[rep]
        m_new = int(keep.sum())
        changed = np.zeros(m, dtype=bool)
        changed[p] = changed[q] = True
        new_size = np.bincount(remap, weights=size, minlength=m_new).astype(np.int64)
        na, nb = remap[ea], remap[eb]
        touched = changed[ea] | changed[eb]
        live = na != nb
        # unchanged edges keep their distance
        ka, kb, kw = na[live & ~touched], nb[live & ~touched], w[live & ~touched]
        # edges touching a merged cluster: sum of all member-pair distances = the old edges' sums
        # (Lance-Williams for the mean) + the old cluster pairs that had no edge, computed exactly
        sel = live & touched
        ta, tb = np.minimum(na[sel], nb[sel]), np.maximum(na[sel], nb[sel])
        ukey, inv = np.unique(ta * m_new + tb, return_inverse=True)
        ta, tb = ukey // m_new, ukey % m_new
        pair_sum = np.bincount(inv, weights=(w * size[ea] * size[eb])[sel], minlength=ukey.size)
        covered = np.bincount(inv, weights=(size[ea] * size[eb])[sel].astype(np.float64), minlength=ukey.size)
        total = (new_size[ta] * new_size[tb]).astype(np.float64)
        need = np.flatnonzero(covered < total)
        if need.size:
            kept_old = np.flatnonzero(keep)  # new id -> its first old cluster
            partner = np.full(m, -1, dtype=np.int64)
            partner[p] = q  # -> its second one, if it merged
            comps_a = np.stack([kept_old[ta[need]], partner[kept_old[ta[need]]]], axis=1)
            comps_b = np.stack([kept_old[tb[need]], partner[kept_old[tb[need]]]], axis=1)
            ca = np.repeat(comps_a, 2, axis=1).ravel()
            cb = np.tile(comps_b, (1, 2)).ravel()
            owner = np.repeat(need, 4)
            ok = (ca >= 0) & (cb >= 0)
            ca, cb, owner = ca[ok], cb[ok], owner[ok]
            lo_, hi_ = np.minimum(ca, cb), np.maximum(ca, cb)
            missing = ~np.isin(lo_ * m + hi_, ea[touched] * m + eb[touched])  # the pairs had no edge
            lo_, hi_, owner = lo_[missing], hi_[missing], owner[missing]
            means = _mean_distances(X, labels, size, lo_, hi_)
            pair_sum += np.bincount(owner, weights=means * size[lo_] * size[hi_], minlength=ukey.size)
        tw = pair_sum / total
        labels = remap[labels]
        m = m_new
        ea, eb, w = np.concatenate([ka, ta]), np.concatenate([kb, tb]), np.concatenate([kw, tw])
        size = new_size
    logger.info("average linkage: %d faces -> %d clusters in %d vectorised rounds", n, m, rounds)
    _, labels = np.unique(labels, return_inverse=True)
    return labels.astype(np.int64)


def _mean_distances(X: np.ndarray, labels: np.ndarray, size: np.ndarray, pa: np.ndarray, pb: np.ndarray,
                    budget: int = 200_000) -> np.ndarray:
    """Mean Euclidean distance over all member pairs of clusters ``pa[i]`` and ``pb[i]`` (exact), vectorised."""
    out = np.empty(pa.size, dtype=np.float64)
    if not pa.size:
        return out
    order = np.argsort(labels, kind="stable")
    start = np.zeros(size.size + 1, dtype=np.int64)
    np.cumsum(size, out=start[1:])
    counts = size[pa] * size[pb]
    cum = np.cumsum(counts)
    lo = 0
    while lo < pa.size:  # blocks of about `budget` member pairs
        hi = max(lo + 1, int(np.searchsorted(cum, (cum[lo - 1] if lo else 0) + budget, side="right")))
        sl = slice(lo, hi)
        c = counts[sl]
        which = np.repeat(np.arange(hi - lo), c)
        offset = np.arange(c.sum()) - np.repeat(np.cumsum(c) - c, c)
        nb = size[pb[sl]][which]
        fa = order[start[pa[sl]][which] + offset // nb]
        fb = order[start[pb[sl]][which] + offset % nb]
        diff = X[fa]
        diff -= X[fb]
        dist = np.sqrt(np.einsum("ij,ij->i", diff, diff))  # blocks of `budget` pairs: ~2 x budget x d x 8 bytes
        out[sl] = np.bincount(which, weights=dist, minlength=hi - lo) / c
        lo = hi
    return out


def pseudo_identity_labels(
    X: np.ndarray,
    *,
    method: str = PSEUDO_DEFAULTS["method"],
    n_neighbors: int = PSEUDO_DEFAULTS["n_neighbors"],
    threshold: float = PSEUDO_DEFAULTS["threshold"],
    max_distance: float | None = PSEUDO_DEFAULTS["max_distance"],
    n_jobs=None,
) -> np.ndarray:
    """Group photos into pseudo-identities; labels of shape (n,), every photo >= 0.

    Methods (distances are Euclidean on the embeddings):

    - ``"average"`` (default): `graph_average_linkage` cut at mean distance ``threshold``
      over the ``n_neighbors``-nearest-neighbour graph (``max_distance`` unused).
    - ``"aroc"``: approximate rank-order clustering, linking two photos when their
      rank-order distance is below ``threshold`` **and** their distance is below
      ``max_distance``; transitive merging.
    - ``"components"``: connected components of the graph "distance < max_distance"
      over each photo's ``n_neighbors`` nearest neighbours.

    A photo linked to nobody is a pseudo-identity of its own.
    """
    from anonfaces.cluster._rank_order import neighbour_lists, rank_order_distances

    X = np.asarray(X, dtype=np.float64)
    n = X.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if method not in ("average", "aroc", "components"):
        raise BadInputError(f"pseudo-identity method={method!r} must be 'average', 'aroc' or 'components'")
    if method == "average":
        return graph_average_linkage(X, threshold=threshold, n_neighbors=n_neighbors, n_jobs=n_jobs)
    idx, dist = neighbour_lists(X, n_neighbors, n_jobs=n_jobs)
    link = np.ones(idx.shape, dtype=bool)
    if max_distance is not None:
        link &= dist < max_distance
    if method == "aroc":
        link &= rank_order_distances(idx) < threshold
    link[:, 0] = False
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    a, j = np.nonzero(link)
    graph = coo_matrix((np.ones(a.size), (a, idx[a, j])), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    return comp.astype(np.int64)


def _labels(name: str, values, n: int) -> np.ndarray:
    """``values`` as an object array of ``n`` strings ('' for None; all '' when ``values`` is None)."""
    if values is None:
        return np.full(n, "", dtype=object)
    arr = np.asarray(values, dtype=object)
    if arr.shape != (n,):
        raise BadInputError(f"{name} has shape {arr.shape}; expected ({n},)")
    return np.array(["" if v is None else str(v) for v in arr], dtype=object)


def fill_identities(X: np.ndarray, identities=None, *, groups=None, **pseudo_params) -> tuple[np.ndarray, int]:
    """Return ``(units, n_pseudo)``: each face's identity, with pseudo-identities for unknown faces.

    ``identities`` of shape (n,) holds names, '' (or None) for unknown; None
    means all unknown. Unknown faces are grouped among themselves with
    `pseudo_identity_labels` and named ``"~pseudo-<i>"``.

    ``groups`` of shape (n,), optional: faces known to be one person without a name
    (a video's face track, `Encodings.track_units`; '' for none). An unknown face of a
    group never goes apart from its group: each group enters the pseudo-identity
    grouping as one unit (its mean embedding), so tracks of the same person in
    several videos still join one pseudo-identity, and a cluster counts people, never
    tracks of one person. Known identities win over groups.
    """
    n = X.shape[0]
    ids = _labels("identities", identities, n)
    grp = _labels("groups", groups, n)
    unknown = np.flatnonzero(ids == "")
    n_pseudo = 0
    if unknown.size:
        # units: one per group (its faces' mean), one per ungrouped face
        keys = [g if g else f"#{i}" for i, g in zip(unknown.tolist(), grp[unknown].tolist())]
        order = {key: j for j, key in enumerate(dict.fromkeys(keys))}  # first appearance: no groups -> as before
        names, inverse = list(order), np.array([order[key] for key in keys], dtype=np.intp)
        Xu = np.zeros((len(names), X.shape[1]), dtype=np.float64)
        np.add.at(Xu, inverse, np.asarray(X[unknown], dtype=np.float64))
        Xu /= np.bincount(inverse, minlength=len(names))[:, None]
        lab = pseudo_identity_labels(Xu, **pseudo_params)[inverse]
        n_pseudo = int(lab.max()) + 1
        ids[unknown] = [f"{PSEUDO_PREFIX}{i}" for i in lab]
        logger.info("formed %d pseudo-identities from %d unlabelled faces (%d units)", n_pseudo, unknown.size, len(names))
    return ids.astype(str), n_pseudo
