"""One local Ray instance (both cores) for the whole test session; every Ray test skips when Ray is not installed."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def ray_local():
    """Ray started once on this machine (``num_cpus=2``, no dashboard) and shut down after the session."""
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'anonfaces[ray]'): the Ray backend is not tested")
    import ray

    from anonfaces.utils.ray_pool import start_local_ray

    started = start_local_ray(2)
    yield ray
    if started:
        ray.shutdown()
