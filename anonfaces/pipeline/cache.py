"""The one cache of the pipeline: an entry is reused only while its content key is unchanged.

An entry is a file or folder (encodings, a clustering, an anonymization run) with
its key beside it (``<entry>.key``). The key is a digest of everything the entry
was made from: the photos' bytes (`files_digest`), the encodings' arrays
(`encodings_digest`), and the options records. Anything else (file times, the
order in which files were listed or linked, the command line) does not enter it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np

from anonfaces.utils.atomic import atomic_write_text
from anonfaces.utils.jsonable import jsonable

log = logging.getLogger(__name__)
T = TypeVar("T")


def content_key(*parts) -> str:
    """A digest of JSON-able parts (options records, digests, settings)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=jsonable).encode()).hexdigest()


def files_digest(root, rels: list[str]) -> str:
    """A digest of the files ``rels`` under ``root``: their relative paths and bytes (links followed), in sorted order."""
    h = hashlib.sha256()
    root = Path(root)
    for rel in sorted(rels):
        h.update(rel.encode() + b"\0")
        h.update(hashlib.sha256((root / rel).read_bytes()).digest())
    return h.hexdigest()


def encodings_digest(enc) -> str:
    """A digest of what an `Encodings` holds (not when or where it was made)."""
    h = hashlib.sha256()
    for name in ("paths", "face_index", "embeddings", "boxes_ltrb", "landmarks68", "identities"):
        arr = np.ascontiguousarray(getattr(enc, name))
        h.update(name.encode() + str(arr.dtype).encode() + str(arr.shape).encode())
        h.update(arr.tobytes() if arr.dtype.kind != "U" else "\0".join(arr.tolist()).encode())
    h.update(json.dumps({"encoder": enc.meta.get("encoder"), "detector": enc.meta.get("detector")}, sort_keys=True,
                        default=jsonable).encode())
    return h.hexdigest()


def model_files_digest(options) -> str:
    """A digest of the model files an anonymization reads (their bytes), for its cache key.

    Every existing file named by a value of ``options.method_params`` or ``options.synth_params``
    (a StyleGAN pickle, a user checkpoint), and the shipped checkpoint of a learned de-identifier
    used without ``weights``: retraining a model, or replacing the file under the same name,
    changes the key, so a sweep never scores photos made with other weights.
    """
    from anonfaces.synthesize.deid import MODELS, shipped_weights

    files = set()
    for params in (options.method_params, options.synth_params):
        for value in (params or {}).values():
            if isinstance(value, (str, Path)) and str(value) and Path(value).is_file():
                files.add(Path(value).resolve())
    if options.method in MODELS and not (options.method_params or {}).get("weights"):
        files.add(shipped_weights(options.method).resolve())
    h = hashlib.sha256()
    for path in sorted(files):
        st = path.stat()
        h.update(_file_digest(str(path), st.st_size, st.st_mtime_ns))
    return h.hexdigest()


@functools.lru_cache(maxsize=32)
def _file_digest(path: str, size: int, mtime_ns: int) -> bytes:
    """SHA-256 of a file's bytes, read once per (path, size, mtime): a sweep keys every run of a method and k."""
    return hashlib.sha256(Path(path).read_bytes()).digest()


def _key_file(entry: Path) -> Path:
    return entry.with_name(entry.name + ".key")


def cached(entry, key: str, make: Callable[[Path], T], load: Callable[[Path], T]) -> T:
    """``load(entry)`` when ``entry`` was made with ``key``, else ``make(entry)`` (then the key is recorded).

    A stale entry's key is removed before ``make`` runs, so an interrupted ``make``
    is never mistaken for a finished one.
    """
    entry = Path(entry)
    key_file = _key_file(entry)
    if entry.exists() and key_file.is_file() and key_file.read_text(encoding="utf-8").strip() == key:
        log.info("reusing %s", entry)
        return load(entry)
    key_file.unlink(missing_ok=True)
    value = make(entry)
    atomic_write_text(key_file, key)
    return value


def forget(entry) -> None:
    """Remove a cache entry and its key."""
    entry = Path(entry)
    _key_file(entry).unlink(missing_ok=True)
    if entry.is_dir():
        shutil.rmtree(entry, ignore_errors=True)
    elif entry.exists():
        entry.unlink()
