"""Reading dlib's ``serialize()`` format: the numbers, strings and tensors, and the
layers that dlib's networks share (convolution, affine / batch norm, relu).

Used by every parser of a dlib network file (`anonfaces.encode._dlib_dat` for the
face-recognition ResNet, `anonfaces.detect._mmod_dat` for the MMOD face detector);
no engine is imported here.

The encoding:

* integers: one control byte (low 4 bits: how many bytes follow; 0x80: negative),
  then the magnitude, little-endian;
* floats: a 64-bit mantissa and a 16-bit exponent, both such integers
  (value = mantissa * 2**exponent);
* strings: a length (integer) and the bytes; booleans: the character ``0`` or ``1``;
* tensors: version 2, four dimensions (samples, channels, rows, columns), then raw
  little-endian float32; "alias tensors" (views into a layer's parameter tensor):
  version 1 and four dimensions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from anonfaces.errors import BadInputError


# --- layers shared by dlib's networks --------------------------------------------------------
@dataclass(frozen=True)
class Conv:
    """Convolution (cross-correlation). weight: ndarray of shape (out, in, kh, kw); bias: (out,)."""

    weight: np.ndarray = field(repr=False)
    bias: np.ndarray | None = field(repr=False)
    stride: tuple[int, int]
    padding: tuple[int, int]


@dataclass(frozen=True)
class Affine:
    """Per-channel ``gamma * x + beta`` (dlib's batch norm, folded at the end of training). Shapes (C,)."""

    gamma: np.ndarray = field(repr=False)
    beta: np.ndarray = field(repr=False)


@dataclass(frozen=True)
class Relu:
    pass


# --- the byte reader -----------------------------------------------------------------------
class Reader:
    """Reads dlib's serialized values from ``data``; every failure is a `BadInputError`
    naming ``source`` and saying the file is not ``what``."""

    def __init__(self, data: bytes, source: str, what: str):
        self.data = data
        self.pos = 0
        self.source = source
        self.what = what

    def fail(self, what: str):
        raise BadInputError(f"{self.source}: not {self.what} ({what} at byte {self.pos})")

    def _take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            self.fail("file ends early")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def peek(self) -> int:
        if self.pos >= len(self.data):
            self.fail("file ends early")
        return self.data[self.pos]

    def int(self) -> int:
        control = self._take(1)[0]
        size = control & 0x0F
        if size > 8 or control & 0x70:
            self.fail(f"bad integer control byte {control:#x}")
        value = int.from_bytes(self._take(size), "little") if size else 0
        return -value if control & 0x80 else value

    def float(self) -> float:
        mantissa = self.int()
        exponent = self.int()
        if exponent >= 32000:  # dlib's codes for inf, -inf and nan
            self.fail("non-finite float")
        return float(np.ldexp(float(mantissa), exponent))

    def string(self) -> str:
        n = self.int()
        if not 0 <= n < 1 << 16:
            self.fail(f"bad string length {n}")
        try:
            return self._take(n).decode("ascii")
        except UnicodeDecodeError:
            self.fail("bad string")

    def bool(self) -> bool:
        ch = self._take(1)
        if ch not in (b"0", b"1"):
            self.fail(f"bad boolean {ch!r}")
        return ch == b"1"

    def tensor(self) -> np.ndarray:
        if self.int() != 2:
            self.fail("bad tensor version")
        shape = tuple(self.int() for _ in range(4))
        if any(d < 0 for d in shape):
            self.fail(f"bad tensor shape {shape}")
        n = int(np.prod(shape))
        return np.frombuffer(self._take(4 * n), dtype="<f4").astype(np.float32).reshape(shape)

    def alias(self) -> tuple[int, int, int, int]:
        if self.int() != 1:
            self.fail("bad alias tensor version")
        return tuple(self.int() for _ in range(4))


# --- layer details -------------------------------------------------------------------------
def read_conv(r: Reader, version: str) -> Conv:
    """The details of a ``con_`` layer (versions ``con_4``, ``con_5``, ``con_6``)."""
    params = r.tensor().reshape(-1)
    num_filters = r.int()
    nr, nc, sy, sx, py, px = (r.int() for _ in range(6))
    filters = r.alias()
    biases = r.alias()
    for _ in range(4):  # learning-rate and weight-decay multipliers
        r.float()
    use_bias = r.bool() if version in ("con_5", "con_6") else True
    if version == "con_6":
        r.bool()  # use_relu: a training-time fusion flag
    n_w = int(np.prod(filters))
    if filters[0] != num_filters or filters[2:] != (nr, nc) or params.size < n_w:
        r.fail(f"inconsistent convolution {filters}")
    weight = params[:n_w].reshape(filters)
    bias = params[n_w : n_w + num_filters].copy() if use_bias and biases[1] == num_filters else None
    if use_bias and bias is None:
        r.fail("convolution bias missing")
    return Conv(weight=weight.copy(), bias=bias, stride=(sy, sx), padding=(py, px))


def read_affine(r: Reader, version: str) -> Affine:
    """The details of an ``affine_`` layer (versions ``affine_``, ``affine_2``)."""
    params = r.tensor().reshape(-1)
    g = r.alias()
    b = r.alias()
    r.int()  # mode: per channel (convolutional) or per element
    if version == "affine_2":
        r.bool()  # disabled
    ng, nb = int(np.prod(g)), int(np.prod(b))
    if ng != nb or params.size != ng + nb:
        r.fail("inconsistent affine layer")
    return Affine(gamma=params[:ng].copy(), beta=params[ng:].copy())


def read_batch_norm(r: Reader, version: str) -> Affine:
    """A stored batch norm (``bn_con2``, ``bn_fc2``) as the affine layer dlib runs at
    inference: ``gamma / sqrt(running_var + eps)`` and ``beta - that * running_mean``
    (dlib's ``affine_`` constructor from a ``bn_``, in float32 as dlib computes it)."""
    params = r.tensor().reshape(-1)
    g = r.alias()
    b = r.alias()
    for _ in range(2):  # means, invstds of the last training batch
        r.tensor()
    running_means = r.tensor().reshape(-1)
    running_vars = r.tensor().reshape(-1)
    r.int()  # num_updates
    r.int()  # running_stats_window_size
    for _ in range(4):  # learning-rate and weight-decay multipliers
        r.float()
    eps = r.float()
    ng, nb = int(np.prod(g)), int(np.prod(b))
    if ng != nb or params.size != ng + nb or running_means.size != ng or running_vars.size != ng:
        r.fail(f"inconsistent batch norm layer ({version})")
    gamma = params[:ng] / np.sqrt(running_vars + np.float32(eps))
    beta = params[ng:] - gamma * running_means
    return Affine(gamma=gamma.astype(np.float32), beta=beta.astype(np.float32))


def skip_layer_state(r: Reader, version: int) -> None:
    """dlib's ``add_layer`` training state after a layer's details: three flags, then
    gradient and output buffers (tensors, empty in a saved model)."""
    for _ in range(3):
        r.bool()
    for _ in range(3 if version == 2 else 2):
        r.tensor()
