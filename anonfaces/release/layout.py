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

from anonfaces.pipeline.layout import (  # noqa: F401  (the file names are defined once, with the run layout)
    ENCODINGS_FILE,
    FILES_FILE,
    KEY_FILE,
    MAPPING_FILE,
    PRIVACY_FILE,
    PRIVATE_SUFFIX,
    RUN_FILE,
    SURROGATES_DIR,
    RunLayout,
    check_layout,
    default_private_dir,
)
from anonfaces.utils.images import IMAGE_SUFFIXES

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
