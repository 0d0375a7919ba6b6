"""Fixtures for the clustering tests: small synthetic data and real LFW dlib embeddings."""

from __future__ import annotations

from pathlib import Path

import pytest

#: People with many photos and people with 2-4 photos (a mix like LFW's).
_N_BIG = 6
_N_SMALL = 40
_MAX_PER_BIG = 12


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
def lfw_embeddings(lfw_dir, tmp_path_factory):
    """dlib 128-D embeddings of a few hundred LFW photos: (X float32 (n, 128), identities, paths)."""
    return compute_lfw_subset(lfw_dir, tmp_path_factory.mktemp("lfw-subset"))


def compute_lfw_subset(root: Path, workdir: Path):
    """Encode `_pick_photos(root)` with the encoding stage; one face per photo (the central one)."""
    from anonfaces.encode import Encodings, encode_photos

    ds = workdir / "photos"
    for photo in _pick_photos(root):
        (ds / photo.parent.name).mkdir(parents=True, exist_ok=True)
        (ds / photo.parent.name / photo.name).symlink_to(photo)
    report = encode_photos(ds, workdir / "encodings.npz", jobs=2, progress=False)
    enc = Encodings.load(report.encodings_path)
    keep = enc.central_faces()
    return enc.embeddings[keep], enc.identities[keep], enc.paths[keep]
