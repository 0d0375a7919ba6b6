"""Read dlib's CNN face detector (``mmod_human_face_detector.dat``) into a plain
description: its layers, the input's mean colour and pyramid padding, and the
``loss_mmod`` options that turn the score map into boxes.

The file is dlib's ``serialize()`` of the network of ``dnn_mmod_face_detection_ex.cpp``
(the one ``dlib.cnn_face_detection_model_v1`` loads)::

    loss_mmod<con<1,9,9,1,1, rcon5<rcon5<rcon5<downsampler<input_rgb_image_pyramid<pyramid_down<6>>>>>>>>
    downsampler = relu<bn<con5d<32, relu<bn<con5d<32, relu<bn<con5d<16, ...>>>>>>>>>   (5x5, stride 2)
    rcon5       = relu<bn<con5<45, ...>>>                                               (5x5, stride 1)

The batch norms are stored with their running statistics (``bn_con2``); dlib runs
them as affine layers, and so are they read here. The pyramid's down-sampling rate
(5/6 per level) lives in the C++ type, not in the file. The byte encoding and the
shared layers are read by `anonfaces.utils.dlib_serial`; `parse_mmod_dat` checks the
layer sequence and refuses any other file. No engine is imported here:
`anonfaces.detect._mmod_onnx` builds the network for ONNX Runtime.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from anonfaces.errors import BadInputError
from anonfaces.utils.dlib_serial import (
    Affine,
    Conv,
    Reader,
    Relu,
    read_affine,
    read_batch_norm,
    read_conv,
    skip_layer_state,
)

#: How a refused file is described ("<file>: not dlib's MMOD face detector (...)").
WHAT = "dlib's MMOD face detector"
#: The pyramid of ``input_rgb_image_pyramid<pyramid_down<6>>``: each level is 5/6 of the one before.
PYRAMID_DOWN = 6
#: The layer kinds from the input up that `parse_mmod_dat` accepts (the network of the module docstring).
EXPECTED_KINDS = ("Conv", "Affine", "Relu") * 6 + ("Conv",)


@dataclass(frozen=True)
class DetectorWindow:
    """A sliding window of the detector, in pixels of the pyramid level it fires on."""

    width: int
    height: int
    label: str = ""


@dataclass(frozen=True)
class BoxOverlap:
    """dlib's ``test_box_overlap``: two boxes overlap when the intersection over their
    bounding box exceeds ``iou`` or covers more than ``covered`` of either box."""

    iou: float
    covered: float


@dataclass(frozen=True)
class MmodNetwork:
    """dlib's MMOD detector: ``layers`` from the input up (`Conv`, `Affine`, `Relu`), then the input and loss settings."""

    layers: tuple
    mean_rgb: tuple[float, float, float]
    pyramid_padding: int
    pyramid_outer_padding: int
    windows: tuple[DetectorWindow, ...]
    overlaps_nms: BoxOverlap
    pyramid_down: int = PYRAMID_DOWN

    def convs(self) -> list[Conv]:
        return [layer for layer in self.layers if isinstance(layer, Conv)]

    def output_size(self, rows: int, cols: int) -> tuple[int, int]:
        """(rows, columns) of the score map of a tiled image of ``rows`` x ``cols`` (< 1: too small)."""
        for conv in self.convs():
            (sy, sx), (py, px) = conv.stride, conv.padding
            kh, kw = conv.weight.shape[2:]
            if rows + 2 * py < kh or cols + 2 * px < kw:
                return 0, 0
            rows, cols = (rows + 2 * py - kh) // sy + 1, (cols + 2 * px - kw) // sx + 1
        return rows, cols

    def output_to_input(self, x, y):
        """Map a score-map position (column x, row y; numbers or arrays) to the tiled input
        image, through every convolution from the top down (dlib's ``map_output_to_input``:
        ``p * stride - padding + kernel // 2``)."""
        for conv in reversed(self.convs()):
            (sy, sx), (py, px) = conv.stride, conv.padding
            kh, kw = conv.weight.shape[2:]
            x = x * sx - px + kw // 2
            y = y * sy - py + kh // 2
        return x, y


def parse_mmod_dat(path: str | Path) -> MmodNetwork:
    """The MMOD detector stored at ``path``; `BadInputError` when the file is anything else."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BadInputError(f"cannot read {path}: {exc}") from None
    return parse_mmod_bytes(data, source=str(path))


def _read_options(r: Reader) -> tuple[tuple[DetectorWindow, ...], BoxOverlap]:
    version = r.int()
    if not 1 <= version <= 4:
        r.fail(f"unknown mmod_options version {version}")
    if version == 1:
        windows = [DetectorWindow(r.int(), r.int())]
    else:
        n = r.int()
        if not 0 < n < 1000:
            r.fail(f"bad number of detector windows {n}")
        windows = []
        for _ in range(n):
            v = r.int()
            if v not in (1, 2):
                r.fail(f"bad detector window version {v}")
            w, h = r.int(), r.int()
            windows.append(DetectorWindow(w, h, r.string() if v == 2 else ""))
    r.float()  # loss per false alarm  (training only)
    r.float()  # loss per missed target
    r.float()  # truth match IoU threshold
    nms = BoxOverlap(r.float(), r.float())
    r.float(), r.float()  # overlaps_ignore (training only)
    if version >= 3:
        r._take(1)  # assume_image_pyramid (a byte)
    if version >= 4:
        if r.bool():
            r.fail("bounding box regression is not supported")
        r.float()  # bbr_lambda
    if any(w.width < 1 or w.height < 1 for w in windows):
        r.fail(f"bad detector windows {windows}")
    return tuple(windows), nms


def parse_mmod_bytes(data: bytes, *, source: str = "<bytes>") -> MmodNetwork:
    r = Reader(data, source, WHAT)
    if r.int() != 1:
        r.fail("bad loss layer version")
    loss = r.string()
    if loss != "loss_mmod_":
        r.fail(f"loss {loss!r} is not loss_mmod_")
    windows, nms = _read_options(r)

    # one version integer per layer from the output down (2), the innermost (input + first
    # layer) last (3, or 2 in old files), then the input layer's name
    versions: list[int] = []
    while True:
        version = r.int()
        if version not in (2, 3):
            r.fail(f"unexpected layer version {version}")
        versions.append(version)
        if len(versions) > 64:
            r.fail("too many layers")
        if r.data[r.pos : r.pos + 1] == b"\x01" and r.data[r.pos + 1 : r.pos + 2] >= b"\x10":
            break  # a one-byte integer of 16 or more (not a layer version): the input layer's name's length
    name = r.string()
    if name not in ("input_rgb_image_pyramid", "input_rgb_image_pyramid2"):
        r.fail(f"input layer {name!r} is not input_rgb_image_pyramid")
    mean = (r.float(), r.float(), r.float())
    padding, outer = (r.int(), r.int()) if name == "input_rgb_image_pyramid2" else (10, 11)

    innermost = versions.pop()
    layers = [_read_details(r)]
    for _ in range(3):
        r.bool()
    for _ in range(3):
        r.tensor()
    if innermost == 3:
        r.int()  # sample expansion factor
    for version in reversed(versions):
        layers.append(_read_details(r))
        skip_layer_state(r, version)
    if r.pos != len(data):
        r.fail(f"{len(data) - r.pos} bytes left over")
    kinds = tuple(type(layer).__name__ for layer in layers)
    if kinds != EXPECTED_KINDS:
        r.fail(f"layers {kinds} differ from {EXPECTED_KINDS}")
    convs = [layer for layer in layers if isinstance(layer, Conv)]
    if convs[-1].weight.shape[0] != len(windows):
        r.fail(f"{convs[-1].weight.shape[0]} score channels for {len(windows)} detector windows")
    if convs[0].weight.shape[1] != 3:
        r.fail("the first convolution does not take an RGB image")
    return MmodNetwork(layers=tuple(layers), mean_rgb=mean, pyramid_padding=padding, pyramid_outer_padding=outer,
                       windows=windows, overlaps_nms=nms)


def _read_details(r: Reader):
    name = r.string()
    if name in ("con_4", "con_5", "con_6"):
        return read_conv(r, name)
    if name in ("bn_con2",):
        return read_batch_norm(r, name)
    if name in ("affine_", "affine_2"):
        return read_affine(r, name)
    if name in ("relu_", "relu_2"):
        if name == "relu_2":
            r.bool()
        return Relu()
    r.fail(f"unsupported layer {name!r}")


__all__ = ["Affine", "BoxOverlap", "Conv", "DetectorWindow", "MmodNetwork", "Relu", "parse_mmod_bytes", "parse_mmod_dat"]
