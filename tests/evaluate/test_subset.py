"""The subset rule on a tiny synthetic folder tree, its links, and the options that ask for it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from anonfaces.errors import BadInputError
from anonfaces.evaluate import DatasetSubset, link_subset
from anonfaces.evaluate.table import make_row, to_frame
from anonfaces.pipeline import EvaluationReport
from anonfaces.utils.images import list_images

REPO = Path(__file__).resolve().parents[2]

# person -> number of photos; names sort as written
COUNTS = {"Ann": 12, "Bob": 3, "Cid": 10, "Dee": 1, "Eve": 15, "Fay": 10, "Gus": 9, "Hal": 11}


@pytest.fixture()
def tree(tmp_path) -> Path:
    root = tmp_path / "data"
    for person, n in COUNTS.items():
        (root / person).mkdir(parents=True)
        for i in range(n, 0, -1):  # written in reverse, so order comes from sorting
            (root / person / f"{person}_{i:04d}.jpg").write_bytes(b"jpeg")
        (root / person / "notes.txt").write_text("not a photo")
    (root / "loose.jpg").write_bytes(b"no person")
    (root / ".hidden").mkdir()
    (root / ".hidden" / "x.jpg").write_bytes(b"hidden")
    return root


def test_everything_is_every_photo_of_every_person(tree):
    subset = DatasetSubset()
    assert subset.is_everything and subset.describe("data") == "data"
    photos = subset.select(tree)
    assert len(photos) == sum(COUNTS.values())  # the loose photo and hidden files are not anybody's
    assert photos == sorted(photos)


def test_rule_by_hand(tree):
    # eligible (>= 10 photos, sorted): Ann, Cid, Eve, Fay, Hal -> linspace(0, 4, 3) = 0, 2, 4 -> Ann, Eve, Hal
    photos = DatasetSubset(people=3, photos_per_person=2, min_photos=10).select(tree)
    assert photos == ["Ann/Ann_0001.jpg", "Ann/Ann_0002.jpg", "Eve/Eve_0001.jpg", "Eve/Eve_0002.jpg",
                      "Hal/Hal_0001.jpg", "Hal/Hal_0002.jpg"]
    # 4 of the 5: linspace(0, 4, 4) = 0, 1.33, 2.67, 4 -> rounds to 0, 1, 3, 4
    people = {p.split("/")[0] for p in DatasetSubset(people=4, photos_per_person=1, min_photos=10).select(tree)}
    assert people == {"Ann", "Cid", "Fay", "Hal"}
    # one person: the first eligible; all of them: every eligible person
    assert DatasetSubset(people=1, min_photos=10).select(tree) == [f"Ann/Ann_{i:04d}.jpg" for i in range(1, 13)]
    assert {p.split("/")[0] for p in DatasetSubset(min_photos=10).select(tree)} == {"Ann", "Cid", "Eve", "Fay", "Hal"}


def test_first_photos_in_sorted_order_and_short_folders(tree):
    photos = DatasetSubset(photos_per_person=5).select(tree)
    assert [p for p in photos if p.startswith("Bob/")] == ["Bob/Bob_0001.jpg", "Bob/Bob_0002.jpg", "Bob/Bob_0003.jpg"]
    assert [p for p in photos if p.startswith("Ann/")] == [f"Ann/Ann_{i:04d}.jpg" for i in range(1, 6)]
    assert len(photos) == sum(min(n, 5) for n in COUNTS.values())


def test_same_rule_same_photos_and_input_untouched(tree):
    before = list_images(tree)
    subset = DatasetSubset(people=2, photos_per_person=3, min_photos=3)
    assert subset.select(tree) == subset.select(tree)
    assert list_images(tree) == before


def test_bad_settings_and_too_many_people(tree):
    for bad in ({"people": 0}, {"photos_per_person": -1}, {"min_photos": 0}, {"people": 2.5}, {"people": True}):
        with pytest.raises(BadInputError):
            DatasetSubset(**bad)
    with pytest.raises(BadInputError, match=r"people=6 but only 5 people .* min_photos=10"):
        DatasetSubset(people=6, min_photos=10).select(tree)
    with pytest.raises(BadInputError, match="min_photos=99"):
        DatasetSubset(min_photos=99).select(tree)


def test_describe_and_record():
    subset = DatasetSubset(people=60, photos_per_person=10, min_photos=10)
    assert subset.describe("lfw") == "lfw[people=60,photos-per-person=10,min-photos=10]"
    assert DatasetSubset(photos_per_person=3).describe("x") == "x[photos-per-person=3]"
    assert subset.to_dict() == {"people": 60, "photos_per_person": 10, "min_photos": 10}


def test_link_subset_holds_exactly_the_selection(tree, tmp_path):
    folder = tmp_path / "out" / "cache" / "subset" / "data"
    first = DatasetSubset(people=3, photos_per_person=2, min_photos=10).select(tree)
    link_subset(tree, first, folder)
    assert list_images(folder) == first
    for rel in first:
        assert (folder / rel).is_symlink() and (folder / rel).resolve() == (tree / rel).resolve()
    # again with the same photos: nothing changes; with others: stale links and empty folders go
    link_subset(tree, first, folder)
    assert list_images(folder) == first
    second = DatasetSubset(people=2, photos_per_person=1, min_photos=10).select(tree)
    link_subset(tree, second, folder)
    assert list_images(folder) == second
    assert sorted(p.name for p in folder.iterdir()) == sorted({p.split("/")[0] for p in second})
    assert len(list_images(tree)) == sum(COUNTS.values()) + 1  # the originals are untouched


def _fake_report(out):
    rows = [make_row("x", "none", None, "closed_set", 1.0, recognizer="dlib")]
    return EvaluationReport(Path(out), to_frame(rows))


def test_command_passes_the_subset_options(tree, tmp_path, monkeypatch):
    from anonfaces import pipeline
    from anonfaces.cli import main

    seen = {}

    def fake(dataset, out, **kwargs):
        seen.update(dataset=dataset, **kwargs)
        return _fake_report(out)

    monkeypatch.setattr(pipeline, "evaluate_dataset", fake)
    result = CliRunner().invoke(main, ["evaluate", "--dataset", str(tree), "--people", "3", "--photos-per-person", "2",
                                       "--min-photos", "10", "--out", str(tmp_path / "r"), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert seen["subset"] == DatasetSubset(people=3, photos_per_person=2, min_photos=10)
    result = CliRunner().invoke(main, ["evaluate", "--dataset", str(tree), "--out", str(tmp_path / "r"), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert seen["subset"].is_everything
    result = CliRunner().invoke(main, ["evaluate", "--dataset", str(tree), "--people", "0", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "--people" in result.output


def test_script_has_the_same_options():
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "evaluate.py"), "--help"], capture_output=True, text=True,
                            check=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    for option in ("--people", "--photos-per-person", "--min-photos"):
        assert option in result.stdout


def test_run_record_names_the_subset(tree, tmp_path, monkeypatch):
    """The sweep links the subset into OUT.private/cache and records the rule, without running any model."""
    from anonfaces.pipeline import sweep

    class Stop(Exception):
        pass

    def stop(root, cache, **kwargs):
        raise Stop(root)

    monkeypatch.setattr(sweep, "cached_encodings", stop)
    out = tmp_path / "results"
    with pytest.raises(Stop) as info:
        sweep.evaluate_dataset(tree, out, subset={"people": 3, "photos_per_person": 2, "min_photos": 10}, methods="blur",
                               recognizers=["dlib"], progress=False)
    root = Path(info.value.args[0])
    assert root == out.with_name("results.private") / "cache" / "subset" / "data"  # the links name people: private
    assert list_images(root) == DatasetSubset(people=3, photos_per_person=2, min_photos=10).select(tree)
    # the record itself (run.json, metrics' dataset column) is checked on real photos in test_sweep.py
