"""The Ray backend (`--backend ray`): the same results as the local pool, and no lost or duplicated work when a worker dies.

One local Ray instance (2 CPUs) serves the whole module (fixture ``ray_local``); the
photos are the bundled sample, encoded with the real dlib models.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import SAMPLE

COLUMNS = ("embeddings", "paths", "face_index", "boxes_ltrb", "scores", "landmarks68", "landmarks5", "identities", "image_sizes")


def _subset(tmp_path: Path, people: int, photos: int) -> Path:
    root = tmp_path / "photos"
    for person in sorted(p for p in SAMPLE.iterdir() if p.is_dir())[:people]:
        (root / person.name).mkdir(parents=True)
        for f in sorted(person.iterdir())[:photos]:
            shutil.copy(f, root / person.name / f.name)
    return root


def test_map_gives_results_in_order_on_two_workers_and_task_errors_as_themselves(ray_local):
    from anonfaces.errors import BadInputError
    from anonfaces.utils.parallel import make_pool
    from tests.scale import _tasks

    with make_pool(2, backend="ray", progress=False) as pool:
        out = list(pool.map(_tasks.scaled, range(40), context={"factor": 3}, chunksize=3))
        assert [v for v, _, _ in out] == [3 * x for x in range(40)]
        assert len({pid for _, pid, _ in out}) == 2  # two Ray workers shared the chunks
        assert {nice for _, _, nice in out} == {os.nice(0)}  # at the driver's priority, not Ray's nice 15
        with pytest.raises(BadInputError, match="task 3 refused"):
            list(pool.map(_tasks.refuse, range(8), chunksize=2))
    assert ray_local.is_initialized()  # the pool joined the session's Ray and left it running
    with pytest.raises(BadInputError, match="--address joins a Ray cluster"):
        make_pool(2, backend="local", address="auto")


def test_many_small_tasks_go_in_few_chunks_and_come_back_in_order(ray_local, tmp_path):
    from anonfaces.utils.parallel import make_pool
    from anonfaces.utils.ray_pool import TASKS_PER_WORKER, ray_chunk_size
    from tests.scale import _tasks
    from tests.utils import _pool_tasks
    from tests.utils.test_parallel import LazyPayloads

    assert ray_chunk_size(40, 3, 2) == 3  # few tasks: the caller's chunks
    assert ray_chunk_size(13_233, 4, 2) == 207 and -(-13_233 // 207) <= 2 * TASKS_PER_WORKER
    assert ray_chunk_size(0, 1, 2) == 1
    waiting = LazyPayloads(tmp_path)  # 200 one-megabyte tasks, made as Ray takes them
    with make_pool(2, backend="ray", progress=False) as pool:
        out = list(pool.map(_tasks.scaled, range(3_000), context={"factor": 2}, chunksize=1))
        sizes = list(pool.map(_pool_tasks.mark_done, waiting.tasks(), total=200, context=str(tmp_path), chunksize=2))
    assert [v for v, _, _ in out] == [2 * x for x in range(3_000)]
    assert sizes == [1 << 20] * 200 and waiting.most < 40  # made but not yet run: 4 chunks in flight, not 200


def test_encode_store_on_ray_equals_the_local_npz(ray_local, tmp_path, sample_encodings):
    """The whole sample, encoded by Ray workers that write the store shards themselves: every column identical."""
    import anonfaces
    from anonfaces.encode import encode_photos
    from anonfaces.utils.ray_pool import RayPool

    with RayPool(2, progress=False) as pool:
        report = encode_photos(SAMPLE, tmp_path / "enc.store", store=True, pool=pool, chunk_size=32)
    got = anonfaces.load_encodings(tmp_path / "enc.store")
    assert report.n_faces == len(sample_encodings) == len(got)
    assert not got.meta.get("store_problems")
    for name in COLUMNS:
        assert np.array_equal(getattr(got, name), getattr(sample_encodings, name)), name
    assert sorted(p.name for p in (tmp_path / "enc.store").glob("shard-*.parquet")) == [f"shard-{i:06d}.parquet" for i in range(8)]


def test_a_worker_killed_mid_run_leaves_no_hole_and_no_duplicate(ray_local, tmp_path):
    """Chunk 1's worker dies before writing its shard, chunk 2's right after writing it: Ray reruns both."""
    import anonfaces
    from anonfaces.encode import encode_photos
    from anonfaces.encode.store import EncodingsStore
    from tests.scale._tasks import DyingRayPool

    root = _subset(tmp_path, people=4, photos=6)  # 24 photos, chunks of 6
    marks = tmp_path / "marks"
    marks.mkdir()
    local = encode_photos(root, tmp_path / "local.npz", jobs=1, progress=False, chunk_size=6).encodings
    with DyingRayPool(2, progress=False, marks=marks, plan={1: "before", 2: "after"}) as pool:
        encode_photos(root, tmp_path / "ray.store", store=True, pool=pool, chunk_size=6)
    attempts = {c: len(list(marks.glob(f"{c}-*"))) for c in range(4)}
    assert attempts == {0: 1, 1: 2, 2: 2, 3: 1}  # the killed chunks ran again, the others once
    store = EncodingsStore.open(tmp_path / "ray.store")
    assert store.missing() == [] and [s.key for s in store.shards()] == ["000000", "000001", "000002", "000003"]
    got = anonfaces.load_encodings(tmp_path / "ray.store")
    assert len(got) == len(local)
    assert len(set(zip(got.paths.tolist(), got.face_index.tolist()))) == len(got)  # no face twice
    for name in COLUMNS:
        assert np.array_equal(getattr(got, name), getattr(local, name)), name


def test_resume_into_a_store_encodes_only_the_missing_chunks(ray_local, tmp_path):
    from anonfaces.encode import encode_photos
    from anonfaces.errors import BadInputError
    from anonfaces.utils.ray_pool import RayPool

    root = _subset(tmp_path, people=2, photos=6)
    out = tmp_path / "ray.store"
    with RayPool(2, progress=False) as pool:
        first = encode_photos(root, out, store=True, pool=pool, chunk_size=4)
        shard = out / "shard-000001.parquet"
        before = {p.name: p.stat().st_mtime_ns for p in out.glob("shard-*")}
        shard.unlink()
        with pytest.raises(BadInputError, match="--resume"):
            encode_photos(root, out, store=True, pool=pool, chunk_size=4)
        again = encode_photos(root, out, store=True, pool=pool, chunk_size=4, resume=True)
    after = {p.name: p.stat().st_mtime_ns for p in out.glob("shard-*")}
    assert again.resumed_images == 12 - 4 and again.n_faces == first.n_faces
    assert {k for k in after if after[k] != before.get(k)} == {"shard-000001.parquet"}


def test_anonymize_on_ray_writes_the_same_photos_as_local(ray_local, tmp_path):
    from anonfaces.encode import encode_photos
    from anonfaces.pipeline import anonymize_dataset
    from anonfaces.pipeline.layout import KEY_FILE
    from anonfaces.utils.parallel import WorkerPool
    from anonfaces.utils.ray_pool import RayPool

    root = _subset(tmp_path, people=6, photos=3)
    # one encoding for both runs; no safety net / second pass (their re-detection is the slow part, and runs
    # through the same pool.map as the replacement that is compared here)
    cheap = {"encodings": encode_photos(root, tmp_path / "enc.npz", jobs=1, progress=False).encodings_path,
             "safety_net": False, "second_pass": False}
    outs = {}
    with WorkerPool(2, progress=False) as pool:
        outs["local"] = anonymize_dataset(root, tmp_path / "local", k=3, pool=pool, progress=False, **cheap)
    key = outs["local"].private / KEY_FILE  # the same naming key: the same neutral output names
    with RayPool(2, progress=False) as pool:
        outs["ray"] = anonymize_dataset(root, tmp_path / "ray", k=3, pool=pool, progress=False, key_file=key, **cheap)
    files = {name: sorted(p.relative_to(tmp_path / name) for p in (tmp_path / name).rglob("*.jpg")) for name in outs}
    assert files["local"] and files["local"] == files["ray"]
    for rel in files["local"]:
        assert (tmp_path / "local" / rel).read_bytes() == (tmp_path / "ray" / rel).read_bytes(), rel
    maps = [(r.private / "mapping.csv").read_text() for r in outs.values()]
    assert maps[0] == maps[1]


def test_cli_encode_store_on_ray_and_clear_errors(ray_local, tmp_path):
    from click.testing import CliRunner

    from anonfaces.cli import main

    root = _subset(tmp_path, people=1, photos=6)
    out = tmp_path / "enc.store"
    res = CliRunner().invoke(main, ["encode", "--dataset", str(root), "--encodings", str(out), "--store",
                                    "--backend", "ray", "--jobs", "2", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "6 images" in res.output and (out / "shard-000000.parquet").is_file()
    assert (tmp_path / "enc.store.skipped.csv").is_file()
    res = CliRunner().invoke(main, ["encode", "--dataset", str(root), "--encodings", str(tmp_path / "x.npz"),
                                    "--address", "auto", "--no-progress"])
    assert res.exit_code == 2 and "--address joins a Ray cluster" in res.output
    res = CliRunner().invoke(main, ["encode", "--dataset", str(root), "--encodings", str(out), "--store", "--no-progress"])
    assert res.exit_code == 2 and "--resume" in res.output
