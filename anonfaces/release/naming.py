"""Neutral output names: a keyed hash of each photo's relative path.

``names="hash"`` (the default) names every output ``<hash><suffix>``, where the
hash is an HMAC-SHA256 of the photo's dataset-relative path under a secret key,
written in 20 letters drawn from 20 consonants (about 86 bits). The names hold no
digits and no vowels, so no person's name, file stem or number of the dataset can
appear in them by chance, and without the key they cannot be linked back to the
paths (the private ``mapping.csv``/``files.csv`` hold the link). The same key gives
the same names on every run; another key gives unrelated names. The key is kept
in the private folder (``release.key``, 64 hex digits) and reused when present.

``names="keep"`` keeps the relative paths as they are (the user asks for names
that may identify people by name).

Folders are dropped unless ``keep_folders``; even then the first folder level, which
anonfaces reads as the person (`anonfaces.utils.images.identity_of`), is never kept
(a neutral per-person folder would still group one person's photos), nor any
deeper folder whose name contains a person's label or a file stem of the dataset.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from pathlib import Path

from anonfaces.errors import BadInputError
from anonfaces.utils.atomic import atomic_write_text
from anonfaces.utils.images import identity_of

NAMING_MODES = ("hash", "keep")
#: Letters of the hashed names: no digits, no vowels.
ALPHABET = "bcdfghjklmnpqrstvwxz"
NAME_LENGTH = 20
KEY_BYTES = 32
#: Names shorter than this are matched as whole words only (see `name_contains`).
MIN_SUBSTRING = 4


def new_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def read_key(path: str | os.PathLike) -> bytes:
    """The key stored in ``path`` (64 hex digits); a clear error when the file is not one."""
    path = Path(path)
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInputError(f"cannot read the naming key {path}: {exc}") from None
    if not re.fullmatch(rf"[0-9a-fA-F]{{{2 * KEY_BYTES}}}", text):
        raise BadInputError(f"{path} is not a naming key ({2 * KEY_BYTES} hex digits expected)")
    return bytes.fromhex(text)


def write_key(path: str | os.PathLike, key: bytes) -> Path:
    """Write ``key`` as hex, atomically, readable by the owner only."""
    path = Path(path)
    atomic_write_text(path, key.hex() + "\n")
    os.chmod(path, 0o600)
    return path


def load_or_create_key(path: str | os.PathLike) -> tuple[bytes, bool]:
    """The key in ``path``, or a new random one written there; returns (key, created)."""
    path = Path(path)
    if path.exists():
        return read_key(path), False
    key = new_key()
    write_key(path, key)
    return key, True


def hashed_stem(rel: str, key: bytes) -> str:
    """The neutral name (without suffix) of the dataset-relative path ``rel`` under ``key``."""
    if not isinstance(key, bytes) or len(key) < 16:
        raise BadInputError("the naming key must be at least 16 bytes")
    value = int.from_bytes(hmac.new(key, rel.encode("utf-8"), hashlib.sha256).digest(), "big")
    letters = []
    for _ in range(NAME_LENGTH):
        value, digit = divmod(value, len(ALPHABET))
        letters.append(ALPHABET[digit])
    return "".join(letters)


def person_names(paths: list[str]) -> set[str]:
    """What in a dataset names people: its identity labels (first folder level) and its file stems."""
    names = {identity_of(p) for p in paths} - {""}
    names |= {Path(p).stem for p in paths}
    return {n for n in names if n}


def _normalise(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", " ", text.lower()).strip()


class NameMatcher:
    """Finds any of ``words`` in a name, case and punctuation ignored (see `name_contains`).

    Built once for many names: each name's substrings are looked up in a set, so a
    check costs the same for 10 words or 20,000 (every LFW name and file stem).
    """

    def __init__(self, words):
        self._long: dict[str, str] = {}
        self._short: dict[str, str] = {}
        for word in sorted(words):
            w = _normalise(word)
            if w:
                (self._long if len(w.replace(" ", "")) >= MIN_SUBSTRING else self._short).setdefault(w, word)
        self._max = max((len(w) for w in self._long), default=0)

    def find(self, name: str) -> str | None:
        norm = _normalise(name)
        for token in norm.split():
            if token in self._short:
                return self._short[token]
            if token in self._long:
                return self._long[token]
        n = len(norm)
        for i in range(n):
            for j in range(min(n, i + self._max), i + MIN_SUBSTRING - 1, -1):
                hit = self._long.get(norm[i:j])
                if hit is not None:
                    return hit
        return None


def name_contains(name: str, words) -> str | None:
    """One of ``words`` found in ``name`` (case and punctuation ignored), else None.

    Words of `MIN_SUBSTRING` characters or more count anywhere inside ``name``;
    shorter ones (``"01"``) only as whole words, or every name would match.
    """
    return NameMatcher(words).find(name)


def _kept_folders(rel: str, identifying: NameMatcher) -> list[str]:
    folders = rel.split("/")[:-1]
    if identity_of(rel):
        folders = folders[1:]  # the person level
    return [f for f in folders if identifying.find(f) is None]


def output_names(paths: list[str], *, names: str = "hash", key: bytes | None = None,
                 keep_folders: bool = False) -> dict[str, str]:
    """Output path (relative to OUT) of every dataset-relative path in ``paths``.

    See the module docstring for the rules. Raises `BadInputError` for an unknown
    mode or a missing key; the outputs are distinct for distinct inputs.
    """
    if names not in NAMING_MODES:
        raise BadInputError(f"names={names!r} must be one of {', '.join(NAMING_MODES)}")
    paths = list(dict.fromkeys(paths))
    if names == "keep":
        return {p: p for p in paths}
    if key is None:
        raise BadInputError("names='hash' needs a key (see load_or_create_key)")
    identifying = NameMatcher(person_names(paths) if keep_folders else ())
    result = {}
    for p in paths:
        folders = _kept_folders(p, identifying) if keep_folders else []
        result[p] = "/".join([*folders, hashed_stem(p, key) + Path(p).suffix.lower()])
    if len(set(result.values())) != len(result):  # 86-bit names: a collision means a bug, not bad luck
        raise RuntimeError("two photos were given the same output name")
    return result
