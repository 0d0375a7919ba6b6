"""NVIDIA's ``stylegan2-ada-pytorch`` network pickles, read without running their code.

Format (as written by NVIDIA's training loop with ``pickle.dump``): a dict with
``G``, ``D``, ``G_ema`` (networks), ``augment_pipe`` (network or None) and
``training_set_kwargs`` (dict). Each network is stored by NVIDIA's
``torch_utils.persistence`` wrapper as a call
``torch_utils.persistence._reconstruct_persistent_obj(meta)`` where ``meta``
holds ``type='class'``, ``version``, ``class_name``, the Python source of the
module that defined it (``module_src``, which NVIDIA's loader executes) and
``state``: the module's ``__dict__`` (``_parameters``, ``_buffers``,
``_modules``, plain settings, ``_init_kwargs``). Tensors are
``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)``,
parameters ``torch._utils._rebuild_parameter(tensor, ...)``, and each storage
``torch.storage._load_from_bytes(b)`` with ``b`` in torch's legacy
(non-zip) ``torch.save`` layout: magic number, protocol version, system
info, a pickle whose persistent id names the storage type, the list of
storage keys, then per key an int64 element count and the raw bytes.
Settings dicts are ``dnnlib.util.EasyDict``.

`read_network_pickle` reads this with a restricted unpickler that maps exactly
those globals onto inert stand-ins: no stored source is executed and no other
global (``os.system``, ``builtins.eval``, ...) is ever imported; anything else
raises `UnsafeFileError`. The same reader admits NVIDIA's StyleGAN (v1)
TensorFlow pickles, a tuple ``(G, D, Gs)`` of ``dnnlib.tflib.network.Network``
objects, whose one extra global it maps onto `tf_network_pickle.TFNetwork`
(see that module; their stored source is not executed either). PyTorch
networks come back as `PersistentObject` records holding numpy arrays;
`load_generator` checks the generator's settings and shapes and loads them into
this project's `Generator` (TensorFlow ones: `loader_v1`, `GeneratorV1`). `write_network_pickle`
writes the same structure (the same opcodes and global names) from our modules,
for tests and for exchanging generators; its ``module_src`` is a placeholder,
so NVIDIA's own loader cannot rebuild our files, only ours can.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import io
import logging
import math
import os
import pickle
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

import numpy as np

from anonfaces.errors import BadInputError, FileFormatError, UnsafeFileError
from anonfaces.synthesize.stylegan.tf_network_pickle import TF_STAND_INS, is_tf_pickle
from anonfaces.utils.atomic import atomic_open
from anonfaces.utils.safe_pickle import NUMPY_GLOBALS, RestrictedUnpickler

log = logging.getLogger(__name__)

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


# --------------------------------------------------------------------------- reading


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


# --------------------------------------------------------------------------- writing


class _GlobalRef:
    """A global name written into a pickle (``module.name``) without importing it."""

    _cache: ClassVar[dict[tuple[str, str], _GlobalRef]] = {}

    def __new__(cls, module: str, name: str):
        key = (module, name)
        if key not in cls._cache:
            obj = super().__new__(cls)
            obj.module, obj.name = module, name
            cls._cache[key] = obj
        return cls._cache[key]

    def __call__(self, *args, **kwargs):  # only to satisfy pickle's "callable" check
        raise TypeError(f"{self.module}.{self.name} is a reference, not a function")


class _StorageOut:
    def __init__(self, flat: np.ndarray):
        self.flat = flat

    def __reduce__(self):
        return _GlobalRef("torch.storage", "_load_from_bytes"), (_legacy_storage_bytes(self.flat),)


class _TensorOut:
    def __init__(self, array: np.ndarray, parameter: bool):
        self.array = np.array(array, order="C")  # (ascontiguousarray would turn 0-d into 1-d)
        self.parameter = parameter

    def __reduce__(self):
        if self.parameter:
            return (_GlobalRef("torch._utils", "_rebuild_parameter"),
                    (_TensorOut(self.array, False), False, collections.OrderedDict()))
        a = self.array
        strides = tuple(s // a.itemsize for s in a.strides) if a.ndim else ()
        return (_GlobalRef("torch._utils", "_rebuild_tensor_v2"),
                (_StorageOut(a.reshape(-1)), 0, tuple(a.shape), strides, False, collections.OrderedDict()))


class _PersistentOut:
    def __init__(self, meta: dict):
        self.meta = meta

    def __reduce__(self):
        return _GlobalRef("torch_utils.persistence", "_reconstruct_persistent_obj"), (self.meta,), None


def _save_global_ref(pickler, obj: _GlobalRef) -> None:
    if pickler.proto >= 4:
        pickler.save(obj.module)
        pickler.save(obj.name)
        pickler.write(pickle.STACK_GLOBAL)
    else:
        pickler.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
    pickler.memoize(obj)


def _save_easydict(pickler, obj: EasyDict) -> None:
    # what pickle writes for a dict subclass: cls.__new__(cls), then its items
    pickler.save(_GlobalRef("dnnlib.util", "EasyDict"))
    pickler.save(())
    pickler.write(pickle.NEWOBJ)
    pickler.memoize(obj)
    if obj:
        pickler.write(pickle.MARK)
        for key, value in obj.items():
            pickler.save(key)
            pickler.save(value)
        pickler.write(pickle.SETITEMS)


class _Writer(pickle._Pickler):  # the pure-Python pickler, so that globals can be written by name
    dispatch: ClassVar[dict] = dict(pickle._Pickler.dispatch)
    dispatch[_GlobalRef] = _save_global_ref
    dispatch[EasyDict] = _save_easydict


class _StorageWriter(_Writer):
    def __init__(self, file, key: str, flat: np.ndarray):
        super().__init__(file, protocol=2)
        self._key, self._flat = key, flat

    def persistent_id(self, obj):
        if obj is self._flat:
            name = _DTYPE_TO_STORAGE.get(self._flat.dtype.newbyteorder("<"))
            if name is None:
                raise BadInputError(f"cannot store a tensor of dtype {self._flat.dtype}")
            return ("storage", _GlobalRef("torch", name), self._key, "cpu", int(self._flat.size), None)
        return None


def _legacy_storage_bytes(flat: np.ndarray) -> bytes:
    """One storage in torch's legacy ``torch.save`` layout (what ``_load_from_bytes`` expects)."""
    flat = np.ascontiguousarray(flat).astype(flat.dtype.newbyteorder("<"), copy=False)
    out = io.BytesIO()
    for value in (LEGACY_MAGIC, LEGACY_PROTOCOL,
                  {"protocol_version": LEGACY_PROTOCOL, "little_endian": True,
                   "type_sizes": {"short": 2, "int": 4, "long": 4}}):
        pickle.dump(value, out, protocol=2)
    key = "0"
    _StorageWriter(out, key, flat).dump(flat)
    pickle.dump([key], out, protocol=2)
    out.write(struct.pack("<q", flat.size))
    out.write(flat.tobytes())
    return out.getvalue()


#: placeholder for the source NVIDIA's wrapper stores with each network (ours is never run by us)
MODULE_SRC = "# StyleGAN2 generator written by anonfaces (anonfaces.synthesize.stylegan.networks); source not included\n"

# the settings torch keeps in every Module.__dict__ besides parameters, buffers and submodules
_HOOK_DICTS = ("_backward_pre_hooks", "_backward_hooks", "_forward_hooks", "_forward_hooks_with_kwargs",
               "_forward_hooks_always_called", "_forward_pre_hooks", "_forward_pre_hooks_with_kwargs",
               "_state_dict_hooks", "_state_dict_pre_hooks", "_load_state_dict_pre_hooks",
               "_load_state_dict_post_hooks")


def _plain(value):
    if isinstance(value, (bool, int, float, str, type(None))):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    return False


def record_from_module(module) -> PersistentObject:
    """A `PersistentObject` from one of our torch modules (parameters, buffers, settings, submodules)."""
    state: dict[str, Any] = {"training": False}
    state["_parameters"] = {n: (None if p is None else p.detach().cpu().numpy()) for n, p in module._parameters.items()}
    state["_buffers"] = {n: (None if b is None else b.detach().cpu().numpy()) for n, b in module._buffers.items()}
    state["_non_persistent_buffers_set"] = set(module._non_persistent_buffers_set)
    for name in _HOOK_DICTS:
        state[name] = collections.OrderedDict()
    state["_is_full_backward_hook"] = None
    state["_modules"] = {n: (None if m is None else record_from_module(m)) for n, m in module._modules.items()}
    for name, value in vars(module).items():
        if not name.startswith("_") and name not in ("training", "init_kwargs") and _plain(value):
            state[name] = value
    kwargs = dict(getattr(module, "init_kwargs", {}))
    for key in ("mapping_kwargs", "synthesis_kwargs"):
        if key in kwargs:
            kwargs[key] = EasyDict(kwargs[key])
    state["_init_args"] = ()
    state["_init_kwargs"] = kwargs
    name = getattr(module, "pickle_class_name", "") or type(module).__name__
    return PersistentObject(class_name=name, state=state)


def _to_output(value):
    """Turn records and arrays into the objects whose pickling matches NVIDIA's."""
    if isinstance(value, PersistentObject):
        state = {}
        for key, item in value.state.items():
            if key in ("_parameters", "_buffers"):
                state[key] = {n: (None if a is None else _TensorOut(a, key == "_parameters")) for n, a in item.items()}
            else:
                state[key] = _to_output(item)
        meta = {"type": "class", "version": value.version, "module_src": MODULE_SRC,
                "class_name": value.class_name, "state": state}
        return _PersistentOut(meta)
    if isinstance(value, np.ndarray):
        return _TensorOut(value, False)
    if isinstance(value, EasyDict):
        return EasyDict({k: _to_output(v) for k, v in value.items()})
    if isinstance(value, collections.OrderedDict):
        return collections.OrderedDict((k, _to_output(v)) for k, v in value.items())
    if isinstance(value, dict):
        return {k: _to_output(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_output(v) for v in value)
    return value


def write_network_pickle(path: str | os.PathLike, *, G_ema, G=None, D=None, augment_pipe=None,
                         training_set_kwargs: dict | None = None, protocol: int = 4) -> None:
    """Write networks in the stylegan2-ada-pytorch pickle structure (atomically).

    ``G_ema``/``G``/``D``/``augment_pipe`` are our torch modules or `PersistentObject`
    records (``G`` defaults to ``G_ema``; ``D``/``augment_pipe`` may be None).
    """
    def rec(m):
        if m is None or isinstance(m, PersistentObject):
            return m
        return record_from_module(m)

    g_ema = rec(G_ema)
    data = {"G": rec(G) if G is not None else g_ema, "D": rec(D), "G_ema": g_ema, "augment_pipe": rec(augment_pipe),
            "training_set_kwargs": dict(training_set_kwargs or {})}
    with atomic_open(path, "wb") as fh:
        _Writer(fh, protocol=protocol).dump(_to_output(data))
