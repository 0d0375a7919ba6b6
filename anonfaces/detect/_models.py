"""dlib's models from the `face-recognition-models` package, loaded lazily and
once per process (worker processes load their own copy on first use).

dlib's CNN face detector runs on one of two engines, chosen by ``$ANONFACES_CNN_ENGINE``
(`CNN_ENGINE_ENV`) or `set_cnn_engine`:

* ``auto`` (default): ``onnx`` when its build passes the self-check against dlib
  (`anonfaces.detect._mmod_onnx`: the same boxes, confidences within 1e-3), else ``dlib``
  (the reason is logged as a warning);
* ``onnx``: the ONNX Runtime build, or an error when it cannot be used;
* ``dlib``: ``dlib.cnn_face_detection_model_v1`` itself.

Both are called the same way (``detector(image, upsample)``, ``detector(images, upsample,
batch_size=...)``) and return objects with ``.rect`` (a ``dlib.rectangle``) and ``.confidence``.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
from pathlib import Path

from anonfaces.errors import AnonfacesError, BadInputError

log = logging.getLogger(__name__)

#: Environment variable choosing the CNN detector's engine: ``auto`` (default), ``onnx`` or ``dlib``.
CNN_ENGINE_ENV = "ANONFACES_CNN_ENGINE"
CNN_ENGINES = ("auto", "onnx", "dlib")
_ENGINE = {"name": None}  # set_cnn_engine's choice; None: the environment's

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


def set_cnn_engine(name: str | None) -> None:
    """Choose the CNN detector's engine in this process (``auto``, ``onnx``, ``dlib``; None: ``$ANONFACES_CNN_ENGINE``)."""
    if name is not None and name not in CNN_ENGINES:
        raise BadInputError(f"CNN engine {name!r} must be one of {', '.join(CNN_ENGINES)}")
    _ENGINE["name"] = name


def cnn_engine() -> str:
    """The engine asked for (``auto``, ``onnx`` or ``dlib``): `set_cnn_engine`'s, else ``$ANONFACES_CNN_ENGINE``, else ``auto``."""
    name = _ENGINE["name"] or os.environ.get(CNN_ENGINE_ENV, "").strip().lower() or "auto"
    if name not in CNN_ENGINES:
        raise BadInputError(f"{CNN_ENGINE_ENV}={name!r} must be one of {', '.join(CNN_ENGINES)}")
    return name


def cnn_detector():
    """dlib's CNN face detector on the chosen engine (see the module docstring), loaded once per process."""
    return _cnn_detector(cnn_engine())


@functools.cache
def _cnn_detector(engine: str):
    if engine in ("onnx", "auto"):
        try:
            from anonfaces.detect._mmod_onnx import MmodDetector

            detector = MmodDetector(_paths()["mmod"])
            log.info("dlib's CNN face detector runs on ONNX Runtime")
            return detector
        except (ImportError, AnonfacesError) as exc:
            if engine == "onnx":
                if isinstance(exc, ImportError):
                    raise AnonfacesError(f"the onnx CNN engine needs onnx and onnxruntime ({exc})") from None
                raise
            log.warning("dlib's CNN face detector runs on dlib (slower): the ONNX build cannot be used: %s", exc)
    return _dlib_cnn_detector()


@functools.cache
def _dlib_cnn_detector():
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
