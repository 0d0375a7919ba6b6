"""Pieces the sub-commands share: turning library errors into clean exits."""

from __future__ import annotations

import functools
from collections.abc import Callable

import click

from anonfaces.errors import AnonfacesError


class UserError(click.ClickException):
    """A problem with the user's input: message and exit code 2, no traceback."""

    exit_code = 2


def user_errors(func: Callable) -> Callable:
    """Run ``func``; an `AnonfacesError` becomes ``Error: <message>`` and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except AnonfacesError as exc:
            raise UserError(str(exc)) from exc
        except KeyboardInterrupt:
            raise UserError("interrupted; completed work is kept (use --resume where offered)") from None

    return wrapper


def parse_params(items: tuple[str, ...]) -> dict:
    """Turn ``("eps=0.4", "min_samples=3")`` into ``{"eps": 0.4, "min_samples": 3}``.

    Values are read as int, float, bool (true/false) or None (none) where they look so;
    anything else stays a string.
    """
    out: dict = {}
    for item in items:
        if "=" not in item:
            raise UserError(f"--param {item!r} is not of the form name=value")
        name, value = item.split("=", 1)
        out[name.strip()] = _parse_value(value.strip())
    return out


def _parse_value(value: str):
    low = value.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value
