"""The record the detection stage hands on: one `FaceDetection` per face."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FaceDetection:
    """One face found in an image.

    Attributes
    ----------
    index : int
        Position of the face in its image (0, 1, ...; detector order, best first).
    box_ltrb : ndarray of shape (4,), float32
        (left, top, right, bottom) in image pixels.
    score : float
        Detector confidence (HOG: SVM margin; CNN: MMOD confidence).
    landmarks5 : ndarray of shape (5, 2), float32
        dlib 5-point landmarks (x, y): right eye outer/inner, left eye outer/inner, nose.
    landmarks68 : ndarray of shape (68, 2), float32
        iBUG 68-point landmarks (x, y).
    """

    index: int
    box_ltrb: np.ndarray
    score: float
    landmarks5: np.ndarray
    landmarks68: np.ndarray

    @property
    def box_trbl(self) -> tuple[int, int, int, int]:
        """The box in face_recognition's (top, right, bottom, left) order, as ints."""
        left, top, right, bottom = (round(v) for v in self.box_ltrb)
        return top, right, bottom, left
