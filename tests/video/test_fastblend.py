"""The video blend (`fast_blend`) against the photo blend (`blend_surrogate`) on real faces of the bundled photos."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import SAMPLE


@pytest.fixture(scope="module")
def face_and_surrogate():
    """(a 3x upscaled bundled photo with one face at ~240 px, its dlib landmarks, a surrogate from another photo)."""
    import cv2

    from anonfaces.detect.align import align_face
    from anonfaces.detect.detectors import detect_faces
    from anonfaces.synthesize.base import Surrogate
    from anonfaces.utils.images import read_image

    photo = read_image(SAMPLE / "Tiger_Woods/Tiger_Woods_0001.jpg")
    frame = cv2.resize(photo, None, fx=2.0, fy=2.0, interpolation=cv2.INTER_LINEAR)
    [face] = detect_faces(frame)[:1]
    donor = read_image(SAMPLE / "Bill_Gates/Bill_Gates_0001.jpg")
    [other] = detect_faces(donor)[:1]
    aligned = align_face(donor, other.landmarks68, size=256)
    return frame, face.landmarks68.astype(np.float64), Surrogate(aligned.image, aligned.landmarks68)


def _box(*images, reference):
    changed = np.zeros(reference.shape[:2], bool)
    for image in images:
        changed |= (image != reference).any(2)
    ys, xs = np.nonzero(changed)
    return slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1)


def test_fast_blend_matches_the_photo_blend(face_and_surrogate):
    from skimage.metrics import structural_similarity

    from anonfaces.synthesize.blend import BlendSettings, blend_surrogate
    from anonfaces.video.fastblend import FastSurrogate, fast_blend

    frame, lm, surrogate = face_and_surrogate
    for settings in (BlendSettings(), BlendSettings(color="lab", region="inner"), BlendSettings(shape="member")):
        exact, details = blend_surrogate(frame, surrogate, lm, settings=settings, details=True)
        fast = fast_blend(frame, FastSurrogate(surrogate), lm, settings=settings)
        assert fast.shape == frame.shape and fast.dtype == np.uint8
        # nothing changes outside the photo blend's box
        x0, y0, x1, y1 = details.roi
        outside = np.ones(frame.shape[:2], bool)
        outside[y0:y1, x0:x1] = False
        assert np.array_equal(fast[outside], frame[outside])
        box = _box(exact, fast, reference=frame)
        ssim = structural_similarity(exact[box], fast[box], channel_axis=2)
        assert ssim > 0.98, (settings, ssim)
        # the face is replaced: far from the original inside the region
        inner = details.changed
        assert np.abs(fast[y0:y1, x0:x1][inner].astype(int) - frame[y0:y1, x0:x1][inner].astype(int)).mean() > 5


def test_fast_blend_at_full_resolution_is_the_photo_blend(face_and_surrogate):
    """step 1 and stride 1: the maps are the photo blend's; only the 8-bit colour conversion and the ring's outer edge
    (where the photo blend extrapolates a similarity beyond its triangulation) differ."""
    from anonfaces.synthesize.blend import BlendSettings, blend_surrogate
    from anonfaces.video.fastblend import fast_blend

    frame, lm, surrogate = face_and_surrogate
    exact = blend_surrogate(frame, surrogate, lm, settings=BlendSettings())
    fast = fast_blend(frame, surrogate, lm, settings=BlendSettings(), step=1, stride=1)
    diff = np.abs(exact.astype(int) - fast.astype(int)).max(2)
    box = _box(exact, fast, reference=frame)
    assert diff[box].mean() < 1.5  # the largest of the three channels; 8-bit Lab rounds by about one level
    assert (diff[box] > 8).mean() < 0.01


def test_fast_blend_falls_back_and_checks_its_input(face_and_surrogate):
    from anonfaces.errors import BadInputError
    from anonfaces.synthesize.blend import BlendSettings, blend_surrogate
    from anonfaces.video.fastblend import fast_blend

    frame, lm, surrogate = face_and_surrogate
    settings = BlendSettings(soften=0.05)
    assert np.array_equal(fast_blend(frame, surrogate, lm, settings=settings),
                          blend_surrogate(frame, surrogate, lm, settings=settings))
    with pytest.raises(BadInputError):
        fast_blend(frame, surrogate, lm[:10])
    with pytest.raises(BadInputError):
        fast_blend(frame.astype(np.float32), surrogate, lm)
