"""Reading network pickles with a restricted unpickler: no stored source is executed, no other global is imported.

See `anonfaces.synthesize.stylegan.pickle` for the format.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import io
import math
import os
import pickle
import struct
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from anonfaces.errors import BadInputError, FileFormatError, UnsafeFileError
from anonfaces.synthesize.stylegan.pickle.records import (
    LEGACY_MAGIC,
    LEGACY_PROTOCOL,
    STORAGE_DTYPES,
    EasyDict,
    PersistentObject,
)
from anonfaces.synthesize.stylegan.pickle.tf import TF_STAND_INS, is_tf_pickle
from anonfaces.utils.safe_pickle import NUMPY_GLOBALS, RestrictedUnpickler


class _Storage:
    """A flat storage read from the pickle (numpy array)."""

    __slots__ = ("data",)

    def __init__(self, data: np.ndarray):
        self.data = data


class _StorageType:
    __slots__ = ("dtype", "name")

    def __init__(self, name: str):
        self.name = name
        self.dtype = STORAGE_DTYPES[name]


class _Placeholder:
    __slots__ = ("key",)

    def __init__(self, key: str):
        self.key = key


def _fail(message: str) -> None:
    raise UnsafeFileError(f"refused to load the network pickle: {message}")


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


class _StorageUnpickler(RestrictedUnpickler):
    """Reads the legacy ``torch.save`` stream inside ``_load_from_bytes``: only storage types, one storage."""

    def __init__(self, file: BinaryIO, storages: dict):
        super().__init__(file, allowed=(), source="network pickle (tensor storage)")
        self._storages = storages

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        return super().find_class(module, name)

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"):
            _fail(f"unexpected persistent id {pid!r:.80}")
        storage_type, key, location, numel = pid[1:5]
        view = pid[5] if len(pid) == 6 else None
        if not isinstance(storage_type, _StorageType) or not isinstance(key, str) or not isinstance(location, str):
            _fail("malformed storage reference")
        if not _is_int(numel) or numel < 0:
            _fail(f"bad storage size {numel!r}")
        if view is not None:
            _fail("storage views are not supported")
        if key in self._storages and self._storages[key] != (storage_type.dtype, int(numel)):
            _fail(f"storage {key!r} is declared twice with different types")
        self._storages[key] = (storage_type.dtype, int(numel))
        return _Placeholder(key)


def _load_from_bytes(data: Any) -> _Storage:
    """Stand-in for ``torch.storage._load_from_bytes``: parse one storage from the legacy layout."""
    if not isinstance(data, (bytes, bytearray)):
        _fail("a tensor storage is not stored as bytes")
    f = io.BytesIO(data)
    storages: dict[str, tuple[np.dtype, int]] = {}

    def one():
        return _StorageUnpickler(f, storages).load()

    if one() != LEGACY_MAGIC:
        _fail("a tensor storage has the wrong magic number")
    if one() != LEGACY_PROTOCOL:
        _fail("a tensor storage has an unknown protocol version")
    sys_info = one()
    little = bool(sys_info.get("little_endian", True)) if isinstance(sys_info, dict) else True
    obj = one()
    keys = one()
    if not isinstance(obj, _Placeholder) or not isinstance(keys, list) or sorted(map(str, keys)) != sorted(storages):
        _fail("a tensor storage does not have the expected layout")
    arrays = {}
    for key in keys:
        dtype, numel = storages[key]
        head = f.read(8)
        if len(head) != 8:
            _fail("a tensor storage is truncated")
        (count,) = struct.unpack("<q" if little else ">q", head)
        if count != numel:
            _fail(f"storage {key!r} holds {count} elements, its header says {numel}")
        nbytes = numel * dtype.itemsize
        raw = f.read(nbytes)
        if len(raw) != nbytes:
            _fail("a tensor storage is truncated")
        arr = np.frombuffer(raw, dtype=dtype if little else dtype.newbyteorder(">")).copy()
        if dtype == STORAGE_DTYPES["BFloat16Storage"]:
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        arrays[key] = arr
    return _Storage(arrays[obj.key])


def _rebuild_tensor(storage, storage_offset, size, stride, *_ignored) -> np.ndarray:
    """Stand-in for ``torch._utils._rebuild_tensor_v2``: a numpy copy of the strided view, bounds-checked."""
    if not isinstance(storage, _Storage):
        _fail("a tensor does not refer to a storage")
    if not (_is_int(storage_offset) and isinstance(size, (tuple, list)) and isinstance(stride, (tuple, list))):
        _fail("a tensor has a malformed size or stride")
    if len(size) != len(stride) or not all(_is_int(v) and v >= 0 for v in (*size, *stride)) or len(size) > 8:
        _fail("a tensor has a malformed size or stride")
    flat = storage.data
    numel = math.prod(size)
    if numel:
        last = storage_offset + sum((n - 1) * s for n, s in zip(size, stride))
        if storage_offset < 0 or last >= flat.size:
            _fail("a tensor reaches outside its storage")
        view = np.lib.stride_tricks.as_strided(flat[storage_offset:], shape=tuple(size),
                                               strides=tuple(s * flat.itemsize for s in stride), writeable=False)
        return np.array(view)
    return np.zeros(tuple(size), dtype=flat.dtype)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, *_state) -> np.ndarray:
    if not isinstance(data, np.ndarray):
        _fail("a parameter does not hold a tensor")
    return data


def _reconstruct_persistent_obj(meta) -> PersistentObject:
    """Stand-in for NVIDIA's ``_reconstruct_persistent_obj``: keep the data, never execute ``module_src``."""
    if not isinstance(meta, dict) or meta.get("type") != "class":
        _fail("a persistent object is not of type 'class'")
    class_name, state, src = meta.get("class_name"), meta.get("state"), meta.get("module_src", "")
    if not isinstance(class_name, str) or not class_name.isidentifier():
        _fail(f"bad class name {class_name!r:.60}")
    if not isinstance(state, dict):
        _fail(f"{class_name} has no state dict")
    version = meta.get("version")
    if not _is_int(version):
        _fail(f"{class_name} has no format version")
    sha = hashlib.sha1(src.encode("utf-8", "replace")).hexdigest() if isinstance(src, str) else ""
    return PersistentObject(class_name=class_name, state=dict(state), version=int(version), module_src_sha1=sha)


def _device(*args) -> str:
    return str(args[0]) if args else "cpu"


#: (module, name) -> inert stand-in; together with numpy's data globals, all the reader admits
#: (``dnnlib.tflib.network.Network`` of the TensorFlow pickles is added from `TF_STAND_INS`)
STAND_INS: dict[tuple[str, str], Any] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
    ("dnnlib.util", "EasyDict"): EasyDict,
    ("torch.storage", "_load_from_bytes"): _load_from_bytes,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch", "device"): _device,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    **TF_STAND_INS,
}


class NetworkUnpickler(RestrictedUnpickler):
    """Restricted unpickler for network pickles: `STAND_INS` plus numpy data, nothing else."""

    def __init__(self, file: BinaryIO, *, source: str = "network pickle"):
        super().__init__(file, NUMPY_GLOBALS, source=source)

    def find_class(self, module: str, name: str) -> Any:
        stand_in = STAND_INS.get((module, name))
        if stand_in is not None:
            return stand_in
        return super().find_class(module, name)


def read_network_pickle(file: str | os.PathLike | BinaryIO | bytes) -> dict | tuple:
    """Read a network pickle as data (see module docstring); the format is detected from the content.

    Returns, for a stylegan2-ada-pytorch pickle, a dict whose networks are
    `PersistentObject` records with numpy arrays; for a StyleGAN (v1) TensorFlow
    pickle, the tuple ``(G, D, Gs)`` of `TFNetwork` records. Raises
    `UnsafeFileError` for anything outside the formats (no code from the file
    runs) and `FileFormatError` if the top level is neither.
    """
    with contextlib.ExitStack() as stack:
        if isinstance(file, (bytes, bytearray)):
            fh, name = io.BytesIO(file), "network pickle"
        elif isinstance(file, (str, os.PathLike)):
            path = Path(file)
            if not path.is_file():
                raise BadInputError(f"network pickle {str(path)!r} does not exist")
            fh, name = stack.enter_context(open(path, "rb")), str(path)
        else:
            fh, name = file, getattr(file, "name", "network pickle")
        try:
            data = NetworkUnpickler(fh, source=name).load()
        except (UnsafeFileError, FileFormatError):
            raise
        except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError, KeyError,
                TypeError, ValueError, RecursionError, struct.error) as exc:
            raise UnsafeFileError(f"could not read {name} as a network pickle: {type(exc).__name__}: {exc}") from exc
    if is_tf_pickle(data):
        return data
    if isinstance(data, tuple) and len(data) == 3:
        raise FileFormatError(f"{name} holds a tuple of three, like a TensorFlow network pickle (G, D, Gs), but not "
                              "of dnnlib.tflib.network.Network objects; see stylegan/README.md")
    if not isinstance(data, dict):
        raise FileFormatError(f"{name} holds a {type(data).__name__}, not the dict of networks of a network pickle")
    return data

