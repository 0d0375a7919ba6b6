"""The settings a network file stores, checked with the project's shared rules (`anonfaces.utils.checks`).

Both loaders (`loader` for stylegan2-ada-pytorch pickles, `loader_v1` for StyleGAN v1
TensorFlow pickles) use these, so a setting is refused the same way whichever format
holds it: `FileFormatError` naming the setting and the stored value.
"""

from __future__ import annotations

from typing import Any

from anonfaces.errors import FileFormatError
from anonfaces.utils.checks import BOOLEAN, Options, integer, number


def _label(name: str) -> str:
    return f"generator setting {name}"


def check_int(value: Any, name: str, lo: int, hi: int) -> int:
    return integer(lo, hi).check(_label(name), value, error=FileFormatError)


def check_number(value: Any, name: str, *, positive: bool = True) -> float:
    return number(positive=positive).check(_label(name), value, error=FileFormatError)


def check_bool(value: Any, name: str) -> bool:
    return BOOLEAN.check(_label(name), value, error=FileFormatError)


def check_choice(value: Any, name: str, choices) -> Any:
    return Options(tuple(choices)).check(_label(name), value, error=FileFormatError)
