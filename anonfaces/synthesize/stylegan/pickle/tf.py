"""StyleGAN (v1) TensorFlow network pickles, read as data without TensorFlow.

Format (NVIDIA's ``NVlabs/stylegan``, ``training/misc.py`` ``save_pkl`` and
``dnnlib/tflib/network.py`` ``Network.__getstate__``): a pickled tuple
``(G, D, Gs)``; ``Gs`` is the long-term average of the generator, the one to
render with. Each is a ``dnnlib.tflib.network.Network`` object, pickled as
``Network.__new__(Network)`` followed by ``__setstate__(state)`` with ``state`` a
dict of exactly

* ``version`` (2 or 3; StyleGAN2's TensorFlow code writes 4 with the same keys), ``name`` (``"G"``, ``"Gs"``, ``"G_mapping"``, ...),
* ``static_kwargs``: the keyword arguments of the build function (plain values),
* ``components``: sub-networks by role (``{"mapping": Network, "synthesis": Network}``
  for the generator; absent in version 2),
* ``build_module_src`` / ``build_func_name``: the Python source of the module
  defining the build function (``training/networks_stylegan.py``) and the
  function's name (``"G_style"``); NVIDIA's ``__setstate__`` executes that source,
* ``variables``: a list of ``(local name, numpy array)`` pairs, the network's own
  TensorFlow variables (``"Dense0/weight"``, ``"4x4/Const/const"``, ``"lod"``, ...).

`TFNetwork` is the inert stand-in the restricted unpickler of `reader`
maps ``dnnlib.tflib.network.Network`` onto: its ``__setstate__`` only checks the
state's keys and types and keeps the data. ``build_module_src`` is never
executed (only its SHA-1 is kept); any other key, or a value of the wrong kind,
raises `UnsafeFileError`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

import numpy as np

from anonfaces.errors import UnsafeFileError

#: the global name NVIDIA's pickles use for their network class
NETWORK_GLOBAL = ("dnnlib.tflib.network", "Network")
STATE_KEYS = frozenset({"version", "name", "static_kwargs", "components", "build_module_src", "build_func_name",
                        "variables"})
_REQUIRED_KEYS = STATE_KEYS - {"components"}  # version-2 states have no components
_NAME = re.compile(r"^[A-Za-z0-9_.\-]*$")  # what Network._init_graph asserts of a network name
_VARIABLE = re.compile(r"^[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)*$")


def _fail(message: str) -> None:
    raise UnsafeFileError(f"refused to load the TensorFlow network pickle: {message}")


def _plain(value, depth: int = 0) -> bool:
    """Plain settings: scalars, strings, None, and lists/tuples/str-keyed dicts of them."""
    if depth > 8:
        return False
    if value is None or isinstance(value, (bool, int, float, str, np.bool_, np.integer, np.floating)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v, depth + 1) for k, v in value.items())
    return False


@dataclass
class TFNetwork:
    """One ``dnnlib.tflib.network.Network`` from a pickle, as data (nothing from it is run).

    ``variables`` maps the network's own variable names to numpy arrays (0-d for
    scalars such as ``lod``); `all_variables` adds the components' variables
    under ``<component name>/``, as ``Network.vars`` does.
    """

    name: str = ""
    build_func_name: str = ""
    static_kwargs: dict = field(default_factory=dict)
    components: dict = field(default_factory=dict)
    variables: dict = field(default_factory=dict)
    version: int = 3
    build_module_src_sha1: str = ""

    def __setstate__(self, state) -> None:
        """Stand-in for ``Network.__setstate__``: check the state and keep its data."""
        if not isinstance(state, dict):
            _fail(f"a Network's state is a {type(state).__name__}, not a dict")
        keys = set(state)
        if keys - STATE_KEYS:
            _fail(f"a Network's state has unexpected keys {sorted(map(repr, keys - STATE_KEYS))}")
        if _REQUIRED_KEYS - keys:
            _fail(f"a Network's state lacks {sorted(_REQUIRED_KEYS - keys)}")
        version, name, func = state["version"], state["name"], state["build_func_name"]
        if isinstance(version, bool) or version not in (2, 3, 4):
            _fail(f"Network state version {version!r:.40} is not 2, 3 or 4")
        if not isinstance(name, str) or not _NAME.match(name):
            _fail(f"bad network name {name!r:.60}")
        if not isinstance(func, str) or not func.isidentifier():
            _fail(f"bad build function name {func!r:.60}")
        src = state["build_module_src"]
        if not isinstance(src, str):
            _fail(f"{name}: build_module_src is a {type(src).__name__}, not text")
        kwargs = state["static_kwargs"]
        if not isinstance(kwargs, dict) or not _plain(kwargs):
            _fail(f"{name}: static_kwargs must be a dict of plain values")
        components = state.get("components") or {}
        if not isinstance(components, dict) or not all(isinstance(k, str) and isinstance(v, TFNetwork)
                                                       for k, v in components.items()):
            _fail(f"{name}: components must be a dict of Networks")
        variables = state["variables"]
        if not isinstance(variables, (list, tuple)):
            _fail(f"{name}: variables must be a list of (name, array) pairs")
        out: dict[str, np.ndarray] = {}
        for item in variables:
            if not (isinstance(item, (list, tuple)) and len(item) == 2):
                _fail(f"{name}: variables must be a list of (name, array) pairs")
            var, value = item
            if not isinstance(var, str) or not _VARIABLE.match(var):
                _fail(f"{name}: bad variable name {var!r:.60}")
            if var in out:
                _fail(f"{name}: variable {var!r} is stored twice")
            if isinstance(value, np.generic):
                value = np.asarray(value)
            if not isinstance(value, np.ndarray) or value.dtype.kind not in "biuf":
                _fail(f"{name}: variable {var!r} is a {type(value).__name__}, not a numeric array")
            out[var] = value
        self.version = int(version)
        self.name = name
        self.build_func_name = func
        self.static_kwargs = dict(kwargs)
        self.components = dict(components)
        self.variables = out
        self.build_module_src_sha1 = hashlib.sha1(src.encode("utf-8", "replace")).hexdigest()

    def all_variables(self, _path: tuple = ()) -> dict[str, np.ndarray]:
        """Own variables plus every component's, under ``<component name>/`` (like ``Network.vars``)."""
        if any(n is self for n in _path) or len(_path) > 8:
            raise UnsafeFileError(f"refused to load the TensorFlow network pickle: network {self.name!r} "
                                  "contains itself")
        out = dict(self.variables)
        for comp in self.components.values():
            out.update((f"{comp.name}/{k}", v) for k, v in comp.all_variables((*_path, self)).items())
        return out


#: (module, name) -> stand-in, for the restricted unpickler of `reader`
TF_STAND_INS = {NETWORK_GLOBAL: TFNetwork}


def is_tf_pickle(data) -> bool:
    """True for what a StyleGAN TensorFlow pickle holds: a tuple ``(G, D, Gs)`` of `TFNetwork`."""
    return isinstance(data, tuple) and len(data) == 3 and all(isinstance(n, TFNetwork) for n in data)
