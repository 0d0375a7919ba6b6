"""face_recognition-style functions over the same dlib models.

The `face_recognition` package needs a source build of dlib (about ten
minutes) and has had no release since 2020; anonfaces depends on the prebuilt
`dlib-bin` wheel and the models of `face-recognition-models` instead, and offers
the functions researchers know, with the same argument names and box order
(top, right, bottom, left)::

    from anonfaces import face_api as fr
    image = fr.load_image_file("photo.jpg")
    boxes = fr.face_locations(image)            # [(top, right, bottom, left), ...]
    vecs = fr.face_encodings(image, boxes)      # [ndarray(128,), ...]
    fr.compare_faces(vecs, vecs[0], tolerance=0.6)
"""

from __future__ import annotations

import numpy as np

from anonfaces.detect import _models
from anonfaces.detect.align import to_dlib_shape
from anonfaces.detect.detectors import make_detector
from anonfaces.utils.images import read_image

# dlib 68-point index ranges, named as face_recognition names them
_PARTS_68 = {
    "chin": range(17),
    "left_eyebrow": range(17, 22),
    "right_eyebrow": range(22, 27),
    "nose_bridge": range(27, 31),
    "nose_tip": range(31, 36),
    "left_eye": range(36, 42),
    "right_eye": range(42, 48),
    "top_lip": [*range(48, 55), 64, 63, 62, 61, 60],
    "bottom_lip": [*range(54, 60), 48, 60, 67, 66, 65, 64],
}
_PARTS_5 = {"nose_tip": [4], "left_eye": [2, 3], "right_eye": [0, 1]}


def load_image_file(path, mode: str = "RGB") -> np.ndarray:
    """An upright RGB uint8 array (EXIF orientation applied); ``mode="L"`` for greyscale."""
    image = read_image(path)
    if mode == "L":
        return (image @ np.array([0.299, 0.587, 0.114])).round().astype(np.uint8)
    return image


def _rgb(image):
    image = np.asarray(image)
    return np.ascontiguousarray(np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image)


def _rects(image, known_face_locations, number_of_times_to_upsample=1, model="hog"):
    import dlib

    if known_face_locations is None:
        boxes = face_locations(image, number_of_times_to_upsample, model)
    else:
        boxes = known_face_locations
    return [dlib.rectangle(int(left), int(top), int(right), int(bottom)) for top, right, bottom, left in boxes]


def face_locations(img, number_of_times_to_upsample: int = 1, model: str = "hog") -> list[tuple[int, int, int, int]]:
    """Boxes of the faces in ``img`` as (top, right, bottom, left), clipped to the image."""
    detector = make_detector(model, upsample=number_of_times_to_upsample)
    img = _rgb(img)
    h, w = img.shape[:2]
    out = []
    for rect, _ in detector._boxes(img):
        out.append((max(rect.top(), 0), min(rect.right(), w), min(rect.bottom(), h), max(rect.left(), 0)))
    return out


def batch_face_locations(images, number_of_times_to_upsample: int = 1, batch_size: int = 128) -> list[list[tuple[int, int, int, int]]]:
    """Boxes per image for a list of images of one size, found by dlib's CNN detector in
    batches of ``batch_size`` (as face_recognition does); (top, right, bottom, left)."""
    images = [_rgb(img) for img in images]
    if not images:
        return []
    h, w = images[0].shape[:2]
    if any(img.shape[:2] != (h, w) for img in images):
        from anonfaces.errors import BadInputError

        raise BadInputError(f"batch_face_locations needs images of one size; got {sorted({img.shape[:2] for img in images})}")
    batches = _models.cnn_detector()(images, number_of_times_to_upsample, batch_size=batch_size)
    return [
        [(max(d.rect.top(), 0), min(d.rect.right(), w), min(d.rect.bottom(), h), max(d.rect.left(), 0)) for d in dets]
        for dets in batches
    ]


def face_landmarks(face_image, face_locations=None, model: str = "large") -> list[dict[str, list[tuple[int, int]]]]:
    """Named landmark points per face; ``model="large"`` (68 points) or ``"small"`` (5)."""
    img = _rgb(face_image)
    points = 68 if model == "large" else 5
    parts = _PARTS_68 if points == 68 else _PARTS_5
    out = []
    for rect in _rects(img, face_locations):
        shape = _models.shape_predictor(points)(img, rect)
        pts = [(p.x, p.y) for p in shape.parts()]
        out.append({name: [pts[i] for i in idx] for name, idx in parts.items()})
    return out


def face_encodings(face_image, known_face_locations=None, num_jitters: int = 1, model: str = "small") -> list[np.ndarray]:
    """128-D encodings, one per face (landmarks: ``"small"`` 5-point or ``"large"`` 68-point).

    dlib's descriptors: each face is cut with dlib's ``get_face_chip`` and all faces
    of the image go through the network in one batch on ONNX Runtime (equal to dlib's
    ``compute_face_descriptor`` within 1e-6); ``num_jitters > 1`` runs on dlib itself.
    """
    import dlib

    from anonfaces.encode._dlib import embed_chips

    img = _rgb(face_image)
    predictor = _models.shape_predictor(5 if model == "small" else 68)
    shapes = [predictor(img, rect) for rect in _rects(img, known_face_locations)]
    if not shapes:
        return []
    if num_jitters > 1:
        recognizer = _models.face_recognizer()
        return [np.array(recognizer.compute_face_descriptor(img, shape, num_jitters)) for shape in shapes]
    chips = np.stack(dlib.get_face_chips(img, dlib.full_object_detections(shapes), size=150, padding=0.25))
    return [np.asarray(v, dtype=np.float64) for v in embed_chips(chips)]


def face_distance(face_encodings, face_to_compare) -> np.ndarray:
    """Euclidean distance from each known encoding to ``face_to_compare``."""
    face_encodings = np.asarray(face_encodings, dtype=np.float64)
    if face_encodings.size == 0:
        return np.empty(0)
    return np.linalg.norm(face_encodings - np.asarray(face_to_compare), axis=1)


def compare_faces(known_face_encodings, face_encoding_to_check, tolerance: float = 0.6) -> list[bool]:
    """Whether each known encoding is within ``tolerance`` of the one checked."""
    return list(face_distance(known_face_encodings, face_encoding_to_check) <= tolerance)


__all__ = ["batch_face_locations", "compare_faces", "face_distance", "face_encodings", "face_landmarks", "face_locations", "load_image_file", "to_dlib_shape"]
