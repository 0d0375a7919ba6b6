"""HDBSCAN at 100,000 faces with PCA reduction, the at-least-k guarantee checked.

    python bench/bench_cluster_hdbscan.py --n 100000 --out results.jsonl

Runs the `hdbscan` estimator of anonfaces (PCA to ``n_components`` dimensions,
then HDBSCAN, then the outlier/at-least-k step on the original 128-D
embeddings) on tiled LFW, once with photos as the unit and once with
identities, in separate processes (wall time and peak RSS of the process tree).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cluster_common import (
    DEFAULT_DATA,
    make_set,
    record,
    run_measured,
    worker_argv,
)


def worker(unit: str, n: int, k: int, data: str, seed: int, params: dict) -> None:
    from anonfaces.cluster import HDBSCANClusterer
    from anonfaces.cluster.metrics import distinct_identities, pairwise_scores

    X, ids = make_set(n, data=data, seed=seed)
    start = time.perf_counter()
    est = HDBSCANClusterer(k=k, n_jobs=2, random_state=seed, **params)
    est.fit(X, identities=ids if unit == "identity" else None)
    fit_s = time.perf_counter() - start
    labels = est.labels_
    sizes = np.bincount(labels)
    distinct = distinct_identities(labels, ids)
    split = sum(np.unique(labels[ids == p]).size > 1 for p in np.unique(ids)) if unit == "identity" else None
    print(json.dumps({
        "fit_s": fit_s, "clusters": int(sizes.size), "min_size": int(sizes.min()), "max_size": int(sizes.max()),
        "noise_labels": int((labels < 0).sum()), "min_distinct_identities": int(distinct.min()),
        "identities_split_over_clusters": split, "units": int(est.unit_labels_.size),
        "pairwise_f_vs_people": pairwise_scores(labels, ids)["f_measure"],
    }))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--n", type=int, default=100000)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--units", nargs="*", default=["photo", "identity"])
    ap.add_argument("--params", default="{}", help="JSON settings for HDBSCANClusterer")
    ap.add_argument("--out", default=None)
    ap.add_argument("--timeout", type=float, default=1200)
    ap.add_argument("--worker", nargs=2, metavar=("UNIT", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    params = json.loads(args.params)
    if args.worker:
        worker(args.worker[0], int(args.worker[1]), args.k, args.data, args.seed, params)
        return
    common = ["--k", str(args.k), "--data", args.data, "--seed", str(args.seed), "--params", args.params]
    for unit in args.units:
        res = run_measured(worker_argv(__file__, unit, str(args.n), *common), timeout=args.timeout)
        record(args.out, {"bench": "hdbscan", "unit": unit, "n": args.n, "k": args.k, "params": params, **res})


if __name__ == "__main__":
    main()
