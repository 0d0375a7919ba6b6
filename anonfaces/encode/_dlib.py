"""dlib's 128-D ResNet face descriptor (the network face_recognition wraps)."""

from __future__ import annotations

import numpy as np

from anonfaces.detect import _models
from anonfaces.detect.align import face_chip
from anonfaces.encode.base import ENCODERS, Encoder
from anonfaces.errors import BadInputError

CHIP_SIZE = 150


@ENCODERS.register("dlib")
class DlibEncoder(Encoder):
    """128-D descriptors; faces of one person lie within about 0.6 of each other.

    Parameters
    ----------
    num_jitters : int, default 1
        Re-sample each face this many times (randomly jittered) and average;
        higher is slightly more accurate and proportionally slower.
    """

    dim = 128

    def __init__(self, *, num_jitters: int = 1):
        if not isinstance(num_jitters, (int, np.integer)) or num_jitters < 1:
            raise BadInputError(f"num_jitters={num_jitters!r} must be an integer >= 1")
        self.num_jitters = int(num_jitters)

    def settings(self) -> dict:
        return {"name": "dlib", "num_jitters": self.num_jitters}

    def warm_up(self) -> None:
        _models.face_recognizer()

    def prepare(self, image, faces) -> np.ndarray:
        if not faces:
            return np.empty((0, CHIP_SIZE, CHIP_SIZE, 3), np.uint8)
        return np.stack([face_chip(image, f.landmarks5, size=CHIP_SIZE) for f in faces])

    def embed(self, prepared: np.ndarray) -> np.ndarray:
        if len(prepared) == 0:
            return np.empty((0, self.dim), np.float32)
        chips = [np.ascontiguousarray(c) for c in prepared]
        out = _models.face_recognizer().compute_face_descriptor(chips, self.num_jitters)
        return np.asarray([np.asarray(v) for v in out], dtype=np.float32)
