"""Module-level task functions for the worker-pool tests (workers import them by name)."""

from __future__ import annotations

import os

from anonfaces.utils.parallel import worker_local, worker_threads


def square(x):
    return x * x


def scaled(context, x):
    return context["factor"] * x


def whoami(context, x):
    """(pid, times this worker built its state for this token, threads)."""
    held = worker_local("tests.pool", context)
    held["builds"] = held.get("builds", 0) + (1 if "built" not in held else 0)
    held["built"] = True
    return os.getpid(), held["builds"], worker_threads()


def fail(x):
    from anonfaces.errors import BadInputError

    raise BadInputError(f"task {x} refused")


def mark_done(folder, task):
    """Record in ``folder`` that task ``i`` ran (one file each), then return its payload's size."""
    i, payload = task
    open(os.path.join(folder, f"{i}.done"), "w").close()
    return int(payload.nbytes)
