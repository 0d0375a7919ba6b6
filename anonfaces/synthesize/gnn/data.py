"""Training faces for the GNN: canonical crops of a ``<identity>/<file>`` dataset, with identity labels."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from anonfaces.errors import BadInputError, FileFormatError
from anonfaces.utils.atomic import atomic_open
from anonfaces.utils.attributes import read_attribute_file, row_for

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
    embeddings : ndarray of shape (n, dim), float32, or None
        Each photo's face embedding from the encode stage (NaN rows where none is
        known); their per-identity means let the ``gnn`` synthesizer match people
        by embedding (`identity_embeddings`).
    embedding_encoder : dict or None
        Settings of the encoder that made ``embeddings`` (``Encodings.encoder``).
    """

    images: np.ndarray
    labels: np.ndarray
    identities: list
    paths: list
    attributes: np.ndarray | None = None
    attribute_names: list | None = None
    embeddings: np.ndarray | None = None
    embedding_encoder: dict | None = None

    def __len__(self) -> int:
        return len(self.images)

    def identity_means(self) -> np.ndarray:
        """Mean image of each identity, uint8 (n_identities, S, S, 3)."""
        out = np.zeros((len(self.identities), *self.images.shape[1:]), dtype=np.float64)
        for i in range(len(self.identities)):
            out[i] = self.images[self.labels == i].mean(0)
        return np.round(out).astype(np.uint8)

    def identity_embeddings(self) -> np.ndarray | None:
        """Mean embedding of each identity, float32 (n_identities, dim); NaN rows for identities without any."""
        if self.embeddings is None:
            return None
        emb = np.asarray(self.embeddings, dtype=np.float64)
        out = np.full((len(self.identities), emb.shape[1]), np.nan)
        for i in range(len(self.identities)):
            rows = emb[(self.labels == i) & np.isfinite(emb).all(axis=1)]
            if len(rows):
                out[i] = rows.mean(0)
        return out.astype(np.float32)

    def save(self, path: str | os.PathLike) -> None:
        arrays = {"images": self.images, "labels": self.labels, "identities": np.array(self.identities, dtype=str),
                  "paths": np.array(self.paths, dtype=str)}
        if self.attributes is not None:
            arrays["attributes"] = self.attributes
            arrays["attribute_names"] = np.array(self.attribute_names, dtype=str)
        if self.embeddings is not None:
            arrays["embeddings"] = np.asarray(self.embeddings, dtype=np.float32)
            arrays["embedding_encoder"] = np.array(json.dumps(self.embedding_encoder or {}))
        with atomic_open(path, "wb") as fh:
            np.savez_compressed(fh, **arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> FaceSet:
        with np.load(path, allow_pickle=False) as z:
            if not {"images", "labels", "identities", "paths"} <= set(z.files):
                raise FileFormatError(f"{os.fspath(path)} is not a GNN face set")
            attrs = z["attributes"] if "attributes" in z.files else None
            names = [str(s) for s in z["attribute_names"]] if "attribute_names" in z.files else None
            emb = z["embeddings"] if "embeddings" in z.files else None
            encoder = json.loads(str(z["embedding_encoder"])) if "embedding_encoder" in z.files else None
            return cls(z["images"], z["labels"].astype(np.int64), [str(s) for s in z["identities"]],
                       [str(s) for s in z["paths"]], attrs, names, emb, encoder)


def add_embeddings(faces: FaceSet, encodings) -> FaceSet:
    """``faces`` with each photo's embedding taken from an encodings file of the same dataset.

    ``encodings`` is an `anonfaces.encode.Encodings` (or its path) made by
    ``anonfaces encode`` on the dataset the faces were read from; photos are
    matched by their relative path, using the face nearest the image centre
    (the named person in LFW-style photos). Photos not in the encodings get NaN.
    """
    from anonfaces.encode import Encodings

    enc = encodings if isinstance(encodings, Encodings) else Encodings.load(encodings)
    central = enc.central_faces()
    row_of = {p: int(i) for p, i in zip(enc.paths[central].tolist(), central.tolist())}
    emb = np.full((len(faces), enc.dim), np.nan, dtype=np.float32)
    found = 0
    for j, rel in enumerate(faces.paths):
        if rel in row_of:
            emb[j] = enc.embeddings[row_of[rel]]
            found += 1
    if found == 0:
        raise BadInputError(f"the encodings ({enc.dataset or '?'}) hold none of the {len(faces)} training photos "
                            f"(e.g. {faces.paths[0]!r}); encode the training dataset itself")
    if found < len(faces):
        log.warning("the encodings hold %d of the %d training photos; identity embeddings use those", found, len(faces))
    return replace(faces, embeddings=emb, embedding_encoder=dict(enc.encoder))


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


def _aligned_crop(image: np.ndarray, size: int, align: str, detector_upsample: int):
    """``(crop, detection)``: the canonical crop and the face it was cut around (None with ``align="center"``)."""
    import cv2

    if align == "center":
        h, w = image.shape[:2]
        side = int(min(h, w) * 0.45)  # the face of an LFW-style photo centred in the frame
        top, left = (h - side) // 2 + side // 10, (w - side) // 2
        crop = image[top: top + side, left: left + side]
        return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA), None
    from anonfaces.detect import align_face, detect_faces

    faces = detect_faces(image, upsample=detector_upsample)
    if not faces and detector_upsample == 0:
        faces = detect_faces(image, upsample=1)
    if not faces:
        return None, None
    big = align_face(image, faces[0].landmarks68, size=max(4 * size, 64)).image
    return cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA), faces[0]


def load_face_set(root: str | os.PathLike, *, size: int = 64, min_images: int = 2, max_identities: int | None = None,
                  max_per_identity: int | None = None, align: str = "detect", attributes: str | os.PathLike | None = None,
                  detector_upsample: int = 0, encoder=None, progress: bool = True) -> FaceSet:
    """Read and align the faces of a ``<identity>/<file>`` dataset for GNN training.

    Identities with at least ``min_images`` photos are taken, those with the most
    photos first (``max_identities`` caps how many; ``max_per_identity`` how many
    photos each). ``align="detect"`` finds the face with dlib's HOG detector and
    cuts the canonical crop (`anonfaces.detect.align_face`, the frame synthesis
    works in); photos without a face are skipped. ``align="center"`` takes a
    fixed central square (for already-centred photos such as LFW; quick, rough).

    ``encoder`` (a name in `anonfaces.encode.ENCODERS` such as ``"dlib"``, or an
    `anonfaces.encode.Encoder`; needs ``align="detect"``) also embeds each face
    found, so that the ``gnn`` synthesizer can match people to training
    identities by embedding (`FaceSet.identity_embeddings`). To reuse an
    encodings file of the dataset instead, see `add_embeddings`.
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
    attr_table = read_attribute_file(attributes) if attributes is not None else None
    attr_names = list(attr_table.columns) if attr_table is not None else None
    if encoder is not None:
        if align != "detect":
            raise BadInputError(f"encoder={encoder!r} needs align='detect' (the encoder embeds the detected face)")
        from anonfaces.encode.pipeline import make_encoder

        encoder = make_encoder(encoder)
        if not encoder.is_fitted:
            raise BadInputError(f"encoder {encoder.settings().get('name')!r} must be fitted on a dataset first; "
                                "encode the dataset with `anonfaces encode` and pass the encodings file instead")
    jobs = [(name, path) for name in chosen for path in found[name][:max_per_identity]]
    images, labels, paths, attrs, embeddings = [], [], [], [], []
    skipped = 0
    for name, path in tqdm(jobs, desc="aligning faces", unit="img", disable=not progress):
        rel = path.relative_to(root).as_posix()
        attr_key = row_for(attr_table, rel) if attr_table is not None else None
        if attr_table is not None and attr_key is None:
            skipped += 1
            continue
        with Image.open(path) as im:
            image = np.asarray(im.convert("RGB"))
        crop, face = _aligned_crop(image, size, align, detector_upsample)
        if crop is None:
            skipped += 1
            continue
        images.append(crop)
        labels.append(chosen.index(name))
        paths.append(rel)
        if attr_table is not None:
            attrs.append(attr_table.loc[attr_key].to_numpy(np.float32))
        if encoder is not None:
            embeddings.append(np.asarray(encoder.encode(image, [face]), dtype=np.float32)[0])
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
                   np.stack(attrs).astype(np.float32) if attrs else None, attr_names,
                   np.stack(embeddings) if encoder is not None else None,
                   encoder.settings() if encoder is not None else None)
