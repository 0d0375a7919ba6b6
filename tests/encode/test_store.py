"""The sharded encodings store: round trips with .npz, appending, resuming, retries, bad shards, lazy reads."""

import json
import logging

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("pyarrow", reason="the encodings store needs pyarrow (pip install 'anonfaces[scale]')")

import anonfaces
from anonfaces.cli import main
from anonfaces.encode import Encodings
from anonfaces.encode.store import (
    EncodingsStore,
    StoreEncodings,
    content_key,
    load_store,
    save_store,
)
from anonfaces.errors import BadInputError, FileFormatError

STORE_ONLY_META = {"store", "store_problems"}


def assert_same(a: Encodings, b: Encodings, rows=slice(None)):
    for name in Encodings._ARRAYS:
        x, y = getattr(a, name), getattr(b, name)[rows]
        assert x.dtype == y.dtype or x.dtype.kind == y.dtype.kind == "U", name  # str width follows the longest
        np.testing.assert_array_equal(x, y, err_msg=name)


def plain_meta(enc):
    return {k: v for k, v in enc.meta.items() if k not in STORE_ONLY_META}


@pytest.fixture()
def enc(sample_encodings):
    """The sample's real dlib encodings, with an encoder state to carry (as a PCA basis would be)."""
    e = sample_encodings.subset(np.arange(len(sample_encodings)))
    e.encoder_state = {"mean": np.linspace(0, 1, 7), "components": np.arange(12.0).reshape(3, 4)}
    return e


def test_npz_store_npz_round_trip_keeps_every_column_and_meta(tmp_path, enc):
    npz = enc.save(tmp_path / "a.npz")
    from_npz = Encodings.load(npz)
    store = save_store(from_npz, tmp_path / "store", shard_rows=50)
    n_shards = -(-len(enc) // 50)
    assert [s.key for s in store.shards()] == [f"{i:06d}" for i in range(n_shards)]
    back = anonfaces.load_encodings(tmp_path / "store")
    assert isinstance(back, StoreEncodings) and len(back) == len(enc)
    assert_same(back, enc)
    assert plain_meta(back) == from_npz.meta
    assert back.meta["store"] == str(tmp_path / "store")
    assert set(back.encoder_state) == {"mean", "components"}
    for k, v in enc.encoder_state.items():
        np.testing.assert_array_equal(back.encoder_state[k], v)
    # and back to .npz: the same file content as the original
    again = Encodings.load(back.materialize().save(tmp_path / "b.npz"))
    assert_same(again, enc)
    assert plain_meta(again) == from_npz.meta


def test_lazy_read_gives_the_embeddings_alone(tmp_path, enc):
    save_store(enc, tmp_path / "store", shard_rows=64)
    lazy = load_store(tmp_path / "store")
    assert len(lazy) == len(enc)  # from the shard footers: no column read
    assert not {"embeddings", "landmarks68", "paths"} & set(vars(lazy))
    emb = lazy.embeddings
    assert emb.dtype == np.float32 and emb.shape == (len(enc), 128) and emb.flags.c_contiguous
    np.testing.assert_array_equal(emb, enc.embeddings)
    assert "embeddings" in vars(lazy) and "landmarks68" not in vars(lazy)
    np.testing.assert_array_equal(lazy.landmarks68, enc.landmarks68)  # read when asked
    # what later stages use works on the lazy record as on the in-memory one
    np.testing.assert_array_equal(lazy.central_faces(), enc.central_faces())
    assert_same(lazy.subset(lazy.identities == "Bill_Gates"), enc.subset(enc.identities == "Bill_Gates"))


def test_appending_and_resuming_a_planned_store(tmp_path, enc):
    keys = ["000000", "000001", "000002", "000003"]
    parts = np.array_split(np.arange(len(enc)), len(keys))
    meta = {"encoder": enc.encoder, "dataset": "somewhere"}
    store = EncodingsStore.create(tmp_path / "s", dim=128, meta=meta, planned=keys)
    store.write_shard(enc.subset(parts[2]), key="000002")
    store.write_shard(enc.subset(parts[0]), key="000000")
    assert store.missing() == ["000001", "000003"]
    assert len(store) == len(parts[0]) + len(parts[2])
    # the run stops; a new one opens the same store and does only what is missing
    with pytest.raises(BadInputError, match="already holds"):
        EncodingsStore.create(tmp_path / "s", dim=128, meta=meta, planned=keys)
    with pytest.raises(BadInputError, match="planned differs"):
        EncodingsStore.create(tmp_path / "s", dim=128, meta=meta, planned=keys[:3], exist_ok=True)
    resumed = EncodingsStore.create(tmp_path / "s", dim=128, meta=meta, planned=keys, exist_ok=True)
    todo = resumed.missing()
    assert todo == ["000001", "000003"] and resumed.has_shard("000000") and not resumed.has_shard("000001")
    for key in todo:
        resumed.write_shard(enc.subset(parts[int(key)]), key=key)
    assert resumed.missing() == [] and resumed.problems == {}
    assert_same(load_store(tmp_path / "s"), enc)  # shards read in key order = photo order
    # an unplanned store grows by appending; a shard of another encoder is refused
    free = EncodingsStore.create(tmp_path / "free", dim=128, meta=meta)
    for idx in parts:
        free.append(enc.subset(idx))
    assert len(EncodingsStore.open(tmp_path / "free")) == len(enc)
    other = enc.subset(parts[0])
    other.meta = {"encoder": {"name": "pca", "n_components": 128}}
    with pytest.raises(BadInputError, match="encoder"):
        free.append(other)


def test_a_shard_written_twice_is_not_duplicated(tmp_path, enc):
    store = EncodingsStore.create(tmp_path / "s", dim=128, meta={"encoder": enc.encoder})
    part = enc.subset(np.arange(40))
    first = store.write_shard(part, key="000007")
    again = store.write_shard(part, key="000007")  # the retried task
    assert first == again and len(store) == 40
    auto1 = store.write_shard(enc.subset(np.arange(40, 90)))  # content-keyed: a retry finds the same name
    auto2 = store.write_shard(enc.subset(np.arange(40, 90)))
    assert auto1 == auto2 == store.shard_path(content_key(enc.subset(np.arange(40, 90))))
    assert len(store) == 90 and sorted(p.name for p in (tmp_path / "s").iterdir() if p.suffix == ".parquet") == sorted(
        [first.name, auto1.name])
    assert not [p for p in (tmp_path / "s").iterdir() if p.name.endswith(".tmp")]  # no temporary left behind
    assert store.verify() == {}
    # the same faces under another name are a duplicate: verify says so
    store.write_shard(part, key="zz-copy")
    problems = store.verify()
    assert "shard-zz-copy.parquet" in problems and "also in shard 000007" in problems["shard-zz-copy.parquet"]


def test_a_truncated_shard_is_reported_and_skipped(tmp_path, enc, caplog):
    store = save_store(enc, tmp_path / "s", shard_rows=100)
    bad = store.shard_path("000001")
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2])  # a worker killed mid-write without the atomic rename, a cut copy
    with caplog.at_level(logging.WARNING, logger="anonfaces.encode.store"):
        lazy = anonfaces.load_encodings(tmp_path / "s")
    assert "shard-000001.parquet" in caplog.text and "truncated or damaged" in caplog.text
    problem = lazy.meta["store_problems"]["shard-000001.parquet"]
    assert "Parquet" in problem
    keep = np.r_[0:100, 200:len(enc)]
    assert len(lazy) == keep.size
    assert_same(lazy, enc, keep)  # the other shards, whole and in order; nothing of the bad one
    reopened = EncodingsStore.open(tmp_path / "s")
    assert reopened.missing() == ["000001"] and not reopened.has_shard("000001")
    # re-running its task repairs the store
    reopened.write_shard(enc.subset(np.arange(100, 200)), key="000001")
    assert_same(load_store(tmp_path / "s"), enc)


def test_a_damaged_page_is_caught_by_its_checksum(tmp_path, enc):
    store = save_store(enc, tmp_path / "s", shard_rows=100)
    bad = store.shard_path("000000")
    data = bytearray(bad.read_bytes())
    data[len(data) // 3] ^= 0xFF  # one flipped byte inside the data pages; the footer is intact
    bad.write_bytes(bytes(data))
    problems = EncodingsStore.open(tmp_path / "s").verify()
    assert list(problems) == ["shard-000000.parquet"]
    lazy = load_store(tmp_path / "s", verify=True)
    assert len(lazy) == len(enc) - 100
    assert_same(lazy, enc, np.arange(100, len(enc)))


def test_wrong_stores_are_clear_errors(tmp_path, enc):
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInputError, match="not an encodings store"):
        anonfaces.load_encodings(tmp_path / "empty")
    save_store(enc, tmp_path / "s")
    manifest = json.loads((tmp_path / "s" / "manifest.json").read_text())
    (tmp_path / "s" / "manifest.json").write_text(json.dumps({**manifest, "format_version": 99}))
    with pytest.raises(FileFormatError, match="format version 99"):
        anonfaces.load_encodings(tmp_path / "s")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("x")
    with pytest.raises(BadInputError, match="not an empty folder"):
        save_store(enc, tmp_path / "full")
    store = EncodingsStore.create(tmp_path / "t", dim=64)
    with pytest.raises(BadInputError, match="dim=128"):
        store.write_shard(enc)
    with pytest.raises(BadInputError, match="shard key"):
        EncodingsStore.create(tmp_path / "u", dim=128).write_shard(enc, key="../escape")


def test_convert_cli_both_ways(tmp_path, enc):
    npz = enc.save(tmp_path / "enc.npz")
    runner = CliRunner()
    result = runner.invoke(main, ["convert", str(npz), str(tmp_path / "store"), "--shard-rows", "70"])
    assert result.exit_code == 0, result.output
    n_shards = -(-len(enc) // 70)
    assert "converted" in result.output and f"{n_shards} shard(s)" in result.output
    store = EncodingsStore.open(tmp_path / "store")
    assert len(store.shards()) == n_shards and len(store) == len(enc)
    result = runner.invoke(main, ["convert", str(tmp_path / "store"), str(tmp_path / "back.npz")])
    assert result.exit_code == 0, result.output
    back = Encodings.load(tmp_path / "back.npz")
    assert_same(back, enc)
    assert plain_meta(back) == Encodings.load(npz).meta
    # a bad shard is named when converting, and left out
    shard = store.shard_path("000000")
    shard.write_bytes(shard.read_bytes()[:100])
    result = runner.invoke(main, ["convert", str(tmp_path / "store"), str(tmp_path / "part.npz")])
    assert result.exit_code == 0 and "warning: skipped shard-000000.parquet" in result.output
    assert_same(Encodings.load(tmp_path / "part.npz"), enc, np.arange(70, len(enc)))
    # refusals are one-line errors with exit code 2
    for args, message in [
        ([str(npz), str(tmp_path / "other.npz")], "both .npz"),
        ([str(npz), str(tmp_path / "store")], "not an empty folder"),
        ([str(tmp_path), str(tmp_path / "x.npz")], "nor an encodings store"),
    ]:
        result = runner.invoke(main, ["convert", *args])
        assert result.exit_code == 2 and message in result.output, result.output


def test_cluster_reads_a_store_like_its_npz(tmp_path, enc):
    npz = enc.save(tmp_path / "enc.npz")
    save_store(enc, tmp_path / "store", shard_rows=60)
    runner = CliRunner()
    for source, out in [(npz, "a.csv"), (tmp_path / "store", "b.csv")]:
        result = runner.invoke(main, ["cluster", "--encodings", str(source), "--k", "3", "--out", str(tmp_path / out),
                                      "--jobs", "1"])
        assert result.exit_code == 0, result.output
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text()
