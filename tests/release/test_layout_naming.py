"""The two-folder layout and the neutral names (issue 13)."""

from __future__ import annotations

import csv
import json
import re

import pytest

from anonfaces.errors import BadInputError
from anonfaces.pipeline.layout import check_layout
from anonfaces.release.layout import (
    check_folders,
    default_private_dir,
    is_shareable_name,
)
from anonfaces.release.naming import (
    ALPHABET,
    NAME_LENGTH,
    NameMatcher,
    hashed_stem,
    load_or_create_key,
    name_contains,
    new_key,
    output_names,
    person_names,
    read_key,
    write_key,
)
from anonfaces.utils.images import list_images

# --- layout ---------------------------------------------------------------------------------------


def test_private_folder_defaults_beside_out(tmp_path):
    assert default_private_dir(tmp_path / "out") == tmp_path / "out.private"
    assert default_private_dir(str(tmp_path / "out") + "/") == tmp_path / "out.private"
    layout = check_layout(tmp_path / "out")
    assert layout.private == tmp_path / "out.private"
    assert layout.mapping_path.parent == layout.run_path.parent == layout.key_path.parent == layout.private


def test_layout_refuses_a_private_folder_inside_out_or_the_dataset(tmp_path):
    with pytest.raises(BadInputError, match="inside --out"):
        check_layout(tmp_path / "out", tmp_path / "out" / "private")
    with pytest.raises(BadInputError, match="inside --out"):
        check_layout(tmp_path / "out", tmp_path / "out")
    with pytest.raises(BadInputError, match="is inside --private"):
        check_layout(tmp_path / "p" / "out", tmp_path / "p")
    with pytest.raises(BadInputError, match="overlap"):
        check_layout(tmp_path / "out", tmp_path / "data" / "p", dataset=tmp_path / "data")
    # the release's own check (what `verify` runs) refuses the same folders
    with pytest.raises(BadInputError, match="inside --out"):
        check_folders(tmp_path / "out", tmp_path / "out" / "private")
    assert check_folders(tmp_path / "out") == (tmp_path / "out", tmp_path / "out.private")


def test_only_photos_are_shareable_names():
    assert is_shareable_name("bcdfg.jpg") and is_shareable_name("surrogates/0.png")
    for rel in ("mapping.csv", "run.json", "encodings.npz", "release.key", ".bcd.jpg.tmp", "x/.hidden.jpg", "notes.txt"):
        assert not is_shareable_name(rel), rel


def test_two_folder_layout_of_a_default_run(release_data, safe_run):
    root, _, _, _ = release_data
    out, report = safe_run
    private = out.with_name("out.private")
    assert report.private == private
    out_files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert out_files and all(is_shareable_name(f) for f in out_files)
    assert not (out / "surrogates").exists()  # surrogates only when asked for
    for name in ("mapping.csv", "files.csv", "run.json", "encodings.npz", "release.key"):
        assert (private / name).is_file(), name
    assert list((private / "surrogates").glob("*.png"))
    run = json.loads((private / "run.json").read_text())
    assert run["dataset"] == str(root.resolve()) and run["release"]["names"] == "hash"
    assert str(root) not in "".join(out_files)


# --- names ----------------------------------------------------------------------------------------


def test_hashed_names_are_stable_per_key_and_differ_across_keys(sample_dir):
    paths = list_images(sample_dir)
    key_a, key_b = new_key(), new_key()
    a1 = output_names(paths, key=key_a)
    a2 = output_names(list(reversed(paths)), key=key_a)
    b = output_names(paths, key=key_b)
    assert a1 == a2
    assert len(set(a1.values())) == len(paths)
    assert all(a1[p] != b[p] for p in paths)
    assert all(re.fullmatch(f"[{ALPHABET}]{{{NAME_LENGTH}}}\\.jpg", n) for n in a1.values())


def test_no_dataset_folder_or_stem_in_any_hashed_name(lfw_dir):
    """All 13,233 LFW paths: no hashed name holds any of the 5,749 names or 13,233 file stems."""
    paths = list_images(lfw_dir)
    words = person_names(paths) | {p.split("/")[0] for p in paths}
    matcher = NameMatcher(words)
    assert matcher.find("x_George_W_Bush_0001") == "George_W_Bush_0001"  # the matcher does see them
    names = output_names(paths, key=new_key())
    assert len(set(names.values())) == len(paths)
    assert [n for n in names.values() if matcher.find(n.rsplit(".", 1)[0])] == []


def test_keep_mode_and_folders(tmp_path):
    paths = ["Ann_Lee/Ann_Lee_0001.jpg", "Bob_Ray/2019/trip/Bob_Ray_0002.JPG", "Cy_Do/Cy_Do_album/x.png", "flat.jpg"]
    assert output_names(paths, names="keep") == {p: p for p in paths}
    key = new_key()
    flat = output_names(paths, key=key)
    assert all("/" not in n for n in flat.values())
    kept = output_names(paths, key=key, keep_folders=True)
    assert kept["Ann_Lee/Ann_Lee_0001.jpg"] == flat["Ann_Lee/Ann_Lee_0001.jpg"]  # the person level is never kept
    assert kept["Bob_Ray/2019/trip/Bob_Ray_0002.JPG"].startswith("2019/trip/")
    assert kept["Bob_Ray/2019/trip/Bob_Ray_0002.JPG"].endswith(".jpg")
    assert "/" not in kept["Cy_Do/Cy_Do_album/x.png"]  # a folder holding a person's name is dropped
    with pytest.raises(BadInputError, match="names="):
        output_names(paths, names="sequence", key=key)
    with pytest.raises(BadInputError, match="needs a key"):
        output_names(paths)


def test_key_file_is_made_once_and_reused(tmp_path):
    key, created = load_or_create_key(tmp_path / "release.key")
    again, created_again = load_or_create_key(tmp_path / "release.key")
    assert created and not created_again and key == again and len(key) == 32
    assert (tmp_path / "release.key").stat().st_mode & 0o077 == 0  # owner only
    assert hashed_stem("a/b.jpg", key) == hashed_stem("a/b.jpg", read_key(tmp_path / "release.key"))
    (tmp_path / "bad.key").write_text("not a key")
    with pytest.raises(BadInputError, match="not a naming key"):
        read_key(tmp_path / "bad.key")


def test_name_contains_whole_words_for_short_names():
    assert name_contains("Ann_Lee_0001", {"Ann_Lee"}) == "Ann_Lee"
    assert name_contains("ann-lee-0001", {"Ann_Lee"}) == "Ann_Lee"
    assert name_contains("img_0001", {"0001"}) == "0001"
    assert name_contains("bcdfg", {"01", "ab"}) is None
    assert name_contains("x 01 y", {"01"}) == "01"
    assert name_contains("0001", {"0001"}) == "0001" and name_contains("abcd", {"abcde"}) is None


def test_anonymize_names_stable_with_the_same_key_and_not_across_keys(release_data, tmp_path):
    from anonfaces.pipeline import anonymize_dataset

    root, enc_path, _, _ = release_data
    fast = {"k": 3, "encodings": enc_path, "jobs": 2, "progress": False, "synth": "pixel", "second_pass": False,
            "safety_net": False, "no_face": "copy"}
    first = anonymize_dataset(root, tmp_path / "a", **fast)
    key = tmp_path / "a.private" / "release.key"
    second = anonymize_dataset(root, tmp_path / "b", key_file=key, **fast)
    write_key(tmp_path / "other.key", new_key())
    third = anonymize_dataset(root, tmp_path / "c", key_file=tmp_path / "other.key", **fast)
    assert first.outputs == second.outputs and len(first.outputs) == len(list_images(root))
    assert sorted(list_images(tmp_path / "a")) == sorted(list_images(tmp_path / "b")) == sorted(first.outputs.values())
    assert set(first.outputs.values()).isdisjoint(third.outputs.values())
    with open(tmp_path / "b.private" / "mapping.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["path"]: r["output"] for r in rows} == {p: o for p, o in second.outputs.items() if p in {r["path"] for r in rows}}
    assert not (tmp_path / "b.private" / "release.key").exists()  # the given key is used, not a new one
