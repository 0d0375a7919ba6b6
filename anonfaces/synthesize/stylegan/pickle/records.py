"""Records and constants of NVIDIA's stylegan2-ada-pytorch network-pickle format (shared by the reader and the writer).

The format itself is described in `anonfaces.synthesize.stylegan.pickle` (the package docstring).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from anonfaces.errors import FileFormatError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
PERSISTENCE_VERSION = 6  # torch_utils.persistence's format version in stylegan2-ada-pytorch
PICKLE_KEYS = ("G", "D", "G_ema", "augment_pipe", "training_set_kwargs")

#: torch storage class name -> numpy dtype (little-endian)
STORAGE_DTYPES = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "BFloat16Storage": np.dtype("<u2"),  # widened to float32 on read
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}
_DTYPE_TO_STORAGE = {v: k for k, v in STORAGE_DTYPES.items() if k != "BFloat16Storage"}


# --------------------------------------------------------------------------- records


class EasyDict(dict):
    """Stand-in for ``dnnlib.util.EasyDict``: a plain dict (attribute access for convenience)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setstate__(self, state) -> None:  # pickled EasyDicts carry no instance state; ignore any
        pass


@dataclass
class PersistentObject:
    """One network from a pickle, as data: its class name and its stored ``__dict__``.

    Nothing from the pickle's source is run; ``module_src_sha1`` only identifies it.
    """

    class_name: str
    state: dict
    version: int = PERSISTENCE_VERSION
    module_src_sha1: str = ""

    @property
    def init_kwargs(self) -> dict:
        kwargs = self.state.get("_init_kwargs", {})
        return dict(kwargs) if isinstance(kwargs, dict) else {}

    @property
    def init_args(self) -> tuple:
        args = self.state.get("_init_args", ())
        return tuple(args) if isinstance(args, (tuple, list)) else ()

    def _dict(self, key: str) -> dict:
        value = self.state.get(key) or {}
        if not isinstance(value, dict):
            raise FileFormatError(f"{self.class_name}.{key} is a {type(value).__name__}, not a dict")
        return value

    def children(self) -> dict[str, PersistentObject]:
        out = {}
        for name, child in self._dict("_modules").items():
            if child is None:
                continue
            if not isinstance(child, PersistentObject):
                raise FileFormatError(f"submodule {name!r} of {self.class_name} is a {type(child).__name__}")
            out[name] = child
        return out

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, PersistentObject]]:
        yield prefix, self
        for name, child in self.children().items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def arrays(self) -> dict[str, np.ndarray]:
        """Parameters and persistent buffers by dotted name, like ``Module.state_dict()``."""
        out: dict[str, np.ndarray] = {}
        for prefix, module in self.named_modules():
            skip = module.state.get("_non_persistent_buffers_set") or set()
            for kind in ("_parameters", "_buffers"):
                for name, value in module._dict(kind).items():
                    if value is None or (kind == "_buffers" and name in skip):
                        continue
                    if not isinstance(value, np.ndarray):
                        raise FileFormatError(f"{prefix}.{name} is a {type(value).__name__}, not a tensor")
                    out[f"{prefix}.{name}" if prefix else name] = value
        return out

