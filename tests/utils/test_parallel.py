"""The one worker pool: order, context, per-worker state, threads, started once, errors."""

from __future__ import annotations

import pytest

from anonfaces.errors import BadInputError
from anonfaces.utils.parallel import (
    WorkerPool,
    available_cores,
    check_jobs,
    worker_local,
)
from tests.utils import _pool_tasks as tasks


def test_check_jobs():
    assert check_jobs(None) == available_cores()
    assert check_jobs(3) == 3
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(BadInputError, match="jobs"):
            check_jobs(bad)


@pytest.mark.parametrize("jobs", [1, 2])
def test_map_keeps_order_and_passes_the_context(jobs):
    with WorkerPool(jobs, progress=False) as pool:
        assert list(pool.map(tasks.square, range(23), chunksize=3)) == [x * x for x in range(23)]
        assert list(pool.map(tasks.scaled, range(10), context={"factor": 3})) == [3 * x for x in range(10)]
        assert list(pool.map(tasks.square, [])) == []


def test_pool_starts_once_and_workers_keep_their_state():
    with WorkerPool(2, progress=False, threads=1) as pool:
        first = list(pool.map(tasks.whoami, range(16), context="run-1", chunksize=1))
        second = list(pool.map(tasks.whoami, range(16), context="run-1", chunksize=1))
        third = list(pool.map(tasks.whoami, range(4), context="run-2", chunksize=1))
        assert pool.started == 2  # one start for the three calls
    pids = {pid for pid, _, _ in first + second + third}
    assert 1 <= len(pids) <= 2
    # state built once per worker and token, kept across calls with the same token
    assert all(builds == 1 for _, builds, _ in first + second + third)
    assert {threads for _, _, threads in first} == {1}


def test_threads_per_worker_default_splits_the_cores():
    pool = WorkerPool(1, progress=False)
    assert pool.threads == available_cores()
    assert WorkerPool(available_cores(), progress=False).threads == 1
    with pytest.raises(BadInputError, match="threads"):
        WorkerPool(1, threads=0)


def test_worker_local_is_emptied_when_the_token_changes():
    a = worker_local("tests.local", 1)
    a["x"] = 1
    assert worker_local("tests.local", 1) == {"x": 1}
    assert worker_local("tests.local", 2) == {}


@pytest.mark.parametrize("jobs", [1, 2])
def test_errors_reach_the_caller(jobs):
    with pytest.raises(BadInputError, match="refused"), WorkerPool(jobs, progress=False) as pool:
        list(pool.map(tasks.fail, range(3)))


@pytest.mark.parametrize("jobs", [1, 2])
def test_tasks_with_a_total_are_read_lazily(jobs, tmp_path):
    """200 one-megabyte tasks from a generator: never more than a few made and not yet run (eager: all 200)."""
    waiting = LazyPayloads(tmp_path)
    with WorkerPool(jobs, progress=False) as pool:
        sizes = list(pool.map(tasks.mark_done, waiting.tasks(), total=200, context=str(tmp_path), chunksize=2))
    assert sizes == [1 << 20] * 200 and waiting.most < 40


class LazyPayloads:
    """A generator of (i, 1 MB) tasks that notes how many were made but not yet run (``<i>.done`` files in ``folder``)."""

    def __init__(self, folder, n=200):
        self.folder, self.n, self.most = folder, n, 0

    def tasks(self):
        import numpy as np

        for i in range(self.n):
            self.most = max(self.most, i - len(list(self.folder.glob("*.done"))))
            yield i, np.full(1 << 20, i % 256, np.uint8)
