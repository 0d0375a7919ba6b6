"""Synthesizers and the piecewise affine warp on hand-made and real inputs."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from anonfaces.errors import BadInputError
from anonfaces.synthesize import SYNTHESIZERS, Surrogate, make_synthesizer
from anonfaces.synthesize._morph import warp_to_shape
from anonfaces.synthesize._warp import PiecewiseAffine, boundary_points, grid_points


def _shape(rng, size=64):
    """68 random-but-spread control points inside a size x size square."""
    return rng.uniform(0.15 * size, 0.85 * size, (68, 2))


def test_piecewise_affine_is_identity_when_source_equals_destination():
    rng = np.random.RandomState(0)
    pts = np.concatenate([_shape(rng), boundary_points(64)])
    query = grid_points(64, 64)
    coords = PiecewiseAffine(pts, query).map(pts)
    np.testing.assert_allclose(coords, query, atol=1e-3)


def test_piecewise_affine_reproduces_a_global_affine_map_and_hits_control_points():
    rng = np.random.RandomState(1)
    dst = np.concatenate([_shape(rng), boundary_points(64)])
    A = np.array([[1.1, 0.2, 3.0], [-0.1, 0.9, -2.0]])
    src = dst @ A[:, :2].T + A[:, 2]
    query = np.concatenate([grid_points(64, 64), dst])
    coords = PiecewiseAffine(dst, query).map(src)
    np.testing.assert_allclose(coords, query @ A[:, :2].T + A[:, 2], atol=1e-3)
    # points beyond the triangulation extrapolate the nearest triangle's map
    outside = np.array([[-10.0, -10.0], [80.0, 30.0]])
    np.testing.assert_allclose(PiecewiseAffine(dst, outside).map(src), outside @ A[:, :2].T + A[:, 2], atol=1e-3)


def test_builtin_synthesizers_are_registered_and_unknown_names_list_the_valid_ones():
    assert {"pixel", "morph", "eigen"} <= set(SYNTHESIZERS.names())
    with pytest.raises(BadInputError, match="valid names: .*morph"):
        make_synthesizer("no-such-synth")
    with pytest.raises(BadInputError, match="bad settings"):
        make_synthesizer("morph", bogus=1)


def test_importing_the_stage_does_not_import_torch():
    code = "import sys, anonfaces.synthesize as s; s.load_optional_synthesizers(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"


def test_bad_cluster_inputs_are_refused():
    synth = make_synthesizer("morph")
    faces = np.zeros((2, 32, 32, 3), np.uint8)
    with pytest.raises(BadInputError, match="faces must be uint8"):
        synth.synthesize(faces.astype(np.float32), np.zeros((2, 68, 2)))
    with pytest.raises(BadInputError, match="landmarks must have shape"):
        synth.synthesize(faces, np.zeros((3, 68, 2)))
    with pytest.raises(BadInputError, match="at least one face"):
        synth.synthesize(faces[:0], np.zeros((0, 68, 2)))
    with pytest.raises(BadInputError, match="NaN"):
        synth.synthesize(faces, np.full((2, 68, 2), np.nan))
    with pytest.raises(BadInputError, match=r"\(S, S, 3\)"):
        Surrogate(np.zeros((8, 9, 3), np.uint8), np.zeros((68, 2)))


@pytest.mark.parametrize("name", ["pixel", "morph", "eigen"])
def test_one_member_cluster_gives_back_that_face(sample_crops, name):
    crops, points = sample_crops
    face, lm = crops[:1].copy(), points[:1].copy()
    sur = make_synthesizer(name).synthesize(face, lm)
    assert sur.image.shape == face.shape[1:] and sur.image.dtype == np.uint8
    np.testing.assert_allclose(sur.landmarks, lm[0], atol=1e-4)
    tol = 1.0 if name != "eigen" else 6.0  # eigen resamples to its working resolution and back
    assert np.abs(sur.image.astype(float) - face[0]).mean() < tol
    np.testing.assert_array_equal(face, crops[:1])  # input not modified


def test_morph_puts_every_member_on_the_mean_shape_and_is_sharper_than_pixel(sample_crops):
    crops, points = sample_crops
    idx = np.arange(0, 50, 10)
    morph = make_synthesizer("morph").synthesize(crops[idx], points[idx])
    pixel = make_synthesizer("pixel").synthesize(crops[idx], points[idx])
    np.testing.assert_allclose(morph.landmarks, points[idx].mean(0), atol=1e-4)
    # a warped member has its eye corners where the mean shape has them
    warped = warp_to_shape(crops[idx[:1]], points[idx[:1]], morph.landmarks.astype(float))
    assert warped.shape == (1, 256, 256, 3)

    def sharpness(img):
        grey = img.astype(float).mean(2)
        return np.abs(np.diff(grey, axis=0)).mean() + np.abs(np.diff(grey, axis=1)).mean()

    assert sharpness(morph.image) > sharpness(pixel.image)


def test_eigen_fit_gives_a_face_space_and_same_seed_same_result(sample_crops):
    crops, points = sample_crops
    a = make_synthesizer("eigen", n_components=20, max_fit_faces=60, random_state=3).fit(crops, points)
    b = make_synthesizer("eigen", n_components=20, max_fit_faces=60, random_state=3).fit(crops, points)
    assert a.components_.shape == (20, 128 * 128 * 3)
    np.testing.assert_allclose(a.components_ @ a.components_.T, np.eye(20), atol=1e-3)
    idx = np.arange(5)
    np.testing.assert_array_equal(a.synthesize(crops[idx], points[idx]).image, b.synthesize(crops[idx], points[idx]).image)
    with pytest.raises(BadInputError, match="n_components"):
        make_synthesizer("eigen", n_components=1.5)


def test_auto_crop_size_keeps_the_median_face_at_its_own_resolution():
    from anonfaces.synthesize.surrogates import auto_crop_size

    lm = np.zeros((3, 68, 2))
    for i, eyes in enumerate((30.0, 48.0, 300.0)):
        lm[i, 42:48, 0] = eyes  # right eye at x=0, left eye at x=eyes
    assert auto_crop_size(lm[1:2]) == 160  # 48 / 0.3 = 160
    assert auto_crop_size(lm) == 160  # the median face
    assert auto_crop_size(lm[:1]) == 128  # clipped below
    assert auto_crop_size(lm[2:]) == 512  # clipped above
    assert auto_crop_size(np.empty((0, 68, 2))) == 512
