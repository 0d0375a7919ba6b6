"""`jsonable`: the ``default=`` of every `json.dumps` that writes a run record."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np


def jsonable(value):
    """numpy scalars and arrays as Python values, paths as str, dataclasses as dicts, anything else as its repr."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return repr(value)
