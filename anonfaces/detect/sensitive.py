"""The sensitive detector: the second look for faces where missing one costs most.

The fast HOG detector misses faces that are turned, tilted, small or partly
hidden (about 5% of celebrity photos give it no face). Before a photo is treated
as faceless, and on every output photo before it is released, `SensitiveDetector`
looks again with dlib's CNN (MMOD) detector on an upsampled image and, where
asked, adds what HOG finds at the same scale. The CNN runs on ONNX Runtime with
dlib's own detections (`anonfaces.detect._mmod_onnx`; ``ANONFACES_CNN_ENGINE=dlib`` runs
dlib itself, several times slower: about 1.4 CPU s for a 250 x 250 LFW photo at
``upsample=1``). It is still slower than HOG, so it runs only where the first pass found
nothing, and on outputs.

Large photos are scaled down before upsampling so that the work image never
exceeds ``max_pixels``; boxes are mapped back and the landmarks are fitted on the
photo itself, so the `FaceDetection` records are in the photo's own pixels.
"""

from __future__ import annotations

import math

import numpy as np

from anonfaces.detect import _models
from anonfaces.detect.detectors import _check_image, _shape_to_array
from anonfaces.detect.types import FaceDetection
from anonfaces.errors import BadInputError

#: Pyramid steps up for the CNN (each doubles the side): 1 finds faces down to about 40 px.
DEFAULT_UPSAMPLE = 1
#: Largest work image (after upsampling) the CNN sees; bigger photos are scaled down first.
DEFAULT_MAX_WORK_PIXELS = 4_000_000
#: Boxes overlapping more than this (intersection over union) are the same face.
SAME_FACE_IOU = 0.3


class SensitiveDetector:
    """dlib's CNN face detector with upsampling, plus HOG (``with_hog``).

    Parameters
    ----------
    upsample : int, default 1
        Times the image is doubled before the CNN looks (0 to 3).
    with_hog : bool, default True
        Also run HOG and keep its faces that the CNN did not find (cheap; the two
        detectors miss different faces).
    max_pixels : int
        Cap on the upsampled work image, see the module docstring.
    hog_upsample : int or None, default None
        Upsampling of HOG (0 to 3); None: the same as the CNN's.
    cnn : bool, default True
        Run the CNN at all (False: HOG only, the cheap whole-photo look).
    """

    registry_name = "sensitive"

    def __init__(self, *, upsample: int = DEFAULT_UPSAMPLE, with_hog: bool = True,
                 max_pixels: int = DEFAULT_MAX_WORK_PIXELS, hog_upsample: int | None = None, cnn: bool = True):
        for name, value in (("upsample", upsample), ("hog_upsample", upsample if hog_upsample is None else hog_upsample)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value <= 3:
                raise BadInputError(f"{name}={value!r} must be an integer from 0 to 3")
        if isinstance(max_pixels, bool) or not isinstance(max_pixels, (int, np.integer)) or max_pixels < 10_000:
            raise BadInputError(f"max_pixels={max_pixels!r} must be an integer >= 10000")
        if not cnn and not with_hog:
            raise BadInputError("a sensitive detector needs the CNN or HOG (cnn=False and with_hog=False)")
        self.upsample = int(upsample)
        self.with_hog = bool(with_hog)
        self.max_pixels = int(max_pixels)
        self.hog_upsample = int(upsample if hog_upsample is None else hog_upsample)
        self.cnn = bool(cnn)

    def settings(self) -> dict:
        return {"name": self.registry_name, "upsample": self.upsample, "with_hog": self.with_hog,
                "max_pixels": self.max_pixels, "hog_upsample": self.hog_upsample, "cnn": self.cnn}

    def warm_up(self) -> None:
        """Load the models now (before worker processes fork and share them)."""
        if self.cnn:
            _models.cnn_detector()
        if self.with_hog:
            _models.hog_detector()
        _models.shape_predictor(5)
        _models.shape_predictor(68)

    def work_scale(self, height: int, width: int) -> float:
        """Factor (<= 1) the photo is resized by before upsampling, so the work image fits ``max_pixels``."""
        up = max(self.upsample if self.cnn else 0, self.hog_upsample if self.with_hog else 0)
        upsampled = height * width * 4 ** up
        return min(1.0, math.sqrt(self.max_pixels / upsampled)) if upsampled else 1.0

    def boxes(self, image: np.ndarray, known=None) -> list[tuple[np.ndarray, float, str]]:
        """Face boxes as (box_ltrb in photo pixels, score, source), best first per source: the ``known``
        boxes (m, 4) first (source "known", score 0), then the CNN's ("cnn"), then HOG's ("hog"); a
        box overlapping an earlier one (intersection over union > 0.3) is the same face and dropped."""
        import cv2

        image = _check_image(image)
        h, w = image.shape[:2]
        scale = self.work_scale(h, w)
        work = image
        if scale < 1.0:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            work = np.ascontiguousarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA))
        found = [(np.asarray(b, np.float64), 0.0, "known") for b in np.asarray(known if known is not None else [],
                                                                                 np.float64).reshape(-1, 4)]

        def add(box, score, source):
            if all(box_iou(box, other) <= SAME_FACE_IOU for other, _, _ in found):
                found.append((box, score, source))

        if self.cnn:
            for d in sorted(_models.cnn_detector()(work, self.upsample), key=lambda d: -d.confidence):
                add(_rect_ltrb(d.rect) / scale, float(d.confidence), "cnn")
        if self.with_hog:
            rects, scores, _ = _models.hog_detector().run(work, self.hog_upsample, 0.0)
            for i in np.argsort(-np.asarray(scores), kind="stable").tolist():
                add(_rect_ltrb(rects[i]) / scale, float(scores[i]), "hog")
        return found

    def detect(self, image: np.ndarray, known=None) -> list[FaceDetection]:
        """Every face found in an RGB uint8 image, with 5- and 68-point landmarks fitted on the photo.

        ``known`` (m, 4): boxes where faces are known to be (the faces replaced in an output
        photo); they are faces whatever the detectors say, and come first."""
        import dlib

        image = _check_image(image)
        h, w = image.shape[:2]
        faces = []
        for box, score, _ in self.boxes(image, known):
            left, top, right, bottom = (round(v) for v in box)
            left, top = max(left, -w), max(top, -h)  # keep dlib's int rectangle sane for boxes past the edge
            rect = dlib.rectangle(left, top, min(right, 2 * w), min(bottom, 2 * h))
            shape5 = _models.shape_predictor(5)(image, rect)
            shape68 = _models.shape_predictor(68)(image, rect)
            faces.append(FaceDetection(len(faces), np.asarray(box, np.float32), score, _shape_to_array(shape5),
                                       _shape_to_array(shape68)))
        return faces


def _rect_ltrb(rect) -> np.ndarray:
    return np.array([rect.left(), rect.top(), rect.right(), rect.bottom()], dtype=np.float64)


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two (left, top, right, bottom) boxes."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def detect_sensitive(image: np.ndarray, *, upsample: int = DEFAULT_UPSAMPLE, with_hog: bool = True) -> list[FaceDetection]:
    """Every face `SensitiveDetector` finds in ``image`` (RGB uint8)."""
    return SensitiveDetector(upsample=upsample, with_hog=with_hog).detect(image)
