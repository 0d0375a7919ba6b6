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

import csv
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from anonfaces.errors import BadInputError
from anonfaces.utils.atomic import atomic_open, atomic_write_bytes
from anonfaces.utils.images import IMAGE_SUFFIXES

PRIVATE_SUFFIX = ".private"
MAPPING_FILE = "mapping.csv"
FILES_FILE = "files.csv"
RUN_FILE = "run.json"
ENCODINGS_FILE = "encodings.npz"
KEY_FILE = "release.key"
SURROGATES_DIR = "surrogates"

#: Names that only ever belong in the private folder (a finding of `verify` when seen in OUT).
PRIVATE_NAMES = frozenset({
    MAPPING_FILE, FILES_FILE, RUN_FILE, ENCODINGS_FILE, KEY_FILE, "privacy.csv", "clusters.csv", "metrics.csv",
    "encodings.skipped.csv", "encodings.pickle",
})


@dataclass(frozen=True)
class ReleaseLayout:
    """Where a run's shareable and private files go."""

    out: Path
    private: Path

    @property
    def mapping_path(self) -> Path:
        return self.private / MAPPING_FILE

    @property
    def files_path(self) -> Path:
        return self.private / FILES_FILE

    @property
    def run_path(self) -> Path:
        return self.private / RUN_FILE

    @property
    def encodings_path(self) -> Path:
        return self.private / ENCODINGS_FILE

    @property
    def key_path(self) -> Path:
        return self.private / KEY_FILE

    @property
    def work_surrogates(self) -> Path:
        """Surrogates as made (private); copied to `shared_surrogates` only when asked for."""
        return self.private / SURROGATES_DIR

    @property
    def shared_surrogates(self) -> Path:
        return self.out / SURROGATES_DIR


def default_private_dir(out: str | os.PathLike) -> Path:
    """``OUT.private`` beside ``OUT``."""
    out = Path(out)
    if out.name in ("", ".", ".."):
        out = out.resolve()
    return out.with_name(out.name + PRIVATE_SUFFIX)


def _inside(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def check_layout(out: str | os.PathLike, private: str | os.PathLike | None = None, *,
                 dataset: str | os.PathLike | None = None) -> ReleaseLayout:
    """The run's `ReleaseLayout`; refuses a private folder inside OUT (or OUT inside it) or inside the dataset."""
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
    return ReleaseLayout(out, private)


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


def prepare_release(out: str | os.PathLike, private: str | os.PathLike | None = None, *,
                    dataset: str | os.PathLike | None = None, names: str = "hash",
                    key_file: str | os.PathLike | None = None, no_face: str = "skip",
                    overwrite: bool = False) -> tuple[ReleaseLayout, bytes | None]:
    """Check the settings and the folders of a run; returns its `ReleaseLayout` and naming key.

    Refuses a private folder that holds an earlier run unless ``overwrite``; with
    ``overwrite``, removes what that run wrote to OUT (`remove_earlier_outputs`).
    Creates the private folder, and the key (``release.key``) when ``names="hash"``
    and no ``key_file`` is given. The key is None for ``names="keep"``.
    """
    from anonfaces.release.naming import NAMING_MODES, load_or_create_key, read_key
    from anonfaces.release.nofaces import check_no_face_policy

    if names not in NAMING_MODES:
        raise BadInputError(f"names={names!r} must be one of {', '.join(NAMING_MODES)}")
    check_no_face_policy(no_face)
    layout = check_layout(out, private, dataset=dataset)
    if not overwrite and any((layout.private / n).exists() for n in (MAPPING_FILE, RUN_FILE, FILES_FILE)):
        raise BadInputError(f"--private {layout.private} holds an earlier run; choose a new folder or pass --overwrite")
    if overwrite:
        remove_earlier_outputs(layout)
    layout.private.mkdir(parents=True, exist_ok=True)
    key = None
    if names == "hash":
        key = read_key(key_file) if key_file is not None else load_or_create_key(layout.key_path)[0]
    return layout, key


def remove_earlier_outputs(layout: ReleaseLayout) -> None:
    """Remove the photos an earlier run wrote to OUT (as its ``files.csv`` lists them) and its shared
    surrogates, so that nothing a new run holds back, or names differently, is left behind in OUT."""
    out = layout.out.resolve()
    if layout.files_path.is_file():
        with open(layout.files_path, encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                if not row.get("output"):
                    continue
                target = (layout.out / row["output"]).resolve()
                if out in target.parents and target.is_file():
                    target.unlink()
    if layout.shared_surrogates.is_dir():
        shutil.rmtree(layout.shared_surrogates)


def share_surrogates(layout: ReleaseLayout, clusters) -> None:
    """Copy the surrogates of ``clusters`` (made in the private folder) into ``OUT/surrogates``."""
    for c in sorted(clusters):
        atomic_write_bytes(layout.shared_surrogates / f"{c}.png", (layout.work_surrogates / f"{c}.png").read_bytes())


FILES_COLUMNS = ("path", "output", "status")
_STATUS = {
    "unprotected": {"skip": "held back: face left unprotected", "copy": "face left unprotected, written",
                    "blur": "face left unprotected, blurred"},
    "no_face": {"skip": "held back: no face found", "copy": "no face found, copied", "blur": "no face found, blurred"},
}


def write_files_csv(path: str | os.PathLike, images: list[str], outputs: dict[str, str], *, no_face=(),
                    unprotected=(), unreadable=(), policy: str = "skip") -> None:
    """``files.csv``: one row per input photo, with its output name ('' when not written) and what happened to it."""
    faceless, flagged, bad = set(no_face), set(unprotected), set(unreadable)
    with atomic_open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(FILES_COLUMNS)
        for rel in images:
            if rel in bad:
                status = "unreadable"
            elif rel in flagged:
                status = _STATUS["unprotected"][policy]
            elif rel in faceless:
                status = _STATUS["no_face"][policy]
            else:
                status = "anonymized"
            w.writerow([rel, outputs.get(rel, ""), status])
