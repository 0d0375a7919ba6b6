"""Module-level task functions for the Ray tests (Ray workers import them by name)."""

from __future__ import annotations

import os
from pathlib import Path

from anonfaces.utils.ray_pool import RayPool


def scaled(context, x):
    return context["factor"] * x, os.getpid(), os.nice(0)


def refuse(x):
    from anonfaces.errors import BadInputError

    if x == 3:
        raise BadInputError(f"task {x} refused")
    return x


def die_once(context, task):
    """Run ``func(ctx, task)``, but kill this worker process on a chunk's first attempt where the plan says so.

    ``plan`` maps chunk id -> "before" (die before doing the work) or "after"
    (do the work, e.g. write the shard, then die before returning). Each attempt
    is recorded as a file in ``marks`` so that the test can count them.
    """
    func, ctx, marks, plan, driver = context
    if os.getpid() == driver:  # never kill the test run itself: fail this test loudly instead
        raise RuntimeError("die_once ran in the driver process, not in a Ray worker")
    chunk_id = task[0]
    marks = Path(marks)
    attempt = len(list(marks.glob(f"{chunk_id}-*"))) + 1
    (marks / f"{chunk_id}-{attempt}").touch()
    when = plan.get(chunk_id)
    if when == "before" and attempt == 1:
        os._exit(1)
    result = func(ctx, task)
    if when == "after" and attempt == 1:
        os._exit(1)
    return result


class DyingRayPool(RayPool):
    """A RayPool whose workers die once on the chosen chunks (see `die_once`)."""

    def __init__(self, *args, marks, plan, **kwargs):
        super().__init__(*args, **kwargs)
        self.marks, self.plan = str(marks), dict(plan)

    def map(self, func, tasks, *, context=None, **kwargs):
        return super().map(die_once, tasks, context=(func, context, self.marks, self.plan, os.getpid()), **kwargs)
