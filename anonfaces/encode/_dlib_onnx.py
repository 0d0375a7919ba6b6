"""dlib's face-recognition ResNet run by ONNX Runtime: the same weights and arithmetic,
many times faster than dlib's own CPU code.

`build_model` turns the layer description of `anonfaces.encode._dlib_dat` into an
ONNX graph with the ``onnx`` package's helpers (no conversion step, no torch).
`model_path` keeps the built model in a cache folder, keyed by the SHA-256 of the
``.dat`` file, written atomically; a missing or corrupt cached model (its hash no
longer the one recorded beside it) is rebuilt. Each build is checked against dlib
on a few real face chips (`self_check`) before it is stored, and a model that
differs is refused (`SelfCheckError`).

The cache folder is ``$ANONFACES_CACHE_DIR`` if set, else
``$XDG_CACHE_HOME/anonfaces``, else ``~/.cache/anonfaces``.

Graph: uint8 chips of shape (N, 150, 150, 3), RGB (what ``dlib.get_face_chip``
returns) -> float32 descriptors of shape (N, 128), not normalised, as dlib's.
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path

import numpy as np

from anonfaces.encode import _dlib_dat as dat
from anonfaces.errors import AnonfacesError
from anonfaces.utils import onnx_cache
from anonfaces.utils.onnx_cache import CACHE_ENV, cache_dir, sha256_of  # noqa: F401  (this module's cache, shared)
from anonfaces.utils.onnx_cache import file_sha256 as _file_sha256  # noqa: F401

log = logging.getLogger(__name__)

#: Bumped whenever the graph `build_model` makes changes (part of the cache key).
GRAPH_VERSION = 1
OPSET = 17
#: Largest difference to dlib's descriptor the self-check accepts.
SELF_CHECK_TOLERANCE = 1e-4
#: Threads of each ONNX Runtime session in this process (see `set_threads`); None: the worker pool's share
#: (`anonfaces.utils.parallel.worker_threads`, ``cores // jobs`` in a pool's worker).
_THREADS = {"n": int(os.environ["ANONFACES_EMBED_THREADS"]) if os.environ.get("ANONFACES_EMBED_THREADS") else None}


class SelfCheckError(AnonfacesError):
    """The built model does not reproduce dlib's descriptors: it is not used."""


# --- building -------------------------------------------------------------------------------
def build_model(net: dat.DlibNetwork):
    """The ONNX model (``onnx.ModelProto``) of ``net``.

    Each convolution absorbs the affine layer after it (``gamma * (w * x + b) + beta``
    is ``(gamma * w) * x + (gamma * b + beta)``), as ONNX Runtime would do itself.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []
    counter = [0]

    def name(prefix):
        counter[0] += 1
        return f"{prefix}{counter[0]}"

    def const(arr, prefix="c"):
        n = name(prefix)
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), n))
        return n

    def node(op, inputs, **attrs):
        out = name(op.lower() + "_")
        nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    inp = net.input
    size = inp.size
    x = node("Cast", ["chips"], to=TensorProto.FLOAT)
    x = node("Sub", [x, const(np.asarray(inp.mean_rgb, np.float32))])
    x = node("Mul", [x, const(np.asarray([1 / 256], np.float32))])
    x = node("Transpose", [x], perm=[0, 3, 1, 2])
    shape = (3, size, size)  # (C, H, W) of x
    saved: dict[int, tuple[str, tuple]] = {}

    layers = list(net.layers[1:])
    i = 0
    while i < len(layers):
        layer = layers[i]
        if isinstance(layer, dat.Conv):
            w = layer.weight
            b = layer.bias if layer.bias is not None else np.zeros(w.shape[0], np.float32)
            if i + 1 < len(layers) and isinstance(layers[i + 1], dat.Affine):
                aff = layers[i + 1]
                w = w * aff.gamma[:, None, None, None]
                b = b * aff.gamma + aff.beta
                i += 1
            (py, px), (sy, sx) = layer.padding, layer.stride
            kh, kw = w.shape[2:]
            x = node("Conv", [x, const(w.astype(np.float32), "w"), const(b.astype(np.float32), "b")],
                     kernel_shape=[kh, kw], strides=[sy, sx], pads=[py, px, py, px])
            shape = (w.shape[0], _out(shape[1], kh, sy, py), _out(shape[2], kw, sx, px))
        elif isinstance(layer, dat.Affine):
            c = len(layer.gamma)
            x = node("Mul", [x, const(layer.gamma.reshape(1, c, 1, 1))])
            x = node("Add", [x, const(layer.beta.reshape(1, c, 1, 1))])
        elif isinstance(layer, dat.Relu):
            x = node("Relu", [x])
        elif isinstance(layer, dat.Pool):
            if layer.is_global:
                if layer.kind != "avg":
                    raise AnonfacesError("global max pooling is not part of dlib's face ResNet")
                x = node("GlobalAveragePool", [x])
                shape = (shape[0], 1, 1)
            else:
                (kh, kw), (sy, sx), (py, px) = layer.size, layer.stride, layer.padding
                op = "MaxPool" if layer.kind == "max" else "AveragePool"
                extra = {} if op == "MaxPool" else {"count_include_pad": 0}
                x = node(op, [x], kernel_shape=[kh, kw], strides=[sy, sx], pads=[py, px, py, px], **extra)
                shape = (shape[0], _out(shape[1], kh, sy, py), _out(shape[2], kw, sx, px))
        elif isinstance(layer, dat.Tag):
            saved[layer.id] = (x, shape)
        elif isinstance(layer, dat.Skip):
            x, shape = saved[layer.id]
        elif isinstance(layer, dat.AddPrev):
            y, yshape = saved[layer.id]
            target = tuple(max(a, b) for a, b in zip(shape, yshape))
            x = node("Add", [_pad_to(x, shape, target, node, const), _pad_to(y, yshape, target, node, const)])
            shape = target
        elif isinstance(layer, dat.Dense):
            x = node("Flatten", [x], axis=1)
            x = node("MatMul", [x, const(layer.weight.astype(np.float32), "w")])
            if layer.bias is not None:
                x = node("Add", [x, const(layer.bias.astype(np.float32), "b")])
            shape = (layer.weight.shape[1],)
        else:
            raise AnonfacesError(f"cannot build layer {layer!r}")
        i += 1
    nodes.append(helper.make_node("Identity", [x], ["descriptors"]))

    graph = helper.make_graph(
        nodes,
        "dlib_face_recognition_resnet_model_v1",
        [helper.make_tensor_value_info("chips", TensorProto.UINT8, ["n", size, size, 3])],
        [helper.make_tensor_value_info("descriptors", TensorProto.FLOAT, ["n", net.output_dim])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="anonfaces")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _out(n: int, k: int, s: int, p: int) -> int:
    return (n + 2 * p - k) // s + 1


def _pad_to(x, shape, target, node, const):
    """Zero-pad ``x`` (N, C, H, W) at the end of each dimension up to ``target`` (C, H, W)."""
    if shape == target:
        return x
    extra = [t - s for s, t in zip(shape, target)]
    return node("Pad", [x, const(np.asarray([0, 0, 0, 0, 0, *extra], np.int64), "pads")], mode="constant")


# --- running --------------------------------------------------------------------------------
def set_threads(n: int) -> None:
    """Threads each ONNX Runtime session of this process uses (sessions made from now on).

    Unset (the default), sessions follow the worker pool's share of the cores
    (`anonfaces.utils.parallel.worker_threads`), so that ``jobs x threads`` matches the cores.
    """
    n = int(n)
    if n < 1:
        raise ValueError(f"threads={n} must be >= 1")
    if n != _THREADS["n"]:
        _THREADS["n"] = n
        _session_for.cache_clear()


def get_threads() -> int:
    """Threads of the sessions this process makes now (`set_threads`, else the worker pool's share)."""
    if _THREADS["n"] is not None:
        return _THREADS["n"]
    from anonfaces.utils.parallel import worker_threads

    return max(1, worker_threads())


def make_session(model: str | bytes, threads: int | None = None):
    """An ONNX Runtime CPU session for ``model`` (a path or the serialised bytes)."""
    return onnx_cache.make_session(model, int(threads or get_threads()))


@functools.lru_cache(maxsize=4)
def _session_for(path: str, threads: int, pid: int):
    # keyed by the process id: a forked child never runs its parent's session
    return make_session(path, threads)


def session(dat_path: str | os.PathLike | None = None, threads: int | None = None):
    """The checked, cached model of ``dat_path`` (default: the installed one) as a session
    with ``threads`` threads (None: this process's default, see `set_threads`)."""
    path = model_path(dat_path)
    return _session_for(str(path), int(threads or get_threads()), os.getpid())


def run(sess, chips: np.ndarray) -> np.ndarray:
    """Descriptors (N, 128) float32 of uint8 chips (N, 150, 150, 3)."""
    chips = np.ascontiguousarray(chips, dtype=np.uint8)
    if len(chips) == 0:
        return np.empty((0, 128), np.float32)
    return sess.run(["descriptors"], {"chips": chips})[0]


# --- the cache ------------------------------------------------------------------------------
def _default_dat() -> str:
    from anonfaces.detect import _models

    return _models._paths()["resnet"]


def model_path(dat_path: str | os.PathLike | None = None) -> Path:
    """Path of the checked ONNX model of ``dat_path``, building it first when the cache
    holds no intact copy (`anonfaces.utils.onnx_cache`). Raises `SelfCheckError` when a
    new build differs from dlib."""
    dat_path = str(dat_path or _default_dat())
    path = onnx_cache.cached_model(
        "dlib_resnet", dat_path, GRAPH_VERSION,
        build=lambda: build_model(dat.parse_dat(dat_path)).SerializeToString(),
        check=lambda data: self_check(data, dat_path),
        what="dlib's ResNet",
        on_build=lambda: _session_for.cache_clear(),
    )
    return path


# --- the self-check -------------------------------------------------------------------------
CHECK_CHIPS = Path(__file__).resolve().parent / "data" / "selfcheck_chips.png"


def check_chips() -> np.ndarray:
    """The face chips the self-check runs, uint8 (n, 150, 150, 3): real LFW faces cut by
    dlib (shipped with anonfaces) and one of seeded noise (every pixel value range)."""
    import cv2

    strip = cv2.imread(str(CHECK_CHIPS), cv2.IMREAD_COLOR)
    if strip is None:
        raise AnonfacesError(f"the self-check's face chips are missing ({CHECK_CHIPS}); reinstall anonfaces")
    strip = strip[..., ::-1]
    n = strip.shape[1] // strip.shape[0]
    faces = [strip[:, i * strip.shape[0] : (i + 1) * strip.shape[0]] for i in range(n)]
    noise = np.random.default_rng(0).integers(0, 256, size=faces[0].shape, dtype=np.uint8)
    return np.ascontiguousarray(np.stack([*faces, noise]))


def self_check(model: str | os.PathLike | bytes, dat_path: str | os.PathLike | None = None) -> dict:
    """Compare ``model``'s descriptors with dlib's on `check_chips`; raise `SelfCheckError`
    when any element differs by more than `SELF_CHECK_TOLERANCE`. Returns the figures."""
    import dlib

    dat_path = str(dat_path or _default_dat())
    chips = check_chips()
    try:
        ours = run(make_session(model if isinstance(model, bytes) else str(model), 1), chips)
    except Exception as exc:  # noqa: BLE001  (onnxruntime raises its own types on a broken model)
        raise SelfCheckError(f"the dlib ONNX model does not run: {exc}") from None
    recognizer = dlib.face_recognition_model_v1(dat_path)
    ref = np.asarray([np.asarray(v) for v in recognizer.compute_face_descriptor(list(chips))], np.float32)
    diff = float(np.max(np.abs(ours - ref))) if ours.shape == ref.shape else float("inf")
    report = {"faces": len(chips), "max_abs_diff": diff, "tolerance": SELF_CHECK_TOLERANCE, "passed": diff <= SELF_CHECK_TOLERANCE}
    if not report["passed"]:
        raise SelfCheckError(
            f"the ONNX build of dlib's ResNet differs from dlib by {diff:.3g} (> {SELF_CHECK_TOLERANCE}) on "
            f"{len(chips)} faces; refusing it. Use the original path with --param backend=dlib"
        )
    log.info("dlib ONNX model self-check: max abs diff %.2g on %d faces", diff, len(chips))
    return report
