"""Per-photo attribute labels (smiling, male, ...): the one reader of attribute files.

Two formats, told apart by the first line:

* CelebA's ``list_attr_celeba.txt``: a count line, a line of attribute names, then
  ``<file name> <1|-1> ...`` rows (keys: file names such as ``000001.jpg``);
* CSV with the header ``path,<attribute>,...`` and values 0/1, -1/1 or in [0, 1]
  (keys: photo paths relative to the dataset root).

Both come back as a float frame in [0, 1] (-1 read as 0), one column per attribute,
indexed by the rows' keys. `row_for` finds a photo's row by its relative path or, for
files keyed by file name, by its name. CelebA is for non-commercial research only.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pandas as pd

from anonfaces.errors import BadInputError, FileFormatError


def read_attribute_file(path: str | os.PathLike) -> pd.DataFrame:
    """Attribute file (either format) -> float frame in [0, 1] indexed by key (``file``), one column per attribute."""
    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"attribute file not found: {path}")
    with open(path, encoding="utf-8", newline="") as fh:
        text = fh.read()
    lines = text.splitlines()
    if lines and lines[0].split(",")[0].strip() == "path":
        return _frame(path, list(csv.reader(lines)), header=0, split_names=lambda row: row[1:])
    if len(lines) < 2:
        raise FileFormatError(f"{path}: expected CelebA's count and header lines, or a CSV with header 'path,<attribute>,...'")
    return _frame(path, [line.split() for line in lines], header=1, split_names=lambda row: row)


def _frame(path: Path, rows: list[list[str]], *, header: int, split_names) -> pd.DataFrame:
    names = [n.strip() for n in split_names(rows[header])]
    if not names:
        raise FileFormatError(f"{path}: the header names no attribute")
    keys, values = [], []
    for number, row in enumerate(rows[header + 1:], start=header + 2):
        if not row or not any(cell.strip() for cell in row):
            continue
        if len(row) != len(names) + 1:
            raise FileFormatError(f"{path}:{number}: {len(row) - 1} values for {len(names)} attributes")
        try:
            values.append([float(v) for v in row[1:]])
        except ValueError:
            raise FileFormatError(f"{path}:{number}: values must be numbers (0/1, -1/1 or in [0, 1])") from None
        keys.append(row[0].strip())
    array = np.asarray(values, dtype=np.float32).reshape(len(values), len(names))
    if not np.isfinite(array).all():
        raise FileFormatError(f"{path}: non-finite attribute values")
    array = np.where(array < 0, 0.0, array).clip(0, 1)
    return pd.DataFrame(array, index=pd.Index(keys, name="file"), columns=names)


def row_for(table: pd.DataFrame, rel_path: str):
    """The key of ``rel_path``'s row in ``table`` (its relative path, else its file name), or None."""
    if rel_path in table.index:
        return rel_path
    name = Path(rel_path).name
    return name if name in table.index else None
