"""The sweep on real LFW faces: k-Same bound checks, the table's schema, the files, the command."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from anonfaces.evaluate import (
    COLUMNS,
    METRICS,
    DatasetSubset,
    read_table,
)
from anonfaces.pipeline import evaluate_dataset
from anonfaces.utils.images import list_images

pytestmark = [pytest.mark.lfw, pytest.mark.slow]

N_PEOPLE, N_PHOTOS = 20, 5
SUBSET = DatasetSubset(people=N_PEOPLE, photos_per_person=N_PHOTOS, min_photos=10)
DATASET_NAME = "lfw[people=20,photos-per-person=5,min-photos=10]"


@pytest.fixture(scope="module")
def lfw_subset(lfw_dir, tmp_path_factory) -> Path:
    """20 LFW people with at least 10 photos, 5 photos each (links to the originals), the rule written out by hand."""
    people = sorted(p.name for p in lfw_dir.iterdir() if p.is_dir() and len(list(p.glob("*.jpg"))) >= 10)
    picks = [people[int(i)] for i in np.linspace(0, len(people) - 1, N_PEOPLE).round()]
    root = tmp_path_factory.mktemp("lfw-subset") / "lfw"
    for person in picks:
        (root / person).mkdir(parents=True)
        for photo in sorted((lfw_dir / person).glob("*.jpg"))[:N_PHOTOS]:
            os.symlink(photo, root / person / photo.name)
    return root


@pytest.fixture(scope="module")
def sweep(lfw_dir, tmp_path_factory):
    """The sweep on the same 100 photos, asked for with the subset option on the whole of LFW."""
    out = tmp_path_factory.mktemp("evaluate") / "results"
    report = evaluate_dataset(lfw_dir, out, subset=SUBSET, methods=["ksame:pixel"], ks=[5], recognizers=["dlib", "lbp"],
                              detect=False, examples=2, jobs=2, progress=False)
    return report


def _value(table, method, metric, recognizer="dlib", k=None):
    rows = table[(table["method"] == method) & (table["metric"] == metric) & (table["recognizer"] == recognizer)]
    rows = rows[rows["k"].isna()] if k is None else rows[rows["k"] == k]
    assert len(rows) == 1, (method, metric, recognizer, k, rows)
    return float(rows["value"].iloc[0])


def test_ksame_pixel_closed_set_far_below_unanonymized(sweep):
    t = sweep.table
    original = _value(t, "none", "closed_set")
    anonymized = _value(t, "ksame:pixel", "closed_set", k=5)
    assert original > 0.99  # the unanonymized face is its own nearest original
    assert anonymized < 0.4 * original, f"closed-set identification {anonymized:.3f} vs {original:.3f} unanonymized"
    # the realistic attacker with other photos of the same people also loses most of them
    assert _value(t, "ksame:pixel", "identity_reid", k=5) < 0.6 * _value(t, "none", "identity_reid")
    # k-Same averages faces, so the surrogate is farther from each member than the member is from itself
    assert _value(t, "ksame:pixel", "il", k=5) > 0.3
    # and the bound 1/k is printed beside the k-anonymous method's privacy figures
    rows = t[(t["method"] == "ksame:pixel") & (t["metric"] == "closed_set")]
    assert np.allclose(rows["bound"], 0.2)


def test_table_schema(sweep):
    t = read_table(sweep.metrics_path)
    assert tuple(t.columns[: len(COLUMNS)]) == COLUMNS
    assert set(t["metric"]) <= set(METRICS)
    assert {"ri", "closed_set", "identity_reid", "parrot_reid", "il", "ssd", "ssim", "psnr"} <= set(t["metric"])
    assert set(t["method"]) == {"none", "ksame:pixel"}
    assert (t["dataset"] == DATASET_NAME).all()
    privacy = t["metric"].isin(["ri", "closed_set", "identity_reid", "parrot_reid"])
    assert t.loc[privacy, "value"].between(0, 1).all()
    assert t.loc[privacy, "recognizer"].isin(["dlib", "lbp"]).all()
    # one row per method x k x metric x subset x recognizer
    key = ["method", "k", "metric", "subset", "recognizer"]
    assert not t.duplicated(key).any()
    # every ksame row has its k; the reference has none
    assert t.loc[t["method"] == "ksame:pixel", "k"].eq(5).all() and t.loc[t["method"] == "none", "k"].isna().all()
    ssim_buckets = set(t.loc[t["metric"] == "ssim", "subset"])
    assert ssim_buckets == {"<=10%", "10-30%", "30-50%", "50-70%", ">70%", "average"}


def test_outputs_and_run_record(sweep):
    out = sweep.out
    for name in ("metrics.csv", "report.md", "run.json", "plots/privacy_dlib.png", "plots/il.png", "plots/frontier.png",
                 "plots/quality_buckets.png", "plots/examples-k5.png"):
        assert (out / name).is_file(), name
    record = json.loads((out / "run.json").read_text())
    assert record["settings"]["ks"] == [5] and record["settings"]["methods"] == ["none", "ksame:pixel"]
    assert record["encodings"]["n_people"] == N_PEOPLE
    assert record["dataset_name"] == DATASET_NAME and record["subset"]["n_photos"] == N_PEOPLE * N_PHOTOS
    assert record["subset"]["people"] == N_PEOPLE and len(record["subset"]["selected_people"]) == N_PEOPLE
    assert set(record["stage_seconds"]["ksame:pixel k=5"]) == {"cluster", "anonymize", "measure", "score"}
    report = (out / "report.md").read_text()
    assert "plots/privacy_dlib.png" in report and "1/k" in report and DATASET_NAME in report


def test_subset_option_selects_the_rule_written_by_hand(sweep, lfw_subset):
    assert list_images(sweep.out / "cache" / "subset" / "lfw") == list_images(lfw_subset)


def test_command_reuses_the_cache(sweep, lfw_dir, tmp_path):
    from anonfaces.cli import main

    out = tmp_path / "cli"
    enc = sweep.out / "cache" / "encodings.npz"
    result = CliRunner().invoke(main, ["evaluate", "--dataset", str(lfw_dir), "--people", str(N_PEOPLE), "--photos-per-person",
                                       str(N_PHOTOS), "--min-photos", "10", "--out", str(out), "--methods", "blur",
                                       "--recognizers", "dlib", "--encodings", str(enc), "--no-detect", "--examples", "0",
                                       "--jobs", "2", "--no-progress"])
    assert result.exit_code == 0, result.output
    t = read_table(out / "metrics.csv")
    assert set(t["method"]) == {"none", "blur"}
    assert (t["dataset"] == DATASET_NAME).all()
    assert _value(t, "blur", "closed_set") < _value(t, "none", "closed_set")


def test_command_refuses_bad_input_cleanly(lfw_subset, tmp_path):
    from anonfaces.cli import main

    result = CliRunner().invoke(main, ["evaluate", "--dataset", str(lfw_subset), "--out", str(tmp_path / "x"),
                                       "--methods", "ksame:nosuch"])
    assert result.exit_code == 2
    assert "nosuch" in result.output and "valid" in result.output
    result = CliRunner().invoke(main, ["evaluate", "--dataset", str(lfw_subset), "--out", str(lfw_subset / "inside")])
    assert result.exit_code == 2 and "inside the dataset" in result.output
