"""Reading and writing photos robustly.

`read_image` turns whatever a folder of photos holds into an RGB uint8 array,
or raises `ImageReadError` with a short reason for the skip report. It applies
the EXIF orientation, converts CMYK, greyscale, palette, RGBA and 16-bit images,
and refuses files that are empty, truncated, not images, or so large that
decoding them would be a decompression bomb. `write_image` writes atomically
and never carries metadata (EXIF, GPS, ICC, XMP) over to the output.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from anonfaces.errors import AnonfacesError
from anonfaces.utils.atomic import atomic_open

#: Images with more pixels than this are refused before decoding (about 8k x 6k).
DEFAULT_MAX_PIXELS = 50_000_000

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})


class ImageReadError(AnonfacesError):
    """A photo could not be read; ``str(exc)`` is the reason for the skip report."""


def read_image(path: str | os.PathLike, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read ``path`` as an RGB uint8 array of shape (H, W, 3), upright per its EXIF tag."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ImageReadError(f"cannot open: {exc.strerror or exc}") from exc
    if size == 0:
        raise ImageReadError("empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                width, height = img.size
                if width * height > max_pixels:
                    raise ImageReadError(
                        f"too large: {width}x{height} = {width * height:,} pixels > max_pixels={max_pixels:,}"
                    )
                img.load()
                return _to_rgb(img)
    except ImageReadError:
        raise
    except UnidentifiedImageError:
        raise ImageReadError("not an image (unrecognised format)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageReadError(f"too large (decompression bomb): {exc}") from None
    except OSError as exc:
        reason = str(exc) or type(exc).__name__
        if "truncated" in reason.lower():
            reason = f"truncated: {reason}"
        raise ImageReadError(f"unreadable: {reason}") from None
    except (ValueError, SyntaxError, EOFError, MemoryError) as exc:
        raise ImageReadError(f"unreadable: {type(exc).__name__}: {exc}") from None


def _to_rgb(img: Image.Image) -> np.ndarray:
    img = ImageOps.exif_transpose(img)
    mode = img.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        grey = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=2))
    if mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min(initial=0)), float(arr.max(initial=1))
        grey = np.clip((arr - lo) / max(hi - lo, 1e-12) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=2))
    if mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        # composite transparent pixels on white rather than on arbitrary colour values
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.ascontiguousarray(np.asarray(img, dtype=np.uint8))


def list_images(root: str | os.PathLike) -> list[str]:
    """Every file below ``root`` with an image suffix, as sorted POSIX paths relative to ``root``.

    Hidden files and folders (names starting with '.') are skipped. Files with other
    suffixes are not listed; the encoder reports unreadable images it does try.
    """
    root = Path(root)
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if name.startswith(".") or Path(name).suffix.lower() not in IMAGE_SUFFIXES:
                continue
            found.append(Path(dirpath, name).relative_to(root).as_posix())
    return sorted(found)


def identity_of(relpath: str) -> str:
    """The identity label of a dataset-relative path: its first folder level, or ''."""
    parts = relpath.split("/")
    return parts[0] if len(parts) > 1 else ""


# output format by suffix, so that a file's contents match its name
_FORMATS = {
    ".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF",
    ".webp": "WEBP", ".gif": "GIF", ".ppm": "PPM", ".pgm": "PPM",
}


def encode_image(image: np.ndarray, suffix: str = ".png", *, quality: int = 95) -> bytes:
    """Encode an RGB uint8 array to bytes with no metadata at all."""
    fmt = _FORMATS.get(suffix.lower(), "PNG")
    pil = Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8), "RGB")
    if suffix.lower() == ".pgm":
        pil = pil.convert("L")  # PGM holds grey levels only
    buf = io.BytesIO()
    params = {"quality": quality, "optimize": True} if fmt in ("JPEG", "WEBP") else {}
    pil.save(buf, format=fmt, **params)  # a fresh image: no exif, icc_profile or xmp is passed
    return buf.getvalue()


def write_image(path: str | os.PathLike, image: np.ndarray, *, quality: int = 95) -> None:
    """Write ``image`` atomically, in the format the suffix names, without any metadata."""
    data = encode_image(image, Path(path).suffix, quality=quality)
    with atomic_open(path, "wb") as fh:
        fh.write(data)


#: File name endings read as videos (case-insensitive).
VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".ts")


def is_video(path: str | os.PathLike) -> bool:
    """True when ``path``'s name ends in one of `VIDEO_EXTENSIONS`."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def list_videos(root: str | os.PathLike) -> list[str]:
    """Video files under ``root`` (recursive, hidden files and folders skipped), as sorted POSIX paths relative to it.

    ``root`` may itself be a video file: then ``[its name]`` (relative to its folder).
    """
    root = Path(root)
    if root.is_file():
        return [root.name] if is_video(root) else []
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if not name.startswith(".") and is_video(name):
                found.append((Path(dirpath) / name).relative_to(root).as_posix())
    return sorted(found)
