import numpy as np
import pytest

from anonfaces import face_api
from anonfaces.detect import (
    CANONICAL_TEMPLATE,
    align_face,
    detect_faces,
    face_chip,
    similarity_transform,
    transform_points,
)
from anonfaces.detect.align import anchor_points
from anonfaces.errors import BadInputError
from anonfaces.utils.images import read_image


@pytest.fixture(scope="module")
def photo(sample_dir):
    return read_image(sample_dir / "Bill_Gates" / "Bill_Gates_0001.jpg")


def test_hog_finds_the_face_with_landmarks(photo):
    faces = detect_faces(photo)
    assert len(faces) >= 1
    f = faces[0]
    l, t, r, b = f.box_ltrb
    assert 40 < (l + r) / 2 < 210 and 40 < (t + b) / 2 < 210  # LFW photos are centred on the face
    assert f.landmarks68.shape == (68, 2) and f.landmarks5.shape == (5, 2)
    # eyes above the nose above the mouth (image y grows downwards)
    eye_y = f.landmarks68[36:48, 1].mean()
    assert eye_y < f.landmarks68[33, 1] < f.landmarks68[48:68, 1].mean()
    assert [g.index for g in faces] == list(range(len(faces)))
    assert all(faces[i].score >= faces[i + 1].score for i in range(len(faces) - 1))


def test_cnn_agrees_with_hog(photo):
    hog = detect_faces(photo)[0]
    cnn = detect_faces(photo, detector="cnn", upsample=0)
    assert len(cnn) >= 1
    # the two boxes overlap well (intersection over union)
    a, b = hog.box_ltrb, cnn[0].box_ltrb
    inter = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    assert inter / union > 0.4
    np.testing.assert_allclose(cnn[0].landmarks68, hog.landmarks68, atol=12)


def test_upsampling_finds_small_faces(photo):
    import cv2

    small = cv2.resize(photo, (90, 90), interpolation=cv2.INTER_AREA)
    assert len(detect_faces(small, upsample=0)) == 0
    assert len(detect_faces(small, upsample=2)) >= 1


def test_no_face_gives_an_empty_list():
    assert detect_faces(np.full((120, 120, 3), 127, np.uint8)) == []


def test_bad_images_and_settings():
    with pytest.raises(BadInputError, match="RGB uint8"):
        detect_faces(np.zeros((10, 10), np.uint8))
    with pytest.raises(BadInputError, match="upsample"):
        detect_faces(np.zeros((10, 10, 3), np.uint8), upsample=9)
    with pytest.raises(BadInputError, match="unknown detector 'yolo'; valid names: cnn, hog"):
        detect_faces(np.zeros((10, 10, 3), np.uint8), detector="yolo")


def test_similarity_transform_recovers_a_known_map():
    rng = np.random.default_rng(0)
    angle, scale, shift = 0.3, 1.7, np.array([5.0, -3.0])
    R = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    src = rng.normal(size=(10, 2)) * 50
    M = similarity_transform(src, src @ R.T + shift)
    np.testing.assert_allclose(M[:, :2], R, atol=1e-9)
    np.testing.assert_allclose(M[:, 2], shift, atol=1e-9)


@pytest.mark.parametrize("size", [64, 256])
def test_canonical_alignment_puts_eyes_and_mouth_in_place(photo, size):
    face = detect_faces(photo)[0]
    aligned = align_face(photo, face.landmarks68, size=size)
    assert aligned.image.shape == (size, size, 3) and aligned.image.dtype == np.uint8
    np.testing.assert_allclose(anchor_points(aligned.landmarks68), CANONICAL_TEMPLATE * size, atol=0.06 * size)
    back = transform_points(aligned.landmarks68, aligned.matrix_inverse)
    np.testing.assert_allclose(back, face.landmarks68, atol=1e-3)
    # the aligned crop still shows a detectable face
    if size == 256:
        assert len(detect_faces(aligned.image)) == 1


def test_face_chip_is_dlibs_150px(photo):
    face = detect_faces(photo)[0]
    chip = face_chip(photo, face.landmarks5)
    assert chip.shape == (150, 150, 3)


def test_face_recognition_style_functions(sample_dir):
    a = face_api.load_image_file(sample_dir / "Tiger_Woods" / "Tiger_Woods_0001.jpg")
    b = face_api.load_image_file(sample_dir / "Tiger_Woods" / "Tiger_Woods_0002.jpg")
    c = face_api.load_image_file(sample_dir / "Kate_Hudson" / "Kate_Hudson_0001.jpg")
    boxes = face_api.face_locations(a)
    top, right, bottom, left = boxes[0]
    assert top < bottom and left < right
    marks = face_api.face_landmarks(a, boxes)[0]
    assert len(marks["chin"]) == 17 and len(marks["left_eye"]) == 6
    ea, eb, ec = (face_api.face_encodings(x)[0] for x in (a, b, c))
    assert ea.shape == (128,)
    assert face_api.compare_faces([eb, ec], ea) == [True, False]
    assert face_api.load_image_file(sample_dir / "Tiger_Woods" / "Tiger_Woods_0001.jpg", mode="L").ndim == 2
