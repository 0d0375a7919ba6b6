"""Issue 16: the per-face privacy check, its escalation and privacy.csv, on real sample faces (real dlib models)."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest

from anonfaces.errors import BadInputError
from anonfaces.synthesize.blend import BlendSettings
from anonfaces.synthesize.privacy import (
    OUTCOMES,
    OWN_DISTANCE,
    PRIVACY_COLUMNS,
    SOFTEN,
    FaceJob,
    PrivacyCheck,
    escalation_steps,
    replace_faces,
)
from anonfaces.utils.images import read_image

OLD = BlendSettings(shape="member", region="inner", color="lab")  # the settings before issue 16


@pytest.fixture(scope="module")
def embed():
    from anonfaces.encode import DlibEncoder

    return DlibEncoder().embed


@pytest.fixture(scope="module")
def cluster0(morph_cluster0):
    """Cluster 0 of the sample at k = 5: the labels, its member rows and its morph surrogate (the session fixture)."""
    return morph_cluster0


def _job(enc, labels, i, sur) -> FaceJob:
    own = np.flatnonzero(enc.identities == enc.identities[i])
    others = np.flatnonzero((labels == labels[i]) & (enc.identities != enc.identities[i]))
    return FaceJob(enc.landmarks68[i], sur, cluster=int(labels[i]), face=int(enc.face_index[i]),
                   member=enc.embeddings[own].mean(0), own=enc.embeddings[own], others=enc.embeddings[others])


def _score(leak, even, *_nearest_own):
    return max(v for v in (leak, even) if np.isfinite(v))


def test_escalation_steps_strengthen_in_order():
    names = [n for n, _ in escalation_steps(OLD)]
    assert names == ["given", "cluster-shape", "largest-region", "cluster-colour", "softened", "softened-2", "softened-3"]
    last = escalation_steps(OLD)[-1][1]
    assert (last.shape, last.region, last.color, last.soften) == ("cluster", "chip", "none", SOFTEN[-1])
    assert [n for n, _ in escalation_steps(BlendSettings())] == ["given", "largest-region", "cluster-colour", "softened",
                                                                 "softened-2", "softened-3"]


def test_a_face_made_to_leak_with_its_own_shape_is_caught_and_escalated(sample_dir, sample_encodings, cluster0, embed):
    labels, members, sur = cluster0
    enc = sample_encodings
    check = PrivacyCheck(embed, margin=0.05, on_leak="blur")
    caught = 0
    for i in members[::2]:
        image = read_image(sample_dir / enc.paths[i])
        job = _job(enc, labels, i, sur)
        out, (record,) = replace_faces(image, [job], settings=OLD, check=check, path=str(enc.paths[i]))
        assert record.outcome in OUTCOMES
        if check.passes((record.leak_before, record.evenness_before, record.nearest_own_before)):
            assert (record.outcome, record.step) == ("passed", "given")
            continue
        caught += 1
        # above the margin with the member's own shape: never left as it was
        assert record.step != "given" and record.outcome in ("escalated", "blurred"), record
        if record.outcome == "escalated":
            assert check.passes((record.leak_after, record.evenness_after, record.nearest_own_after))
        # the record's "after" figures are those of the face actually written
        assert tuple(check.scores(out, job)) == pytest.approx(
            (record.leak_after, record.evenness_after, record.nearest_own_after), abs=1e-6, nan_ok=True)
    assert caught >= 1, "no member of the sample cluster leaks above the margin with its own shape"


def test_the_own_photo_term_catches_a_face_left_near_its_original(sample_dir, sample_encodings, cluster0, embed):
    """A face left (nearly) as it was -- forced: the member's own shape, the smallest region, its own colours --
    stands near its original photo; without the own-photo term (and with no leak or evenness term) it passes, with it
    the face is escalated and what is written stands beyond 0.5 + margin of the original (or is blurred)."""
    labels, members, sur = cluster0
    enc = sample_encodings
    forced = BlendSettings(shape="member", region="inner", color="lab", forehead=-0.2, feather=0.5)
    without = PrivacyCheck(embed, evenness=False, own_distance=None)  # no member, no evenness: nothing to check
    with_own = PrivacyCheck(embed, evenness=False)  # the own-photo term alone
    caught = 0
    for i in members[:8]:
        image = read_image(sample_dir / enc.paths[i])
        job = _job(enc, labels, i, sur)
        job = FaceJob(job.landmarks68, job.surrogate, cluster=job.cluster, face=job.face, member=None,
                      own=job.own[:0], others=job.others, original=enc.embeddings[i])  # this photo's original only
        given, (plain,) = replace_faces(image, [job], settings=forced, check=without)
        assert plain.outcome == "passed" and np.isnan(plain.nearest_own_before)
        out, (record,) = replace_faces(image, [job], settings=forced, check=with_own)
        near = record.nearest_own_before  # the distance of the face as first blended to this photo's original
        assert near == pytest.approx(np.linalg.norm(with_own._embed_one(given, job.landmarks68) - enc.embeddings[i]),
                                     abs=1e-6)
        if near >= OWN_DISTANCE + with_own.margin:
            assert record.outcome == "passed"
            continue
        caught += 1
        assert record.step != "given" and record.outcome in ("escalated", "blurred"), record
        assert record.nearest_own_after >= OWN_DISTANCE + with_own.margin or record.outcome == "blurred"
        assert with_own.scores(out, job).nearest_own == pytest.approx(record.nearest_own_after, abs=1e-6)
    assert caught >= 1, "no forced face of the sample cluster stood within 0.5 + margin of its original"


@pytest.mark.parametrize("on_leak", ["blur", "surrogate", "keep"])
def test_every_fallback_is_recorded(sample_dir, sample_encodings, cluster0, embed, on_leak):
    labels, members, sur = cluster0
    enc = sample_encodings
    i = members[0]
    image = read_image(sample_dir / enc.paths[i])
    job = _job(enc, labels, i, sur)
    strict = PrivacyCheck(embed, margin=-10.0, on_leak=on_leak)  # no face can pass: every step fails
    out, (record,) = replace_faces(image, [job], settings=OLD, check=strict)
    last, _ = escalation_steps(OLD)[-1]
    expected = {"blur": ("blurred", "on_leak=blur"), "surrogate": ("surrogate", f"on_leak={on_leak}"),
                "keep": ("kept-above-margin", last)}[on_leak]
    assert (record.outcome, record.step) == expected
    final, _ = replace_faces(image, [job], settings=escalation_steps(OLD)[-1][1])
    assert np.array_equal(out, final) == (on_leak == "keep")
    assert not np.array_equal(out, image)


def test_without_a_check_every_face_is_recorded_unchecked(sample_dir, sample_encodings, cluster0):
    labels, members, sur = cluster0
    enc = sample_encodings
    rows = np.flatnonzero(enc.paths == enc.paths[members[0]])
    image = read_image(sample_dir / enc.paths[members[0]])
    _out, records = replace_faces(image, [_job(enc, labels, i, sur) for i in rows], path="p.jpg")
    assert [r.outcome for r in records] == ["unchecked"] * len(rows)
    assert [r.face for r in records] == enc.face_index[rows].tolist()


def test_check_refuses_bad_settings(embed):
    with pytest.raises(BadInputError):
        PrivacyCheck(embed, on_leak="pixelate")
    with pytest.raises(BadInputError):
        PrivacyCheck("not callable")
    with pytest.raises(BadInputError):
        PrivacyCheck(embed, margin=float("nan"))
    with pytest.raises(BadInputError):
        PrivacyCheck(embed, own_distance=-0.1)
    with pytest.raises(BadInputError):
        PrivacyCheck(embed, own_photos="family")


def test_privacy_csv_holds_every_face(tmp_path, sample_dir):
    from anonfaces.pipeline import anonymize_dataset

    people = sorted(p.name for p in sample_dir.iterdir() if p.is_dir())[:6]
    data = tmp_path / "photos"
    for p in people:
        shutil.copytree(sample_dir / p, data / p)
    report = anonymize_dataset(data, tmp_path / "out", k=3, jobs=1, progress=False)
    mapping = [{"path": p, "face": int(f)} for p, f in zip(report.mapping.paths.tolist(), report.mapping.face_index.tolist())]
    with open(report.privacy_path, newline="") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames) == PRIVACY_COLUMNS
        rows = list(reader)
    assert sorted((r["path"], int(r["face"])) for r in rows) == sorted((r["path"], r["face"]) for r in mapping)
    assert len(rows) == report.n_faces > 0
    for r in rows:
        assert r["outcome"] in OUTCOMES and r["outcome"] != "unchecked"
        after = [float(r[c]) for c in ("leak_after", "evenness_after") if r[c] != "nan"]
        if r["outcome"] in ("passed", "escalated"):
            assert max(after) <= 0.05, r
            assert float(r["nearest_own_after"]) >= OWN_DISTANCE + 0.05, r  # the own-photo term: never near its photos
    counts = report.privacy
    assert counts["faces"] == len(rows) == sum(counts[o] for o in OUTCOMES)
    assert "privacy check:" in report.summary()


def test_output_surrogates_writes_one_crop_per_cluster_and_no_photo(tmp_path, sample_dir):
    from click.testing import CliRunner

    from anonfaces.cli.anonymize import command
    from anonfaces.synthesize.mapping import Mapping

    people = sorted(p.name for p in sample_dir.iterdir() if p.is_dir())[:4]
    data = tmp_path / "photos"
    for p in people:
        shutil.copytree(sample_dir / p, data / p)
    out = tmp_path / "out"
    # without the safety net: at k = 2 a surrogate (the morph of two people) can stand within 0.5 of a member's photo,
    # and the net then holds that crop back (tests/release); this test is about what --output surrogates writes
    result = CliRunner().invoke(command, ["--dataset", str(data), "--out", str(out), "--k", "2", "--output", "surrogates",
                                          "--no-safety-net", "--jobs", "1", "--no-progress"])
    assert result.exit_code == 0, result.output
    private = out.with_name("out.private")
    clusters = {int(c) for c in Mapping.load(private / "mapping.csv").clusters}
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == sorted(f"surrogates/{c}.png" for c in clusters)  # OUT: the crops and nothing else
    assert (private / "run.json").is_file() and not (private / "privacy.csv").exists()
    assert len(clusters) == 2
    bad = CliRunner().invoke(command, ["--dataset", str(data), "--out", str(tmp_path / "o2"), "--method", "blur",
                                       "--output", "surrogates", "--jobs", "1", "--no-progress"])
    assert bad.exit_code == 2 and "surrogates" in bad.output
