"""`verify` passes on a safe output folder and fails, with the right finding, on each unsafe one."""

from __future__ import annotations

import csv
import shutil

import pytest
from click.testing import CliRunner

from anonfaces.release.layout import is_shareable_name
from anonfaces.release.naming import NameMatcher, person_names
from anonfaces.release.verify import image_metadata, verify_release
from anonfaces.utils.images import list_images, read_image, write_image
from tests.release.conftest import photo_with_exif


def _copy(safe_run, tmp_path):
    """A copy of the safe run's OUT and private folder to spoil."""
    out, report = safe_run
    shutil.copytree(out, tmp_path / "out")
    shutil.copytree(report.private, tmp_path / "out.private")
    return tmp_path / "out", tmp_path / "out.private"


def test_the_safe_run_is_safe(release_data, safe_run):
    root, _, tagged, cropped = release_data
    out, report = safe_run
    outputs = list_images(out)
    assert outputs and all(is_shareable_name(p) for p in outputs)
    assert NameMatcher(person_names(list_images(root))).find(" ".join(outputs)) is None
    assert all(image_metadata(out / p) == [] for p in outputs)
    assert image_metadata(root / tagged)  # the input did carry EXIF
    assert cropped in [p for p, _ in report.held_back] and "held back" in report.summary()
    # photos the safety net held back are not in OUT, and the count is honest
    assert len(outputs) == len(list_images(root)) - len(report.held_back)
    assert all(report.outputs[p] in outputs for p in report.outputs)
    result = verify_release(out, report.private, jobs=2)
    assert result.ok, [str(f) for f in result.findings]
    assert set(result.checked) == {"file", "metadata", "name", "k", "face"}


def test_a_kept_name_is_found(release_data, safe_run, tmp_path):
    out, private = _copy(safe_run, tmp_path)
    with open(private / "files.csv", newline="") as fh:
        row = next(r for r in csv.DictReader(fh) if r["output"])
    (out / row["output"]).rename(out / row["path"].split("/")[-1])
    result = verify_release(out, private, faces=False)
    assert [f.check for f in result.findings] == ["name"]
    assert row["path"].split("/")[-1] in result.findings[0].path


def test_exif_left_in_is_found(safe_run, tmp_path):
    out, private = _copy(safe_run, tmp_path)
    victim = list_images(out)[0]
    photo_with_exif(out / victim, read_image(out / victim))
    result = verify_release(out, private, faces=False)
    assert [(f.check, f.path) for f in result.findings] == [("metadata", victim)]
    assert "exif" in result.findings[0].message.lower()


def test_a_face_left_in_is_found(release_data, safe_run, tmp_path):
    root, _, _, _ = release_data
    out, private = _copy(safe_run, tmp_path)
    with open(private / "files.csv", newline="") as fh:
        rel = next(r["path"] for r in csv.DictReader(fh) if r["status"] == "anonymized")
    write_image(out / "bcdfghjklmnpqrstvwxz.jpg", read_image(root / rel))  # original pixels, neutral name, no metadata
    result = verify_release(out, private, jobs=2)
    assert [(f.check, f.path) for f in result.findings] == [("face", "bcdfghjklmnpqrstvwxz.jpg")]


def test_a_mapping_inside_out_is_found(safe_run, tmp_path):
    out, private = _copy(safe_run, tmp_path)
    shutil.copy(private / "mapping.csv", out / "mapping.csv")
    shutil.copy(private / "run.json", out / "run.json")
    result = verify_release(out, private, faces=False)
    assert sorted((f.check, f.path) for f in result.findings) == [("file", "mapping.csv"), ("file", "run.json")]


def test_a_private_folder_inside_out_is_found(safe_run, tmp_path):
    out, private = _copy(safe_run, tmp_path)
    shutil.move(private, out / "private")
    result = verify_release(out, out / "private", faces=False)
    checks = {f.check for f in result.findings}
    assert "layout" in checks and "file" in checks  # mapping.csv, run.json, encodings.npz, key are now in OUT


def test_clusters_below_k_and_missing_inputs_are_findings(safe_run, tmp_path):
    out, private = _copy(safe_run, tmp_path)
    assert verify_release(out, private, faces=False).ok
    small = verify_release(out, private, k=4, faces=False)  # the run made clusters of 3 people
    assert small.findings and {f.check for f in small.findings} == {"k"}
    shutil.rmtree(private)
    blind = verify_release(out, private)
    assert blind.findings and {f.check for f in blind.findings} == {"unchecked"}  # cannot check: not a pass


def test_cli_exit_codes(safe_run, tmp_path):
    from anonfaces.cli import main

    out, private = _copy(safe_run, tmp_path)
    r = CliRunner().invoke(main, ["verify", str(out), "--private", str(private), "--no-faces"])
    assert r.exit_code == 0, r.output
    assert "OK" in r.output
    shutil.copy(private / "mapping.csv", out / "mapping.csv")
    r = CliRunner().invoke(main, ["verify", str(out), "--no-faces"])  # the default private folder: OUT.private
    assert r.exit_code == 1 and "[file] mapping.csv" in r.output and "NOT SAFE" in r.output
    r = CliRunner().invoke(main, ["verify", str(tmp_path / "missing")])
    assert r.exit_code == 2


@pytest.mark.parametrize("policy", ["skip", "copy", "blur"])
def test_safety_net_rule_on_an_unprotected_face(release_data, tmp_path, policy, monkeypatch):
    """A synthesizer that gives each cluster one of its members' own faces back: the net must catch every face."""
    from anonfaces.pipeline import anonymize_dataset
    from anonfaces.synthesize.base import Surrogate

    class FirstMember:
        def synthesize(self, faces, landmarks, embeddings=None):
            return Surrogate(faces[0], landmarks[0])

    root, enc_path, _, _ = release_data
    report = anonymize_dataset(root, tmp_path / "out", k=3, synth=FirstMember(), encodings=enc_path, jobs=2,
                               progress=False, second_pass=False, no_face=policy)
    assert report.unprotected, "the first member's photos show their own face"
    flagged = {u.path for u in report.unprotected}
    if policy == "skip":  # held back, never lost: files.csv and run.json list each with its reason
        import json

        sources = {p for p, r in report.held_back if r == "a face left unprotected in the output"}
        assert sources and not set(list_images(tmp_path / "out")) & flagged
        assert not sources & set(report.outputs)
        with open(report.private / "files.csv", newline="") as fh:
            rows = {r["path"]: r for r in csv.DictReader(fh)}
        assert all(rows[p]["status"] == "held back: face left unprotected" and rows[p]["output"] == "" for p in sources)
        run = json.loads((report.private / "run.json").read_text())
        assert {h["path"] for h in run["release"]["held_back"]} == {p for p, _ in report.held_back}
        assert {u["path"] for u in run["safety_net"]["unprotected"]} == sources
        assert verify_release(tmp_path / "out", report.private, jobs=2).ok
        return
    assert flagged <= set(report.outputs.values())
    if policy == "copy":  # written as asked, and verify still says so
        result = verify_release(tmp_path / "out", report.private, jobs=2)
        assert {f.path for f in result.findings if f.check == "face"} == flagged
    else:  # blurred whole: the sensitive detector finds nothing left to match in those photos
        from anonfaces.encode import Encodings
        from anonfaces.release.nofaces import find_unprotected

        enc = Encodings.load(report.private / "encodings.npz")
        again = find_unprotected(tmp_path / "out", sorted(flagged), enc.embeddings, enc.paths, jobs=2)
        assert again.n_photos == len(flagged) and again.n_faces == 0


def _spoil_metadata(path, kind: str) -> None:
    """Rewrite the photo ``path`` with one kind of metadata (the pixels unchanged)."""
    from PIL import Image, ImageCms
    from PIL.PngImagePlugin import PngInfo

    with Image.open(path) as im:
        im.load()
        image = im.convert("RGB")
    if kind == "xmp":
        image.save(path, format="JPEG", quality=95,
                   xmp=b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><dc:creator>A. Person</dc:creator></rdf:RDF></x:xmpmeta>')
    elif kind == "icc":
        image.save(path, format="JPEG", quality=95,
                   icc_profile=ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    elif kind == "comment":
        image.save(path, format="JPEG", quality=95, comment=b"shot by A. Person")
    elif kind == "png-text":
        info = PngInfo()
        info.add_text("Author", "A. Person")
        image.save(path, format="PNG", pnginfo=info)


@pytest.mark.parametrize("kind, word", [("xmp", "xmp"), ("icc", "icc"), ("comment", "comment"), ("png-text", "text")])
def test_other_metadata_left_in_is_found(safe_run, tmp_path, kind, word):
    out, private = _copy(safe_run, tmp_path)
    victim = list_images(out)[0]
    if kind == "png-text":  # a PNG output (as written for PNG inputs) with a text chunk
        (out / victim).rename(out / (victim.rsplit(".", 1)[0] + ".png"))
        victim = victim.rsplit(".", 1)[0] + ".png"
    _spoil_metadata(out / victim, kind)
    result = verify_release(out, private, faces=False)
    assert [(f.check, f.path) for f in result.findings] == [("metadata", victim)]
    assert word in result.findings[0].message.lower()


@pytest.mark.parametrize("name", ["privacy.csv", "run.json", "encodings.npz", "release.key"])
def test_each_private_file_inside_out_is_found(safe_run, tmp_path, name):
    out, private = _copy(safe_run, tmp_path)
    (out / "sub").mkdir()
    shutil.copy(private / name, out / "sub" / name)  # also below OUT's top level
    result = verify_release(out, private, faces=False)
    assert [(f.check, f.path) for f in result.findings] == [("file", f"sub/{name}")]
    assert "private" in result.findings[0].message


def test_a_folder_named_after_a_person_is_found(release_data, safe_run, tmp_path):
    out, private = _copy(safe_run, tmp_path)
    victim = list_images(out)[0]
    (out / "Bill_Gates").mkdir()
    (out / victim).rename(out / "Bill_Gates" / victim)
    result = verify_release(out, private, faces=False)
    assert [(f.check, f.path) for f in result.findings] == [("name", f"Bill_Gates/{victim}")]
    assert "Bill_Gates" in result.findings[0].message


def test_a_surrogates_only_output_is_safe_and_checked(release_data, tmp_path):
    """``--output surrogates``: OUT holds only the surrogate crops; verify checks them (faces included)."""
    from anonfaces.pipeline import anonymize_dataset

    root, enc_path, _, _ = release_data
    report = anonymize_dataset(root, tmp_path / "out", k=3, encodings=enc_path, jobs=2, progress=False,
                               output="surrogates")
    outputs = list_images(tmp_path / "out")
    assert outputs and all(p.startswith("surrogates/") for p in outputs)
    result = verify_release(tmp_path / "out", report.private, jobs=2)
    assert result.ok, [str(f) for f in result.findings]
    assert result.checked["face"] == len(outputs) and result.checked["k"] == 3
    # an original face dropped among the surrogates is caught
    with open(report.private / "mapping.csv", newline="") as fh:
        rel = next(r["path"] for r in csv.DictReader(fh))
    write_image(tmp_path / "out" / "surrogates" / "99.png", read_image(root / rel))
    spoiled = verify_release(tmp_path / "out", report.private, jobs=2)
    assert [(f.check, f.path) for f in spoiled.findings] == [("face", "surrogates/99.png")]
