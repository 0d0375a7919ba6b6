"""Face alignment.

Two frames are used:

* dlib's *face chip* (150 x 150, from the 5-point landmarks) is what the 128-D
  ResNet descriptor was trained on; `face_chip` cuts it.
* The *canonical* frame is what synthesis works in: a similarity transform
  (rotation, uniform scale, translation) that puts the two eye centres and the
  mouth centre at fixed places in a square crop of ``size`` pixels
  (`CANONICAL_TEMPLATE`, in units of ``size``). `align_face` returns the crop,
  the 2 x 3 matrix from image to crop, and the landmarks in crop coordinates;
  `AlignedFace.matrix_inverse` maps results back into the photo.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from anonfaces.errors import BadInputError

#: Eye centres (subject's right eye first, i.e. the one on the viewer's left) and
#: mouth centre, as fractions of the crop size.
CANONICAL_TEMPLATE = np.array([[0.35, 0.38], [0.65, 0.38], [0.50, 0.70]], dtype=np.float64)

# iBUG 68-point index ranges
RIGHT_EYE_68 = slice(36, 42)
LEFT_EYE_68 = slice(42, 48)
MOUTH_68 = slice(48, 68)


@dataclass(frozen=True)
class AlignedFace:
    """A face in the canonical frame.

    Attributes
    ----------
    image : ndarray of shape (size, size, 3), uint8
    matrix : ndarray of shape (2, 3), float64
        Affine map from image pixels to crop pixels.
    landmarks68 : ndarray of shape (68, 2), float32
        The landmarks in crop pixels.
    """

    image: np.ndarray
    matrix: np.ndarray
    landmarks68: np.ndarray

    @property
    def size(self) -> int:
        return int(self.image.shape[0])

    @property
    def matrix_inverse(self) -> np.ndarray:
        """Affine map (2, 3) from crop pixels back to image pixels."""
        return cv2.invertAffineTransform(self.matrix)


def anchor_points(landmarks68: np.ndarray) -> np.ndarray:
    """Eye centres and mouth centre, shape (3, 2), from 68-point landmarks."""
    lm = np.asarray(landmarks68, dtype=np.float64)
    if lm.shape != (68, 2):
        raise BadInputError(f"landmarks68 must have shape (68, 2); got {lm.shape}")
    return np.stack([lm[RIGHT_EYE_68].mean(0), lm[LEFT_EYE_68].mean(0), lm[MOUTH_68].mean(0)])


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (no reflection) mapping points ``src`` onto ``dst``; (2, 3) matrix."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    n = len(src)
    # unknowns a, b, tx, ty with x' = a x - b y + tx, y' = b x + a y + ty
    A = np.zeros((2 * n, 4))
    A[0::2] = np.column_stack([src[:, 0], -src[:, 1], np.ones(n), np.zeros(n)])
    A[1::2] = np.column_stack([src[:, 1], src[:, 0], np.zeros(n), np.ones(n)])
    (a, b, tx, ty), *_ = np.linalg.lstsq(A, dst.reshape(-1), rcond=None)
    return np.array([[a, -b, tx], [b, a, ty]])


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) affine matrix to points of shape (n, 2)."""
    points = np.asarray(points, dtype=np.float64)
    return points @ matrix[:, :2].T + matrix[:, 2]


def align_face(image: np.ndarray, landmarks68: np.ndarray, *, size: int = 256) -> AlignedFace:
    """Cut the canonical crop of one face (see module docstring)."""
    if not isinstance(size, (int, np.integer)) or size < 16:
        raise BadInputError(f"size={size!r} must be an integer >= 16")
    matrix = similarity_transform(anchor_points(landmarks68), CANONICAL_TEMPLATE * size)
    crop = cv2.warpAffine(np.asarray(image), matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return AlignedFace(crop, matrix, transform_points(landmarks68, matrix).astype(np.float32))


def face_chip(image: np.ndarray, landmarks5: np.ndarray, *, size: int = 150, padding: float = 0.25) -> np.ndarray:
    """dlib's aligned face chip (what the 128-D descriptor expects), from 5-point landmarks."""
    import dlib

    lm = np.asarray(landmarks5)
    if lm.shape not in ((5, 2), (68, 2)):
        raise BadInputError(f"landmarks must have shape (5, 2) or (68, 2); got {lm.shape}")
    return dlib.get_face_chip(np.ascontiguousarray(image), to_dlib_shape(lm), size=size, padding=padding)


def to_dlib_shape(landmarks: np.ndarray, box_ltrb=None):
    """A `dlib.full_object_detection` from stored landmarks (and box, else their bounds)."""
    import dlib

    lm = np.asarray(landmarks, dtype=np.float64)
    if box_ltrb is None:
        box_ltrb = (*lm.min(0), *lm.max(0))
    rect = dlib.rectangle(*(round(v) for v in box_ltrb))
    return dlib.full_object_detection(rect, [dlib.point(round(x), round(y)) for x, y in lm])
