"""Writing network pickles from our modules (the same opcodes and global names as NVIDIA's training loop).

Used by tests and for exchanging generators. ``module_src`` is a placeholder, so NVIDIA's own
loader cannot rebuild our files, only ours can. See `anonfaces.synthesize.stylegan.pickle` for the format.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
from typing import Any, ClassVar

import numpy as np

from anonfaces.errors import BadInputError
from anonfaces.synthesize.stylegan.pickle.records import (
    _DTYPE_TO_STORAGE,
    LEGACY_MAGIC,
    LEGACY_PROTOCOL,
    EasyDict,
    PersistentObject,
)
from anonfaces.utils.atomic import atomic_open


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
