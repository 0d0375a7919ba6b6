"""The Ray backend of the worker pool: the same `WorkerPool.map`, run as Ray tasks on a local or remote Ray cluster.

`RayPool` is what ``--backend ray`` starts instead of the local process pool.
Every stage keeps calling ``pool.map(func, tasks, context=...)``: the tasks are
cut into the same chunks, each chunk runs as one Ray task (``func`` must be a
module-level function; the context is put into Ray's object store once per
call), and results come back to the driver in task order, with the same
progress bar.

- **Models loaded once per worker.** Ray keeps its worker processes between
  tasks, so the per-process caches the stages already use (`worker_local`, the
  detectors' and dlib's loaders) hold across tasks, as in the local pool.
- **Failed tasks retried.** A task whose worker process dies (killed, out of
  memory, machine lost) is run again by Ray, up to ``retries`` times. A task
  that raises an exception is not retried (the same input would fail again);
  the exception reaches the caller as itself (a `BadInputError` stays one).
- **Few, large tasks.** A Ray task costs a few milliseconds of CPU in the driver, the
  raylet and the worker, so chunks are made larger than the local pool's where a
  call has many tasks: at most `TASKS_PER_WORKER` chunks per worker per call
  (`ray_chunk_size`; measured in docs/scaling.md).
- **Bounded concurrency, no idle worker.** ``jobs`` means the same as locally (default:
  every CPU of the Ray cluster); ``2 x jobs`` chunks are in flight, so a worker that
  finishes one finds the next already queued instead of waiting for the driver.

A stage that must not lose finished work when the *driver* dies writes its
results from the task itself (the encode stage's ``--store`` writes one store
shard per chunk from the worker: see `anonfaces.encode.pipeline`).

Where Ray runs: without ``address`` a Ray instance is started on this machine
for the pool (``jobs`` CPUs) and stopped when the pool closes; with
``address`` (``auto``, ``ray://host:10001`` or ``host:6379``) the pool joins
that cluster and leaves it running. Every node must see the photos and the
outputs under the same paths (a shared file system) and have anonfaces installed.

Ray is an optional dependency (``pip install anonfaces[ray]``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from anonfaces.errors import BadInputError
from anonfaces.utils.parallel import (
    WorkerPool,
    _init_worker,
    _run_chunk,
    available_cores,
    iter_chunks,
)

log = logging.getLogger(__name__)

#: Ray's setting (an environment variable read by the raylet) for its workers' nice value.
WORKER_NICENESS = "RAY_worker_niceness"
#: Most chunks one `RayPool.map` call sends each worker (larger chunks where a call has many tasks).
TASKS_PER_WORKER = 32
#: Chunks queued per worker beyond the one it runs.
QUEUED_PER_WORKER = 1
#: Times Ray runs a chunk again after its worker process died.
DEFAULT_RETRIES = 3
_WORKER = {"threads": None}


def ray_module():
    """The ``ray`` module, or a clear `BadInputError` when it is not installed."""
    try:
        import ray
    except ImportError:  # pragma: no cover - depends on the environment
        raise BadInputError("--backend ray needs Ray: pip install 'anonfaces[ray]'") from None
    return ray


def _package_parent() -> str:
    return str(Path(__file__).resolve().parents[2])


def start_local_ray(num_cpus: int | None = None, **kwargs) -> bool:
    """Start a Ray instance on this machine (``num_cpus`` CPUs) unless one is running; True when this call started it.

    The workers import the same anonfaces as this process (its folder goes first
    on their ``PYTHONPATH``) and run at this process's priority (Ray's default is
    nice 15; ``RAY_worker_niceness`` set by the user wins); no dashboard is started.
    """
    ray = ray_module()
    if ray.is_initialized():
        return False
    here = _package_parent()
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if here not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([here, *paths])  # inherited by the raylet and its workers
    # Ray starts its workers at nice 15 (they yield to the driver); here the workers are the whole
    # computation, as the local pool's are (nice 0): on a shared machine nice 15 cost them their cores.
    os.environ.setdefault(WORKER_NICENESS, "0")
    kwargs.setdefault("include_dashboard", False)
    kwargs.setdefault("logging_level", logging.WARNING)
    kwargs.setdefault("log_to_driver", False)
    ray.init(num_cpus=num_cpus or available_cores(), **kwargs)
    return True


def _ray_chunk(threads: int, func, context, chunk):
    """One chunk, in a Ray worker: the worker's thread limits set once per process, then the local pool's chunk runner."""
    if _WORKER["threads"] != threads:
        _init_worker(threads)
        _WORKER["threads"] = threads
    return _run_chunk((func, context, chunk))


class RayPool(WorkerPool):
    """`WorkerPool` on Ray: each chunk of tasks is a Ray task (see the module docstring).

    Parameters
    ----------
    jobs : int or None
        Chunks in flight at once (None: the Ray cluster's CPUs).
    progress : bool
        Show a progress bar for each `map`.
    threads : int or None
        Threads per task (None: this machine's cores // jobs when Ray runs here, else 1).
    address : str or None
        A running Ray cluster to join (None: start one on this machine for the pool's life).
    retries : int
        Times a chunk is run again after its worker died.
    """

    def __init__(self, jobs: int | None = None, *, progress: bool = True, threads: int | None = None,
                 address: str | None = None, retries: int = DEFAULT_RETRIES):
        ray_module()
        super().__init__(jobs if jobs is not None else 1, progress=progress, threads=threads)
        self._jobs_given = jobs
        if threads is None and address is not None:
            self.threads = 1
        self.address = address
        self.retries = int(retries)
        self._started_ray = False
        self._remote = None

    @property
    def in_process(self) -> bool:
        return False

    def _ensure(self):
        ray = ray_module()
        if self._remote is None:
            if not ray.is_initialized():
                if self.address is None:
                    self._started_ray = start_local_ray(self._jobs_given or available_cores())
                else:
                    ray.init(address=self.address, log_to_driver=False, logging_level=logging.WARNING)
            if self._jobs_given is None:
                self.jobs = max(1, int(ray.cluster_resources().get("CPU", 1)))
                self.threads = max(1, self.threads if self.address is not None else available_cores() // self.jobs)
            self._remote = ray.remote(_ray_chunk).options(num_cpus=1, max_retries=self.retries, retry_exceptions=False)
            self.started += self.jobs
        return self._remote

    def close(self, *, failed: bool = False) -> None:
        if self._started_ray:
            ray_module().shutdown()
            self._started_ray = False
        self._remote = None

    def map(self, func: Callable, tasks: Iterable, *, context=None, desc: str = "", unit: str = "img",
            chunksize: int = 4, leave: bool = True, total: int | None = None) -> Iterator:
        """``func(task)`` (or ``func(context, task)``) for every task, as Ray tasks; results in task order.

        ``tasks`` with ``total`` is read lazily: a chunk is made when it is sent (see `WorkerPool.map`).
        """
        from tqdm.auto import tqdm

        if total is None:
            tasks = list(tasks)
            total = len(tasks)
        if not total:
            return
        ray = ray_module()
        remote = self._ensure()
        chunks = iter_chunks(tasks, ray_chunk_size(total, chunksize, self.jobs))
        in_flight = self.jobs * (1 + QUEUED_PER_WORKER)
        context_ref = ray.put(context)
        pending: dict = {}  # ObjectRef -> chunk index
        done: dict[int, list] = {}
        sent = head = 0
        more = True
        # On an error or an early stop, the chunks still in flight (at most ``in_flight``) are left to finish and
        # their results dropped, not cancelled: ray.cancel racing with a task's reply aborts the whole driver
        # process in Ray's core worker ("Tried to complete task that was not pending"; seen once in `make test`
        # with Ray 2.60, docs/scaling.md), which would lose the user's clear error with the run.
        with tqdm(total=total, desc=desc, unit=unit, disable=not self.progress, smoothing=0.1, leave=leave) as bar:
            while more or pending or done:
                while more and len(pending) < in_flight:
                    chunk = next(chunks, None)
                    if chunk is None:
                        more = False
                        break
                    pending[remote.remote(self.threads, func, context_ref, chunk)] = sent
                    sent += 1
                if pending:
                    ready, _ = ray.wait(list(pending), num_returns=1)
                    for ref in ready:
                        done[pending.pop(ref)] = _get(ray, ref)
                while head in done:
                    for result in done.pop(head):
                        yield result
                        bar.update()
                    head += 1


def ray_chunk_size(n_tasks: int, chunksize: int, jobs: int) -> int:
    """Tasks per Ray task: the caller's ``chunksize``, or more so that no worker gets over `TASKS_PER_WORKER` chunks."""
    return max(1, chunksize, -(-n_tasks // (max(1, jobs) * TASKS_PER_WORKER)))


def _get(ray, ref):
    """``ray.get``, with a task's own exception re-raised as itself."""
    from ray.exceptions import RayTaskError

    try:
        return ray.get(ref)
    except RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, BaseException):
            raise cause from None
        raise

