"""The one worker pool every stage uses, and how many workers (and threads per worker) a run uses.

A command starts one `WorkerPool` (a sweep starts one for all its runs) and hands
it to each stage. The worker processes live as long as the pool, so the models a
stage loads in a worker (dlib's networks, detectors: cached per process by their
loaders, or with `worker_local`) are loaded once per worker, not once per call.

A stage sends work with `WorkerPool.map`: a module-level function, a list of
tasks and an optional ``context`` (small, picklable: roots, settings) that the
function receives with every task; tasks travel in chunks and the context once
per chunk. Results come back in task order, with a progress bar.

Threads: each worker runs ``threads`` threads (default ``cores // jobs``, at least
1), so that ``jobs x threads = cores``. BLAS, OpenMP and OpenCV are limited to
that in every worker; a stage that runs its own thread pool (ONNX Runtime) reads
`worker_threads()` where it builds its session.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Self

import numpy as np

from anonfaces.errors import BadInputError

_THREADS = {"n": 1}
_LOCAL: dict[str, tuple[object, dict]] = {}


def available_cores() -> int:
    """Cores this process may run on (the affinity mask where the platform has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def check_jobs(jobs) -> int:
    """``jobs`` as a positive int; None means every available core."""
    if jobs is None:
        return available_cores()
    if isinstance(jobs, bool) or not isinstance(jobs, (int, np.integer)) or jobs < 1:
        raise BadInputError(f"jobs={jobs!r} must be an integer >= 1")
    return int(jobs)


def worker_threads() -> int:
    """Threads a stage may use in this worker (or in the main process when the pool runs there)."""
    return _THREADS["n"]


def worker_local(namespace: str, token) -> dict:
    """A dict private to this process for ``namespace``; emptied when ``token`` changes.

    For state a worker keeps between tasks of one call (a run's surrogates read
    once, a detector built once for its settings) without letting it leak into
    the next call: give each call its own token.
    """
    held = _LOCAL.get(namespace)
    if held is None or held[0] != token:
        held = _LOCAL[namespace] = (token, {})
    return held[1]


def _limit_threads(n: int) -> None:
    _THREADS["n"] = n
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)
    import cv2
    from threadpoolctl import threadpool_limits

    cv2.setNumThreads(n)
    threadpool_limits(n)


def _init_worker(threads: int) -> None:
    """Each worker: ``threads`` threads for BLAS/OpenMP/OpenCV; ONNX Runtime's sessions (dlib's network) follow
    `worker_threads` by themselves."""
    _limit_threads(threads)


def _run_chunk(job):
    func, context, chunk = job
    if context is None:
        return [func(task) for task in chunk]
    return [func(context, task) for task in chunk]


class WorkerPool:
    """Worker processes for a whole command (or this process when ``jobs == 1``).

    Parameters
    ----------
    jobs : int or None
        Worker processes (None: every core).
    progress : bool
        Show a progress bar for each `map`.
    threads : int or None
        Threads per worker (None: ``cores // jobs``, at least 1).

    Use as a context manager; the processes start on the first `map` that has
    work for them and stop on exit. Models a worker loads stay loaded until then.
    """

    def __init__(self, jobs: int | None = None, *, progress: bool = True, threads: int | None = None):
        self.jobs = check_jobs(jobs)
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1):
            raise BadInputError(f"threads={threads!r} must be None or an integer >= 1")
        self.threads = int(threads) if threads is not None else max(1, available_cores() // self.jobs)
        self.progress = progress
        self._pool = None
        self._saved_threads = None
        self.started = 0  # worker processes started over the pool's life (a test checks it stays at jobs)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close(failed=exc[0] is not None)

    def close(self, *, failed: bool = False) -> None:
        if self._pool is not None:
            self._pool.terminate() if failed else self._pool.close()
            self._pool.join()
            self._pool = None
        if self._saved_threads is not None:
            _THREADS["n"] = self._saved_threads
            self._saved_threads = None

    @property
    def in_process(self) -> bool:
        return self.jobs == 1

    def _ensure(self):
        if self._pool is None:
            ctx = mp.get_context("forkserver" if sys.platform.startswith("linux") else "spawn")
            self._pool = ctx.Pool(self.jobs, initializer=_init_worker, initargs=(self.threads,))
            self.started += self.jobs
        return self._pool

    def map(self, func: Callable, tasks: Iterable, *, context=None, desc: str = "", unit: str = "img",
            chunksize: int = 4, leave: bool = True, total: int | None = None) -> Iterator:
        """``func(task)`` (or ``func(context, task)``) for every task, in order, in the workers.

        ``func`` must be a module-level function. Yields the results as they come, in task order.
        ``tasks`` with ``total`` (their number) is read lazily, a chunk at a time, as the workers
        take them: tasks that carry data (image crops) need not all be in memory at once.
        """
        from tqdm.auto import tqdm

        if total is None:
            tasks = list(tasks)
            total = len(tasks)
        chunks = iter_chunks(tasks, chunksize)
        with tqdm(total=total, desc=desc, unit=unit, disable=not self.progress, smoothing=0.1, leave=leave) as bar:
            if self.in_process:
                if self._saved_threads is None:
                    self._saved_threads = _THREADS["n"]
                    _THREADS["n"] = self.threads
                results = (_run_chunk((func, context, chunk)) for chunk in chunks)
            else:  # imap reads the generator in its feeder thread, as fast as the workers' pipe takes chunks
                results = self._ensure().imap(_run_chunk, ((func, context, chunk) for chunk in chunks), chunksize=1)
            for chunk_results in results:
                for result in chunk_results:
                    yield result
                    bar.update()


def iter_chunks(tasks: Iterable, size: int) -> Iterator[list]:
    """``tasks`` in lists of ``size`` (the last may be shorter), read lazily."""
    it = iter(tasks)
    while chunk := list(islice(it, max(1, int(size)))):
        yield chunk


#: The backends a command can run its workers on (``--backend``).
BACKENDS = ("local", "ray")


def make_pool(jobs=None, *, progress: bool = True, backend: str = "local", address: str | None = None,
              threads: int | None = None) -> WorkerPool:
    """A worker pool on ``backend``: ``local`` (processes on this machine) or ``ray`` (`anonfaces.utils.ray_pool.RayPool`).

    ``address`` joins a running Ray cluster (Ray only). Both pools have the same `WorkerPool.map`.
    """
    if backend not in BACKENDS:
        raise BadInputError(f"backend={backend!r} must be one of {', '.join(BACKENDS)}")
    if backend == "local":
        if address is not None:
            raise BadInputError("--address joins a Ray cluster: it goes with --backend ray")
        return WorkerPool(jobs, progress=progress, threads=threads)
    from anonfaces.utils.ray_pool import RayPool

    if jobs is not None:
        check_jobs(jobs)
    return RayPool(jobs, progress=progress, threads=threads, address=address)


def pool_for(pool: WorkerPool | None, jobs, progress: bool, *, backend: str = "local", address: str | None = None):
    """``pool`` itself (owned by the caller), or a new pool for one call (closed when the call ends)."""
    from contextlib import nullcontext

    return nullcontext(pool) if pool is not None else make_pool(jobs, progress=progress, backend=backend, address=address)
