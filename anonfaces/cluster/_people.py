"""k people, not k photos: identities as the unit of the guarantee.

When identities are known, `BaseKClusterer.fit(X, identities=...)` clusters the
identities (their mean embeddings), so every cluster holds at least k distinct
identities and all photos of one identity share a cluster.

When they are not known (or only partly: '' marks an unknown face), the photos
of unknown faces are first grouped into *pseudo-identities* here, and the same
rule is applied to them.
"""

from __future__ import annotations

import logging

import numpy as np

from anonfaces.errors import BadInputError

logger = logging.getLogger(__name__)

#: Prefix of the names given to pseudo-identities (real folder names never start with it).
PSEUDO_PREFIX = "~pseudo-"

#: Default pseudo-identity settings for dlib 128-D embeddings (tuned on LFW, see bench/).
PSEUDO_DEFAULTS = {"method": "aroc", "n_neighbors": 20, "threshold": 1.0, "max_distance": 0.5}


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
    if method not in ("aroc", "components"):
        raise BadInputError(f"pseudo-identity method={method!r} must be 'aroc' or 'components'")
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


def fill_identities(X: np.ndarray, identities=None, **pseudo_params) -> tuple[np.ndarray, int]:
    """Return ``(units, n_pseudo)``: each face's identity, with pseudo-identities for unknown faces.

    ``identities`` of shape (n,) holds names, '' (or None) for unknown; None
    means all unknown. Unknown faces are grouped among themselves with
    `pseudo_identity_labels` and named ``"~pseudo-<i>"``.
    """
    n = X.shape[0]
    if identities is None:
        ids = np.full(n, "", dtype=object)
    else:
        ids = np.asarray(identities, dtype=object)
        if ids.shape != (n,):
            raise BadInputError(f"identities has shape {ids.shape}; expected ({n},)")
        ids = np.array(["" if v is None else str(v) for v in ids], dtype=object)
    unknown = np.flatnonzero(ids == "")
    n_pseudo = 0
    if unknown.size:
        lab = pseudo_identity_labels(X[unknown], **pseudo_params)
        n_pseudo = int(lab.max()) + 1
        ids[unknown] = [f"{PSEUDO_PREFIX}{i}" for i in lab]
        logger.info("formed %d pseudo-identities from %d unlabelled faces", n_pseudo, unknown.size)
    return ids.astype(str), n_pseudo
