"""The sharded encodings store: a folder of Parquet shards for runs too large for one ``.npz``.

Layout (see docs/design.md, "File formats")::

    <store>/
      manifest.json            format name and version, embedding width, the ``meta`` JSON,
                               optionally the planned shard keys
      encoder_state.npz        the encoder's fitted state (PCA basis), when it has one
      shard-<key>.parquet      one per unit of work: the columns of encodings.npz, one row per face

Every shard holds the same columns as ``encodings.npz`` (fixed-width lists for the
array columns) and is written atomically under a name its writer chooses: a photo
range (``shard-000000.parquet`` for chunk 0) or, by default, a key derived from its
content. A retried task writes the same name again and replaces its earlier copy,
so a retry never duplicates rows, and a task that died before its ``os.replace``
left no shard at all: it is simply missing and `EncodingsStore.missing` lists it
for the resumed run. Nothing but the writer of a shard touches it, so any number of
workers (processes or machines on a shared file system) can write into one store;
the manifest is written once, by whoever creates the store.

Reading checks every shard (Parquet footer, page checksums, schema, widths) and
skips a shard that fails with a logged warning naming it and why; the reasons are
also kept in the loaded record's ``meta["store_problems"]``. A shard is never read
in part. `load_store` is lazy: a column is read when it is first used, shard by
shard into one preallocated array, so clustering reads the embeddings alone.

pyarrow is needed for the store only (``pip install anonfaces[scale]``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from anonfaces._version import __version__
from anonfaces.encode.encodings import FORMAT_NAME as NPZ_FORMAT_NAME
from anonfaces.encode.encodings import FORMAT_VERSION as NPZ_FORMAT_VERSION
from anonfaces.encode.encodings import Encodings
from anonfaces.errors import BadInputError, FileFormatError
from anonfaces.utils.atomic import atomic_open, atomic_write_text

logger = logging.getLogger(__name__)

STORE_FORMAT_NAME = "anonfaces-encodings-store"
STORE_FORMAT_VERSION = 1
MANIFEST = "manifest.json"
ENCODER_STATE = "encoder_state.npz"
SHARD_PREFIX = "shard-"
SHARD_SUFFIX = ".parquet"
#: Rows per shard when a whole `Encodings` is written at once (`save_store`, ``anonfaces convert``).
DEFAULT_SHARD_ROWS = 100_000

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
# column -> (numpy dtype, shape of one row); () is a scalar, "str" a string column
_COLUMNS = {
    "embeddings": (np.float32, None),  # (dim,), dim from the manifest
    "paths": ("str", ()),
    "face_index": (np.int32, ()),
    "boxes_ltrb": (np.float32, (4,)),
    "scores": (np.float32, ()),
    "landmarks68": (np.float32, (68, 2)),
    "landmarks5": (np.float32, (5, 2)),
    "identities": ("str", ()),
    "image_sizes": (np.int32, (2,)),
}
#: Optional columns (the video columns of `Encodings`): written when the rows come from videos; a shard without
#: them reads as photos (-1 / NaN).
_OPTIONAL_COLUMNS = {"frames": (np.int32, (), -1), "timestamps": (np.float32, (), np.nan), "tracks": (np.int32, (), -1)}
_SHARD_META_KEY = b"anonfaces"


def _pa():
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:  # pragma: no cover - depends on the environment
        raise BadInputError("the sharded encodings store needs pyarrow: pip install 'anonfaces[scale]'") from None
    return pyarrow


def is_store(path: str | os.PathLike) -> bool:
    """True when ``path`` is a folder holding a store manifest."""
    return (Path(path) / MANIFEST).is_file()


def content_key(enc: Encodings) -> str:
    """A shard key from the rows' identity (paths, face indices) and embeddings: 20 hex digits."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(enc.paths).astype("U").tobytes())
    h.update(np.ascontiguousarray(enc.face_index).tobytes())
    h.update(np.ascontiguousarray(enc.embeddings).tobytes())
    return h.hexdigest()[:20]


@dataclass(frozen=True)
class Shard:
    """One readable shard: its key, file and number of rows (faces)."""

    key: str
    path: Path
    n_rows: int


class EncodingsStore:
    """A store folder: create or open it, write shards into it, read it column by column.

    Use `EncodingsStore.create` for a new store and `EncodingsStore.open` for an
    existing one; `load_store` returns its contents as a lazy `Encodings`.
    """

    def __init__(self, path: str | os.PathLike, manifest: dict):
        self.path = Path(path)
        self.manifest = manifest
        self._shards: list[Shard] | None = None
        self._problems: dict[str, str] = {}

    # --- creating and opening -----------------------------------------------------------
    @classmethod
    def create(
        cls,
        path: str | os.PathLike,
        *,
        dim: int,
        meta: dict | None = None,
        encoder_state: dict | None = None,
        planned: list[str] | None = None,
        exist_ok: bool = False,
    ) -> EncodingsStore:
        """Make a new store at ``path`` (an empty or missing folder).

        ``planned`` lists the shard keys the run will write (for example one per
        chunk of photos); `missing` then says which are still to do. With
        ``exist_ok``, an existing store with the same ``dim`` and ``meta`` (and
        plan) is opened instead, which is how a resumed run starts.
        """
        _pa()
        path = Path(path)
        dim = int(dim)
        if dim < 1:
            raise BadInputError(f"dim={dim} must be >= 1")
        manifest = {
            "format": STORE_FORMAT_NAME,
            "format_version": STORE_FORMAT_VERSION,
            "anonfaces_version": __version__,
            "dim": dim,
            "meta": _plain_meta(meta or {}),
            "encoder_state": sorted(encoder_state) if encoder_state else [],
        }
        if planned is not None:
            keys = [str(k) for k in planned]
            for k in keys:
                _check_key(k)
            if len(set(keys)) != len(keys):
                raise BadInputError("planned shard keys must be distinct")
            manifest["planned"] = keys
        if is_store(path):
            if not exist_ok:
                raise BadInputError(f"{path} already holds an encodings store (open it to append, or delete it)")
            store = cls.open(path)
            for name in ("dim", "meta", "planned"):
                if store.manifest.get(name) != manifest.get(name):
                    raise BadInputError(f"cannot resume into {path}: its {name} differs from this run's")
            return store
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise BadInputError(f"{path} exists and is not an empty folder; a store needs a folder of its own")
        path.mkdir(parents=True, exist_ok=True)
        if encoder_state:
            with atomic_open(path / ENCODER_STATE, "wb") as fh:
                np.savez(fh, **{k: np.asarray(v) for k, v in encoder_state.items()})
        atomic_write_text(path / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        return cls(path, manifest)

    @classmethod
    def open(cls, path: str | os.PathLike) -> EncodingsStore:
        """Open an existing store (its manifest is checked; shards are checked when listed)."""
        path = Path(path)
        file = path / MANIFEST
        if not file.is_file():
            raise BadInputError(f"not an encodings store (no {MANIFEST}): {path}")
        try:
            manifest = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise FileFormatError(f"cannot read {file}: {exc}") from None
        if not isinstance(manifest, dict) or manifest.get("format") != STORE_FORMAT_NAME:
            raise FileFormatError(f"{file}: format {manifest.get('format') if isinstance(manifest, dict) else None!r} "
                                  f"is not {STORE_FORMAT_NAME!r}")
        if int(manifest.get("format_version", 0)) > STORE_FORMAT_VERSION:
            raise FileFormatError(f"{file} has format version {manifest['format_version']}; "
                                  f"this anonfaces reads up to {STORE_FORMAT_VERSION}")
        if not isinstance(manifest.get("dim"), int) or manifest["dim"] < 1 or not isinstance(manifest.get("meta"), dict):
            raise FileFormatError(f"{file}: dim and meta are missing or malformed")
        return cls(path, manifest)

    # --- what it holds ----------------------------------------------------------------
    @property
    def dim(self) -> int:
        return int(self.manifest["dim"])

    @property
    def meta(self) -> dict:
        return dict(self.manifest["meta"])

    @property
    def planned(self) -> list[str] | None:
        return self.manifest.get("planned")

    def encoder_state(self) -> dict:
        if not self.manifest.get("encoder_state"):
            return {}
        file = self.path / ENCODER_STATE
        try:
            with np.load(file, allow_pickle=False) as data:
                return {k: data[k] for k in data.files}
        except (OSError, ValueError, EOFError) as exc:
            raise FileFormatError(f"cannot read the encoder state {file}: {exc}") from None

    def shard_path(self, key: str) -> Path:
        return self.path / f"{SHARD_PREFIX}{key}{SHARD_SUFFIX}"

    def shards(self, *, refresh: bool = False) -> list[Shard]:
        """The readable shards, ordered by key. Unreadable ones are logged and listed in `problems`."""
        if self._shards is None or refresh:
            good, problems = [], {}
            for file in sorted(self.path.glob(f"{SHARD_PREFIX}*{SHARD_SUFFIX}")):
                key = file.name[len(SHARD_PREFIX) : -len(SHARD_SUFFIX)]
                try:
                    good.append(Shard(key, file, self._check_shard(file)))
                except FileFormatError as exc:
                    problems[file.name] = str(exc)
                    logger.warning("skipping shard %s: %s", file, exc)
            self._shards, self._problems = good, problems
        return list(self._shards)

    @property
    def problems(self) -> dict[str, str]:
        """Shard file name -> why it was skipped (bad shards, and planned shards not written)."""
        self.shards()
        out = dict(self._problems)
        for key in self.missing():
            out.setdefault(f"{SHARD_PREFIX}{key}{SHARD_SUFFIX}", "planned but not written")
        return out

    def missing(self) -> list[str]:
        """Planned shard keys with no readable shard (the work a resumed run still has to do)."""
        if self.planned is None:
            return []
        have = {s.key for s in self.shards()}
        return [k for k in self.planned if k not in have]

    def has_shard(self, key: str) -> bool:
        """True when a readable shard ``key`` exists (a task that finds it done can skip)."""
        file = self.shard_path(key)
        if not file.is_file():
            return False
        try:
            self._check_shard(file)
        except FileFormatError:
            return False
        return True

    def __len__(self) -> int:
        return sum(s.n_rows for s in self.shards())

    # --- writing ------------------------------------------------------------------------
    def write_shard(self, enc: Encodings, key: str | None = None) -> Path:
        """Write ``enc`` as one shard, atomically; returns its path.

        ``key`` names the shard (letters, digits, ``_ . -``); by default it is
        `content_key` (enc). Writing a key again replaces that shard (a retried
        task), so the store never holds the same shard twice.
        """
        pa = _pa()
        import pyarrow.parquet as pq

        key = content_key(enc) if key is None else str(key)
        _check_key(key)
        if enc.dim != self.dim and len(enc):
            raise BadInputError(f"these encodings have dim={enc.dim}; the store at {self.path} holds dim={self.dim}")
        mine, theirs = self.manifest["meta"].get("encoder"), _plain_meta(enc.meta).get("encoder")
        if mine is not None and theirs is not None and mine != theirs:
            raise BadInputError(f"these encodings come from encoder {theirs}; the store at {self.path} holds {mine}")
        n = len(enc)
        columns = {}
        for name, (dtype, shape) in _COLUMNS.items():
            values = getattr(enc, name)
            if dtype == "str":
                columns[name] = pa.array(values.tolist(), type=pa.string())
            else:
                width = self.dim if shape is None else int(np.prod(shape, dtype=int))
                flat = np.ascontiguousarray(values, dtype=dtype).reshape(n * width if shape != () else n)
                if shape == ():
                    columns[name] = pa.array(flat)
                else:
                    columns[name] = pa.FixedSizeListArray.from_arrays(pa.array(flat), width)
        if enc.has_video:
            for name, (dtype, _, _) in _OPTIONAL_COLUMNS.items():
                columns[name] = pa.array(np.ascontiguousarray(getattr(enc, name), dtype=dtype))
        stamp = json.dumps({"format": STORE_FORMAT_NAME, "format_version": STORE_FORMAT_VERSION, "dim": self.dim, "rows": n})
        table = pa.table(columns).replace_schema_metadata({_SHARD_META_KEY: stamp.encode()})
        file = self.shard_path(key)
        with atomic_open(file, "wb") as fh:
            pq.write_table(table, fh, compression="zstd", write_page_checksum=True, row_group_size=max(n, 1))
        if self._shards is not None:
            self._shards = None  # list again on next use
        return file

    def append(self, enc: Encodings, key: str | None = None) -> Path:
        """Alias of `write_shard`: add ``enc`` to the store as a shard of its own."""
        return self.write_shard(enc, key)

    # --- reading ------------------------------------------------------------------------
    def _check_shard(self, file: Path) -> int:
        """Footer, stamp and schema of one shard; its row count. Raises FileFormatError."""
        pa = _pa()
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(file)
            schema = pf.schema_arrow
            stamp = json.loads((schema.metadata or {}).get(_SHARD_META_KEY, b"{}"))
        except (OSError, pa.ArrowException, ValueError) as exc:
            raise FileFormatError(f"not a readable Parquet file (truncated or damaged?): {exc}") from None
        if stamp.get("format") != STORE_FORMAT_NAME:
            raise FileFormatError("not an anonfaces encodings shard (no anonfaces stamp in its schema)")
        n = pf.metadata.num_rows
        if stamp.get("rows") != n or stamp.get("dim") != self.dim:
            raise FileFormatError(f"holds {n} rows of dim {stamp.get('dim')}; its stamp says {stamp.get('rows')} rows "
                                  f"and the store holds dim {self.dim}")
        missing = [c for c in _COLUMNS if c not in schema.names]
        if missing:
            raise FileFormatError(f"missing columns {', '.join(missing)}")
        return n

    def column(self, name: str) -> np.ndarray:
        """One column over all readable shards, in shard order, as the dtype and shape of `Encodings`.

        A shard that passed its footer check but whose pages fail their checksums
        now raises `FileFormatError` naming it (skipping it for one column only
        would misalign the columns); `verify` (or ``load_store(..., verify=True)``)
        finds such shards up front and skips them whole.
        """
        if name in _OPTIONAL_COLUMNS:
            return self._optional_column(name)
        if name not in _COLUMNS:
            raise BadInputError(f"unknown column {name!r}; columns: {', '.join(_COLUMNS)}")
        dtype, shape = _COLUMNS[name]
        shards = self.shards()
        n = sum(s.n_rows for s in shards)
        row_shape = (self.dim,) if shape is None else shape
        if dtype == "str":
            parts = [self._read_column(s, name).to_numpy(zero_copy_only=False).astype(str) for s in shards]
            return np.concatenate(parts) if parts else np.empty(0, str)
        out = np.empty((n, *row_shape), dtype=dtype)
        at = 0
        for s in shards:
            col = self._read_column(s, name)
            values = col.flatten().to_numpy() if row_shape != () else col.to_numpy()
            out[at : at + s.n_rows] = np.asarray(values, dtype=dtype).reshape((s.n_rows, *row_shape))
            at += s.n_rows
        return out

    def _optional_column(self, name: str) -> np.ndarray:
        """A video column over all shards; a shard written without it gives its default (-1 or NaN)."""
        import pyarrow.parquet as pq

        dtype, _, default = _OPTIONAL_COLUMNS[name]
        parts = []
        for s in self.shards():
            if name in pq.ParquetFile(s.path).schema_arrow.names:
                parts.append(np.asarray(self._read_column(s, name).to_numpy(), dtype=dtype))
            else:
                parts.append(np.full(s.n_rows, default, dtype=dtype))
        return np.concatenate(parts) if parts else np.empty(0, dtype)

    def _read_column(self, shard: Shard, name: str):
        pa = _pa()
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(shard.path, columns=[name], page_checksum_verification=True)
            col = table.column(name).combine_chunks()
        except (OSError, pa.ArrowException) as exc:
            raise FileFormatError(f"shard {shard.path} is damaged (column {name}): {exc}; "
                                  f"delete it and re-run its task, or check it with EncodingsStore.verify") from None
        if len(col) != shard.n_rows:
            raise FileFormatError(f"shard {shard.path}: column {name} has {len(col)} rows, expected {shard.n_rows}")
        return col

    def verify(self) -> dict[str, str]:
        """Read every column of every shard (checksums on); drop the ones that fail. Returns `problems`.

        Also reports faces present in more than one shard (``path#face``).
        """
        for s in self.shards():
            try:
                for name in _COLUMNS:
                    self._read_column(s, name)
            except FileFormatError as exc:
                self._problems[s.path.name] = str(exc)
                self._shards = [t for t in self._shards if t.key != s.key]
                logger.warning("skipping shard %s: %s", s.path, exc)
        problems = self.problems
        seen: dict[tuple[str, int], str] = {}
        for s in self.shards():
            paths = self._read_column(s, "paths").to_pylist()
            faces = self._read_column(s, "face_index").to_numpy()
            for p, f in zip(paths, faces.tolist()):
                other = seen.setdefault((p, f), s.key)
                if other != s.key:
                    problems[s.path.name] = f"face {p}#{f} is also in shard {other}"
                    break
        return problems


class StoreEncodings(Encodings):
    """An `Encodings` whose columns are read from a store on first use (one column at a time).

    ``len()`` and ``meta`` need no column; ``embeddings`` reads only the
    embeddings column; ``landmarks68`` is read only if asked for.
    """

    def __init__(self, store: EncodingsStore, meta: dict):  # no dataclass __init__: nothing read yet
        self._store = store
        self.meta = meta
        self._len = len(store)

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        if name == "encoder_state":
            value = self._store.encoder_state()
        elif name in Encodings._ARRAYS or name in Encodings._VIDEO:
            value = self._store.column(name)
        else:
            raise AttributeError(f"{type(self).__name__!s} has no attribute {name!r}")
        setattr(self, name, value)
        return value

    def __len__(self) -> int:
        return self._len

    def _video_column(self, name: str) -> np.ndarray:
        held = self.__dict__.setdefault("_video", {})
        if name not in held:
            held[name] = self._store.column(name)
        return held[name]

    # the video columns are class attributes (None) on `Encodings`, so __getattr__ never sees them
    frames = property(lambda self: self._video_column("frames"))
    timestamps = property(lambda self: self._video_column("timestamps"))
    tracks = property(lambda self: self._video_column("tracks"))

    def __repr__(self) -> str:
        return f"StoreEncodings({self._store.path}, n_faces={self._len}, dim={self._store.dim})"

    @property
    def dim(self) -> int:
        return self._store.dim

    def materialize(self) -> Encodings:
        """A plain in-memory `Encodings` (reads every column)."""
        return Encodings(**{name: getattr(self, name) for name in (*self._ARRAYS, *self._VIDEO)}, meta=dict(self.meta),
                         encoder_state=self.encoder_state)


def load_store(path: str | os.PathLike, *, verify: bool = False) -> StoreEncodings:
    """Open the store at ``path`` as a lazy `Encodings` (`StoreEncodings`).

    Unreadable shards (bad footer, stamp or schema; with ``verify``, also any
    page failing its checksum, which reads every column once) and planned
    shards never written are skipped with a logged warning, and listed in
    ``meta["store_problems"]`` (file name -> reason).
    """
    store = EncodingsStore.open(path)
    problems = store.verify() if verify else store.problems
    meta = {
        "format": NPZ_FORMAT_NAME,
        "format_version": NPZ_FORMAT_VERSION,
        "anonfaces_version": store.manifest.get("anonfaces_version"),
        **store.meta,
        "store": str(store.path),
    }
    if problems:
        meta["store_problems"] = problems
        logger.warning("%s: %d shard(s) skipped: %s", store.path, len(problems),
                       "; ".join(f"{k}: {v}" for k, v in problems.items()))
    return StoreEncodings(store, meta)


def save_store(enc: Encodings, path: str | os.PathLike, *, shard_rows: int = DEFAULT_SHARD_ROWS) -> EncodingsStore:
    """Write ``enc`` as a new store of shards of ``shard_rows`` faces (keys ``000000``, ``000001``, ...)."""
    shard_rows = int(shard_rows)
    if shard_rows < 1:
        raise BadInputError(f"shard_rows={shard_rows} must be >= 1")
    n = len(enc)
    keys = [f"{i:06d}" for i in range(max(1, -(-n // shard_rows)))]
    meta = {k: v for k, v in enc.meta.items() if k not in ("format", "format_version", "anonfaces_version", "store",
                                                           "store_problems")}
    store = EncodingsStore.create(path, dim=enc.dim, meta=meta, encoder_state=enc.encoder_state, planned=keys)
    for i, key in enumerate(keys):
        store.write_shard(enc.subset(slice(i * shard_rows, (i + 1) * shard_rows)), key=key)
    return store


def _check_key(key: str) -> None:
    if not _KEY.match(key):
        raise BadInputError(f"shard key {key!r} must be 1-128 letters, digits, '_', '.' or '-' (not starting with . _ -)")


def _plain_meta(meta: dict) -> dict:
    """``meta`` as JSON gives it back (so that comparing a manifest with a run's meta is exact)."""
    return json.loads(json.dumps(meta, sort_keys=True, default=str))
