"""Clustering read straight from a sharded encodings store, at 100,000 and 1,000,000 faces.

    python bench/bench_scale.py --data runs/lfw/encodings.npz --sizes 100000 1000000 \\
        --workdir runs/scale --out runs/scale/results.jsonl

For each size, four separate processes (time = wall time of the process, memory =
peak RSS of its whole process tree, sampled every 0.1 s; see bench_cluster_common):

``make``    generates the faces and writes them as a store (shards of 100,000 faces);
``kmeans``  reads the store's embeddings (lazily: no other column) and runs
            fixed-size K-Means, the default algorithm, with photos as the units;
``people``  the default when identities are unknown: pseudo-identities over all
            faces (`pseudo_identity_labels`, average linkage on the 10-NN graph),
            then fixed-size K-Means over them (k people per cluster); the
            pseudo-identities are scored against the true synthetic people;
``knn``     the 10-nearest-neighbour graph alone (the first step of ``people``);
``recall``  the nearest-neighbour index's recall of the 10 nearest neighbours on
            2,000 random faces against an exact search (1 where the search is exact).

The faces are synthetic but built from real dlib embeddings of LFW (``--data``,
one central face per photo; see bench_cluster_common.load_lfw). Two models:

``--people lfw`` (default): the people are LFW's own (those in ``--data``), each
    synthetic face picks one uniformly at random and is that person's mean
    embedding plus a within-person deviation drawn from the real ones (a real
    LFW photo's offset from its person's mean, people with >= 2 photos), plus
    Gaussian jitter of ``--jitter`` (default 0.25) times the measured
    within-person spread per dimension, so that no two synthetic faces coincide.
    Many photos of few people, like a video archive.
``--people gaussian``: new people, their means drawn from a Gaussian fitted to
    the LFW people's means (mean and full covariance), photos per person drawn
    from LFW's own distribution, deviations as above. Many people with few
    photos each, like a web collection.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]  # this checkout's anonfaces
from bench_cluster_common import (
    DEFAULT_DATA,
    load_lfw,
    record,
    run_measured,
    worker_argv,
)

SHARD_ROWS = 100_000


# --- the synthetic faces ---------------------------------------------------------------------
def lfw_model(data: str) -> dict:
    """Means of LFW's people, real within-person deviations and LFW's photos-per-person counts."""
    X, ids, _ = load_lfw(data)
    X = X.astype(np.float64)
    names, inv, counts = np.unique(ids, return_inverse=True, return_counts=True)
    means = np.zeros((names.size, X.shape[1]))
    np.add.at(means, inv, X)
    means /= counts[:, None]
    multi = counts[inv] >= 2
    # deviations from a mean of m photos are shrunk by sqrt((m-1)/m): undo that
    scale = np.sqrt(counts[inv] / np.maximum(counts[inv] - 1, 1))[:, None]
    dev = ((X - means[inv]) * scale)[multi]
    return {"means": means, "names": names, "counts": counts, "deviations": dev,
            "within_std": dev.std(axis=0), "n_lfw_faces": X.shape[0]}


def synthesize(n: int, model: dict, *, people: str, jitter: float, seed: int):
    """(X float32 (n, d), identities str (n,)): see the module doc."""
    rng = np.random.RandomState(seed)
    d = model["means"].shape[1]
    if people == "lfw":
        who = rng.randint(model["names"].size, size=n)
        centres, names = model["means"], model["names"]
    else:
        mu = model["means"].mean(axis=0)
        cov = np.cov(model["means"], rowvar=False)
        sizes = []
        while sum(sizes) < n:
            sizes.extend(rng.choice(model["counts"], size=max(1, (n - sum(sizes)) // 2)).tolist())
        sizes = np.array(sizes)
        sizes = sizes[: np.searchsorted(np.cumsum(sizes), n) + 1]
        sizes[-1] -= sizes.sum() - n
        centres = rng.multivariate_normal(mu, cov, size=sizes.size)
        names = np.array([f"person{i:07d}" for i in range(sizes.size)])
        who = rng.permutation(np.repeat(np.arange(sizes.size), sizes))
    X = np.empty((n, d), np.float32)
    step = 100_000
    for start in range(0, n, step):
        w = who[start : start + step]
        dev = model["deviations"][rng.randint(model["deviations"].shape[0], size=w.size)]
        noise = rng.normal(0.0, 1.0, size=(w.size, d)) * (jitter * model["within_std"])
        X[start : start + step] = centres[w] + dev + noise
    return X, names[who]


def make_store(n: int, store: str, data: str, people: str, jitter: float, seed: int) -> dict:
    """Write n synthetic faces as a store, shard by shard."""
    from anonfaces.encode import Encodings
    from anonfaces.encode.store import EncodingsStore

    model = lfw_model(data)
    X, ids = synthesize(n, model, people=people, jitter=jitter, seed=seed)
    keys = [f"{i:06d}" for i in range(-(-n // SHARD_ROWS))]
    meta = {"encoder": {"name": "dlib", "num_jitters": 1}, "dataset": f"synthetic:{people}",
            "synthetic": {"n": n, "people": people, "jitter": jitter, "seed": seed, "lfw_faces": model["n_lfw_faces"],
                          "lfw_people": int(model["names"].size)}}
    st = EncodingsStore.create(store, dim=X.shape[1], meta=meta, planned=keys)
    for i, key in enumerate(keys):
        rows = slice(i * SHARD_ROWS, (i + 1) * SHARD_ROWS)
        m = len(X[rows])
        st.write_shard(Encodings(
            embeddings=X[rows], paths=[f"{p}/{j:08d}.jpg" for p, j in zip(ids[rows].tolist(), range(i * SHARD_ROWS, i * SHARD_ROWS + m))],
            face_index=np.zeros(m, np.int32), boxes_ltrb=np.zeros((m, 4), np.float32), scores=np.ones(m, np.float32),
            landmarks68=np.full((m, 68, 2), np.nan, np.float32), landmarks5=np.full((m, 5, 2), np.nan, np.float32),
            identities=ids[rows], image_sizes=np.zeros((m, 2), np.int32), meta=meta), key=key)
    size = sum(f.stat().st_size for f in Path(store).iterdir())
    return {"people": int(np.unique(ids).size), "store_mb": size / 2**20, "shards": len(keys),
            "within_std_mean": float(model["within_std"].mean())}


# --- the workers -------------------------------------------------------------------------------
def _read_embeddings(store: str):
    import anonfaces

    t = time.perf_counter()
    enc = anonfaces.load_encodings(store)
    X = enc.embeddings
    return enc, X, time.perf_counter() - t, sorted(k for k in vars(enc) if not k.startswith("_") and k != "meta")


def worker(task: str, n: int, store: str, args) -> dict:
    if task == "make":
        return make_store(n, store, args.data, args.people, args.jitter, args.seed)
    from anonfaces.cluster import FixedSizeKMeans
    from anonfaces.cluster.metrics import information_loss, pairwise_scores

    enc, X, read_s, columns_read = _read_embeddings(store)
    out = {"read_s": read_s, "columns_read": columns_read, "faces": int(X.shape[0])}
    if task == "kmeans":
        t, c = time.perf_counter(), time.process_time()
        labels = FixedSizeKMeans(k=args.k, n_jobs=2, random_state=args.seed).fit(X).labels_
        out["fit_cpu_s_main_process"] = time.process_time() - c  # without the leaf-solving workers
        sizes = np.bincount(labels)
        out.update(fit_s=time.perf_counter() - t, clusters=int(sizes.size), min_size=int(sizes.min()),
                   max_size=int(sizes.max()), info_loss=information_loss(X, labels))
    elif task == "people":
        from anonfaces.cluster._people import PSEUDO_PREFIX, pseudo_identity_labels

        t, c = time.perf_counter(), time.process_time()
        if args.engine != "auto":
            from functools import partial

            import anonfaces.cluster._people as people_mod

            people_mod.graph_average_linkage = partial(people_mod.graph_average_linkage, engine=args.engine)
        import anonfaces.cluster._neighbors as nb_mod

        plain_knn, knn_time = nb_mod.knn, {}

        def timed_knn(*a, **kw):  # the neighbour search's share of the pseudo-identity step
            t0, c0 = time.perf_counter(), time.process_time()
            result = plain_knn(*a, **kw)
            knn_time.update(knn_s=time.perf_counter() - t0, knn_cpu_s=time.process_time() - c0)
            return result

        nb_mod.knn = timed_knn
        pseudo = pseudo_identity_labels(X, n_jobs=2)
        nb_mod.knn = plain_knn
        out.update(knn_time)
        out["pseudo_s"] = time.perf_counter() - t
        out["pseudo_cpu_s"] = time.process_time() - c  # one process (faiss' threads included)
        names = np.char.add(PSEUDO_PREFIX, pseudo.astype(str))
        t = time.perf_counter()
        model = FixedSizeKMeans(k=args.k, n_jobs=2, random_state=args.seed).fit(X, identities=names)
        out["kmeans_s"] = time.perf_counter() - t
        units = np.bincount(model.unit_labels_)
        truth = enc.identities  # read only now, after the timed part
        out.update(engine=args.engine, pseudo_identities=int(pseudo.max()) + 1, true_people=int(np.unique(truth).size),
                   clusters=int(units.size), min_people_per_cluster=int(units.min()),
                   **{f"pseudo_{k}": v for k, v in pairwise_scores(pseudo, truth).items()})
    elif task == "knn":
        from anonfaces.cluster._neighbors import knn

        t, c = time.perf_counter(), time.process_time()
        dist, _ = knn(X, 10, n_jobs=2)
        out.update(knn_s=time.perf_counter() - t, knn_cpu_s=time.process_time() - c,
                   edges_below_threshold=int((dist < 0.55).sum()))
    elif task == "recall":
        from anonfaces.cluster._neighbors import (
            EXACT_MAX_SAMPLES,
            HNSW_EF_SEARCH,
            knn,
        )

        rng = np.random.RandomState(args.seed)
        q = X[rng.choice(X.shape[0], 2000, replace=False)]
        exact_d, exact = knn(X, 11, queries=q, method="exact", n_jobs=2)
        near = exact_d[:, 1:] < 0.55  # the neighbours the pseudo-identity step can merge (column 0: the face itself)
        out.update(method="hnsw" if X.shape[0] > EXACT_MAX_SAMPLES else "exact", near_neighbours=int(near.sum()))
        for p in sorted(set(args.nprobe)) if X.shape[0] > EXACT_MAX_SAMPLES else []:
            t, c = time.perf_counter(), time.process_time()
            _, approx = knn(X, 11, queries=q, n_jobs=2, method="ivf", nprobe=p)  # index build + 2,000 queries
            out[f"ivf_nprobe_{p}"] = {"build_and_search_s": time.perf_counter() - t, "cpu_s": time.process_time() - c,
                                      **_recall(approx, exact, near)}
        if X.shape[0] > EXACT_MAX_SAMPLES:  # HNSW as knn builds it, built once, searched at several efSearch
            import faiss

            from anonfaces.cluster._neighbors import HNSW_EF_CONSTRUCTION, HNSW_M

            faiss.omp_set_num_threads(2)
            t, c = time.perf_counter(), time.process_time()
            index = faiss.IndexHNSWFlat(X.shape[1], HNSW_M, faiss.METRIC_L2)
            index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
            index.add(np.ascontiguousarray(X, dtype=np.float32))
            out["hnsw_build"] = {"s": time.perf_counter() - t, "cpu_s": time.process_time() - c, "M": HNSW_M,
                                 "efConstruction": HNSW_EF_CONSTRUCTION}
            for ef in sorted({HNSW_EF_SEARCH, *args.ef_search}):
                index.hnsw.efSearch = ef
                t, c = time.perf_counter(), time.process_time()
                _, approx = index.search(np.ascontiguousarray(q, dtype=np.float32), 11)
                out[f"hnsw_ef_{ef}"] = {"search_2000_s": time.perf_counter() - t, "cpu_s": time.process_time() - c,
                                        **_recall(approx, exact, near)}
    return out


def _recall(approx, exact, near) -> dict:
    """Share of the exact 10 nearest (and of those nearer than 0.55) found; column 0 is the query itself."""
    found = [np.isin(e[1:], a) for a, e in zip(approx, exact)]
    return {"recall_at_10": float(np.mean(found)), "recall_below_0.55": float(np.mean(np.concatenate(found)[near.ravel()]))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=DEFAULT_DATA, help="LFW encodings (.npz or store)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    ap.add_argument("--tasks", nargs="+", default=["make", "kmeans", "people", "recall"],
                    choices=["make", "kmeans", "people", "recall", "knn"])
    ap.add_argument("--people", choices=["lfw", "gaussian"], default="lfw")
    ap.add_argument("--jitter", type=float, default=0.25)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", default="runs/scale", help="where the stores are written")
    ap.add_argument("--out", default=None, help="append JSON lines here")
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--nprobe", type=int, nargs="*", default=[], help="recall: IVF cells searched (none by default)")
    ap.add_argument("--ef-search", type=int, nargs="*", default=[32, 128], help="recall: HNSW efSearch, besides the default")
    ap.add_argument("--engine", choices=["auto", "heap", "rounds"], default="auto",
                    help="people: the average-linkage merge (auto: rounds from 50,000 faces)")
    ap.add_argument("--worker", nargs=3, metavar=("TASK", "N", "STORE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        task, n, store = args.worker
        print(json.dumps(worker(task, int(n), store, args)))
        return
    for n in args.sizes:
        store = os.path.join(args.workdir, f"synthetic-{args.people}-{n}")
        for task in args.tasks:
            if task == "make" and Path(store).exists():
                import shutil

                shutil.rmtree(store)
            argv = worker_argv(__file__, task, str(n), store) + [
                "--data", args.data, "--people", args.people, "--jitter", str(args.jitter), "--k", str(args.k),
                "--seed", str(args.seed), "--nprobe", *map(str, args.nprobe), "--ef-search", *map(str, args.ef_search),
                "--engine", args.engine]
            row = run_measured(argv, timeout=args.timeout)
            record(args.out, {"bench": "scale", "task": task, "n": n, "engine": args.engine, "people_model": args.people, "k": args.k,
                              "seed": args.seed, "loadavg_at_end": list(os.getloadavg()), **row})
            if task == "make" and row["status"] != "ok":
                break


if __name__ == "__main__":
    main()
