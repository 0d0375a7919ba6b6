"""Training faces for the GNN: canonical crops of a ``<identity>/<file>`` dataset, with identity labels."""

from __future__ import annotations

import csv
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from anonfaces.errors import BadInputError, FileFormatError
from anonfaces.utils.atomic import atomic_open

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
ALIGN_MODES = ("detect", "center")


@dataclass
class FaceSet:
    """Aligned training faces.

    images : ndarray of shape (n, S, S, 3), uint8, in the canonical frame (`anonfaces.detect.align_face`)
    labels : ndarray of shape (n,), int64, index into ``identities``
    identities : list of str, one name per identity
    paths : list of str, image path relative to the dataset root (POSIX)
    attributes : ndarray of shape (n, A), float32 in [0, 1], or None
    attribute_names : list of str (empty without attributes)
    """

    images: np.ndarray
    labels: np.ndarray
    identities: list
    paths: list
    attributes: np.ndarray | None = None
    attribute_names: list | None = None

    def __len__(self) -> int:
        return len(self.images)

    def identity_means(self) -> np.ndarray:
        """Mean image of each identity, uint8 (n_identities, S, S, 3)."""
        out = np.zeros((len(self.identities), *self.images.shape[1:]), dtype=np.float64)
        for i in range(len(self.identities)):
            out[i] = self.images[self.labels == i].mean(0)
        return np.round(out).astype(np.uint8)

    def save(self, path: str | os.PathLike) -> None:
        arrays = {"images": self.images, "labels": self.labels, "identities": np.array(self.identities, dtype=str),
                  "paths": np.array(self.paths, dtype=str)}
        if self.attributes is not None:
            arrays["attributes"] = self.attributes
            arrays["attribute_names"] = np.array(self.attribute_names, dtype=str)
        with atomic_open(path, "wb") as fh:
            np.savez_compressed(fh, **arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "FaceSet":
        with np.load(path, allow_pickle=False) as z:
            if not {"images", "labels", "identities", "paths"} <= set(z.files):
                raise FileFormatError(f"{os.fspath(path)} is not a GNN face set")
            attrs = z["attributes"] if "attributes" in z.files else None
            names = [str(s) for s in z["attribute_names"]] if "attribute_names" in z.files else None
            return cls(z["images"], z["labels"].astype(np.int64), [str(s) for s in z["identities"]],
                       [str(s) for s in z["paths"]], attrs, names)


def list_identities(root: str | os.PathLike, *, min_images: int = 2) -> dict[str, list[Path]]:
    """``{identity: [image paths]}`` for every first-level folder with at least ``min_images`` images."""
    root = Path(root)
    if not root.is_dir():
        raise BadInputError(f"dataset folder {str(root)!r} does not exist")
    out = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if len(files) >= min_images:
            out[folder.name] = files
    return out


def _read_attributes(path: str | os.PathLike) -> tuple[list[str], dict[str, np.ndarray]]:
    """CSV ``path,<attr>,...`` (values 0/1 or -1/1, or in [0, 1]) -> names, {relative path: vector in [0, 1]}."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    if not rows or rows[0][0] != "path" or len(rows[0]) < 2:
        raise FileFormatError(f"{os.fspath(path)}: expected a CSV with header 'path,<attribute>,...'")
    names = rows[0][1:]
    table = {}
    for row in rows[1:]:
        values = np.array([float(v) for v in row[1:]], dtype=np.float32)
        if len(values) != len(names):
            raise FileFormatError(f"{os.fspath(path)}: row {row[0]!r} has {len(values)} values, expected {len(names)}")
        table[row[0]] = np.where(values < 0, 0.0, values).clip(0, 1)
    return names, table


def _aligned_crop(image: np.ndarray, size: int, align: str, detector_upsample: int) -> np.ndarray | None:
    import cv2

    if align == "center":
        h, w = image.shape[:2]
        side = int(min(h, w) * 0.45)  # the face of an LFW-style photo centred in the frame
        top, left = (h - side) // 2 + side // 10, (w - side) // 2
        crop = image[top: top + side, left: left + side]
        return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
    from anonfaces.detect import align_face, detect_faces

    faces = detect_faces(image, upsample=detector_upsample)
    if not faces and detector_upsample == 0:
        faces = detect_faces(image, upsample=1)
    if not faces:
        return None
    big = align_face(image, faces[0].landmarks68, size=max(4 * size, 64)).image
    return cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA)


def load_face_set(root: str | os.PathLike, *, size: int = 64, min_images: int = 2, max_identities: int | None = None,
                  max_per_identity: int | None = None, align: str = "detect", attributes: str | os.PathLike | None = None,
                  detector_upsample: int = 0, progress: bool = True) -> FaceSet:
    """Read and align the faces of a ``<identity>/<file>`` dataset for GNN training.

    Identities with at least ``min_images`` photos are taken, those with the most
    photos first (``max_identities`` caps how many; ``max_per_identity`` how many
    photos each). ``align="detect"`` finds the face with dlib's HOG detector and
    cuts the canonical crop (`anonfaces.detect.align_face`, the frame synthesis
    works in); photos without a face are skipped. ``align="center"`` takes a
    fixed central square (for already-centred photos such as LFW; quick, rough).
    """
    from PIL import Image
    from tqdm.auto import tqdm

    if align not in ALIGN_MODES:
        raise BadInputError(f"align={align!r} must be one of {', '.join(ALIGN_MODES)}")
    root = Path(root)
    found = list_identities(root, min_images=min_images)
    chosen = sorted(found, key=lambda name: (-len(found[name]), name))
    if max_identities is not None:
        chosen = chosen[:max_identities]
    chosen = sorted(chosen)
    if not chosen:
        raise BadInputError(f"no identity in {str(root)!r} has at least {min_images} images")
    attr_names, attr_table = _read_attributes(attributes) if attributes is not None else (None, None)
    jobs = [(name, path) for name in chosen for path in found[name][:max_per_identity]]
    images, labels, paths, attrs = [], [], [], []
    skipped = 0
    for name, path in tqdm(jobs, desc="aligning faces", unit="img", disable=not progress):
        rel = path.relative_to(root).as_posix()
        if attr_table is not None and rel not in attr_table:
            skipped += 1
            continue
        with Image.open(path) as im:
            image = np.asarray(im.convert("RGB"))
        crop = _aligned_crop(image, size, align, detector_upsample)
        if crop is None:
            skipped += 1
            continue
        images.append(crop)
        labels.append(chosen.index(name))
        paths.append(rel)
        if attr_table is not None:
            attrs.append(attr_table[rel])
    if skipped:
        log.info("skipped %d of %d photos (no face found or no attributes)", skipped, len(jobs))
    present = sorted(set(labels))
    if len(present) != len(chosen):  # an identity lost all its photos: renumber
        keep = [chosen[i] for i in present]
        remap = {old: new for new, old in enumerate(present)}
        labels = [remap[l] for l in labels]
        chosen = keep
    if not images:
        raise BadInputError(f"no face could be aligned in {str(root)!r}")
    return FaceSet(np.stack(images), np.asarray(labels, dtype=np.int64), chosen, paths,
                   np.stack(attrs).astype(np.float32) if attrs else None, attr_names)
