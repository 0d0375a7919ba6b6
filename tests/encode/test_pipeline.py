"""The encoding stage end to end, on real photos with the real dlib models."""

import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from click.testing import CliRunner

import anonfaces
from anonfaces.cli import main
from anonfaces.encode import Encodings, encode_photos, read_skips
from anonfaces.errors import BadInputError
from tests.conftest import REPO, SAMPLE
from tests.encode.bad_inputs import make_corpus

PEOPLE = ["Tiger_Woods", "Bill_Gates", "Kate_Hudson"]


def _small_dataset(root):
    for person in PEOPLE:
        shutil.copytree(SAMPLE / person, root / person)
    return root


def assert_same_encodings(a: Encodings, b: Encodings):
    for name in Encodings._ARRAYS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    drop = {"created"}
    assert {k: v for k, v in a.meta.items() if k not in drop} == {k: v for k, v in b.meta.items() if k not in drop}


def test_sample_encodings_are_complete(sample_encodings):
    enc = sample_encodings
    n_images = 240
    assert enc.meta["n_images"] == n_images
    assert len(set(enc.paths.tolist())) + enc.meta["n_skipped"] == n_images
    assert len(enc) >= n_images - enc.meta["n_skipped"]
    assert enc.embeddings.dtype == np.float32 and enc.embeddings.shape == (len(enc), 128)
    assert set(enc.identities.tolist()) == {p.name for p in SAMPLE.iterdir() if p.is_dir()}
    # every face index within an image is 0..m-1 and boxes contain their landmarks
    for path in set(enc.paths.tolist()):
        idx = np.sort(enc.face_index[enc.paths == path])
        assert idx.tolist() == list(range(len(idx)))
    l, t, r, b = enc.boxes.T
    cx, cy = enc.landmarks68[:, 30].T  # nose tip
    assert np.all((l <= cx) & (cx <= r) & (t <= cy) & (cy <= b))
    # dlib embeddings: same person close, different people far, on average
    same = enc.identities[:, None] == enc.identities[None, :]
    d = np.linalg.norm(enc.embeddings[:, None] - enc.embeddings[None], axis=2)
    off = ~np.eye(len(enc), dtype=bool)
    assert d[same & off].mean() < 0.5 < d[~same].mean()


def test_bad_inputs_are_reported_not_fatal(tmp_path):
    expect = make_corpus(tmp_path / "photos")
    report = encode_photos(tmp_path / "photos", tmp_path / "enc.npz", jobs=2, progress=False, chunk_size=4)
    skipped = dict(read_skips(report.skipped_path))
    assert skipped == dict(report.skipped)
    enc = anonfaces.load_encodings(report.encodings_path)
    for name, what in expect.items():
        if what == "face":
            assert name in enc.paths, name
        else:
            assert what in skipped[name], (name, skipped.get(name))
    assert report.n_images == len(expect)
    assert "skipped" in report.summary() and f"{len(skipped)} skipped" in report.summary()


def test_resume_after_kill_gives_the_same_file(tmp_path, sample_encodings_path):
    out = tmp_path / "enc.npz"
    cmd = [sys.executable, "-m", "anonfaces.cli", "encode", "--dataset", str(SAMPLE), "--encodings", str(out),
           "--jobs", "2", "--no-progress", "--chunk-size", "8"]
    proc = subprocess.Popen(cmd, cwd=REPO, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    partial = tmp_path / "enc.npz.partial"
    deadline = time.time() + 300
    while time.time() < deadline and len(list(partial.glob("chunk-*.npz"))) < 3:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole process group, workers included
    proc.wait()
    n_done = len(list(partial.glob("chunk-*.npz")))
    assert 3 <= n_done < 30 and not out.exists()

    with pytest.raises(BadInputError, match="--resume"):
        encode_photos(SAMPLE, out, jobs=2, progress=False, chunk_size=8)
    with pytest.raises(BadInputError, match="chunk_size"):
        encode_photos(SAMPLE, out, jobs=2, progress=False, chunk_size=16, resume=True)
    report = encode_photos(SAMPLE, out, jobs=2, progress=False, chunk_size=8, resume=True)
    assert report.resumed_images == 8 * n_done
    assert not partial.exists()
    assert_same_encodings(anonfaces.load_encodings(out), anonfaces.load_encodings(sample_encodings_path))


def test_a_failed_save_leaves_the_old_file(tmp_path, sample_encodings, monkeypatch):
    path = tmp_path / "enc.npz"
    sample_encodings.save(path)
    before = path.read_bytes()

    def broken_savez(fh, **arrays):
        fh.write(b"PK\x03\x04 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        sample_encodings.subset(slice(0, 5)).save(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["enc.npz"]


def test_file_round_trip_and_subset(tmp_path, sample_encodings):
    path = sample_encodings.save(tmp_path / "copy")  # suffix added
    assert path.name == "copy.npz"
    assert_same_encodings(anonfaces.load_encodings(path), sample_encodings)
    sub = sample_encodings.subset(sample_encodings.identities == "Tiger_Woods")
    assert set(sub.identities.tolist()) == {"Tiger_Woods"} and len(sub) >= 5


def test_loading_a_wrong_file_is_a_clear_error(tmp_path):
    from anonfaces.errors import AnonfacesError

    (tmp_path / "x.npz").write_bytes(b"not a zip")
    with pytest.raises(AnonfacesError, match="cannot read encodings file"):
        anonfaces.load_encodings(tmp_path / "x.npz")
    np.savez(tmp_path / "y.npz", embeddings=np.zeros((2, 3)))
    with pytest.raises(AnonfacesError, match="not an anonfaces encodings file"):
        anonfaces.load_encodings(tmp_path / "y.npz")
    with pytest.raises(AnonfacesError, match="not found"):
        anonfaces.load_encodings(tmp_path / "z.npz")


def test_cli_end_to_end(tmp_path):
    data = _small_dataset(tmp_path / "photos")
    out = tmp_path / "enc.npz"
    result = CliRunner().invoke(main, ["encode", "--dataset", str(data), "--encodings", str(out), "--jobs", "1", "--no-progress",
                                       "--export-pickle", str(tmp_path / "enc.pickle")])
    assert result.exit_code == 0, result.output
    enc = anonfaces.load_encodings(out)
    assert f"18 images, {len(enc)} faces, 0 skipped" in result.output and "faces/s" in result.output
    assert len(set(enc.paths.tolist())) == 18
    assert sorted(set(enc.identities.tolist())) == sorted(PEOPLE)
    assert (tmp_path / "enc.skipped.csv").read_text().splitlines() == ["path,reason"]
    # the exported pickle comes back through `convert` with the same vectors
    result = CliRunner().invoke(main, ["convert", str(tmp_path / "enc.pickle"), str(tmp_path / "back.npz"), "--dataset", str(data)])
    assert result.exit_code == 0, result.output
    back = anonfaces.load_encodings(tmp_path / "back.npz")
    np.testing.assert_allclose(back.embeddings, enc.embeddings, atol=1e-6)
    assert back.paths.tolist() == enc.paths.tolist() and back.identities.tolist() == enc.identities.tolist()


def test_script_runs_as_documented(tmp_path):
    data = _small_dataset(tmp_path / "photos")
    out = tmp_path / "enc.npz"
    proc = subprocess.run([sys.executable, "scripts/encode_faces.py", "--dataset", str(data), "--encodings", str(out), "--jobs", "2"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "18 images" in proc.stdout and f"{len(anonfaces.load_encodings(out))} faces" in proc.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["--dataset", "/no/such/folder"], "not found"),
        (["--encoder", "onnx"], "--onnx-model"),
        (["--encoder", "facenet"], "facenet"),
        (["--encoder", "dlib", "--n-components", "5"], "does not take"),
        (["--param", "oops"], "name=value"),
        (["--jobs", "0"], "0"),
    ],
)
def test_cli_bad_options_are_clear(tmp_path, args, message):
    result = CliRunner().invoke(main, ["encode", "--encodings", str(tmp_path / "e.npz"), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_empty_folder_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(main, ["encode", "--dataset", str(tmp_path / "empty"), "--encodings", str(tmp_path / "e.npz")])
    assert result.exit_code == 2 and "no image files" in result.output
