"""Shared pieces of the clustering benchmarks: LFW embeddings, tiling, peak-memory runs.

Data: the dlib 128-D embeddings of all of LFW (``--data``, default
``runs/lfw/encodings.npz``), made once with
``anonfaces encode --dataset ../shared/data/lfw --encodings runs/lfw/encodings.npz``;
one face per photo is used (the central one, the person LFW names). A plain
``.npz`` holding only ``embeddings``, ``identities`` and ``paths`` (one face per
photo already) is read as it is.
Larger sets are made by tiling: tile t > 0 of person p gets one random offset
(N(0, 0.03²) per dimension, about 0.34 in distance, so a tiled person looks like
a different but similar person) plus per-photo jitter N(0, 0.01²).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

DEFAULT_DATA = str(Path(__file__).resolve().parents[1] / "runs" / "lfw" / "encodings.npz")
MACHINE = "2-core x86_64, 24 GiB, no GPU"


def load_lfw(path: str = DEFAULT_DATA):
    """(X float32 (n, 128), identities str (n,), paths str (n,)): one face per photo."""
    from anonfaces.encode import Encodings

    if not Path(path).is_file():
        sys.exit(f"{path} not found: encode LFW first (see this module's docstring) or pass --data")
    with np.load(path, allow_pickle=False) as z:
        if "meta" not in z.files and {"embeddings", "identities", "paths"} <= set(z.files):
            # a plain file of one face per photo (embeddings, identities, paths)
            return z["embeddings"].astype(np.float32), z["identities"].astype(str), z["paths"].astype(str)
    enc = Encodings.load(path)
    keep = enc.central_faces()
    return enc.embeddings[keep], enc.identities[keep], enc.paths[keep]


def make_set(n: int, *, data: str = DEFAULT_DATA, seed: int = 0):
    """n faces: a random sample of LFW when n <= its size, else LFW tiled (see module doc)."""
    X, ids, _ = load_lfw(data)
    rng = np.random.RandomState(seed)
    if n <= X.shape[0]:
        pick = np.sort(rng.choice(X.shape[0], n, replace=False))
        return X[pick], ids[pick]
    tiles = int(np.ceil(n / X.shape[0]))
    names, inv = np.unique(ids, return_inverse=True)
    out_X = np.empty((tiles * X.shape[0], X.shape[1]), np.float32)
    out_ids = np.empty(tiles * X.shape[0], dtype=object)
    for t in range(tiles):
        rows = slice(t * X.shape[0], (t + 1) * X.shape[0])
        if t == 0:
            out_X[rows] = X
        else:
            offset = rng.normal(0, 0.03, size=(names.size, X.shape[1])).astype(np.float32)
            out_X[rows] = X + offset[inv] + rng.normal(0, 0.01, size=X.shape).astype(np.float32)
        out_ids[rows] = [f"{p}#{t}" for p in ids] if t else ids
    pick = np.sort(rng.choice(out_X.shape[0], n, replace=False))
    return out_X[pick], out_ids[pick].astype(str)


def run_measured(argv: list[str], timeout: float | None = None) -> dict:
    """Run a worker (last stdout line: JSON); add wall seconds, peak RSS and CPU seconds of its process tree.

    CPU seconds (user + system, summed over the tree's processes, sampled every
    0.1 s) do not depend on how loaded the shared machine is, unlike wall time.
    """
    import psutil

    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak, cpu, stop = [0], {}, threading.Event()

    def watch():
        try:
            root = psutil.Process(proc.pid)
        except psutil.NoSuchProcess:
            return
        while not stop.is_set():
            try:
                tree = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            rss = 0
            for p in tree:
                try:
                    with p.oneshot():
                        rss += p.memory_info().rss
                        t = p.cpu_times()
                        cpu[p.pid] = t.user + t.system
                except psutil.NoSuchProcess:
                    pass
            peak[0] = max(peak[0], rss)
            time.sleep(0.1)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        out, err = proc.communicate(timeout=timeout)
        status = "ok" if proc.returncode == 0 else f"failed ({proc.returncode}): {(err.strip().splitlines() or [''])[-1]}"
    except subprocess.TimeoutExpired:
        for child in psutil.Process(proc.pid).children(recursive=True):  # joblib's workers hold the pipes
            child.kill()
        proc.kill()
        out, err = proc.communicate()
        status = "timeout"
    stop.set()
    thread.join()
    row = {"status": status, "wall_s": time.perf_counter() - start, "peak_rss_gb": peak[0] / 2**30,
           "cpu_s": sum(cpu.values())}
    if status == "ok":
        row.update(json.loads(out.strip().splitlines()[-1]))
    return row


def record(path: str | None, row: dict) -> None:
    """Print ``row`` and append it as a JSON line to ``path`` (if given), with date and machine."""
    row = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": MACHINE,
        "python": platform.python_version(),
        "loadavg_1min_at_end": os.getloadavg()[0],
        **row,
    }
    line = json.dumps(row, sort_keys=True, default=str)
    print(line, flush=True)
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")


def worker_argv(script: str, *args: str) -> list[str]:
    return [sys.executable, os.path.abspath(script), "--worker", *args]
