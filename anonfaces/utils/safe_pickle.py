"""A restricted unpickler for files from elsewhere.

Plain `pickle.load` runs whatever code the file names. `safe_load` admits only
plain containers, scalars and numpy arrays; any other global the pickle asks
for is refused with `UnsafeFileError`. Callers that need more (for example the
StyleGAN network pickles) pass their own allow-list.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Iterable
from typing import Any, BinaryIO

from anonfaces.errors import UnsafeFileError

# (module, name) pairs that rebuild numpy arrays and plain containers.
NUMPY_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("builtins", "bytearray"),
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("builtins", "complex"),
        ("builtins", "slice"),
        ("collections", "OrderedDict"),
        ("_codecs", "encode"),  # how protocol 2 pickles store bytes
    }
)


class RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: BinaryIO, allowed: Iterable[tuple[str, str]] = NUMPY_GLOBALS, *, source: str = "pickle"):
        super().__init__(file)
        self._allowed = frozenset(allowed)
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        if module == "__builtin__":  # protocol 0-2 pickles name Python 2's module; the allow-list still applies
            module = "builtins"
        if (module, name) in self._allowed:
            return super().find_class(module, name)
        raise UnsafeFileError(
            f"refused to load {self._source}: it asks for {module}.{name}, which is not "
            "a plain container or numpy array; only data pickles are read (no code is run)"
        )


def safe_load(file: BinaryIO | bytes, allowed: Iterable[tuple[str, str]] = NUMPY_GLOBALS, *, source: str = "pickle") -> Any:
    """Unpickle data from ``file`` (an open binary file or bytes), admitting only ``allowed`` globals."""
    if isinstance(file, (bytes, bytearray)):
        file = io.BytesIO(file)
    try:
        return RestrictedUnpickler(file, allowed, source=source).load()
    except UnsafeFileError:
        raise
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError, TypeError, ValueError) as exc:
        raise UnsafeFileError(f"could not read {source} as a data pickle: {exc}") from exc
