"""Fixed-size K-Means at scale: anonfaces' partition method against k-means-constrained.

    python bench/bench_cluster_fixed_kmeans.py --compare 4000 8000 16000 --scale 100000 1000000 --out results.jsonl

Each run is a separate process; time is wall time of the process (data loading
included, about 1 s), memory is the peak RSS of its whole process tree (sampled
every 0.1 s). Both methods get the same faces (same seed), k = 10, n // k clusters
of 10..19. k-means-constrained runs with its defaults (n_init=10, one process),
as in the issue's anchor; anonfaces with its defaults and n_jobs=2.
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


def worker(method: str, n: int, k: int, data: str, seed: int, extra: dict) -> None:
    from anonfaces.cluster import FixedSizeKMeans
    from anonfaces.cluster.metrics import ssd

    X, _ = make_set(n, data=data, seed=seed)
    X = X.astype(np.float64)
    start = time.perf_counter()
    if method == "kmc":
        from k_means_constrained import KMeansConstrained

        labels = KMeansConstrained(n_clusters=n // k, size_min=k, size_max=2 * k - 1, random_state=seed).fit_predict(X)
    else:
        labels = FixedSizeKMeans(k=k, method=method, n_jobs=2, random_state=seed, **extra).fit(X).labels_
    fit_s = time.perf_counter() - start
    sizes = np.bincount(labels)
    print(json.dumps({
        "fit_s": fit_s, "ssd": ssd(X, labels), "clusters": int(sizes.size),
        "min_size": int(sizes.min()), "max_size": int(sizes.max()),
    }))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--compare", type=int, nargs="*", default=[4000, 8000])
    ap.add_argument("--scale", type=int, nargs="*", default=[100000])
    ap.add_argument("--params", default="{}", help="JSON settings for FixedSizeKMeans")
    ap.add_argument("--out", default=None, help="append JSON lines here")
    ap.add_argument("--kmc-timeout", type=float, default=1800)
    ap.add_argument("--worker", nargs=2, metavar=("METHOD", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    extra = json.loads(args.params)
    if args.worker:
        worker(args.worker[0], int(args.worker[1]), args.k, args.data, args.seed, extra)
        return
    common = ["--k", str(args.k), "--data", args.data, "--seed", str(args.seed), "--params", args.params]
    small_leaves = ["--k", str(args.k), "--data", args.data, "--seed", str(args.seed),
                    "--params", json.dumps({**extra, "leaf_size": 1000})]
    for n in args.compare:
        ours = run_measured(worker_argv(__file__, "partition", str(n), *common))
        record(args.out, {"bench": "fixed-kmeans", "method": "anonfaces partition", "n": n, "k": args.k, "params": extra, **ours})
        # the leaf size used above 50,000 faces, to show what the 100k/1M runs trade
        ours_small = run_measured(worker_argv(__file__, "partition", str(n), *small_leaves))
        record(args.out, {"bench": "fixed-kmeans", "method": "anonfaces partition", "n": n, "k": args.k,
                          "params": {**extra, "leaf_size": 1000}, **ours_small})
        kmc = run_measured(worker_argv(__file__, "kmc", str(n), *common), timeout=args.kmc_timeout)
        record(args.out, {"bench": "fixed-kmeans", "method": "k-means-constrained", "n": n, "k": args.k, **kmc})
        if ours.get("status") == "ok" and kmc.get("status") == "ok":
            record(args.out, {"bench": "fixed-kmeans", "n": n, "ssd_ratio_ours_over_kmc": ours["ssd"] / kmc["ssd"],
                              "ssd_ratio_leaf1000_over_kmc": ours_small.get("ssd", float("nan")) / kmc["ssd"]})
    for n in args.scale:
        ours = run_measured(worker_argv(__file__, "partition", str(n), *common))
        record(args.out, {"bench": "fixed-kmeans", "method": "anonfaces partition", "n": n, "k": args.k, "params": extra, **ours})


if __name__ == "__main__":
    main()
