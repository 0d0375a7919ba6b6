"""Fixtures for the clustering tests: small synthetic data and real LFW dlib embeddings."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
LFW = REPO / ".." / "shared" / "data" / "lfw"

#: People with many photos and people with 2-4 photos (a mix like LFW's).
_N_BIG = 6
_N_SMALL = 40
_MAX_PER_BIG = 12


def _model_paths() -> tuple[str, str]:
    """dlib model files from the face_recognition_models package.

    Its helper functions import ``pkg_resources``, which recent setuptools no longer
    ships, so fall back to the files inside the installed package.
    """
    try:
        import face_recognition_models as frm

        return frm.pose_predictor_five_point_model_location(), frm.face_recognition_model_location()
    except ImportError:
        spec = importlib.util.find_spec("face_recognition_models")
        if spec is None or spec.origin is None:
            pytest.skip("face_recognition_models is not installed")
        models = Path(spec.origin).parent / "models"
        return str(models / "shape_predictor_5_face_landmarks.dat"), str(models / "dlib_face_recognition_resnet_model_v1.dat")


def _pick_photos(root: Path) -> list[Path]:
    people = sorted(p for p in root.iterdir() if p.is_dir())
    counts = {p: len(list(p.iterdir())) for p in people}
    big = sorted((p for p in people if counts[p] >= 20), key=lambda p: -counts[p])[:_N_BIG]
    small = [p for p in people if 2 <= counts[p] <= 4][:_N_SMALL]
    photos = []
    for p in big:
        photos += sorted(p.iterdir())[:_MAX_PER_BIG]
    for p in small:
        photos += sorted(p.iterdir())
    return photos


@pytest.fixture(scope="session")
def lfw_embeddings():
    """dlib 128-D embeddings of a few hundred LFW photos: (X float32 (n, 128), identities, paths)."""
    if not LFW.is_dir():
        pytest.skip(f"LFW photos not found at {LFW.resolve()} (needs ../shared/data/lfw beside the repo)")
    return compute_lfw_subset()


def compute_lfw_subset():
    """The embeddings behind `lfw_embeddings` (also used by bench/ to report the test floors)."""
    import dlib
    from PIL import Image

    sp_path, rec_path = _model_paths()
    detector = dlib.get_frontal_face_detector()
    shape = dlib.shape_predictor(sp_path)
    rec = dlib.face_recognition_model_v1(rec_path)
    X, ids, paths = [], [], []
    for photo in _pick_photos(LFW):
        img = np.asarray(Image.open(photo).convert("RGB"))
        boxes = detector(img, 1)
        if not boxes:
            continue
        # the face nearest the centre (LFW photos are centred on the person)
        h, w = img.shape[:2]
        box = min(boxes, key=lambda b: ((b.left() + b.right()) / 2 - w / 2) ** 2 + ((b.top() + b.bottom()) / 2 - h / 2) ** 2)
        X.append(np.array(rec.compute_face_descriptor(img, shape(img, box)), dtype=np.float32))
        ids.append(photo.parent.name)
        paths.append(f"{photo.parent.name}/{photo.name}")
    return np.stack(X), np.array(ids), np.array(paths)
