"""Issue 16, session 7: the photo's fine detail put back outside the inner face (``detail``) and the surrogate placed by
all 68 landmarks (``place="landmarks"``), on real sample faces (real dlib landmarks)."""

from __future__ import annotations

import numpy as np
import pytest

from anonfaces.detect.align import anchor_points
from anonfaces.errors import BadInputError
from anonfaces.synthesize.blend import (
    REGIONS,
    BlendSettings,
    blend_surrogate,
    face_mask,
    place_surrogate,
)
from anonfaces.synthesize.privacy import escalation_steps
from anonfaces.utils.images import read_image


@pytest.fixture(scope="module")
def cluster0(morph_cluster0):
    """Rows of cluster 0 of the sample at k = 5 and its morph surrogate."""
    return morph_cluster0[1:]


def _faces(sample_dir, sample_encodings, rows, n=6):
    for i in rows[:n]:
        yield read_image(sample_dir / sample_encodings.paths[i]), sample_encodings.landmarks68[i].astype(np.float64)


def test_detail_changes_only_outside_the_inner_face_and_raises_ssim(sample_dir, sample_encodings, cluster0,
                                                                    unchanged_outside):
    from anonfaces.evaluate.quality import ssim

    rows, sur = cluster0
    gain = []
    for image, lm in _faces(sample_dir, sample_encodings, rows):
        plain, where = blend_surrogate(image, sur, lm, settings=BlendSettings(), details=True)
        out, where_d = blend_surrogate(image, sur, lm, settings=BlendSettings(detail=1.0), details=True)
        assert where_d.roi == where.roi and np.array_equal(where_d.changed, where.changed)
        unchanged_outside(image, out, where)  # nothing outside the changed area moves
        x0, y0, x1, y1 = where.roi
        # the inner face (of the member and of the new face) is the surrogate's, untouched by the photo's detail
        forehead, _ = REGIONS["inner"]
        inner = np.zeros(image.shape[:2], bool)
        for points in (lm, where.landmarks68):
            inner |= face_mask(image.shape[:2], points, forehead=forehead, feather=0.0) > 0
        assert inner.sum() > 1000
        np.testing.assert_array_equal(out[inner], plain[inner])
        # and where the detail went back, the photo's fine texture is there (the changed area outside the inner face)
        ring = np.zeros(image.shape[:2], bool)
        ring[y0:y1, x0:x1] = where.changed
        ring &= ~(face_mask(image.shape[:2], where.landmarks68, forehead=forehead, feather=0.0, expand=1.3) > 0)
        assert ring.sum() > 500
        assert (np.abs(out[ring].astype(int) - image[ring]).mean()
                < np.abs(plain[ring].astype(int) - image[ring]).mean())
        gain.append(ssim(image, out) - ssim(image, plain))
    # sample: about +0.03 on average
    assert np.mean(gain) > 0.01, gain
    for bad in (-0.1, 1.5, "1", True):
        with pytest.raises(BadInputError):
            BlendSettings(detail=bad)


def test_the_cluster_shape_step_drops_the_members_detail_and_pose():
    steps = dict(escalation_steps(BlendSettings(pose=2, detail=1.0), (0.03,)))
    assert steps["given"].detail == 1.0
    assert steps["cluster-shape"].detail == 0.0 and steps["cluster-shape"].pose == 0
    assert list(steps) == ["given", "cluster-shape", "largest-region", "cluster-colour", "softened"]
    # detail alone is member content too: the first stronger step removes it
    assert [n for n, _ in escalation_steps(BlendSettings(detail=0.5), ())][:2] == ["given", "cluster-shape"]


def test_place_landmarks_fits_all_68_points(sample_encodings, cluster0):
    rows, sur = cluster0
    for i in rows[:6]:
        lm = sample_encodings.landmarks68[i].astype(np.float64)
        _, by_anchors = place_surrogate(sur, lm)
        matrix, by_all = place_surrogate(sur, lm, place="landmarks")
        # least squares over all 68 points: never further from the face's landmarks than the anchors' fit
        assert ((by_all - lm) ** 2).sum() <= ((by_anchors - lm) ** 2).sum() + 1e-6
        # and still a similarity (the surrogate's own shape, moved, scaled and rolled): anchor distances keep ratios
        a_sur, a_all = anchor_points(sur.landmarks), anchor_points(by_all)
        ratio = np.linalg.norm(a_all[0] - a_all[1]) / np.linalg.norm(a_sur[0] - a_sur[1])
        assert ratio == pytest.approx(np.linalg.norm(a_all[0] - a_all[2]) / np.linalg.norm(a_sur[0] - a_sur[2]),
                                      rel=1e-6)
        assert ratio == pytest.approx(np.sqrt(abs(np.linalg.det(matrix[:, :2]))), rel=1e-6)
    with pytest.raises(BadInputError):
        BlendSettings(place="eyes")
    with pytest.raises(BadInputError):
        place_surrogate(sur, lm, place="eyes")


def test_detail_and_place_are_anonymize_settings():
    from anonfaces.pipeline.options import AnonymizeOptions

    options = AnonymizeOptions.from_flat(method="ksame", k=5, place="landmarks", detail=0.5)
    assert options.blend_settings() == BlendSettings(place="landmarks", detail=0.5)
    assert AnonymizeOptions.from_flat(method="ksame", k=5).blend_settings() == BlendSettings()
    with pytest.raises(BadInputError):
        AnonymizeOptions.from_flat(method="ksame", k=5, detail=2.0).blend_settings()


def test_a_tighter_ring_changes_fewer_pixels(sample_dir, sample_encodings, cluster0, unchanged_outside):
    from anonfaces.evaluate.quality import ssim

    rows, sur = cluster0
    gain = []
    for image, lm in _faces(sample_dir, sample_encodings, rows):
        wide, where_wide = blend_surrogate(image, sur, lm, settings=BlendSettings(), details=True)
        tight, where_tight = blend_surrogate(image, sur, lm, settings=BlendSettings(ring=1.08), details=True)
        assert where_tight.changed.sum() < where_wide.changed.sum()
        unchanged_outside(image, tight, where_tight)
        # the new face is placed the same way: its landmarks do not depend on the ring
        np.testing.assert_allclose(where_tight.landmarks68, where_wide.landmarks68)
        gain.append(ssim(image, tight) - ssim(image, wide))
    assert np.mean(gain) > 0.0, gain
    for bad in (1.0, 2.5, "1.1", True):
        with pytest.raises(BadInputError):
            BlendSettings(ring=bad)
