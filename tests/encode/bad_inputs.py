"""Builders for the bad-input corpus: every kind of file a photo folder may hold."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from tests.conftest import SAMPLE

FACE = SAMPLE / "Tiger_Woods" / "Tiger_Woods_0001.jpg"


def make_corpus(folder: Path) -> dict[str, str]:
    """Write the corpus into ``folder``; returns {relative path: what the reader must do}.

    Values are "face" (must be read and give a face) or a word that the skip
    reason must contain.
    """
    folder.mkdir(parents=True, exist_ok=True)
    face = Image.open(FACE).convert("RGB")
    expect: dict[str, str] = {}

    def put(name: str, what: str) -> Path:
        expect[name] = what
        return folder / name

    put("zero.jpg", "empty").write_bytes(b"")
    data = FACE.read_bytes()
    put("truncated.jpg", "unreadable").write_bytes(data[: len(data) // 3])
    put("notes.jpg", "not an image").write_text("this is not a photo\n")
    put("random.png", "not an image").write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    face.convert("CMYK").save(put("cmyk.jpg", "face"), quality=95)
    grey = np.asarray(face.convert("L"), dtype=np.uint16) * 257
    Image.fromarray(grey).save(put("grey16.png", "face"))  # 16-bit greyscale PNG (mode I;16)
    rgba = face.convert("RGBA")
    rgba.putalpha(200)
    rgba.save(put("rgba.png", "face"))
    face.convert("L").save(put("grey.jpg", "face"))
    face.convert("P", palette=Image.Palette.ADAPTIVE).save(put("palette.png", "face"))
    # stored rotated by 90 degrees with an EXIF tag saying how to turn it upright
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 CW to view
    face.transpose(Image.Transpose.ROTATE_90).save(put("exif_rotated.jpg", "face"), exif=exif.tobytes(), quality=95)
    Image.new("L", (12000, 9000)).save(put("bomb.png", "too large"), optimize=True)  # 108 MP of zeros, a few hundred KB
    Image.new("RGB", (200, 200), (120, 160, 200)).save(put("no_face.jpg", "no face"))
    shutil.copy(FACE, put("plain.jpg", "face"))
    return expect
