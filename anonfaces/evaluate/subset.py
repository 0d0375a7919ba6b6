"""A deterministic subset of a dataset: N people evenly spaced over those with enough photos.

The rule (`DatasetSubset.select`), on a dataset with one folder per person:

1. the people with at least ``min_photos`` photos, in sorted order;
2. ``people`` of them, evenly spaced: ``eligible[round(linspace(0, len(eligible) - 1, people))]``
   (all of them when ``people`` is None);
3. the first ``photos_per_person`` photos of each in sorted order (all when None).

Photos directly under the dataset folder (no person) are never selected.
`link_subset` materialises the selection as a folder of symbolic links (copies
where links are not possible), so that the anonymize stage sees only the subset.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from anonfaces.errors import BadInputError
from anonfaces.utils.images import identity_of, list_images


def _check_count(name: str, value, *, allow_none: bool) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise BadInputError(f"{name}={value!r} must be {'None or ' if allow_none else ''}an integer >= 1")


@dataclass(frozen=True)
class DatasetSubset:
    """Which photos of a dataset to use (see the module docstring for the rule).

    Parameters
    ----------
    people : int or None
        How many people, evenly spaced in sorted order over the eligible ones; None: all.
    photos_per_person : int or None
        The first this many photos (sorted) of each person; None: all.
    min_photos : int
        Only people with at least this many photos are eligible.
    """

    people: int | None = None
    photos_per_person: int | None = None
    min_photos: int = 1

    def __post_init__(self):
        _check_count("people", self.people, allow_none=True)
        _check_count("photos_per_person", self.photos_per_person, allow_none=True)
        _check_count("min_photos", self.min_photos, allow_none=False)

    @property
    def is_everything(self) -> bool:
        """True when the rule selects every photo of every person."""
        return self.people is None and self.photos_per_person is None and self.min_photos == 1

    def describe(self, name: str) -> str:
        """``name`` with the rule, e.g. ``lfw[people=60,photos-per-person=10,min-photos=10]``."""
        if self.is_everything:
            return name
        parts = [f"people={self.people}" if self.people is not None else "",
                 f"photos-per-person={self.photos_per_person}" if self.photos_per_person is not None else "",
                 f"min-photos={self.min_photos}" if self.min_photos != 1 else ""]
        return f"{name}[{','.join(p for p in parts if p)}]"

    def to_dict(self) -> dict:
        return asdict(self)

    def select(self, root) -> list[str]:
        """The selected photos of ``root`` as sorted dataset-relative POSIX paths."""
        root = Path(root)
        by_person: dict[str, list[str]] = {}
        for rel in list_images(root):
            person = identity_of(rel)
            if person:
                by_person.setdefault(person, []).append(rel)
        eligible = sorted(p for p, photos in by_person.items() if len(photos) >= self.min_photos)
        if not eligible:
            raise BadInputError(f"no person folder under {root} has at least min_photos={self.min_photos} photos")
        picks = eligible
        if self.people is not None:
            if self.people > len(eligible):
                raise BadInputError(f"people={self.people} but only {len(eligible)} people under {root} have "
                                    f"at least min_photos={self.min_photos} photos")
            picks = [eligible[int(i)] for i in np.linspace(0, len(eligible) - 1, self.people).round()]
        selected = []
        for person in picks:
            photos = sorted(by_person[person])
            selected.extend(photos if self.photos_per_person is None else photos[: self.photos_per_person])
        return sorted(selected)


def link_subset(root, photos: list[str], folder) -> Path:
    """Make ``folder`` hold exactly ``photos`` (relative to ``root``) as links to the originals.

    Entries of ``folder`` that are not in ``photos`` are removed, missing ones made, so
    calling it again with the same photos changes nothing. Links point to absolute
    paths; where the file system refuses links, the photos are copied (with their times).
    """
    root, folder = Path(root).resolve(), Path(folder)
    want = {rel: root / rel for rel in photos}
    folder.mkdir(parents=True, exist_ok=True)
    for dirpath, dirnames, filenames in os.walk(folder, topdown=False):
        for name in filenames:
            path = Path(dirpath, name)
            rel = path.relative_to(folder).as_posix()
            target = want.get(rel)
            if target is None or not _points_to(path, target):
                path.unlink()
        for name in dirnames:
            path = Path(dirpath, name)
            if path.is_symlink():
                path.unlink()
            elif not any(path.iterdir()):
                path.rmdir()
    for rel, target in want.items():
        dest = folder / rel
        if dest.is_symlink() or dest.exists():
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            dest.symlink_to(target)
        except OSError:  # no symlinks here (some Windows set-ups): copy instead
            shutil.copy2(target, dest)
    return folder


def _points_to(path: Path, target: Path) -> bool:
    if path.is_symlink():
        return Path(os.readlink(path)) == target
    try:  # a copy made where links were refused
        st, tt = path.stat(), target.stat()
    except OSError:
        return False
    return st.st_size == tt.st_size and int(st.st_mtime) == int(tt.st_mtime)
