"""A small dataset from the bundled sample for the release tests, encoded once, and one run with the safe defaults."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

PEOPLE = ("Abdullah_Gul", "Alvaro_Uribe", "Angelina_Jolie", "Ariel_Sharon", "Bill_Gates", "Britney_Spears")
PER_PERSON = 2
GPS_TAG = 0x8825


@pytest.fixture(scope="session")
def release_data(sample_dir, tmp_path_factory):
    """6 people x 2 sample photos (one with EXIF + GPS), plus one photo with the face cropped away; encoded once.

    Returns (root, encodings_path, tagged, cropped) with dataset-relative paths for the last two.
    """
    from anonfaces.encode import encode_photos

    root = tmp_path_factory.mktemp("release") / "dataset"
    for person in PEOPLE:
        (root / person).mkdir(parents=True)
        for src in sorted((sample_dir / person).iterdir())[:PER_PERSON]:
            shutil.copy(src, root / person / src.name)
    tagged = f"{PEOPLE[0]}/{min((sample_dir / PEOPLE[0]).iterdir()).name}"
    with Image.open(root / tagged) as im:
        exif = im.getexif()
        exif[0x010F] = "SecretCam"  # Make
        exif[GPS_TAG] = {1: "N", 2: (51.0, 30.0, 0.0)}
        im.save(root / tagged, exif=exif, quality=100)
    # the same person, only the shoulders left: the bottom quarter of a photo (the face is cropped away)
    src = sorted((sample_dir / PEOPLE[1]).iterdir())[PER_PERSON]
    cropped = f"{PEOPLE[1]}/{src.stem}_cropped.jpg"
    with Image.open(src) as im:
        im.crop((0, im.height * 3 // 4, im.width, im.height)).save(root / cropped, quality=95)
    enc_path = root.parent / "encodings.npz"
    encode_photos(root, enc_path, jobs=2, progress=False)
    return root, enc_path, tagged, cropped


@pytest.fixture(scope="session")
def safe_run(release_data, tmp_path_factory):
    """`anonymize_dataset` with every safe default (hashed names, private folder, second pass, safety net, skip)."""
    from anonfaces.pipeline import anonymize_dataset

    root, enc_path, _, _ = release_data
    out = tmp_path_factory.mktemp("safe") / "out"
    report = anonymize_dataset(root, out, k=3, encodings=enc_path, jobs=2, progress=False)
    return out, report


def photo_with_exif(path, image: np.ndarray) -> None:
    """Write ``image`` to ``path`` as a JPEG carrying EXIF (camera make and GPS)."""
    im = Image.fromarray(image)
    exif = im.getexif()
    exif[0x010F] = "SecretCam"
    exif[GPS_TAG] = {1: "N", 2: (51.0, 30.0, 0.0)}
    im.save(path, exif=exif, quality=95)
