"""Detection and alignment: find faces, their landmarks, and aligned crops."""

from anonfaces.detect.align import (
    CANONICAL_TEMPLATE,
    AlignedFace,
    align_face,
    face_chip,
    similarity_transform,
    transform_points,
)
from anonfaces.detect.detectors import (
    DETECTORS,
    CnnDetector,
    HogDetector,
    detect_faces,
    make_detector,
)
from anonfaces.detect.types import FaceDetection

__all__ = [
    "CANONICAL_TEMPLATE",
    "DETECTORS",
    "AlignedFace",
    "CnnDetector",
    "FaceDetection",
    "HogDetector",
    "align_face",
    "detect_faces",
    "face_chip",
    "make_detector",
    "similarity_transform",
    "transform_points",
]
