"""The Ray backend against the local pool: encoding throughput (1 and 2 workers) and every stage end to end.

Usage (from the repository root)::

    python bench/bench_ray.py throughput --photos 400 --rounds 2 --out bench_ray.jsonl
    python bench/bench_ray.py e2e --photos 1000 --out bench_ray.jsonl        # 0: all of LFW (13,233 photos)

**throughput**: the first ``--photos`` LFW photos in path order (file symlinks in a
temporary folder), encoded into a store (`encode_photos(..., store=True)`: the
workers write the shards, the same work for both backends) by ``local`` with
``--jobs`` 1 and 2 and by ``ray`` with 1 and 2 workers (a Ray instance of as many
CPUs, started by the run), in turn, ``--rounds`` times. Each configuration runs in
its own process: pool started, every worker warmed up (models loaded on a few
chunks), then the timed encode. Reported per run: ``warm_s`` (the timed encode),
``cold_s`` (process start to end, Ray's start-up included), the CPU seconds and
peak RSS of the whole process tree (Ray's own processes included). Scaling 1 -> 2
workers = t1 / (2 t2); Ray's overhead = t_ray / t_local - 1, for the same workers.

**e2e**: the first ``--photos`` LFW photos (0: all), every stage as the CLI runs it,
local and Ray (``--backend ray``), each stage its own measured process:
``encode --store``, ``cluster`` (fixed-size K-Means, k = 5, read from the store),
``anonymize`` (k-same morph with the clustering), ``evaluate --run``. ``--work DIR
--stages anonymize evaluate`` times those stages again in a kept run's folder
(``--keep`` prints nothing: the folder is ``bench-ray-e2e-*`` under the temp dir).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]  # this checkout's anonfaces
from bench_cluster_common import record, run_measured

REPO = Path(__file__).resolve().parents[1]
LFW = Path(os.environ.get("ANONFACES_SHARED_DATA", REPO.parent / "shared" / "data")) / "lfw"
PY = sys.executable


def link_subset(n: int, dest: Path) -> Path:
    """The first ``n`` LFW photos in path order (0: all), as file symlinks under ``dest``."""
    from anonfaces.utils.images import list_images

    photos = list_images(LFW)
    photos = photos[:n] if n else photos
    for rel in photos:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            os.symlink(LFW / rel, target)
    return dest


def tree_cpu_s() -> float:
    """CPU seconds (user + system) of this process and every live descendant (Ray's raylet and workers included)."""
    import psutil

    me = psutil.Process()
    total = 0.0
    for p in [me, *me.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def worker_throughput(args) -> None:
    """In its own process: start the pool, warm every worker up, time one encode into a store; print JSON."""
    t_start = time.perf_counter()
    from anonfaces.encode import encode_photos
    from anonfaces.utils.parallel import make_pool

    if args.backend == "ray":
        from anonfaces.utils.ray_pool import start_local_ray

        start_local_ray(args.workers)
    work = Path(args.work)
    with make_pool(args.workers, backend=args.backend, progress=False) as pool:
        t0 = time.perf_counter()
        encode_photos(args.warmup_dir, work / "warm.store", store=True, pool=pool, chunk_size=4)
        t1, c1 = time.perf_counter(), tree_cpu_s()
        report = encode_photos(args.dataset, work / "timed.store", store=True, pool=pool, chunk_size=args.chunk)
        t2, c2 = time.perf_counter(), tree_cpu_s()
    print(json.dumps({"warmup_s": t1 - t0, "warm_s": t2 - t1, "warm_cpu_s": c2 - c1, "cold_s": time.perf_counter() - t_start,
                      "faces": report.n_faces, "photos": report.n_images}))


def throughput(args) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    try:
        data = link_subset(args.photos, tmp / "photos")
        warm = tmp / "warm"
        from anonfaces.utils.images import list_images

        for rel in list_images(LFW)[-16:]:  # the last photos: not among the timed ones
            (warm / rel).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(LFW / rel, warm / rel)
        configs = [("local", 1), ("local", 2), ("ray", 1), ("ray", 2)]
        for rnd in range(args.rounds):
            for backend, workers in configs:
                work = tmp / f"{backend}-{workers}-{rnd}"
                work.mkdir()
                argv = [PY, __file__, "_throughput", "--backend", backend, "--workers", str(workers), "--dataset", str(data),
                        "--warmup-dir", str(warm), "--work", str(work), "--chunk", str(args.chunk)]
                row = run_measured(argv, timeout=args.timeout)
                record(args.out, {"bench": "ray-throughput", "round": rnd, "backend": backend, "workers": workers,
                                  "photos": args.photos, "chunk": args.chunk, **row})
                shutil.rmtree(work, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def e2e(args) -> None:
    tmp = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="bench-ray-e2e-"))
    try:
        data = link_subset(args.photos, tmp / "photos")
        cli = [PY, __file__, "_cli"]
        for backend in args.backends:
            work = tmp / backend
            work.mkdir(exist_ok=bool(args.work))
            for stage in args.stages:  # a stage run again starts from nothing
                for name in {"encode": ["enc.store"], "cluster": ["clusters.csv"], "anonymize": ["out", "out.private"],
                             "evaluate": ["eval"]}[stage]:
                    if (work / name).is_dir():
                        shutil.rmtree(work / name)
                    else:
                        (work / name).unlink(missing_ok=True)
            b = ["--backend", backend, "--jobs", "2", "--no-progress"]
            stages = [
                ("encode", [*cli, "encode", "--dataset", str(data), "--encodings", str(work / "enc.store"), "--store", *b]),
                ("cluster", [*cli, "cluster", "--encodings", str(work / "enc.store"), "--k", "5", "--jobs", "2",
                             "--out", str(work / "clusters.csv")]),
                ("anonymize", [*cli, "anonymize", "--dataset", str(data), "--out", str(work / "out"), "--k", "5", "--encodings",
                               str(work / "enc.store"), "--clusters", str(work / "clusters.csv"), *b]),
                ("evaluate", [*cli, "evaluate", "--run", str(work / "out"), "--out", str(work / "eval"), *b]),
            ]
            for stage, argv in [(stage, argv) for stage, argv in stages if stage in args.stages]:
                row = run_measured(argv, timeout=args.timeout)
                record(args.out, {"bench": "ray-e2e", "backend": backend, "stage": stage, "photos": args.photos or "all",
                                  "command": "anonfaces " + " ".join(argv[3:]), **row})
                if row["status"] != "ok":
                    break
    finally:
        if not args.keep and not args.work:
            shutil.rmtree(tmp, ignore_errors=True)


def worker_cli(argv: list[str]) -> None:
    """Run one ``anonfaces`` command in this process; the last stdout line is JSON (for run_measured)."""
    from anonfaces.cli import main as cli_main

    t = time.perf_counter()
    try:
        cli_main(argv, standalone_mode=False)
    except SystemExit as exc:
        if exc.code:
            raise
    print()
    print(json.dumps({"stage_s": time.perf_counter() - t}))


def main() -> None:
    if sys.argv[1:2] == ["_cli"]:
        return worker_cli(sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("throughput")
    t.add_argument("--photos", type=int, default=400)
    t.add_argument("--rounds", type=int, default=1)
    t.add_argument("--chunk", type=int, default=16)
    t.add_argument("--timeout", type=float, default=1800)
    t.add_argument("--out", default=None)
    e = sub.add_parser("e2e")
    e.add_argument("--photos", type=int, default=1000, help="0: all of LFW")
    e.add_argument("--backends", nargs="+", default=["local", "ray"])
    e.add_argument("--timeout", type=float, default=3600)
    e.add_argument("--keep", action="store_true", help="keep the temporary folder")
    e.add_argument("--work", default=None, help="run in this folder (kept), e.g. a kept run's, to time some stages again")
    e.add_argument("--stages", nargs="+", default=["encode", "cluster", "anonymize", "evaluate"],
                   choices=["encode", "cluster", "anonymize", "evaluate"])
    e.add_argument("--out", default=None)
    w = sub.add_parser("_throughput")
    for name in ("--backend", "--dataset", "--warmup-dir", "--work"):
        w.add_argument(name, required=True)
    w.add_argument("--workers", type=int, required=True)
    w.add_argument("--chunk", type=int, default=16)
    args = ap.parse_args()
    {"throughput": throughput, "e2e": e2e, "_throughput": worker_throughput}[args.cmd](args)


if __name__ == "__main__":
    main()
