"""Two folders, never mixed: ``OUT/`` holds what may be shared, ``PRIVATE/`` everything that links back.

``OUT/`` holds only photos: the anonymized copies (under neutral names, see
`anonfaces.release.naming`) and, when asked for, the surrogates. Everything that
ties an output to a person or to the dataset goes to the private folder, by
default ``OUT.private/`` beside ``OUT`` (never inside it)::

    OUT/                      shareable as it is (check with `anonfaces verify`)
      <name>.jpg ...          anonymized photos, no metadata
      surrogates/<c>.png      one per cluster, only with --surrogates
    OUT.private/              never share: the key back to the people
      mapping.csv             path,face,cluster,left,top,right,bottom,output (one row per face)
      files.csv               path,output,status (one row per input photo)
      run.json                settings, absolute paths, counts, timings, held-back photos
      encodings.npz           the original faces' embeddings (and .skipped.csv)
      release.key             the naming key (reuse it for stable names)
      surrogates/             the surrogates the photos were made with

The same rule holds for evaluation: files that hold paths or embeddings
(``privacy.csv``, attack scores, encodings of the outputs) belong in the private folder.
"""

from __future__ import annotations

import os
from pathlib import Path

from anonfaces.errors import BadInputError
from anonfaces.utils.images import IMAGE_SUFFIXES

PRIVATE_SUFFIX = ".private"
#: The private folder's files, defined here once (`anonfaces.pipeline.layout.RunLayout` builds its paths
#: from them; `anonfaces verify` refuses to see them in OUT).
MAPPING_FILE = "mapping.csv"
FILES_FILE = "files.csv"
RUN_FILE = "run.json"
ENCODINGS_FILE = "encodings.npz"
KEY_FILE = "release.key"
PRIVACY_FILE = "privacy.csv"
SURROGATES_DIR = "surrogates"
VIDEOS_DIR = "videos"  # the videos' own records: PRIVATE/videos/


def default_private_dir(out: str | os.PathLike) -> Path:
    """``OUT.private`` beside ``OUT``."""
    out = Path(out)
    if out.name in ("", ".", ".."):
        out = out.resolve()
    return out.with_name(out.name + PRIVATE_SUFFIX)


def _inside(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def check_folders(out: str | os.PathLike, private: str | os.PathLike | None = None, *,
                  dataset: str | os.PathLike | None = None) -> tuple[Path, Path]:
    """``(out, private)``; refuses a private folder inside OUT (or OUT inside it) or overlapping the dataset."""
    out = Path(out)
    private = default_private_dir(out) if private is None else Path(private)
    o, p = out.resolve(), private.resolve()
    if _inside(p, o):
        raise BadInputError(f"--private {private} is inside --out {out}; it must be outside what is shared")
    if _inside(o, p):
        raise BadInputError(f"--out {out} is inside --private {private}; choose two separate folders")
    if p.exists() and not p.is_dir():
        raise BadInputError(f"--private {private} exists and is not a folder")
    if dataset is not None:
        d = Path(dataset).resolve()
        if _inside(p, d) or _inside(d, p):
            raise BadInputError(f"--private {private} and the dataset {dataset} overlap; the input is never written to")
    return out, private


#: Names that only ever belong in the private folder (a finding of `verify` when seen in OUT).
PRIVATE_NAMES = frozenset({
    MAPPING_FILE, FILES_FILE, RUN_FILE, ENCODINGS_FILE, KEY_FILE, PRIVACY_FILE, "clusters.csv", "metrics.csv",
    "encodings.skipped.csv", "encodings.pickle",
})


def is_shareable_name(rel: str) -> bool:
    """True for a file OUT may hold: a photo (image suffix), not hidden, not a private file name."""
    parts = rel.split("/")
    return (not any(part.startswith(".") for part in parts) and Path(rel).suffix.lower() in IMAGE_SUFFIXES
            and parts[-1] not in PRIVATE_NAMES)


def list_files(root: str | os.PathLike) -> list[str]:
    """Every file below ``root`` (hidden ones too), as sorted POSIX paths relative to it."""
    root = Path(root)
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        found += [Path(dirpath, name).relative_to(root).as_posix() for name in filenames]
    return sorted(found)
