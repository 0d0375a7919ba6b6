"""Any face-embedding network the user supplies as an ONNX file.

No weights ship with anonfaces and none are downloaded: point ``model`` at a
file you exported or obtained yourself (FaceNet, ArcFace, SFace, ...; see the
README). Faces are cut with dlib's 5-point alignment at the network's input
size, converted to the colour order and value range the network expects, and
the outputs are L2-normalised unless told otherwise.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from anonfaces.detect.align import face_chip
from anonfaces.encode.base import ENCODERS, Encoder
from anonfaces.errors import AnonfacesError, BadInputError


@functools.lru_cache(maxsize=4)
def _session(model: str):
    try:
        import onnxruntime as ort
    except ImportError:
        raise AnonfacesError("the onnx encoder needs onnxruntime: pip install 'anonfaces[onnx]'") from None
    options = ort.SessionOptions()
    # one thread per session: the encoding pipeline runs one process per core
    options.intra_op_num_threads = int(os.environ.get("ANONFACES_ONNX_THREADS", "1"))
    options.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise BadInputError(f"cannot load ONNX model {model!r}: {exc}") from None


def _per_channel(value, name: str) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(value, dtype=np.float32))
    if arr.shape not in ((1,), (3,)):
        raise BadInputError(f"{name}={value!r} must be one number or three (one per channel)")
    return arr


@ENCODERS.register("onnx")
class OnnxEncoder(Encoder):
    """Embeddings from a user-supplied ONNX model.

    Parameters
    ----------
    model : str
        Path to the ``.onnx`` file.
    input_size : int or None, default None
        Side of the square input; read from the model when its input shape is fixed.
    color : {"rgb", "bgr"}, default "rgb"
        Channel order the network expects.
    mean, std : float or three floats, default 127.5 and 128.0
        Input is ``(pixel - mean) / std`` with pixels in 0..255
        (FaceNet: 127.5 / 128; ArcFace: 127.5 / 127.5; models trained on 0..1: 0 / 255).
    layout : {"auto", "nchw", "nhwc"}, default "auto"
        Tensor layout; "auto" reads it from the model's input shape.
    padding : float, default 0.25
        Margin around the face in dlib's chip, as a fraction of the face size.
    normalize : bool, default True
        L2-normalise each embedding.
    """

    fork_safe = False  # onnxruntime sessions are not to be shared across fork

    def __init__(
        self,
        *,
        model: str,
        input_size: int | None = None,
        color: str = "rgb",
        mean=127.5,
        std=128.0,
        layout: str = "auto",
        padding: float = 0.25,
        normalize: bool = True,
    ):
        if not model or not Path(model).is_file():
            raise BadInputError(f"ONNX model file not found: {model!r} (pass --onnx-model PATH)")
        if color not in ("rgb", "bgr"):
            raise BadInputError(f"color={color!r} must be 'rgb' or 'bgr'")
        if layout not in ("auto", "nchw", "nhwc"):
            raise BadInputError(f"layout={layout!r} must be 'auto', 'nchw' or 'nhwc'")
        self.model = str(Path(model).resolve())
        self.color = color
        self.mean = [float(v) for v in _per_channel(mean, "mean")]
        self.std = [float(v) for v in _per_channel(std, "std")]
        if any(s == 0 for s in self.std):
            raise BadInputError(f"std={std!r} must not be zero")
        self.padding = float(padding)
        self.normalize = bool(normalize)
        shape = _session(self.model).get_inputs()[0].shape
        if len(shape) != 4:
            raise BadInputError(f"ONNX model input must be 4-D (batch, ...); got shape {shape}")
        if layout == "auto":
            layout = "nchw" if shape[1] == 3 else "nhwc" if shape[3] == 3 else ""
            if not layout:
                raise BadInputError(f"cannot tell the layout of input shape {shape}; pass layout=nchw or nhwc")
        self.layout = layout
        spatial = shape[2:4] if layout == "nchw" else shape[1:3]
        if input_size is None:
            if not all(isinstance(v, int) for v in spatial) or spatial[0] != spatial[1]:
                raise BadInputError(f"the model's input size is not fixed and square ({shape}); pass input_size")
            input_size = spatial[0]
        self.input_size = int(input_size)

    def settings(self) -> dict:
        return {
            "name": "onnx",
            "model": self.model,
            "input_size": self.input_size,
            "color": self.color,
            "mean": self.mean,
            "std": self.std,
            "layout": self.layout,
            "padding": self.padding,
            "normalize": self.normalize,
        }

    def prepare(self, image, faces) -> np.ndarray:
        s = self.input_size
        if not faces:
            return np.empty((0, s, s, 3), np.uint8)
        return np.stack([face_chip(image, f.landmarks5, size=s, padding=self.padding) for f in faces])

    def embed(self, prepared: np.ndarray) -> np.ndarray:
        sess = _session(self.model)
        if len(prepared) == 0:
            dim = sess.get_outputs()[0].shape[-1]
            return np.empty((0, dim if isinstance(dim, int) else 0), np.float32)
        x = np.asarray(prepared, np.float32)
        if self.color == "bgr":
            x = x[..., ::-1]
        x = (x - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        if self.layout == "nchw":
            x = x.transpose(0, 3, 1, 2)
        name = sess.get_inputs()[0].name
        out = np.asarray(sess.run(None, {name: np.ascontiguousarray(x, np.float32)})[0], np.float32)
        out = out.reshape(len(prepared), -1)
        if self.normalize:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out
