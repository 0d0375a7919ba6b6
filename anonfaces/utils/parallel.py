"""How many worker processes a run uses."""

from __future__ import annotations

import os

import numpy as np

from anonfaces.errors import BadInputError


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
