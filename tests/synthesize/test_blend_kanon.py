"""Issue 16, synthesis side: the surrogate placed with its cluster's shape, on real sample faces (real dlib models)."""

from __future__ import annotations

import numpy as np
import pytest

from anonfaces.detect import detect_faces, similarity_transform, transform_points
from anonfaces.errors import BadInputError
from anonfaces.synthesize.blend import (
    REGIONS,
    BlendSettings,
    blend_surrogate,
    place_surrogate,
)
from anonfaces.utils.images import read_image

INNER_68 = slice(17, 68)  # brows, nose, eyes, mouth


@pytest.fixture(scope="module")
def cluster0(morph_cluster0):
    """Cluster 0 of the sample at k = 5 (people as the unit): its member rows and its morph surrogate."""
    return morph_cluster0[1:]


def _shape_error(landmarks, reference) -> float:
    """RMS distance of the inner-face landmarks from ``reference``'s after the best similarity, over the eye distance."""
    lm, ref = np.asarray(landmarks, float)[INNER_68], np.asarray(reference, float)[INNER_68]
    aligned = transform_points(lm, similarity_transform(lm, ref))
    eyes = np.linalg.norm(np.asarray(reference, float)[36:42].mean(0) - np.asarray(reference, float)[42:48].mean(0))
    return float(np.sqrt(((aligned - ref) ** 2).sum(1).mean()) / eyes)


def _redetected(image, landmarks):
    """The 68 landmarks dlib finds again for the face at ``landmarks`` (None when it finds no face)."""
    found = detect_faces(image)
    if not found:
        return None
    return min(found, key=lambda d: np.abs(d.landmarks68 - landmarks).mean()).landmarks68


def test_cluster_shape_gives_every_member_the_surrogates_inner_face_geometry(sample_dir, sample_encodings, cluster0):
    members, sur = cluster0
    assert np.unique(sample_encodings.identities[members]).size >= 5
    errors = {"original": [], "member": [], "cluster": []}
    for i in members[::2]:
        image = read_image(sample_dir / sample_encodings.paths[i])
        lm = sample_encodings.landmarks68[i]
        errors["original"].append(_shape_error(lm, sur.landmarks))
        for shape in ("member", "cluster"):
            out, placed = blend_surrogate(image, sur, lm, shape=shape, details=True)
            if shape == "cluster":  # the new face's landmarks are the surrogate's, moved by one similarity
                _matrix, target = place_surrogate(sur, lm)
                np.testing.assert_allclose(placed.landmarks68, target)
                assert _shape_error(target, sur.landmarks) < 1e-9
            again = _redetected(out, lm)
            assert again is not None, f"no face found again in {sample_encodings.paths[i]} ({shape})"
            errors[shape].append(_shape_error(again, sur.landmarks))
    median = {key: float(np.median(v)) for key, v in errors.items()}
    # measured on the sample: originals 0.061, member shape 0.058, cluster shape 0.013 (max 0.017) of the eye distance
    assert max(errors["cluster"]) < 0.03, errors["cluster"]
    assert median["cluster"] < median["member"] / 2, median
    assert median["member"] > 0.04, median  # the old placement keeps each person's own geometry


@pytest.mark.parametrize("settings", [BlendSettings(), BlendSettings(region="inner"), BlendSettings(blend="seamless"),
                                      BlendSettings(shape="member", region="inner"), BlendSettings(region="forehead"),
                                      BlendSettings(region="chip", soften=0.03)])
def test_pixels_outside_the_changed_region_never_change(sample_dir, sample_encodings, cluster0, settings):
    _, sur = cluster0
    for i in (0, 57, 131, 200):
        image = read_image(sample_dir / sample_encodings.paths[i])
        original = image.copy()
        out, placed = blend_surrogate(image, sur, sample_encodings.landmarks68[i], settings=settings, details=True)
        np.testing.assert_array_equal(image, original)  # input untouched
        x0, y0, x1, y1 = placed.roi
        region = np.zeros(image.shape[:2], bool)
        region[y0:y1, x0:x1] = placed.changed
        np.testing.assert_array_equal(out[~region], image[~region])
        diff = np.abs(out.astype(int) - image.astype(int))[region].mean()
        assert diff > 5, f"face region barely changed (mean |diff| {diff:.1f})"


def test_larger_regions_change_more_of_the_head(sample_dir, sample_encodings, cluster0):
    _, sur = cluster0
    image = read_image(sample_dir / sample_encodings.paths[0])
    changed = []
    for region in ("inner", "forehead", "head", "chip"):
        out = blend_surrogate(image, sur, sample_encodings.landmarks68[0], region=region)
        changed.append(int((np.abs(out.astype(int) - image.astype(int)).max(2) > 10).sum()))
    assert changed[0] < changed[1] < changed[2] < changed[3], changed


def test_colour_modes_differ_and_none_keeps_the_clusters_colours(sample_dir, sample_encodings, cluster0):
    _, sur = cluster0
    image = read_image(sample_dir / sample_encodings.paths[131])
    lm = sample_encodings.landmarks68[131]
    outs = {c: blend_surrogate(image, sur, lm, color=c, feather=0.0) for c in ("lab", "luma", "none")}
    assert not np.array_equal(outs["lab"], outs["luma"])
    # with no colour matching and no feathering, the middle of the face is the surrogate's pixels, only moved
    matrix, target = place_surrogate(sur, lm)
    x, y = np.round(target[29]).astype(int)  # nose
    inv = np.vstack([matrix, [0, 0, 1]])
    sx, sy = np.round(np.linalg.inv(inv)[:2] @ np.array([x, y, 1.0])).astype(int)
    assert np.abs(outs["none"][y, x].astype(int) - sur.image[sy, sx].astype(int)).max() <= 12


def test_blend_settings_refuse_bad_values():
    for bad in ({"shape": "x"}, {"region": "face"}, {"blend": "x"}, {"color": "rgb"}, {"feather": -1},
                {"forehead": "high"}, {"soften": -0.1}, {"soften": 1.0}):
        with pytest.raises(BadInputError):
            BlendSettings(**bad)
    assert set(REGIONS) == {"inner", "forehead", "head", "chip"}


def test_a_share_of_the_cluster_shape_moves_the_landmarks_that_share_of_the_way(sample_dir, sample_encodings, cluster0):
    _, sur = cluster0
    image = read_image(sample_dir / sample_encodings.paths[57])
    lm = sample_encodings.landmarks68[57].astype(np.float64)
    _, placed = place_surrogate(sur, lm)
    for shape, weight in (("member", 0.0), (0.25, 0.25), ("0.5", 0.5), ("cluster", 1.0)):
        assert BlendSettings(shape=shape).weight == weight
        _, rep = blend_surrogate(image, sur, lm, shape=shape, details=True)
        np.testing.assert_allclose(rep.landmarks68, lm + weight * (placed - lm), atol=1e-9)
    for bad in (-0.1, 1.5, "half", True):
        with pytest.raises(BadInputError):
            BlendSettings(shape=bad)
