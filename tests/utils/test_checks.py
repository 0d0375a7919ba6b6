"""The shared settings rules: the clusterers and both network-pickle loaders refuse values the same way."""

import numbers

import numpy as np
import pytest

from anonfaces.errors import BadInputError, FileFormatError
from anonfaces.synthesize.stylegan import _settings
from anonfaces.utils.checks import (
    BOOLEAN,
    RANDOM_STATE,
    Interval,
    Options,
    integer,
    none_or,
    number,
)


def test_interval_returns_normalised_values_and_names_the_bad_one():
    assert integer(1).check("k", np.int64(5)) == 5 and type(integer(1).check("k", np.int64(5))) is int
    assert number(positive=True).check("eps", np.float32(0.5)) == pytest.approx(0.5)
    for bad, message in [(0, "k=0 must be >= 1"), (True, "k=True must be an integer"), (2.0, "k=2.0 must be an integer")]:
        with pytest.raises(BadInputError, match=message):
            integer(1).check("k", bad)
    with pytest.raises(BadInputError, match="must be an integer from 0 to 8"):
        integer(0, 8).check("layers", 9)
    with pytest.raises(BadInputError, match="eps=0 must be > 0"):
        number(positive=True).check("eps", 0)
    with pytest.raises(BadInputError, match="not NaN"):
        number().check("x", float("nan"))
    with pytest.raises(BadInputError, match="finite"):
        number().check("x", float("inf"))
    assert Interval(numbers.Real, 0, allow_inf=True).check("x", float("inf")) == float("inf")


def test_options_booleans_and_none():
    assert Options(("a", "b")).check("mode", "b") == "b"
    with pytest.raises(BadInputError, match="mode='c' must be one of 'a', 'b'"):
        Options(("a", "b")).check("mode", "c")
    with pytest.raises(BadInputError):  # True == 1 in Python, but a boolean is not a choice of numbers
        Options((0, 1)).check("flag", True)
    assert BOOLEAN.check("flag", np.bool_(True)) is True
    with pytest.raises(BadInputError, match="true or false"):
        BOOLEAN.check("flag", 1)
    assert none_or(integer(1)).check("n", None) is None
    with pytest.raises(BadInputError):
        none_or(integer(1)).check("n", 0)
    assert RANDOM_STATE.check("random_state", 3) == 3
    with pytest.raises(BadInputError):
        RANDOM_STATE.check("random_state", "3")


def test_error_type_is_the_callers():
    with pytest.raises(FileFormatError, match="generator setting z_dim=-1 must be an integer from 0 to 4096"):
        _settings.check_int(-1, "z_dim", 0, 4096)
    with pytest.raises(FileFormatError, match="generator setting fused_scale=1 must be one of True, False, 'auto'"):
        _settings.check_choice(1, "fused_scale", (True, False, "auto"))
    assert _settings.check_number(0.0, "fmap_decay", positive=False) == 0.0
    with pytest.raises(FileFormatError):
        _settings.check_number(0.0, "lr_multiplier")
