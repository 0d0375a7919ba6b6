"""Surrogates, blending and baselines on real LFW faces with the real dlib models."""

from __future__ import annotations

import numpy as np
import pytest

from anonfaces.cluster import cluster_encodings
from anonfaces.synthesize import make_synthesizer
from anonfaces.synthesize.baselines import BASELINES, apply_baseline
from anonfaces.synthesize.blend import blend_surrogate, face_mask
from anonfaces.utils.images import read_image


def _surrogates(sample_encodings, sample_crops, *, k, unit, synth="morph"):
    crops, points = sample_crops
    labels = cluster_encodings(sample_encodings, algo="fixed-kmeans", k=k, unit=unit, random_state=0).labels
    synthesizer = make_synthesizer(synth)
    return labels, {int(c): synthesizer.synthesize(crops[labels == c], points[labels == c]) for c in np.unique(labels)}


def _embed_surrogate(sur):
    from anonfaces.detect.align import face_chip
    from anonfaces.encode import DlibEncoder

    chip = face_chip(sur.image, sur.landmarks, size=150)
    return DlibEncoder().embed(chip[None])[0]


@pytest.mark.filterwarnings("ignore:unit='photo'")
def test_dlib_finds_a_face_in_at_least_95_percent_of_morph_surrogates_at_k5(sample_encodings, sample_crops):
    from anonfaces.detect import detect_faces

    # k = 5 faces per surrogate (photo unit: about 52 surrogates) and k = 5 people (8 surrogates)
    found = []
    for unit in ("photo", "identity"):
        _, surrogates = _surrogates(sample_encodings, sample_crops, k=5, unit=unit)
        for sur in surrogates.values():
            found.append(len(detect_faces(sur.image)) >= 1)  # the bare 256 x 256 crop, default HOG detector
    assert len(found) >= 50
    assert np.mean(found) >= 0.95, f"face found in {np.mean(found):.1%} of {len(found)} surrogates"


def test_mean_surrogate_to_member_distance_grows_with_k(sample_encodings, sample_crops):
    means = []
    for k in (2, 5, 10):
        labels, surrogates = _surrogates(sample_encodings, sample_crops, k=k, unit="identity")
        dists = []
        for c, sur in surrogates.items():
            e = _embed_surrogate(sur)
            dists.extend(np.linalg.norm(sample_encodings.embeddings[labels == c] - e, axis=1))
        means.append(float(np.mean(dists)))
    assert means[0] < means[1] < means[2], means
    # even k = 2 moves faces away from who they were (dlib's same-person threshold is 0.6)
    assert means[0] > 0.45, means


def _face_photo(sample_dir, enc, i):
    rows = np.flatnonzero(enc.paths == enc.paths[i])
    return read_image(sample_dir / enc.paths[i]), [enc.landmarks68[j] for j in rows]


@pytest.mark.parametrize("blend", ["feather", "seamless"])
def test_blended_photo_keeps_its_size_and_changes_only_the_face(sample_dir, sample_encodings, sample_crops, blend):
    _, surrogates = _surrogates(sample_encodings, sample_crops, k=5, unit="identity")
    sur = surrogates[0]
    for i in (0, 57, 131, 200):
        image, lms = _face_photo(sample_dir, sample_encodings, i)
        original = image.copy()
        out = image.copy()
        for lm in lms:
            # the old settings (the member's shape, the inner region): nothing beyond the face outline changes
            blend_surrogate(image, sur, lm, blend=blend, shape="member", region="inner", color="lab", out=out)
        np.testing.assert_array_equal(image, original)  # input untouched
        assert out.shape == image.shape and out.dtype == np.uint8
        changed = np.any(out != image, axis=2)
        region = np.zeros(changed.shape, bool)
        for lm in lms:
            region |= face_mask(image.shape[:2], lm, feather=0) > 0
        assert changed.any()
        assert not (changed & ~region).any(), "pixels outside the face outline changed"
        inside = np.abs(out.astype(int) - image.astype(int))[region].mean()
        assert inside > 8, f"face region barely changed (mean |diff| {inside:.1f})"


@pytest.mark.parametrize("method", BASELINES.names())
def test_every_baseline_changes_the_face_region_and_nothing_else(sample_dir, sample_encodings, method):
    for i in (0, 131):
        image, lms = _face_photo(sample_dir, sample_encodings, i)
        original = image.copy()
        out = apply_baseline(image, method, lms, random_state=0)
        np.testing.assert_array_equal(image, original)
        assert out.shape == image.shape
        region = np.zeros(image.shape[:2], bool)
        for lm in lms:
            region |= face_mask(image.shape[:2], lm, feather=0) > 0
        np.testing.assert_array_equal(out[~region], image[~region])
        diff = np.abs(out.astype(int) - image.astype(int))[region].mean()
        assert diff > 5, f"{method}: face region barely changed (mean |diff| {diff:.1f})"


def test_baselines_refuse_unknown_settings():
    from anonfaces.errors import BadInputError
    from anonfaces.synthesize.baselines import check_baseline_params

    with pytest.raises(BadInputError, match="valid: sigma"):
        check_baseline_params("blur", {"radius": 3})
    with pytest.raises(BadInputError, match="blocks"):
        check_baseline_params("pixelate", {"blocks": 0})
