"""The sensitive detector, the no-face policy and the output safety net, on real photos."""

from __future__ import annotations

import csv
import shutil

import cv2
import numpy as np
import pytest

from anonfaces.detect import make_detector
from anonfaces.detect.sensitive import SensitiveDetector, box_iou
from anonfaces.errors import BadInputError
from anonfaces.release.nofaces import (
    apply_no_face_policy,
    blur_all,
    find_unprotected,
    nearest_original,
    recover_faces,
)
from anonfaces.utils.images import list_images, read_image, write_image

#: LFW photos in which HOG (upsample 1) finds no face but the sensitive detector does
#: (found by bench/bench_release.py --part detect).
HOG_MISSES = ("Brian_Florence/Brian_Florence_0001.jpg", "Dawn_Staley/Dawn_Staley_0001.jpg")


@pytest.fixture(scope="module")
def sensitive():
    det = SensitiveDetector()
    det.warm_up()
    return det


@pytest.fixture(scope="module")
def face_photo(sample_dir):
    return read_image(sample_dir / "Bill_Gates" / min(p.name for p in (sample_dir / "Bill_Gates").iterdir()))


def test_sensitive_detector_finds_the_face_hog_finds_with_landmarks(sensitive, face_photo):
    hog = make_detector("hog").detect(face_photo)
    faces = sensitive.detect(face_photo)
    assert len(hog) == 1 and len(faces) >= 1
    best = max(faces, key=lambda f: box_iou(f.box_ltrb, hog[0].box_ltrb))
    assert box_iou(best.box_ltrb, hog[0].box_ltrb) > 0.4
    left, top, right, bottom = best.box_ltrb
    eyes = best.landmarks68[36:48].mean(0)
    assert left < eyes[0] < right and top < eyes[1] < bottom
    assert best.landmarks5.shape == (5, 2) and best.landmarks68.shape == (68, 2)


def test_large_photos_are_scaled_down_and_boxes_mapped_back(face_photo):
    big = cv2.resize(face_photo, None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC)  # 1000 x 1000
    det = SensitiveDetector(upsample=1, max_pixels=300_000)
    assert det.work_scale(*big.shape[:2]) < 0.3
    small_faces = SensitiveDetector(upsample=1).detect(face_photo)
    big_faces = det.detect(big)
    assert len(big_faces) >= 1
    assert box_iou(big_faces[0].box_ltrb / 4, small_faces[0].box_ltrb) > 0.5


def test_settings_are_checked():
    with pytest.raises(BadInputError, match="upsample"):
        SensitiveDetector(upsample=5)
    with pytest.raises(BadInputError, match="max_pixels"):
        SensitiveDetector(max_pixels=10)
    with pytest.raises(BadInputError, match="no_face"):
        apply_no_face_policy(np.zeros((4, 4, 3), np.uint8), "keep")


def test_blur_leaves_no_face_to_find(sensitive, face_photo):
    assert sensitive.detect(face_photo)
    blurred = blur_all(face_photo)
    assert blurred.shape == face_photo.shape and blurred.dtype == np.uint8
    assert sensitive.detect(blurred) == []
    assert make_detector("hog", upsample=2).detect(blurred) == []


def test_policy_results(face_photo):
    assert apply_no_face_policy(face_photo, "skip") is None
    assert apply_no_face_policy(face_photo, "copy") is face_photo
    assert np.abs(apply_no_face_policy(face_photo, "blur").astype(int) - face_photo).mean() > 10


def test_nearest_original_by_hand():
    ref = np.array([[0.0, 0.0], [3.0, 4.0]])
    dist, index = nearest_original(np.array([[0.0, 1.0], [3.0, 3.0], [10.0, 10.0]]), ref)
    np.testing.assert_allclose(dist, [1.0, 1.0, np.hypot(7, 6)])
    assert index.tolist() == [0, 1, 1]
    dist, index = nearest_original(np.empty((2, 2)), np.empty((0, 2)))
    assert np.isinf(dist).all() and index.tolist() == [-1, -1]


def test_safety_net_flags_an_original_face_not_a_blurred_one(release_data, tmp_path):
    from anonfaces.encode import Encodings

    root, enc_path, _, _ = release_data
    enc = Encodings.load(enc_path)
    rel = enc.paths[0]
    image = read_image(root / rel)
    write_image(tmp_path / "kept.jpg", image)  # re-encoded, no metadata, neutral name: only the face gives it away
    write_image(tmp_path / "blurred.jpg", blur_all(image))
    report = find_unprotected(tmp_path, ["kept.jpg", "blurred.jpg"], enc.embeddings, enc.paths, jobs=1)
    assert report.n_photos == 2 and report.photos == ["kept.jpg"]
    hit = report.unprotected[0]
    assert hit.original == rel and hit.kind == "match" and hit.distance < 0.2
    # the same face against other people only: no match, but where no face was replaced it was never anonymized
    others = enc.identities != enc.identities[0]
    where = {"kept.jpg": enc.boxes_ltrb[enc.paths == rel]}
    assert find_unprotected(tmp_path, ["kept.jpg"], enc.embeddings[others], enc.paths[others], replaced=where).unprotected == []
    nowhere = {"kept.jpg": np.empty((0, 4))}
    report = find_unprotected(tmp_path, ["kept.jpg"], enc.embeddings[others], enc.paths[others], replaced=nowhere)
    assert [u.kind for u in report.unprotected] == ["unanonymized"] and report.unprotected[0].distance >= 0.5


def test_no_face_policy_on_a_photo_with_the_face_cropped_away(release_data, tmp_path):
    from anonfaces.pipeline import anonymize_dataset

    root, enc_path, _, cropped = release_data
    fast = {"k": 3, "encodings": enc_path, "jobs": 2, "progress": False, "synth": "pixel", "safety_net": False}
    results = {}
    for policy in ("skip", "copy", "blur"):
        out = tmp_path / policy
        report = anonymize_dataset(root, out, no_face=policy, **fast)
        assert [p for p, _ in report.no_face] == [cropped]  # the second pass found no face there either
        with open(report.private / "files.csv", newline="") as fh:
            status = {r["path"]: (r["output"], r["status"]) for r in csv.DictReader(fh)}
        assert set(status) == set(list_images(root))
        results[policy] = (report, status[cropped])
    report, (output, status) = results["skip"]
    assert output == "" and status == "held back: no face found"
    assert [p for p, _ in report.held_back] == [cropped] and "1 without a face held back" in report.summary()
    assert len(list_images(tmp_path / "skip")) == len(list_images(root)) - 1
    original = read_image(root / cropped)
    report, (output, status) = results["copy"]
    assert status == "no face found, copied" and report.held_back == []
    assert np.abs(read_image(tmp_path / "copy" / output).astype(int) - original).mean() < 3  # JPEG re-encoding only
    report, (output, status) = results["blur"]
    assert status == "no face found, blurred"
    assert np.abs(read_image(tmp_path / "blur" / output).astype(int) - original).mean() > 5
    # run again over the "copy" run with skip: the copied photo must not be left behind in OUT
    copied = tmp_path / "copy" / results["copy"][1][0]
    assert copied.is_file()
    anonymize_dataset(root, tmp_path / "copy", no_face="skip", overwrite=True, **fast)
    assert not copied.exists() and len(list_images(tmp_path / "copy")) == len(list_images(root)) - 1


@pytest.mark.skipif(not HOG_MISSES, reason="no HOG-missed LFW photo recorded")
def test_second_pass_recovers_faces_hog_missed_and_anonymizes_them(lfw_dir, sample_dir, tmp_path):
    from anonfaces.encode import Encodings, encode_photos
    from anonfaces.pipeline import anonymize_dataset

    root = tmp_path / "ds"
    for rel in HOG_MISSES:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(lfw_dir / rel, root / rel)
    for person in ("Bill_Gates", "Tiger_Woods", "Angelina_Jolie"):
        for src in sorted((sample_dir / person).iterdir())[:1]:
            (root / person).mkdir(parents=True, exist_ok=True)
            shutil.copy(src, root / person / src.name)
    encode_photos(root, tmp_path / "enc.npz", jobs=2, progress=False)
    enc = Encodings.load(tmp_path / "enc.npz")
    assert not set(HOG_MISSES) & set(enc.paths.tolist())
    merged, rec = recover_faces(root, enc, list(HOG_MISSES), jobs=2)
    assert set(rec.recovered) == set(HOG_MISSES) and len(merged) == len(enc) + rec.n_faces
    assert merged.embeddings.shape[1] == 128 and set(merged.paths.tolist()) >= set(HOG_MISSES)
    report = anonymize_dataset(root, tmp_path / "out", k=2, encodings=enc, synth="pixel", jobs=2, progress=False,
                               safety_net=False)
    assert report.recovered_faces == rec.n_faces and report.no_face == []
    for rel in HOG_MISSES:  # written, and changed where the face is
        out = read_image(tmp_path / "out" / report.outputs[rel])
        assert np.abs(out.astype(int) - read_image(root / rel)).mean() > 2


def test_second_pass_faces_join_the_nearest_cluster_of_a_given_clustering(release_data, tmp_path):
    """Faces the first pass did not record are found by the second and join the nearest given cluster."""
    from anonfaces.cluster import Clustering
    from anonfaces.encode import Encodings
    from anonfaces.pipeline import anonymize_dataset

    root, enc_path, _, _ = release_data
    enc = Encodings.load(enc_path)
    dropped = str(enc.paths[-1])
    first = enc.subset(enc.paths != dropped)
    people = sorted(set(first.identities.tolist()))
    labels = np.array([people.index(p) * 2 // len(people) for p in first.identities.tolist()])  # 2 clusters of 3 people
    clustering = Clustering(first.paths, first.face_index, labels, first.identities, first.identities, {})
    report = anonymize_dataset(root, tmp_path / "out", k=3, encodings=first, clusters=clustering, synth="pixel",
                               safety_net=False, jobs=2, progress=False)
    assert report.recovered_faces >= 1 and dropped in report.outputs
    merged = Encodings.load(report.private / "encodings.npz")
    new = np.flatnonzero(merged.paths == dropped)
    centroids = np.stack([first.embeddings[labels == c].mean(0) for c in (0, 1)])
    expected = np.linalg.norm(centroids[None] - merged.embeddings[new][:, None], axis=2).argmin(1)
    with open(report.private / "mapping.csv", newline="") as fh:
        got = [int(r["cluster"]) for r in csv.DictReader(fh) if r["path"] == dropped]
    assert got == expected.tolist()


def test_with_sources_only_the_persons_own_photos_count_as_a_match(release_data, tmp_path):
    """A face near some other person's photo is not a re-identification; near the person's own photo it is."""
    from anonfaces.encode import Encodings

    root, enc_path, _, _ = release_data
    enc = Encodings.load(enc_path)
    rel = enc.paths[0]
    write_image(tmp_path / "kept.jpg", read_image(root / rel))
    own = find_unprotected(tmp_path, ["kept.jpg"], enc.embeddings, enc.paths, sources={"kept.jpg": rel})
    assert [u.kind for u in own.unprotected] == ["match"] and own.unprotected[0].original == rel
    # the same face said to come from another person's photo: matching against that person's photos only
    other = next(p for p in enc.paths.tolist() if p.split("/")[0] != rel.split("/")[0])
    assert find_unprotected(tmp_path, ["kept.jpg"], enc.embeddings, enc.paths, sources={"kept.jpg": other}).unprotected == []
    # without sources, any original face counts (the face is its own original: a match)
    assert [u.kind for u in find_unprotected(tmp_path, ["kept.jpg"], enc.embeddings, enc.paths).unprotected] == ["match"]


def test_known_boxes_come_first_and_hog_only_or_cnn_only_settings(face_photo):
    full = SensitiveDetector().detect(face_photo)
    assert len(full) == 1
    known = np.array([[70.0, 70.0, 180.0, 180.0]])  # near the face: the detector's box there is the same face
    faces = SensitiveDetector(upsample=0, hog_upsample=1).detect(face_photo, known)
    assert len(faces) == 1 and faces[0].box_ltrb.tolist() == known[0].tolist() and faces[0].score == 0.0
    eyes = faces[0].landmarks68[36:48].mean(0)
    assert box_iou(full[0].box_ltrb, faces[0].box_ltrb) > 0.5 and 70 < eyes[0] < 180 and 70 < eyes[1] < 180
    away = np.array([[0.0, 0.0, 40.0, 40.0]])  # a known box away from the face: both are kept, the known one first
    faces = SensitiveDetector(upsample=0).detect(face_photo, away)
    assert len(faces) == 2 and faces[0].box_ltrb.tolist() == away[0].tolist()
    hog_only = SensitiveDetector(cnn=False, hog_upsample=1)
    assert hog_only.settings()["cnn"] is False and len(hog_only.detect(face_photo)) == 1
    with pytest.raises(BadInputError, match="CNN or HOG"):
        SensitiveDetector(cnn=False, with_hog=False)
    with pytest.raises(BadInputError, match="hog_upsample"):
        SensitiveDetector(hog_upsample=4)


def test_known_boxes_are_checked_where_the_detector_finds_nothing(release_data, tmp_path):
    """``known_boxes``: the replaced faces are encoded at their own boxes whatever the detector finds."""
    from anonfaces.encode import Encodings
    from anonfaces.release.nofaces import net_detector

    root, enc_path, _, _ = release_data
    enc = Encodings.load(enc_path)
    rel = enc.paths[0]
    image = read_image(root / rel)
    write_image(tmp_path / "kept.jpg", image)
    write_image(tmp_path / "blurred.jpg", blur_all(image))
    box = enc.boxes_ltrb[enc.paths == rel]
    replaced = {"kept.jpg": box, "blurred.jpg": box}
    hog_only = SensitiveDetector(cnn=False, hog_upsample=0)
    plain = find_unprotected(tmp_path, ["blurred.jpg"], enc.embeddings, enc.paths, detector=hog_only, replaced=replaced)
    assert plain.n_faces == 0  # the detector finds nothing in the blurred photo
    known = find_unprotected(tmp_path, ["kept.jpg", "blurred.jpg"], enc.embeddings, enc.paths, detector=hog_only,
                             replaced=replaced, known_boxes=True)
    assert known.n_faces == 2 and known.photos == ["kept.jpg"]  # both checked; only the original face matches
    assert known.unprotected[0].kind == "match" and known.unprotected[0].distance < 0.2
    assert net_detector("full")[1] is False and net_detector("fast")[1] is True
    with pytest.raises(BadInputError, match="net_scan"):
        net_detector("quick")
