"""Read dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``)
into a plain description of its layers, for any engine to build.

The file is dlib's ``serialize()`` of the ``anet_type`` network of
``dnn_face_recognition_ex.cpp``. The byte encoding (numbers, strings, tensors) and the
layers dlib's networks share are read by `anonfaces.utils.dlib_serial`. The network nests: the loss layer, then one version integer per layer from the
output down to the input (2 for a layer with parameters or computation, 1 for a
*tag* or *skip* marker), then the input layer, then each layer's details from the
input up. The markers carry no id in the file (the ids live in the C++ type), so
they are labelled here from the structure of dlib's residual blocks:

* ``residual``:      tag1, conv, affine, relu, conv, affine, add_prev1
* ``residual_down``: tag1, conv/2, affine, relu, conv, affine, tag2, skip1,
  avg_pool 2x2/2, add_prev2

i.e. a single marker is ``tag1``; two in a row are ``tag2`` then ``skip1``; an
``add_prev`` adds the output saved by ``tag2`` when a skip came after the last
``tag1``, else the one saved by ``tag1``. `parse_dat` checks the result against
the expected layer counts and refuses any other file.

No engine is imported here: `anonfaces.encode._dlib_onnx` builds the network for
ONNX Runtime from this description.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from anonfaces.errors import BadInputError
from anonfaces.utils.dlib_serial import Affine, Conv, Reader, Relu
from anonfaces.utils.dlib_serial import read_affine as _read_affine
from anonfaces.utils.dlib_serial import read_conv as _read_conv
from anonfaces.utils.dlib_serial import skip_layer_state as _skip_layer_state

#: How a refused file is described ("<file>: not dlib's face-recognition ResNet (...)").
WHAT = "dlib's face-recognition ResNet"


# --- the layer description -----------------------------------------------------------------
@dataclass(frozen=True)
class InputRGB:
    """Input: ``(pixel - mean_rgb) / 256`` per channel, RGB order, ``size`` x ``size`` pixels."""

    mean_rgb: tuple[float, float, float]
    size: int


@dataclass(frozen=True)
class Pool:
    """Max or average pooling; ``size == (0, 0)`` means over the whole image (global)."""

    kind: str  # "max" or "avg"
    size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]

    @property
    def is_global(self) -> bool:
        return self.size == (0, 0)


@dataclass(frozen=True)
class Tag:
    """Remember the current output under ``id``."""

    id: int


@dataclass(frozen=True)
class Skip:
    """Continue from the output remembered under ``id``."""

    id: int


@dataclass(frozen=True)
class AddPrev:
    """Add the output remembered under ``id``. The sum is as large as the larger input in
    every dimension (channels, rows, columns); where one input is smaller it counts as
    zero (top-left aligned): that is how the channel count grows without a projection."""

    id: int


@dataclass(frozen=True)
class Dense:
    """Fully connected, on the flattened input. weight: ndarray of shape (in, out); bias: (out,) or None."""

    weight: np.ndarray = field(repr=False)
    bias: np.ndarray | None = field(repr=False)


Layer = InputRGB | Conv | Affine | Relu | Pool | Tag | Skip | AddPrev | Dense


@dataclass(frozen=True)
class DlibNetwork:
    """dlib's metric network: ``layers[0]`` is the `InputRGB`, then the rest in order."""

    layers: tuple
    margin: float
    distance_threshold: float

    @property
    def input(self) -> InputRGB:
        return self.layers[0]

    @property
    def output_dim(self) -> int:
        return int(self.layers[-1].weight.shape[1])

    def n_parameters(self) -> int:
        total = 0
        for layer in self.layers:
            for name in ("weight", "bias", "gamma", "beta"):
                arr = getattr(layer, name, None)
                if arr is not None:
                    total += arr.size
        return total

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for layer in self.layers:
            key = f"{layer.kind}_pool" if isinstance(layer, Pool) else type(layer).__name__
            if isinstance(layer, Pool) and layer.is_global:
                key = "global_avg_pool"
            out[key] = out.get(key, 0) + 1
        return out


#: What dlib's face-recognition ResNet holds (`parse_dat` refuses anything else).
EXPECTED_COUNTS = {
    "InputRGB": 1,
    "Conv": 29,
    "Affine": 29,
    "Relu": 29,
    "max_pool": 1,
    "avg_pool": 4,
    "global_avg_pool": 1,
    "AddPrev": 14,
    "Tag": 18,
    "Skip": 4,
    "Dense": 1,
}


# --- layer details -------------------------------------------------------------------------
def _read_pool(r: Reader, kind: str) -> Pool:
    nr, nc, sy, sx, py, px = (r.int() for _ in range(6))
    return Pool(kind=kind, size=(nr, nc), stride=(sy, sx), padding=(py, px))


def _read_fc(r: Reader, version: str) -> Dense:
    num_outputs = r.int()
    num_inputs = r.int()
    params = r.tensor().reshape(-1)
    w = r.alias()
    b = r.alias()
    bias_mode = r.int()  # 0: with bias, 1: without
    for _ in range(4):
        r.float()
    if version == "fc_3":
        r.bool()
    n_w = num_inputs * num_outputs
    if int(np.prod(w)) != n_w or params.size < n_w:
        r.fail("inconsistent fully connected layer")
    weight = params[:n_w].reshape(num_inputs, num_outputs).copy()
    bias = params[n_w : n_w + num_outputs].copy() if bias_mode == 0 and int(np.prod(b)) == num_outputs else None
    return Dense(weight=weight, bias=bias)


def _read_details(r: Reader):
    name = r.string()
    if name in ("con_4", "con_5", "con_6"):
        return _read_conv(r, name)
    if name in ("affine_", "affine_2"):
        return _read_affine(r, name)
    if name in ("relu_", "relu_2"):
        if name == "relu_2":
            r.bool()
        return Relu()
    if name == "max_pool_2":
        return _read_pool(r, "max")
    if name == "avg_pool_2":
        return _read_pool(r, "avg")
    if name == "add_prev_":
        return AddPrev(0)  # id labelled afterwards
    if name in ("fc_2", "fc_3"):
        return _read_fc(r, name)
    r.fail(f"unsupported layer {name!r}")


# --- the whole file ------------------------------------------------------------------------
def parse_dat(path: str | Path) -> DlibNetwork:
    """The layers of dlib's face-recognition ResNet stored at ``path``.

    Raises `BadInputError` when the file is not that network (truncated, another
    network, another format).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BadInputError(f"cannot read {path}: {exc}") from None
    return parse_dat_bytes(data, source=str(path))


def parse_dat_bytes(data: bytes, *, source: str = "<bytes>") -> DlibNetwork:
    r = Reader(data, source, WHAT)
    if r.int() != 1:
        r.fail("bad loss layer version")
    loss = r.string()
    if loss != "loss_metric_2":
        r.fail(f"loss {loss!r} is not loss_metric_2")
    margin, threshold = r.float(), r.float()

    # one version integer per level, from the output down; a control byte 0x01 with
    # value 1 or 2 each, until the input layer's name (a string) begins
    levels: list[int] = []
    while True:
        start = r.pos
        version = r.int()
        if version == 3 or (version == 2 and _starts_input(r)):  # the innermost add_layer holds the input
            levels.append(version)
            break
        if version not in (1, 2):
            r.pos = start
            r.fail(f"unexpected layer version {version}")
        levels.append(version)
    innermost_version = levels.pop()
    name = r.string()
    if name != "input_rgb_image_sized":
        r.fail(f"input layer {name!r} is not input_rgb_image_sized")
    mean = (r.float(), r.float(), r.float())
    nr, nc = r.int(), r.int()
    if nr != nc:
        r.fail(f"input is {nr} x {nc}, not square")
    layers: list = [InputRGB(mean_rgb=mean, size=nr)]

    # the innermost add_layer (input + first layer), then every level upwards
    layers.append(_read_details(r))
    for _ in range(3):
        r.bool()
    for _ in range(3):
        r.tensor()
    if innermost_version == 3:
        r.int()  # sample expansion factor
    markers_pending = 0
    for version in reversed(levels):
        if version == 1:  # a tag or skip marker: no details of its own
            layers.append(None)
            markers_pending += 1
            continue
        layers.append(_read_details(r))
        _skip_layer_state(r, version)
    if r.pos != len(data):
        r.fail(f"{len(data) - r.pos} bytes left over")
    net = DlibNetwork(layers=tuple(_label_markers(layers, r)), margin=margin, distance_threshold=threshold)
    counts = net.counts()
    if counts != EXPECTED_COUNTS:
        r.fail(f"layer counts {counts} differ from {EXPECTED_COUNTS}")
    return net


def _starts_input(r: Reader) -> bool:
    """Whether the input layer's name follows (the innermost add_layer's version came last)."""
    name = b"input_rgb_image_sized"
    start = r.pos
    try:
        n = r.int()
        return n == len(name) and r.data[r.pos : r.pos + n] == name
    except BadInputError:
        return False
    finally:
        r.pos = start


def _label_markers(layers: list, r: Reader) -> list:
    """Give the tag/skip markers and add_prev layers their ids (see the module docstring)."""
    out: list = []
    i = 0
    skipped_since_tag1 = False
    while i < len(layers):
        layer = layers[i]
        if layer is None:
            if i + 1 < len(layers) and layers[i + 1] is None:
                out += [Tag(2), Skip(1)]
                skipped_since_tag1 = True
                i += 2
                continue
            out.append(Tag(1))
            skipped_since_tag1 = False
        elif isinstance(layer, AddPrev):
            out.append(AddPrev(2 if skipped_since_tag1 else 1))
        else:
            out.append(layer)
        i += 1
    return out
