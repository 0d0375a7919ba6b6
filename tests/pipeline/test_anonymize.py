"""`anonymize_dataset` (the pipeline's anonymization run) and `anonfaces anonymize` end to end on a small copy of the sample."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from anonfaces.errors import BadInputError
from anonfaces.pipeline import anonymize_dataset
from anonfaces.synthesize.blend import face_mask
from anonfaces.utils.images import list_images, read_image

N_PEOPLE = 8
PER_PERSON = 4
#: Dataset names kept, faceless photos copied, no sensitive passes: the outputs line up with the inputs by path.
LEGACY = {"names": "keep", "no_face": "copy", "second_pass": False, "safety_net": False}
GPS_TAG = 0x8825


@pytest.fixture(scope="module")
def small(sample_dir, sample_encodings, tmp_path_factory):
    """8 people x 4 photos of the sample, one photo with EXIF/GPS metadata, one photo without a face."""
    root = tmp_path_factory.mktemp("small") / "dataset"
    people = sorted(set(sample_encodings.identities.tolist()))[:N_PEOPLE]
    keep = []
    for person in people:
        photos = sorted({p for p in sample_encodings.paths.tolist() if p.startswith(person + "/")})[:PER_PERSON]
        for rel in photos:
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(sample_dir / rel, root / rel)
        keep += photos
    # metadata on one photo: same pixels, EXIF with a GPS block
    tagged = keep[0]
    with Image.open(root / tagged) as im:
        exif = im.getexif()
        exif[0x010F] = "SecretCam"  # Make
        exif[GPS_TAG] = {1: "N", 2: (51.0, 30.0, 0.0)}
        im.save(root / tagged, exif=exif, quality=100)
    # a photo with no face
    (root / "scenery").mkdir()
    rng = np.random.RandomState(0)
    Image.fromarray(np.uint8(rng.randint(0, 255, (60, 80, 3)))).save(root / "scenery" / "noise.png")
    enc = sample_encodings.subset(np.isin(sample_encodings.paths, keep))
    enc_path = root.parent / "encodings.npz"
    enc.save(enc_path)
    return root, enc, enc_path, tagged


def _digest(root):
    return {p: hashlib.sha256((root / p).read_bytes()).hexdigest() for p in list_images(root)}


def _has_metadata(path):
    with Image.open(path) as im:
        return bool(im.getexif()) or "icc_profile" in im.info or "exif" in im.info


@pytest.fixture(scope="module")
def ksame_run(small, tmp_path_factory):
    root, enc, _, _ = small
    before = _digest(root)
    out = tmp_path_factory.mktemp("ksame") / "out"
    # the names, the faceless photo and the surrogates as before the private folder (issue 13); the safe
    # defaults themselves are tested in tests/release
    report = anonymize_dataset(root, out, k=3, encodings=enc, jobs=2, progress=False, **LEGACY, surrogates=True)
    assert _digest(root) == before, "the input was modified"
    return out, report


def test_output_tree_mapping_and_run_record(small, ksame_run):
    root, enc, _, _ = small
    out, report = ksame_run
    assert sorted(list_images(out / "surrogates")) == sorted(f"{c}.png" for c in range(report.n_clusters))
    photos = [p for p in list_images(out) if not p.startswith("surrogates/")]
    assert sorted(photos) == list_images(root)  # same relative paths, every photo
    assert report.private == out.with_name("out.private") and not (out / "mapping.csv").exists()
    with open(report.mapping_path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0])[:3] == ["path", "face", "cluster"]
    assert sorted((r["path"], int(r["face"])) for r in rows) == sorted(zip(enc.paths.tolist(), enc.face_index.tolist()))
    # k-anonymity at the identity level, and no cluster number leaks into the image file names
    people = {}
    for r in rows:
        people.setdefault(int(r["cluster"]), set()).add(r["path"].split("/")[0])
    assert set(people) == set(range(report.n_clusters))
    assert min(len(v) for v in people.values()) >= 3
    assert {p for p in photos} == set(list_images(root))
    run = json.loads(report.run_path.read_text())
    assert run["settings"]["k"] == 3 and run["settings"]["synth"]["name"] == "morph" and run["settings"]["size"] >= 128
    assert run["settings"]["algo"] == "fixed-kmeans" and run["counts"]["faces"] == len(enc)
    assert run["cnn_detector_engine"] in ("auto", "onnx", "dlib")  # which CNN engine the safety net asked for
    assert [r["path"] for r in run["no_face"]] == ["scenery/noise.png"] == [p for p, _ in report.no_face]


def test_every_face_photo_is_changed_and_the_faceless_one_is_not(small, ksame_run):
    root, enc, _, _ = small
    out, report = ksame_run
    assert sorted(report.written) == sorted(set(enc.paths.tolist()))
    for rel in set(enc.paths.tolist()):
        a, b = read_image(root / rel), read_image(out / rel)
        assert a.shape == b.shape
        boxes = enc.boxes_ltrb[enc.paths == rel]
        inside = np.zeros(a.shape[:2], bool)
        for lm in enc.landmarks68[enc.paths == rel]:
            inside |= face_mask(a.shape[:2], lm, feather=0) > 0
        diff = np.abs(a.astype(int) - b.astype(int)).mean(axis=2)
        assert diff[inside].mean() > 8, rel
        far = np.ones(a.shape[:2], bool)
        for l, t, r, btm in boxes.astype(int):
            w, h = r - l, btm - t
            far[max(t - h // 2, 0):btm + h // 2, max(l - w // 2, 0):r + w // 2] = False
        assert diff[far].mean() < 3, rel  # only JPEG re-encoding away from the face
    np.testing.assert_array_equal(read_image(root / "scenery/noise.png"), read_image(out / "scenery/noise.png"))


def test_metadata_is_gone_from_every_output(small, ksame_run):
    root, _, _, tagged = small
    out, _ = ksame_run
    assert _has_metadata(root / tagged)
    for rel in list_images(out):
        assert not _has_metadata(out / rel), rel


def test_refuses_small_clusters_unless_asked(small, tmp_path):
    from anonfaces.cluster import Clustering

    root, enc, _, _ = small
    labels = np.zeros(len(enc), np.int64)
    labels[enc.identities == enc.identities[0]] = 1  # one cluster of a single person
    clustering = Clustering(enc.paths, enc.face_index, labels, enc.identities, enc.identities, {})
    with pytest.raises(BadInputError, match="fewer than k=3 people"):
        anonymize_dataset(root, tmp_path / "a", k=3, encodings=enc, clusters=clustering, jobs=1, progress=False)
    report = anonymize_dataset(root, tmp_path / "b", k=3, encodings=enc, clusters=clustering, allow_small_clusters=True,
                               synth="pixel", jobs=1, progress=False, **LEGACY)
    assert report.n_clusters == 2


def test_baseline_run_has_no_clusters_and_changes_faces(small, tmp_path):
    root, enc, _, _ = small
    report = anonymize_dataset(root, tmp_path / "out", method="pixelate", encodings=enc, jobs=2, progress=False, **LEGACY)
    assert report.n_clusters == 0 and not (tmp_path / "out" / "surrogates").exists()
    with open(report.mapping_path, newline="") as fh:
        assert {int(r["cluster"]) for r in csv.DictReader(fh)} == {-1}
    rel = enc.paths[0]
    l, t, r, b = enc.boxes_ltrb[0].astype(int)
    diff = np.abs(read_image(root / rel).astype(int) - read_image(tmp_path / "out" / rel).astype(int))
    assert diff[t + 10:b - 10, l + 10:r - 10].mean() > 5


def test_out_checks(small, tmp_path):
    root, enc, _, _ = small
    with pytest.raises(BadInputError, match="inside the dataset"):
        anonymize_dataset(root, root / "anon", encodings=enc, progress=False)
    with pytest.raises(BadInputError, match="inside the dataset"):
        anonymize_dataset(root, root, encodings=enc, progress=False)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("x")
    with pytest.raises(BadInputError, match="not empty"):
        anonymize_dataset(root, tmp_path / "full", encodings=enc, progress=False)
    with pytest.raises(BadInputError, match="larger than the number of people"):
        anonymize_dataset(root, tmp_path / "k", k=N_PEOPLE + 1, encodings=enc, progress=False)
    with pytest.raises(BadInputError, match="k=1"):
        anonymize_dataset(root, tmp_path / "k1", k=1, encodings=enc, progress=False)
    assert not (root / "anon").exists() and not (tmp_path / "k").exists()


# --- command line -------------------------------------------------------------------------------
def _cli(args):
    from anonfaces.cli import main

    return CliRunner().invoke(main, ["anonymize", *args, "--no-progress"])


def test_cli_errors_exit_2_with_a_clear_message(small, tmp_path):
    root, _, enc_path, _ = small
    r = _cli(["--dataset", str(tmp_path / "missing"), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "dataset folder not found" in r.output
    r = _cli(["--dataset", str(root), "--out", str(root / "anon"), "--encodings", str(enc_path)])
    assert r.exit_code == 2 and "inside the dataset" in r.output
    r = _cli(["--dataset", str(root), "--out", str(tmp_path / "o"), "--encodings", str(enc_path), "--k", "50"])
    assert r.exit_code == 2 and "larger than the number of people in the dataset (8)" in r.output
    r = _cli(["--dataset", str(root), "--out", str(tmp_path / "o"), "--synth", "nope"])
    assert r.exit_code == 2 and "morph" in r.output
    assert not (tmp_path / "o").exists() and not (root / "anon").exists()


def test_cli_end_to_end_encodes_and_writes_a_contact_sheet(sample_dir, tmp_path):
    """The full chain, encoding included, on 3 people x 2 photos (k = 2)."""
    root = tmp_path / "tiny"
    for person in ("Angelina_Jolie", "Bill_Gates", "Tiger_Woods"):
        for src in sorted((sample_dir / person).iterdir())[:2]:
            (root / person).mkdir(parents=True, exist_ok=True)
            shutil.copy(src, root / person / src.name)
    out, sheet = tmp_path / "anon", tmp_path / "sheet.png"
    r = _cli(["--dataset", str(root), "--out", str(out), "--k", "2", "--synth", "pixel", "--jobs", "2",
              "--contact-sheet", str(sheet)])
    assert r.exit_code == 0, r.output
    private = tmp_path / "anon.private"
    assert "6 images" in r.output and (private / "mapping.csv").is_file() and not (out / "mapping.csv").exists()
    assert read_image(sheet).shape[0] > 0
    run = json.loads((private / "run.json").read_text())
    assert run["settings"]["encodings"]["file"] == str((private / "encodings.npz").resolve())  # what evaluate --run reads
    assert not list(out.rglob("*.npz")) and (private / "encodings.npz").is_file()  # they are kept in private only
    # evaluate --run finds OUT.private by itself and reads the hashed names from its mapping.csv
    from anonfaces.cli import main

    scored = tmp_path / "scored"
    r = CliRunner().invoke(main, ["evaluate", "--run", str(out), "--out", str(scored), "--recognizers", "dlib,lbp",
                                  "--no-detect", "--examples", "1", "--jobs", "2", "--no-progress"])
    assert r.exit_code == 0, r.output
    assert (scored / "metrics.csv").is_file() and (tmp_path / "scored.private" / "run.json").is_file()
    assert "ksame:pixel" in (scored / "metrics.csv").read_text()


def test_a_failed_run_leaves_no_half_written_out(small, tmp_path):
    root, enc, _, _ = small

    class Broken:
        def synthesize(self, faces, landmarks, embeddings=None):
            raise BadInputError("generator weights not found")

    with pytest.raises(BadInputError, match="weights"):
        anonymize_dataset(root, tmp_path / "out", k=3, synth=Broken(), encodings=enc, jobs=1, progress=False)
    assert not (tmp_path / "out").exists()


def test_cli_defaults_to_the_bundled_sample(sample_encodings_path, sample_dir, tmp_path):
    out = tmp_path / "anon"
    sheet = tmp_path / "sheet.png"
    r = _cli(["--out", str(out), "--encodings", str(sample_encodings_path), "--synth", "pixel", "--jobs", "2",
              "--contact-sheet", str(sheet), "--names", "keep", "--no-face", "copy", "--no-second-pass", "--no-safety-net"])
    assert r.exit_code == 0, r.output
    assert read_image(sheet).shape[0] > 0
    assert "240 images" in r.output
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.jpg"))
    assert written == sorted(p.relative_to(sample_dir).as_posix() for p in sample_dir.rglob("*.jpg"))
