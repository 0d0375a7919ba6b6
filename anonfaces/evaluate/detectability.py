"""Is there still a usable face? Detector hit rate and landmark displacement.

The anonymized photo is run through the detector again. An original face is
*found* when a detection overlaps its box with IoU >= ``min_iou`` (each
detection is matched at most once, best overlap first). For found faces the 68
landmarks of the detection are compared with the original's: mean point
distance divided by the original inter-ocular distance (eye centres), the usual
normalised mean error.
"""

from __future__ import annotations

import numpy as np

from anonfaces.detect.align import LEFT_EYE_68, RIGHT_EYE_68
from anonfaces.errors import BadInputError

DEFAULT_MIN_IOU = 0.5


def box_iou(a_ltrb, b_ltrb) -> np.ndarray:
    """Intersection over union of every box in ``a`` with every box in ``b``; shape (len(a), len(b))."""
    A = np.asarray(a_ltrb, np.float64).reshape(-1, 4)
    B = np.asarray(b_ltrb, np.float64).reshape(-1, 4)
    lt = np.maximum(A[:, None, :2], B[None, :, :2])
    rb = np.minimum(A[:, None, 2:], B[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(np.clip(A[:, 2:] - A[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(B[:, 2:] - B[:, :2], 0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def match_faces(original_boxes, detected_boxes, *, min_iou: float = DEFAULT_MIN_IOU) -> np.ndarray:
    """For each original box, the index of its matched detection or -1; shape (n_original,).

    Greedy one-to-one matching, highest IoU first.
    """
    if not 0 < min_iou <= 1:
        raise BadInputError(f"min_iou={min_iou!r} must be in (0, 1]")
    iou = box_iou(original_boxes, detected_boxes)
    match = np.full(iou.shape[0], -1, np.int64)
    if iou.size == 0:
        return match
    order = np.dstack(np.unravel_index(np.argsort(-iou, axis=None, kind="stable"), iou.shape))[0]
    used = set()
    for i, j in order:
        if iou[i, j] < min_iou:
            break
        if match[i] < 0 and j not in used:
            match[i] = j
            used.add(int(j))
    return match


def interocular_distance(landmarks68) -> float:
    lm = np.asarray(landmarks68, np.float64)
    if lm.shape != (68, 2):
        raise BadInputError(f"landmarks68 must have shape (68, 2); got {lm.shape}")
    return float(np.linalg.norm(lm[RIGHT_EYE_68].mean(0) - lm[LEFT_EYE_68].mean(0)))


def landmark_displacement(original68, detected68) -> float:
    """Mean distance between corresponding landmarks, in units of the original inter-ocular distance."""
    a = np.asarray(original68, np.float64)
    b = np.asarray(detected68, np.float64)
    if a.shape != (68, 2) or b.shape != (68, 2):
        raise BadInputError(f"landmarks must both have shape (68, 2); got {a.shape} and {b.shape}")
    iod = interocular_distance(a)
    if not iod > 0:
        raise BadInputError("the original landmarks have zero inter-ocular distance")
    return float(np.linalg.norm(a - b, axis=1).mean() / iod)
