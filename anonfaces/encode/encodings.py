"""The encodings file: embeddings and everything needed to trace them back to faces.

A NumPy ``.npz`` archive read with ``allow_pickle=False`` (no code can run on
load). Keys and shapes are listed in `Encodings` and in the README. The original
research's ``encodings.pickle`` (a list of dicts with ``imagePath``, ``loc`` and
``encoding``) is imported through a restricted unpickler and can be exported.
"""

from __future__ import annotations

import json
import os
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from anonfaces._version import __version__
from anonfaces.errors import BadInputError, FileFormatError
from anonfaces.utils.atomic import atomic_open
from anonfaces.utils.images import identity_of
from anonfaces.utils.safe_pickle import safe_load

FORMAT_NAME = "anonfaces-encodings"
FORMAT_VERSION = 1
_STATE_PREFIX = "encoder__"


@dataclass
class Encodings:
    """Face embeddings with their provenance (one row per face).

    Attributes
    ----------
    embeddings : ndarray of shape (n_faces, dim), float32
    paths : ndarray of shape (n_faces,), str
        Image path relative to the dataset root (POSIX separators).
    face_index : ndarray of shape (n_faces,), int32
        Index of the face within its image.
    boxes_ltrb : ndarray of shape (n_faces, 4), float32
        (left, top, right, bottom) in image pixels.
    scores : ndarray of shape (n_faces,), float32
        Detector score.
    landmarks68 : ndarray of shape (n_faces, 68, 2), float32
    landmarks5 : ndarray of shape (n_faces, 5, 2), float32
    identities : ndarray of shape (n_faces,), str
        First folder level under the dataset root; '' when unknown.
    image_sizes : ndarray of shape (n_faces, 2), int32
        (width, height) of the upright image.
    meta : dict
        Format, tool version, dataset root, encoder and detector settings.
    encoder_state : dict of str to ndarray
        What the encoder needs to be rebuilt (the PCA basis).
    frames : ndarray of shape (n_faces,), int32
        Video rows: the frame number (from 0) in the video ``paths`` names; -1 for photos.
        Video rows' ``face_index`` counts the faces through the whole video (unique per video).
    timestamps : ndarray of shape (n_faces,), float32
        Video rows: the frame's time in seconds; NaN for photos.
    tracks : ndarray of shape (n_faces,), int32
        Video rows: the face track (one person on screen, `anonfaces.video.track`) within its video; -1 for photos.

    The three video columns are optional on disk: written only when a row comes from a
    video, read as -1/NaN from files without them (files of format version 1 from before).
    """

    embeddings: np.ndarray
    paths: np.ndarray
    face_index: np.ndarray
    boxes_ltrb: np.ndarray
    scores: np.ndarray
    landmarks68: np.ndarray
    landmarks5: np.ndarray
    identities: np.ndarray
    image_sizes: np.ndarray
    meta: dict = field(default_factory=dict)
    encoder_state: dict = field(default_factory=dict)
    frames: np.ndarray | None = None
    timestamps: np.ndarray | None = None
    tracks: np.ndarray | None = None

    _VIDEO = ("frames", "timestamps", "tracks")
    _ARRAYS = ("embeddings", "paths", "face_index", "boxes_ltrb", "scores", "landmarks68", "landmarks5", "identities", "image_sizes")

    def __post_init__(self):
        embeddings = np.asarray(self.embeddings, np.float32)
        if embeddings.ndim != 2:  # (numpy cannot reshape an empty array to (0, -1): keep (0, dim) as it is)
            embeddings = embeddings.reshape(len(embeddings), -1) if embeddings.size else embeddings.reshape(len(embeddings), 0)
        self.embeddings = embeddings
        n = len(self.embeddings)
        self.paths = np.asarray(self.paths, dtype=str).reshape(n)
        self.face_index = np.asarray(self.face_index, np.int32).reshape(n)
        self.boxes_ltrb = np.asarray(self.boxes_ltrb, np.float32).reshape(n, 4)
        self.scores = np.asarray(self.scores, np.float32).reshape(n)
        self.landmarks68 = np.asarray(self.landmarks68, np.float32).reshape(n, 68, 2)
        self.landmarks5 = np.asarray(self.landmarks5, np.float32).reshape(n, 5, 2)
        self.identities = np.asarray(self.identities, dtype=str).reshape(n)
        self.image_sizes = np.asarray(self.image_sizes, np.int32).reshape(n, 2)
        self.frames = np.full(n, -1, np.int32) if self.frames is None else np.asarray(self.frames, np.int32).reshape(n)
        self.timestamps = (np.full(n, np.nan, np.float32) if self.timestamps is None
                           else np.asarray(self.timestamps, np.float32).reshape(n))
        self.tracks = np.full(n, -1, np.int32) if self.tracks is None else np.asarray(self.tracks, np.int32).reshape(n)

    # --- conveniences ---------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.embeddings)

    @property
    def boxes(self) -> np.ndarray:
        """Alias of `boxes_ltrb`: (left, top, right, bottom)."""
        return self.boxes_ltrb

    @property
    def dim(self) -> int:
        return int(self.embeddings.shape[1])

    @property
    def encoder(self) -> dict:
        return dict(self.meta.get("encoder", {}))

    @property
    def dataset(self) -> str | None:
        return self.meta.get("dataset")

    @property
    def has_video(self) -> bool:
        """True when some row comes from a video (has a frame number)."""
        return bool(len(self)) and bool(np.any(self.frames >= 0))

    def video_rows(self) -> np.ndarray:
        """Boolean mask of the rows that come from videos."""
        return self.frames >= 0

    def track_units(self) -> np.ndarray:
        """Each row's track as ``"<video>#t<track>"`` ('' for photos and untracked rows): the person unit of a
        video where no identity is known (`anonfaces.cluster.fill_identities`'s ``groups``)."""
        out = np.full(len(self), "", dtype=object)
        tracked = np.flatnonzero(self.tracks >= 0)
        out[tracked] = [f"{p}#t{t}" for p, t in zip(self.paths[tracked].tolist(), self.tracks[tracked].tolist())]
        return out.astype(str)

    @property
    def has_identities(self) -> bool:
        return bool(len(self)) and bool(np.all(self.identities != ""))

    def central_faces(self) -> np.ndarray:
        """Index of one face per photo: the one whose box centre is nearest the image centre.

        LFW-style photos are centred on the named person, so this picks the face the
        identity label belongs to. Photos come in the order of first appearance.
        """
        centre = (self.boxes_ltrb[:, :2] + self.boxes_ltrb[:, 2:]) / 2 - self.image_sizes / 2
        offset = np.linalg.norm(centre, axis=1)
        best: dict[str, int] = {}
        for i, path in enumerate(self.paths.tolist()):
            if path not in best or offset[i] < offset[best[path]]:
                best[path] = i
        return np.fromiter(best.values(), dtype=np.intp, count=len(best))

    def rows_by_photo(self) -> dict[str, np.ndarray]:
        """Photo -> its rows (faces), photos in the order of first appearance, rows in order."""
        groups: dict[str, list[int]] = {}
        for i, path in enumerate(self.paths.tolist()):
            groups.setdefault(path, []).append(i)
        return {path: np.asarray(rows, dtype=np.intp) for path, rows in groups.items()}

    def subset(self, index) -> Encodings:
        """The faces selected by ``index`` (boolean mask or integer indices)."""
        return Encodings(**{name: getattr(self, name)[index] for name in (*self._ARRAYS, *self._VIDEO)}, meta=dict(self.meta),
                         encoder_state=self.encoder_state)

    def make_encoder(self):
        """Rebuild the encoder that produced these embeddings (with its fitted state)."""
        from anonfaces.encode.base import ENCODERS

        settings = self.encoder
        if "name" not in settings:
            raise FileFormatError("these encodings do not record their encoder")
        return ENCODERS.get(settings["name"]).from_saved(settings, self.encoder_state)

    @classmethod
    def empty(cls, dim: int = 128, meta: dict | None = None) -> Encodings:
        return cls(
            embeddings=np.empty((0, dim), np.float32),
            paths=np.empty(0, str),
            face_index=np.empty(0, np.int32),
            boxes_ltrb=np.empty((0, 4), np.float32),
            scores=np.empty(0, np.float32),
            landmarks68=np.empty((0, 68, 2), np.float32),
            landmarks5=np.empty((0, 5, 2), np.float32),
            identities=np.empty(0, str),
            image_sizes=np.empty((0, 2), np.int32),
            meta=meta or {},
        )

    @classmethod
    def concatenate(cls, parts: list[Encodings], meta: dict | None = None, dim: int | None = None) -> Encodings:
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty(dim or 0, meta)
        return cls(**{name: np.concatenate([getattr(p, name) for p in parts]) for name in (*cls._ARRAYS, *cls._VIDEO)},
                   meta=meta or dict(parts[0].meta))

    # --- files ------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write atomically to ``path`` (``.npz`` is appended when missing)."""
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_name(path.name + ".npz")
        meta = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "anonfaces_version": __version__, **self.meta}
        arrays = {name: getattr(self, name) for name in self._ARRAYS}
        if self.has_video:  # optional columns: a file of photos only stays exactly as before
            arrays.update({name: getattr(self, name) for name in self._VIDEO})
        arrays["meta"] = np.array(json.dumps(meta, sort_keys=True))
        for key, value in self.encoder_state.items():
            arrays[_STATE_PREFIX + key] = np.asarray(value)
        with atomic_open(path, "wb") as fh:
            np.savez(fh, **arrays)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Encodings:
        """Read an ``.npz`` file, a sharded store folder (lazily, see `anonfaces.encode.store`) or a legacy pickle."""
        path = Path(path)
        if path.is_dir():
            from anonfaces.encode.store import load_store

            return load_store(path)
        if not path.is_file():
            raise BadInputError(f"encodings file not found: {path}")
        if path.suffix in (".pickle", ".pkl"):
            return cls.from_legacy_pickle(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                files = set(data.files)
                missing = [k for k in (*cls._ARRAYS, "meta") if k not in files]
                if missing:
                    raise FileFormatError(f"{path} is not an anonfaces encodings file (missing {', '.join(missing)})")
                meta = json.loads(str(data["meta"]))
                if meta.get("format") != FORMAT_NAME:
                    raise FileFormatError(f"{path}: format {meta.get('format')!r} is not {FORMAT_NAME!r}")
                if int(meta.get("format_version", 0)) > FORMAT_VERSION:
                    raise FileFormatError(
                        f"{path} has format version {meta['format_version']}; this anonfaces reads up to {FORMAT_VERSION}"
                    )
                arrays = {name: data[name] for name in cls._ARRAYS}
                arrays.update({name: data[name] for name in cls._VIDEO if name in files})
                state = {k[len(_STATE_PREFIX):]: data[k] for k in data.files if k.startswith(_STATE_PREFIX)}
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, json.JSONDecodeError) as exc:
            raise FileFormatError(f"cannot read encodings file {path}: {exc}") from None
        return cls(**arrays, meta=meta, encoder_state=state)

    # --- the original research's encodings.pickle -------------------------------------
    @classmethod
    def from_legacy_pickle(cls, path: str | os.PathLike, *, dataset_root: str | os.PathLike | None = None) -> Encodings:
        """Import a list of ``{"imagePath", "loc", "encoding"}`` dicts (``loc`` = top, right, bottom, left).

        Read through a restricted unpickler: a pickle that asks for anything but
        plain containers and numpy arrays is refused with `UnsafeFileError`.
        Landmarks are not in that format and are stored as NaN.
        """
        path = Path(path)
        with open(path, "rb") as fh:
            records = safe_load(fh, source=str(path))
        if isinstance(records, dict) and "encodings" in records:
            raise FileFormatError(
                f"{path} looks like face_recognition's {{'encodings', 'names'}} dict; anonfaces imports the "
                "original research's list of {imagePath, loc, encoding} dicts"
            )
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise FileFormatError(f"{path}: expected a list of dicts with imagePath, loc and encoding")
        root = Path(dataset_root) if dataset_root else None
        rows = []
        for i, r in enumerate(records):
            try:
                emb = np.asarray(r["encoding"], np.float32).reshape(-1)
                top, right, bottom, left = (float(v) for v in r["loc"])
                image_path = str(r["imagePath"])
            except (KeyError, TypeError, ValueError) as exc:
                raise FileFormatError(f"{path}: record {i} is malformed ({exc!r})") from None
            p = Path(image_path)
            if root is not None:
                try:
                    p = p.resolve().relative_to(root.resolve())
                except ValueError:
                    pass
            rows.append((emb, p.as_posix(), (left, top, right, bottom)))
        n = len(rows)
        if n and len({len(r[0]) for r in rows}) != 1:
            raise FileFormatError(f"{path}: encodings have different lengths")
        paths = [r[1] for r in rows]
        face_index = np.zeros(n, np.int32)
        seen: dict[str, int] = {}
        for i, p in enumerate(paths):
            face_index[i] = seen.get(p, 0)
            seen[p] = face_index[i] + 1
        meta = {"encoder": {"name": "dlib", "num_jitters": 1}, "imported_from": str(path)}
        if root is not None:
            meta["dataset"] = str(root.resolve())
        return cls(
            embeddings=np.stack([r[0] for r in rows]) if n else np.empty((0, 128), np.float32),
            paths=np.array(paths, dtype=str),
            face_index=face_index,
            boxes_ltrb=np.array([r[2] for r in rows], np.float32).reshape(n, 4),
            scores=np.full(n, np.nan, np.float32),
            landmarks68=np.full((n, 68, 2), np.nan, np.float32),
            landmarks5=np.full((n, 5, 2), np.nan, np.float32),
            identities=np.array([identity_of(p) if root is not None else "" for p in paths], dtype=str),
            image_sizes=np.zeros((n, 2), np.int32),
            meta=meta,
        )

    def to_legacy_pickle(self, path: str | os.PathLike) -> None:
        """Export as the original research's list of ``{"imagePath", "loc", "encoding"}`` dicts."""
        root = Path(self.dataset) if self.dataset else None
        records = []
        for i in range(len(self)):
            left, top, right, bottom = (round(v) for v in self.boxes_ltrb[i])
            image_path = str(root / self.paths[i]) if root else str(self.paths[i])
            records.append({"imagePath": image_path, "loc": (top, right, bottom, left), "encoding": self.embeddings[i].astype(np.float64)})
        with atomic_open(path, "wb") as fh:
            pickle.dump(records, fh, protocol=4)
