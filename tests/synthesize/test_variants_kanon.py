"""Issue 16, per-photo surrogate variants: each variant stands for every member, the choice never depends on the person,
and the privacy check's re-roll among variants is caught, recorded and confined to the face (real sample faces, dlib)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from anonfaces.cluster import cluster_encodings
from anonfaces.synthesize import make_synthesizer
from anonfaces.synthesize.blend import BlendSettings, blend_surrogate
from anonfaces.synthesize.privacy import FaceJob, PrivacyCheck, replace_faces
from anonfaces.synthesize.surrogates import variant_members, variant_name
from anonfaces.utils.images import read_image

OLD = BlendSettings(shape="member", region="inner", color="lab")  # the settings before issue 16: faces leak


def test_every_variant_holds_one_photo_of_every_member_and_variants_differ():
    persons = np.repeat(np.arange(6), 4)  # 6 people x 4 photos
    rows = np.flatnonzero(persons < 5)  # a cluster of 5 people
    picks = [variant_members(persons, rows, np.random.default_rng([0, 3, j])) for j in range(1, 9)]
    for m in picks:
        assert sorted(persons[m].tolist()) == [0, 1, 2, 3, 4]  # each person exactly once, nobody from outside
        assert set(m.tolist()) <= set(rows.tolist())
    assert len({tuple(m.tolist()) for m in picks}) > 1
    again = variant_members(persons, rows, np.random.default_rng([0, 3, 1]))
    assert np.array_equal(again, picks[0])  # seeded
    assert variant_name(3, 0) == "3" and variant_name(3, 2) == "3.v2"


def test_variants_with_more_photos_per_member_and_bad_settings_refused():
    from anonfaces.errors import BadInputError
    from anonfaces.pipeline.options import AnonymizeOptions

    persons = np.array([0, 0, 0, 1, 1, 2])  # person 2 has one photo only
    m = variant_members(persons, np.arange(6), np.random.default_rng(0), per_person=2)
    assert sorted(persons[m].tolist()) == [0, 0, 1, 1, 2] and len(set(m.tolist())) == 5
    for bad in ({"variants": -1}, {"variants": 1.5}, {"reroll": "yes"}, {"variant_photos": 0}):
        with pytest.raises(BadInputError):
            AnonymizeOptions(**bad)
    assert AnonymizeOptions(variants=8, reroll=False).variants == 8


def test_the_variant_of_a_face_depends_on_the_photo_never_the_person():
    from anonfaces.pipeline.anonymize import variant_of

    got = [variant_of(f"P{i % 7}/P{i % 7}_{i:04d}.jpg", 0, 4, 0) for i in range(200)]
    assert set(got) == {1, 2, 3, 4}
    assert variant_of("a/b.jpg", 0, 0, 0) == 0  # no variants: the cluster's surrogate
    assert variant_of("a/b.jpg", 1, 4, 0) == variant_of("a/b.jpg", 1, 4, 0)
    assert len({variant_of("a/b.jpg", 0, 4, seed) for seed in range(40)}) > 1


@pytest.fixture(scope="module")
def variants(sample_encodings, sample_crops):
    """Cluster 0 of the sample at k = 5: its members and four surrogate variants (one photo of every member each)."""
    crops, points = sample_crops
    enc = sample_encodings
    labels = cluster_encodings(enc, algo="fixed-kmeans", k=5, unit="identity", random_state=0).labels
    rows = np.flatnonzero(labels == 0)
    persons = np.unique(enc.identities, return_inverse=True)[1]
    morph = make_synthesizer("morph")
    surs = [morph.synthesize(crops[m], points[m])
            for m in (variant_members(persons, rows, np.random.default_rng([0, 0, j])) for j in range(1, 5))]
    return labels, rows, surs


def test_a_leaking_face_is_rerolled_among_variants_recorded_and_confined_to_its_region(sample_dir, sample_encodings,
                                                                                         variants):
    from anonfaces.encode import DlibEncoder

    labels, rows, surs = variants
    enc = sample_encodings
    check = PrivacyCheck(DlibEncoder().embed, margin=0.05, on_leak="blur")
    seen = {}
    for i in rows:
        own = np.flatnonzero(enc.identities == enc.identities[i])
        others = np.flatnonzero((labels == 0) & (enc.identities != enc.identities[i]))
        job = FaceJob(enc.landmarks68[i], surs[0], cluster=0, face=int(enc.face_index[i]),
                      member=enc.embeddings[own].mean(0), own=enc.embeddings[own], others=enc.embeddings[others],
                      alternatives=tuple(surs[1:]))
        image = read_image(sample_dir / enc.paths[i])
        out, (record,) = replace_faces(image, [job], settings=OLD, check=check, path=str(enc.paths[i]))
        seen[record.step] = seen.get(record.step, 0) + 1
        if record.step == "given":
            assert record.outcome == "passed"
            continue
        # caught: the member's own shape left it above the margin (or near its own photos)
        assert not check.passes((record.leak_before, record.evenness_before, record.nearest_own_before))
        if record.step.startswith("variant-"):
            j = int(record.step.split("-")[1])
            assert record.outcome == "escalated"
            assert check.passes((record.leak_after, record.evenness_after, record.nearest_own_after))
            # what is written is that variant blended with the settings asked for, and nothing outside its region moved
            expected, where = blend_surrogate(image, surs[j], enc.landmarks68[i], settings=OLD, details=True)
            assert np.array_equal(out, expected)
            x0, y0, x1, y1 = where.roi
            outside = np.ones(image.shape[:2], bool)
            outside[y0:y1, x0:x1] = ~where.changed
            assert np.array_equal(out[outside], image[outside])
            assert not np.array_equal(out, image)
        if sum(seen.values()) >= 8 and any(s.startswith("variant-") for s in seen):
            break
    assert any(s != "given" for s in seen), f"no face of the sample cluster leaked with its own shape: {seen}"
    assert any(s.startswith("variant-") for s in seen), f"no leaking face was rescued by another variant: {seen}"


def test_anonymize_with_variants_writes_every_variant_and_uses_them(tmp_path, sample_dir):
    from anonfaces.pipeline import anonymize_dataset
    from anonfaces.pipeline.anonymize import variant_of

    people = sorted(p.name for p in sample_dir.iterdir() if p.is_dir())[:4]
    data = tmp_path / "photos"
    for p in people:
        shutil.copytree(sample_dir / p, data / p)
    common = {"k": 2, "privacy_check": False, "safety_net": False, "names": "keep", "jobs": 1, "progress": False}
    plain = anonymize_dataset(data, tmp_path / "plain", variants=0, **common)  # one surrogate per cluster
    report = anonymize_dataset(data, tmp_path / "out", variants=3, encodings=plain.layout.encodings,
                               **common)
    private = report.layout.private
    clusters = sorted({int(c) for c in report.mapping.clusters})
    files = sorted(p.name for p in (private / "surrogates").glob("*.png"))
    assert files == sorted([f"{c}.png" for c in clusters] + [f"{c}.v{j}.png" for c in clusters for j in (1, 2, 3)])
    assert json.loads((private / "run.json").read_text())["settings"]["variants"] == 3
    chosen = [variant_of(p, int(f), 3, 0) for p, f in zip(report.mapping.paths.tolist(),
                                                           report.mapping.face_index.tolist())]
    assert set(chosen) == {1, 2, 3}
    # the variants are different faces, and every photo with a face got one of them instead of the cluster's surrogate
    c = clusters[0]
    images = [read_image(private / "surrogates" / f"{variant_name(c, j)}.png").astype(int) for j in range(4)]
    assert all(np.abs(images[0] - v).mean() > 1.0 for v in images[1:])
    for rel in sorted(set(report.mapping.paths.tolist())):
        assert not np.array_equal(read_image(tmp_path / "out" / rel), read_image(tmp_path / "plain" / rel)), rel


def test_the_surrogate_fallback_pastes_the_clusters_own_surrogate(sample_dir, sample_encodings, variants, sample_crops):
    from anonfaces.encode import DlibEncoder
    from anonfaces.synthesize.privacy import paste_surrogate

    _labels, rows, surs = variants
    enc = sample_encodings
    crops, points = sample_crops
    whole = make_synthesizer("morph").synthesize(crops[rows], points[rows])  # every photo of the cluster
    i = rows[0]
    image = read_image(sample_dir / enc.paths[i])
    own = np.flatnonzero(enc.identities == enc.identities[i])
    job = FaceJob(enc.landmarks68[i], surs[0], cluster=0, member=enc.embeddings[own].mean(0), own=enc.embeddings[own],
                  alternatives=tuple(surs[1:]), fallback=whole)
    strict = PrivacyCheck(DlibEncoder().embed, margin=-10.0, on_leak="surrogate")  # every step and variant fails
    out, (record,) = replace_faces(image, [job], settings=OLD, check=strict)
    assert (record.outcome, record.step) == ("surrogate", "on_leak=surrogate")
    assert np.array_equal(out, paste_surrogate(image, whole, enc.landmarks68[i]))
    assert not np.array_equal(out, paste_surrogate(image, surs[0], enc.landmarks68[i]))
