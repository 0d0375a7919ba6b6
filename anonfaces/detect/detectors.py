"""Face detectors (dlib HOG and CNN/MMOD) with 5- and 68-point landmarks."""

from __future__ import annotations

import numpy as np

from anonfaces.detect import _models
from anonfaces.detect.types import FaceDetection
from anonfaces.errors import BadInputError
from anonfaces.registry import Registry

DETECTORS: Registry = Registry("detector")


def _shape_to_array(shape) -> np.ndarray:
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)


class _DlibDetector:
    """Shared part of the dlib detectors: boxes from `_boxes`, landmarks for each."""

    def __init__(self, *, upsample: int = 1):
        if not isinstance(upsample, (int, np.integer)) or not 0 <= upsample <= 4:
            raise BadInputError(f"upsample={upsample!r} must be an integer from 0 to 4")
        self.upsample = int(upsample)

    def settings(self) -> dict:
        return {"name": self.registry_name, "upsample": self.upsample}

    def warm_up(self) -> None:
        """Load the models now (before worker processes fork and share them)."""
        self._model()
        _models.shape_predictor(5)
        _models.shape_predictor(68)

    def detect(self, image: np.ndarray) -> list[FaceDetection]:
        """All faces in an RGB uint8 image, best score first, with landmarks."""
        image = _check_image(image)
        faces = []
        for index, (rect, score) in enumerate(self._boxes(image)):
            shape5 = _models.shape_predictor(5)(image, rect)
            shape68 = _models.shape_predictor(68)(image, rect)
            box = np.array([rect.left(), rect.top(), rect.right(), rect.bottom()], dtype=np.float32)
            faces.append(FaceDetection(index, box, float(score), _shape_to_array(shape5), _shape_to_array(shape68)))
        return faces

    def _model(self):  # pragma: no cover - overridden
        raise NotImplementedError

    def _boxes(self, image):  # pragma: no cover - overridden
        raise NotImplementedError


@DETECTORS.register("hog")
class HogDetector(_DlibDetector):
    """dlib's HOG + linear SVM frontal face detector (fast on a CPU)."""

    def _model(self):
        return _models.hog_detector()

    def _boxes(self, image):
        rects, scores, _ = self._model().run(image, self.upsample, 0.0)
        order = np.argsort(-np.asarray(scores), kind="stable")
        return [(rects[i], scores[i]) for i in order]


@DETECTORS.register("cnn")
class CnnDetector(_DlibDetector):
    """dlib's CNN (MMOD) detector: finds more non-frontal faces, several times slower on a CPU."""

    def _model(self):
        return _models.cnn_detector()

    def _boxes(self, image):
        dets = self._model()(image, self.upsample)
        dets = sorted(dets, key=lambda d: -d.confidence)
        return [(d.rect, d.confidence) for d in dets]


def _check_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise BadInputError(f"expected an RGB uint8 image of shape (H, W, 3); got {image.dtype} {image.shape}")
    return np.ascontiguousarray(image)


def make_detector(name: str = "hog", **settings):
    """A detector instance by registry name (``hog`` or ``cnn``)."""
    return DETECTORS.get(name)(**settings)


def detect_faces(image: np.ndarray, *, detector: str = "hog", upsample: int = 1) -> list[FaceDetection]:
    """Detect every face in ``image`` (RGB uint8), with box, score and 5/68 landmarks."""
    return make_detector(detector, upsample=upsample).detect(image)
