"""Declarative checks of settings, shared by every part that validates them.

A rule checks one value and returns it normalised (``int``, ``float``, ``bool``);
a bad value raises ``error`` (`BadInputError` by default) with the name and the
value in the message (the idea of scikit-learn's ``_parameter_constraints``).
The clusterers check their settings with `check_params`; the network-pickle
loaders check the settings stored in a file with the same rules and
``error=FileFormatError``.

    >>> Interval(numbers.Integral, 1).check("k", 5)
    5
    >>> Options(("nearest", "group")).check("outliers", "drop")
    Traceback (most recent call last):
    ...
    anonfaces.errors.BadInputError: outliers='drop' must be one of 'nearest', 'group'
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

from anonfaces.errors import BadInputError


def _is_bool(value: Any) -> bool:
    return isinstance(value, (bool, np.bool_))


@dataclass(frozen=True)
class Interval:
    """A number of ``kind`` (``numbers.Integral`` or ``numbers.Real``) in [low, high]; either end may be None."""

    kind: type
    low: float | None = None
    high: float | None = None
    closed_low: bool = True
    allow_inf: bool = False

    def check(self, name: str, value: Any, *, error: type[Exception] = BadInputError):
        what = "an integer" if self.kind is numbers.Integral else "a number"
        if _is_bool(value) or not isinstance(value, self.kind):
            raise error(f"{name}={value!r} must be {what}")
        if math.isnan(value):
            raise error(f"{name}={value!r} must be a number, not NaN")
        if not self.allow_inf and not math.isfinite(value):
            raise error(f"{name}={value!r} must be finite")
        too_low = self.low is not None and (value < self.low or (not self.closed_low and value == self.low))
        too_high = self.high is not None and value > self.high
        if too_low or too_high:
            if self.low is not None and self.high is not None and self.closed_low:
                raise error(f"{name}={value!r} must be {what} from {self.low} to {self.high}")
            if too_low:
                raise error(f"{name}={value!r} must be {'>=' if self.closed_low else '>'} {self.low}")
            raise error(f"{name}={value!r} must be <= {self.high}")
        return int(value) if self.kind is numbers.Integral else float(value)


@dataclass(frozen=True)
class Options:
    """One of a fixed set of values (``True`` is not ``1``: booleans match only booleans)."""

    values: tuple

    def check(self, name: str, value: Any, *, error: type[Exception] = BadInputError):
        if not any(value == v and _is_bool(value) == _is_bool(v) for v in self.values):
            raise error(f"{name}={value!r} must be one of {', '.join(map(repr, self.values))}")
        return value


class Boolean:
    """``True`` or ``False`` (numpy booleans too), nothing else."""

    def check(self, name: str, value: Any, *, error: type[Exception] = BadInputError) -> bool:
        if not _is_bool(value):
            raise error(f"{name}={value!r} must be true or false")
        return bool(value)


class NoneOr:
    """None, or a value ``inner`` accepts."""

    def __init__(self, inner):
        self.inner = inner

    def check(self, name: str, value: Any, *, error: type[Exception] = BadInputError):
        return None if value is None else self.inner.check(name, value, error=error)


def none_or(inner) -> NoneOr:
    return NoneOr(inner)


class _RandomState:
    def check(self, name: str, value: Any, *, error: type[Exception] = BadInputError):
        if value is None or (isinstance(value, (numbers.Integral, np.random.RandomState)) and not _is_bool(value)):
            return value
        raise error(f"{name}={value!r} must be None, an int or a RandomState")


def integer(low: int | None = None, high: int | None = None) -> Interval:
    return Interval(numbers.Integral, low, high)


def number(*, positive: bool = False) -> Interval:
    return Interval(numbers.Real, 0, closed_low=False) if positive else Interval(numbers.Real)


BOOLEAN = Boolean()
RANDOM_STATE = _RandomState()
POSITIVE_INT = integer(1)
POSITIVE_REAL = number(positive=True)
N_JOBS = none_or(integer(-1))


def check_params(estimator) -> None:
    """Check every setting of a scikit-learn style ``estimator`` against its ``_parameter_constraints``."""
    constraints = getattr(estimator, "_parameter_constraints", {})
    for name, value in estimator.get_params(deep=False).items():
        rule = constraints.get(name)
        if rule is not None:
            rule.check(name, value)
