"""Fixtures every stage's tests share: where the data is, and the sample encoded once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "datasets" / "sample"
SHARED_DATA = Path(os.environ.get("ANONFACES_SHARED_DATA", REPO.parent / "shared" / "data"))
LFW = SHARED_DATA / "lfw"
CELEBA = SHARED_DATA / "celeba-aligned"


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    return SAMPLE


@pytest.fixture(scope="session")
def lfw_dir() -> Path:
    if not (LFW / "George_W_Bush").is_dir():
        pytest.skip(f"full LFW not found at {LFW} (set ANONFACES_SHARED_DATA to the folder holding lfw/)")
    return LFW


@pytest.fixture(scope="session")
def celeba_dir() -> Path:
    if not (CELEBA / "list_attr_celeba_subset.txt").is_file():
        pytest.skip(f"CelebA subset not found at {CELEBA} (set ANONFACES_SHARED_DATA to the folder holding celeba-aligned/)")
    return CELEBA


@pytest.fixture(scope="session")
def sample_encodings_path(tmp_path_factory) -> Path:
    """The bundled sample encoded once per test session with the real dlib models (both cores)."""
    from anonfaces.encode import encode_photos

    out = tmp_path_factory.mktemp("sample-encodings") / "encodings.npz"
    encode_photos(SAMPLE, out, jobs=2, progress=False)
    return out


@pytest.fixture(scope="session")
def sample_encodings(sample_encodings_path):
    import anonfaces

    return anonfaces.load_encodings(sample_encodings_path)
