"""Shared pieces of the photo benchmarks (encode, anonymize): the same LFW photos on both sides."""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_LFW = REPO.parent / "shared" / "data" / "lfw"


def pick_photos(lfw: Path, n: int, seed: int = 0) -> list[Path]:
    """``n`` LFW photos drawn with a fixed seed (all of them when ``n`` is larger)."""
    photos = sorted(lfw.glob("*/*.jpg"))
    if n >= len(photos):
        return photos
    rng = np.random.default_rng(seed)
    return [photos[i] for i in sorted(rng.choice(len(photos), size=n, replace=False))]


def add_photo_options(ap: argparse.ArgumentParser, *, photos: int) -> None:
    """``--lfw``, ``--photos`` and ``--jobs``, the options every photo benchmark takes."""
    ap.add_argument("--lfw", type=Path, default=DEFAULT_LFW, help="any folder of photos in person sub-folders")
    ap.add_argument("--photos", type=int, default=photos)
    ap.add_argument("--jobs", type=int, default=2)


def chosen_photos(args: argparse.Namespace) -> list[Path]:
    """The photos ``add_photo_options`` asked for; exits with a message when the folder is missing."""
    if not args.lfw.is_dir():
        sys.exit(f"LFW not found at {args.lfw}; pass --lfw (any folder of photos in person sub-folders works)")
    return pick_photos(args.lfw, args.photos)


def link_dataset(photos: list[Path], folder: Path) -> Path:
    """A dataset folder of symlinks to ``photos`` in their person sub-folders."""
    for p in photos:
        (folder / p.parent.name).mkdir(parents=True, exist_ok=True)
        (folder / p.parent.name / p.name).symlink_to(p)
    return folder


def machine() -> str:
    return f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores, Python {platform.python_version()}"
