"""The cache of ONNX models built from dlib's networks, and their ONNX Runtime sessions.

A built model is kept as ``<stem>-<sha256 of the .dat, 16 hex>-g<graph version>.onnx``
with a ``.json`` beside it recording the .dat's SHA-256, the graph version, the model's
own SHA-256 and the self-check's figures. The ``.json`` is written last, so that it
marks a checked model; a model whose hash no longer matches (corrupt, half-copied) or
whose record is missing is built and checked again. Both files are written atomically.

The cache folder is ``$ANONFACES_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/anonfaces``,
else ``~/.cache/anonfaces``. Used by `anonfaces.encode._dlib_onnx` (the 128-D ResNet)
and `anonfaces.detect._mmod_onnx` (the MMOD face detector).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

from anonfaces.errors import AnonfacesError
from anonfaces.utils.atomic import atomic_write_bytes, atomic_write_text

log = logging.getLogger(__name__)

CACHE_ENV = "ANONFACES_CACHE_DIR"


def cache_dir() -> Path:
    """Where built models are kept (see the module docstring)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "anonfaces"


@functools.lru_cache(maxsize=16)
def file_sha256(path: str, mtime_ns: int, size: int) -> str:
    """SHA-256 of the file at ``path`` (cached while its time and size are unchanged)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sha256_of(path: str | os.PathLike) -> str:
    st = os.stat(path)
    return file_sha256(str(path), st.st_mtime_ns, st.st_size)


def make_session(model: str | os.PathLike | bytes, threads: int):
    """An ONNX Runtime CPU session for ``model`` (a path or the serialised bytes) with ``threads`` threads."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, int(threads))
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(model if isinstance(model, bytes) else str(model), sess_options=options,
                                providers=["CPUExecutionProvider"])


def intact(path: Path, meta_path: Path, key: str, graph_version: int) -> bool:
    """Whether ``path`` is a checked build of the .dat with SHA-256 ``key`` at ``graph_version``."""
    try:
        meta = json.loads(meta_path.read_text())
        return (
            meta.get("dat_sha256") == key
            and meta.get("graph_version") == graph_version
            and meta.get("self_check", {}).get("passed") is True
            and sha256_of(path) == meta.get("onnx_sha256")
        )
    except (OSError, ValueError, AttributeError):
        return False


_BUILD_LOCK = threading.Lock()


def cached_model(stem: str, dat_path: str, graph_version: int, build: Callable[[], bytes],
                 check: Callable[[bytes], dict], what: str, on_build: Callable[[], None] | None = None) -> Path:
    """Path of the checked ONNX model ``stem`` of ``dat_path``, calling ``build`` (the serialised
    model) and ``check`` (raises when it differs from dlib; returns its figures) first when the
    cache holds no intact copy, then ``on_build`` (e.g. to drop sessions of an older file).
    ``what`` names the model in logs and errors."""
    key = sha256_of(dat_path)
    folder = cache_dir()
    path = folder / f"{stem}-{key[:16]}-g{graph_version}.onnx"
    meta_path = path.with_name(path.name + ".json")
    with _BUILD_LOCK:
        if intact(path, meta_path, key, graph_version):
            return path
        if path.exists() or meta_path.exists():
            log.warning("cached ONNX model of %s %s is missing, corrupt or unchecked: rebuilding", what, path)
        else:
            log.info("building %s for ONNX Runtime (once; cached in %s)", what, folder)
        data = build()
        report = check(data)
        meta = {
            "dat_path": dat_path,
            "dat_sha256": key,
            "graph_version": graph_version,
            "onnx_sha256": hashlib.sha256(data).hexdigest(),
            "self_check": report,
        }
        try:
            atomic_write_bytes(path, data)
            atomic_write_text(meta_path, json.dumps(meta, indent=1))  # written last: marks a checked model
        except OSError as exc:
            raise AnonfacesError(f"cannot write the ONNX model cache {folder} ({exc}); set {CACHE_ENV} to a writable folder") from None
        file_sha256.cache_clear()
        if on_build is not None:
            on_build()
        return path
