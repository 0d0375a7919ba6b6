"""The command line is consistent: --k, --jobs, --progress/--no-progress in every command, names checked first."""

from __future__ import annotations

import time

import pytest
from click.testing import CliRunner

from anonfaces.cli import main

COMMANDS = ("encode", "cluster", "anonymize", "evaluate", "verify")


def _run(args):
    return CliRunner().invoke(main, args)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_jobs_and_progress(command):
    r = _run([command, "--help"])
    assert r.exit_code == 0, r.output
    assert "--jobs" in r.output and "--progress / --no-progress" in r.output


@pytest.mark.parametrize("command", ["cluster", "anonymize", "evaluate"])
def test_k_is_typed_and_checked_the_same_way(command, tmp_path, sample_dir):
    base = {"cluster": ["cluster", "--encodings", str(tmp_path / "e.npz"), "--out", str(tmp_path / "c.csv")],
            "anonymize": ["anonymize", "--dataset", str(sample_dir), "--out", str(tmp_path / "o")],
            "evaluate": ["evaluate", "--dataset", str(sample_dir), "--out", str(tmp_path / "r")]}[command]
    for bad in ("1", "two", "0"):
        r = _run([*base, "--k", bad])
        assert r.exit_code == 2, r.output
        assert "--k" in r.output and ("k=1 hides no one" in r.output or "integer" in r.output), r.output
    assert not (tmp_path / "o").exists() and not (tmp_path / "r").exists()


def test_evaluate_takes_a_list_of_k():
    from anonfaces.cli._common import KType

    assert KType(many=True).convert("5,2,5", None, None) == (2, 5)
    assert KType().convert("3", None, None) == 3


@pytest.mark.parametrize("option,typo,valid", [
    ("--methods", "ksame:morph,blurr", "pixelate"),
    ("--methods", "ksame:nosuch", "morph"),
    ("--recognizers", "dlib,eigenface", "eigenfaces"),
    ("--algo", "fixed-kmean", "fixed-kmeans"),
])
def test_typos_fail_before_any_work_with_the_valid_names(option, typo, valid, sample_dir, tmp_path):
    _run(["evaluate", "--help"])  # imports done once, as on a warm start
    t = time.perf_counter()
    r = _run(["evaluate", "--dataset", str(sample_dir), "--out", str(tmp_path / "r"), option, typo])
    seconds = time.perf_counter() - t
    assert r.exit_code == 2, r.output
    assert typo.split(",")[-1].split(":")[-1] in r.output and valid in r.output
    assert seconds < 1.0, f"{option} {typo}: refused after {seconds:.2f} s"
    assert not (tmp_path / "r").exists()


def test_jobs_is_checked_the_same_way(tmp_path, sample_dir):
    for command in (["encode", "--dataset", str(sample_dir), "--encodings", str(tmp_path / "e.npz")],
                    ["anonymize", "--dataset", str(sample_dir), "--out", str(tmp_path / "o")]):
        r = _run([*command, "--jobs", "0"])
        assert r.exit_code == 2 and "--jobs" in r.output, r.output


def test_run_and_dataset_exclude_each_other(tmp_path, sample_dir):
    run = tmp_path / "run"
    run.mkdir()
    r = _run(["evaluate", "--run", str(run), "--dataset", str(sample_dir), "--out", str(tmp_path / "r")])
    assert r.exit_code == 2 and "--run" in r.output


def test_run_must_be_an_anonymize_output(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    r = _run(["evaluate", "--run", str(run), "--out", str(tmp_path / "r")])
    assert r.exit_code == 2 and "run.json" in r.output


@pytest.mark.parametrize("option,bad,valid", [
    ("--place", "eyes", "landmarks"),
    ("--detail", "1.5", "0<=x<=1"),
    ("--ring", "1.0", "1.02<=x<=2"),
])
def test_blend_options_are_checked_before_any_work(option, bad, valid, sample_dir, tmp_path):
    r = _run(["anonymize", "--dataset", str(sample_dir), "--out", str(tmp_path / "o"), option, bad])
    assert r.exit_code == 2, r.output
    assert bad in r.output and valid in r.output.replace(" ", "")
    assert not (tmp_path / "o").exists()
