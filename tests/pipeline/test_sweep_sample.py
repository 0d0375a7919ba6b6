"""The whole chain on the bundled sample (no ../shared/data): the sweep, scoring an existing run, the cache,
and reproducibility whatever order the photos are linked in."""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from anonfaces.evaluate import DatasetSubset, read_table
from anonfaces.pipeline import evaluate_dataset

pytestmark = pytest.mark.slow

SUBSET = DatasetSubset(people=6, photos_per_person=3, min_photos=3)
SWEEP = {"subset": SUBSET, "methods": ["ksame:pixel", "blur"], "ks": [2, 3], "recognizers": ["dlib", "lbp"],
         "detect": False, "examples": 1, "progress": False}
KEY = ["method", "k", "metric", "subset", "recognizer"]


@pytest.fixture(scope="module")
def sweep(sample_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "results"
    return evaluate_dataset(sample_dir, out, jobs=2, **SWEEP)


def _values(table):
    return table.sort_values(KEY).reset_index(drop=True)[[*KEY, "value", "bound", "n"]]


def test_sweep_writes_everything_and_records_its_options(sweep):
    out = sweep.out
    for name in ("metrics.csv", "report.md", "run.json", "plots/il.png", "cache/encodings.npz",
                 "runs/ksame-pixel/k2/mapping.csv", "runs/ksame-pixel/k3/run.json", "runs/blur/all/mapping.csv"):
        assert (out / name).is_file(), name
    record = json.loads((out / "run.json").read_text())
    assert record["options"]["recognizers"] == ["dlib", "lbp"] and record["options"]["detect"] is False
    assert record["encodings"]["dlib_from_encodings"] is True
    assert set(record["stage_seconds"]["ksame:pixel k=2"]) == {"cluster", "anonymize", "measure", "score"}
    run = json.loads((out / "runs/ksame-pixel/k2/run.json").read_text())
    assert run["options"]["method"] == "ksame" and run["options"]["k"] == 2 and run["options"]["synth"] == "pixel"
    assert run["options"]["blend"]["blend"] == "feather" and run["clustering_options"]["algo"] == "fixed-kmeans"
    t = sweep.table
    assert set(t["method"]) == {"none", "ksame:pixel", "blur"}
    closed = t[(t.metric == "closed_set") & (t.recognizer == "dlib")].set_index("method")["value"]
    assert closed["none"] > closed["blur"]


def test_evaluate_run_scores_an_existing_run_as_the_sweep_does(sweep, tmp_path):
    from anonfaces.cli import main

    run = sweep.out / "runs" / "ksame-pixel" / "k2"
    before = (run / "mapping.csv").stat().st_mtime_ns
    out = tmp_path / "scored"
    r = CliRunner().invoke(main, ["evaluate", "--run", str(run), "--encodings", str(sweep.out / "cache" / "encodings.npz"),
                                  "--recognizers", "dlib,lbp", "--no-detect", "--examples", "0", "--jobs", "2",
                                  "--no-progress", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert (run / "mapping.csv").stat().st_mtime_ns == before  # nothing anonymized again
    mine = read_table(out / "metrics.csv")
    assert set(mine["method"]) == {"none", "ksame:pixel"}
    table = read_table(sweep.metrics_path)
    theirs = table[table["method"].isin(["none", "ksame:pixel"]) & (table["k"].isna() | (table["k"] == 2))]
    a, b = _values(mine), _values(theirs)
    assert len(a) == len(b) and a[KEY].equals(b[KEY])
    x, y = a["value"].astype(float).to_numpy(), b["value"].astype(float).to_numpy()
    assert ((x == y) | (np.isnan(x) & np.isnan(y))).all()  # equal to the last bit


def test_dlib_originals_from_the_encodings_are_what_the_attacker_computes(sweep):
    from anonfaces.encode import Encodings
    from anonfaces.evaluate import make_recognizer, measure_photos

    enc = Encodings.load(sweep.out / "cache" / "encodings.npz")
    root = sweep.out / "cache" / "subset" / "sample"
    meas = measure_photos(root, enc, {"dlib": make_recognizer("dlib")}, detect=False, jobs=1, progress=False)
    assert meas.readable.all()
    assert np.array_equal(np.asarray(meas.features["dlib"], np.float32), np.asarray(enc.embeddings, np.float32))


def test_sweep_again_reuses_every_run_and_a_changed_photo_invalidates(sweep, sample_dir, tmp_path):
    out = tmp_path / "again"
    shutil.copytree(sweep.out, out, symlinks=True)
    runs = sorted(out.glob("runs/*/*/mapping.csv"))
    stamps = {p: p.stat().st_mtime_ns for p in runs}
    again = evaluate_dataset(sample_dir, out, jobs=1, **SWEEP)
    assert {p: p.stat().st_mtime_ns for p in runs} == stamps, "a finished anonymization was made again"
    assert _values(again.table).equals(_values(sweep.table))


def _linked_in_shuffled_order(sample_dir: Path, root: Path, seed: int) -> Path:
    files = sorted(p for p in sample_dir.rglob("*") if p.is_file())
    random.Random(seed).shuffle(files)
    for f in files:
        dest = root / f.relative_to(sample_dir)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(f.resolve(), dest)
    return root


def test_same_photos_in_another_order_give_the_same_metrics(sweep, sample_dir, tmp_path):
    """Reproducibility: links made in another order, another worker count: the same metrics.csv."""
    root = _linked_in_shuffled_order(sample_dir, tmp_path / "shuffled" / "sample", seed=7)
    other = evaluate_dataset(root, tmp_path / "out", jobs=1, **SWEEP)
    assert (read_table(other.metrics_path).drop(columns="dataset").equals(
        read_table(sweep.metrics_path).drop(columns="dataset")))


def test_other_encodings_are_never_scored_with_stale_runs(sweep, sample_dir, tmp_path):
    """The cause of sweeps that differed in their k-Same rows: clusterings and anonymizations were reused
    by name and settings although they had been made from other encodings (now the content key holds the
    encodings' digest, so both are made again)."""
    from anonfaces.encode import Encodings

    out = tmp_path / "again"
    shutil.copytree(sweep.out, out, symlinks=True)
    enc = Encodings.load(sweep.out / "cache" / "encodings.npz")
    enc.embeddings = (enc.embeddings + np.random.RandomState(3).normal(0, 0.05, enc.embeddings.shape)).astype(np.float32)
    enc.save(tmp_path / "other.npz")
    runs = sorted(out.glob("runs/*/*/mapping.csv"))
    stamps = {p: p.stat().st_mtime_ns for p in runs}
    clusterings = {p: p.read_text() for p in out.glob("cache/clusters-*.csv.key")}
    evaluate_dataset(sample_dir, out, jobs=1, encodings=tmp_path / "other.npz", **SWEEP)
    assert all(p.stat().st_mtime_ns != stamps[p] for p in runs), "a run made from other encodings was reused"
    assert all(p.read_text() != key for p, key in clusterings.items())
