"""The run.json of every run: one header, the options verbatim, written atomically."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

from anonfaces._version import __version__
from anonfaces.errors import FileFormatError
from anonfaces.utils.atomic import atomic_write_text
from anonfaces.utils.jsonable import jsonable


def header(kind: str, *, command: str | None = None) -> dict:
    """What every run.json starts with: format, versions, time, command line, machine."""
    return {
        "format": f"anonfaces-{kind}-run",
        "format_version": 1,
        "anonfaces_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": command,
        "machine": {"platform": platform.platform(), "machine": platform.machine(), "cpus": os.cpu_count()},
        # the engine asked for dlib's CNN face detector (auto: ONNX Runtime when its self-check passes, else dlib;
        # both give the same boxes, see docs/algorithms.md)
        "cnn_detector_engine": _cnn_engine(),
    }


def _cnn_engine() -> str:
    from anonfaces.detect._models import cnn_engine

    return cnn_engine()


def write_record(path, record: dict) -> Path:
    atomic_write_text(path, json.dumps(record, indent=1, default=jsonable))
    return Path(path)


def read_record(path, kind: str) -> dict:
    """A run.json written by `write_record` for ``kind`` (``anonymize``, ``evaluate``)."""
    path = Path(path)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FileFormatError(f"cannot read the run record {path}: {exc}") from None
    if record.get("format") != f"anonfaces-{kind}-run":
        raise FileFormatError(f"{path} is not the run.json of `anonfaces {kind}` (format {record.get('format')!r})")
    return record
