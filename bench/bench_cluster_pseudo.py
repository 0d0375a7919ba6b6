"""Pseudo-identities on all of LFW: pairwise F-measure against the true people.

    python bench/bench_cluster_pseudo.py --out results.jsonl [--grid]

Rows: the issue's anchor (connected components of "distance < 0.4"), plain
approximate rank-order clustering (rank-order distance only, no distance cap),
rank-order with a distance cap, SciPy's full average linkage (O(n²) memory) and
anonfaces' pseudo-identity default (average linkage on the 10-NN graph, cut at 0.55).
F is reported over all faces and over the faces of people with at least two
photos. ``--grid`` adds the settings sweep the default was chosen from.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cluster_common import DEFAULT_DATA, load_lfw, record


def components_at(X: np.ndarray, eps: float) -> np.ndarray:
    from scipy.sparse.csgraph import connected_components
    from sklearn.neighbors import radius_neighbors_graph

    graph = radius_neighbors_graph(X, eps, mode="connectivity", include_self=False)
    return connected_components(graph, directed=False)[1]


def main() -> None:
    from anonfaces.cluster import PSEUDO_DEFAULTS, pseudo_identity_labels
    from anonfaces.cluster._rank_order import rank_order_labels
    from anonfaces.cluster.metrics import pairwise_scores

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--out", default=None)
    ap.add_argument("--grid", action="store_true")
    args = ap.parse_args()
    X, ids, _ = load_lfw(args.data)
    X = X.astype(np.float64)
    people, counts = np.unique(ids, return_counts=True)
    multi = np.isin(ids, people[counts >= 2])

    def score(name, labels, seconds, **settings):
        labels = np.asarray(labels)
        noise = labels < 0
        if noise.any():  # unlinked faces are singletons
            labels = labels.copy()
            labels[noise] = labels.max() + 1 + np.arange(noise.sum())
        all_ = pairwise_scores(labels, ids)
        two = pairwise_scores(labels[multi], ids[multi])
        record(args.out, {
            "bench": "pseudo-identities", "method": name, "settings": settings, "n_faces": int(X.shape[0]),
            "n_people": int(people.size), "groups": int(np.unique(labels).size), "seconds": seconds,
            "f_all": all_["f_measure"], "precision_all": all_["precision"], "recall_all": all_["recall"],
            "f_multi": two["f_measure"], "precision_multi": two["precision"], "recall_multi": two["recall"],
        })

    t = time.perf_counter()
    score("connected components", components_at(X, 0.4), time.perf_counter() - t, eps=0.4)
    for thr in (0.5, 1.0, 2.0):
        t = time.perf_counter()
        score("rank-order only", rank_order_labels(X, n_neighbors=20, threshold=thr), time.perf_counter() - t,
              n_neighbors=20, threshold=thr)
    t = time.perf_counter()
    score("rank-order + distance cap", rank_order_labels(X, n_neighbors=10, threshold=2.0, max_distance=0.4),
          time.perf_counter() - t, n_neighbors=10, threshold=2.0, max_distance=0.4)
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import pdist

    t = time.perf_counter()
    Z = linkage(pdist(X), method="average")
    score("scipy full average linkage", fcluster(Z, 0.55, criterion="distance"), time.perf_counter() - t, threshold=0.55)
    t = time.perf_counter()
    score("anonfaces default", pseudo_identity_labels(X), time.perf_counter() - t, **PSEUDO_DEFAULTS)
    if args.grid:
        for K, thr, dmax in itertools.product((10, 20), (1.0, 2.0), (0.4, 0.45, 0.5)):
            t = time.perf_counter()
            labels = pseudo_identity_labels(X, method="aroc", n_neighbors=K, threshold=thr, max_distance=dmax)
            score("grid aroc", labels, time.perf_counter() - t, n_neighbors=K, threshold=thr, max_distance=dmax)
        for K, thr in itertools.product((10, 30), (0.45, 0.5, 0.55, 0.6)):
            t = time.perf_counter()
            labels = pseudo_identity_labels(X, method="average", n_neighbors=K, threshold=thr)
            score("grid average", labels, time.perf_counter() - t, n_neighbors=K, threshold=thr)


if __name__ == "__main__":
    main()
