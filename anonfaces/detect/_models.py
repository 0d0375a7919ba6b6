"""dlib's models from the `face-recognition-models` package, loaded lazily and
once per process (worker processes load their own copy on first use)."""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

from anonfaces.errors import AnonfacesError

_FILES = {
    "shape5": "shape_predictor_5_face_landmarks.dat",
    "shape68": "shape_predictor_68_face_landmarks.dat",
    "resnet": "dlib_face_recognition_resnet_model_v1.dat",
    "mmod": "mmod_human_face_detector.dat",
}


@functools.cache
def _paths() -> dict[str, str]:
    # Locate the package's files without importing it: its __init__ imports
    # pkg_resources, which current setuptools no longer ships.
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise AnonfacesError("the dlib models are missing: pip install face-recognition-models")
    folder = Path(next(iter(spec.submodule_search_locations))) / "models"
    paths = {key: str(folder / name) for key, name in _FILES.items()}
    missing = [p for p in paths.values() if not Path(p).is_file()]
    if missing:
        raise AnonfacesError(f"dlib model files missing from face-recognition-models: {missing}")
    return paths


@functools.cache
def hog_detector():
    import dlib

    return dlib.get_frontal_face_detector()


@functools.cache
def cnn_detector():
    import dlib

    return dlib.cnn_face_detection_model_v1(_paths()["mmod"])


@functools.cache
def shape_predictor(points: int):
    import dlib

    if points not in (5, 68):
        raise ValueError(f"points={points} must be 5 or 68")
    return dlib.shape_predictor(_paths()["shape5" if points == 5 else "shape68"])


@functools.cache
def face_recognizer():
    import dlib

    return dlib.face_recognition_model_v1(_paths()["resnet"])
