"""dlib's 128-D ResNet face descriptor (the network face_recognition wraps).

Two backends compute the same descriptors from the same weights:

* ``onnx`` (default): the network of ``dlib_face_recognition_resnet_model_v1.dat``
  rebuilt for ONNX Runtime (`anonfaces.encode._dlib_onnx`), within 1e-6 of dlib and
  many times faster;
* ``dlib``: dlib's own ``compute_face_descriptor`` (the original path).

Both cut the face with dlib's ``get_face_chip`` (150 x 150, padding 0.25); dlib's
``compute_face_descriptor(image, shape)`` is exactly its descriptor of that chip.
``num_jitters > 1`` (random re-sampling, not reproducible) always runs on dlib.
"""

from __future__ import annotations

import numpy as np

from anonfaces.detect import _models
from anonfaces.detect.align import face_chip
from anonfaces.encode.base import ENCODERS, Encoder
from anonfaces.errors import BadInputError

CHIP_SIZE = 150
BACKENDS = ("onnx", "dlib")


@ENCODERS.register("dlib")
class DlibEncoder(Encoder):
    """128-D descriptors; faces of one person lie within about 0.6 of each other.

    Parameters
    ----------
    num_jitters : int, default 1
        Re-sample each face this many times (randomly jittered) and average;
        higher is slightly more accurate and proportionally slower. Above 1 the
        dlib backend is used whatever ``backend`` says.
    backend : {"onnx", "dlib"}, default "onnx"
        Who runs the network (see the module docstring); the descriptors agree to 1e-6.
    threads : int or None, default None
        Threads of the ONNX Runtime session; None: the process default
        (`anonfaces.encode.set_embed_threads`; unset: the worker pool's share of the cores,
        `anonfaces.utils.parallel.worker_threads`). Does not change the result,
        so it is not part of `settings`.
    """

    dim = 128

    def __init__(self, *, num_jitters: int = 1, backend: str = "onnx", threads: int | None = None):
        if not isinstance(num_jitters, (int, np.integer)) or num_jitters < 1:
            raise BadInputError(f"num_jitters={num_jitters!r} must be an integer >= 1")
        if backend not in BACKENDS:
            raise BadInputError(f"backend={backend!r} must be one of {', '.join(BACKENDS)}")
        if threads is not None and (not isinstance(threads, (int, np.integer)) or threads < 1):
            raise BadInputError(f"threads={threads!r} must be an integer >= 1 or None")
        self.num_jitters = int(num_jitters)
        self.backend = backend
        self.threads = None if threads is None else int(threads)

    def settings(self) -> dict:
        return {"name": "dlib", "num_jitters": self.num_jitters, "backend": self.backend}

    @property
    def uses_onnx(self) -> bool:
        return self.backend == "onnx" and self.num_jitters == 1

    def warm_up(self) -> None:
        """Load dlib's model, and build (once, cached) and check the ONNX one.

        No ONNX Runtime session is kept for the worker processes: each process
        opens its own on first use (sessions must not cross a fork)."""
        if self.uses_onnx:
            from anonfaces.encode import _dlib_onnx

            _dlib_onnx.model_path()
        else:
            _models.face_recognizer()

    def prepare(self, image, faces) -> np.ndarray:
        if not faces:
            return np.empty((0, CHIP_SIZE, CHIP_SIZE, 3), np.uint8)
        return np.stack([face_chip(image, f.landmarks5, size=CHIP_SIZE) for f in faces])

    def embed(self, prepared: np.ndarray) -> np.ndarray:
        """Descriptors of face chips (N, 150, 150, 3) uint8 -> float32 (N, 128); any N in one batch."""
        if len(prepared) == 0:
            return np.empty((0, self.dim), np.float32)
        if self.uses_onnx:
            return embed_chips(prepared, threads=self.threads)
        chips = [np.ascontiguousarray(c) for c in prepared]
        out = _models.face_recognizer().compute_face_descriptor(chips, self.num_jitters)
        return np.asarray([np.asarray(v) for v in out], dtype=np.float32)


def embed_chips(chips: np.ndarray, *, threads: int | None = None) -> np.ndarray:
    """dlib's descriptors of face chips, run by ONNX Runtime: (N, 150, 150, 3) uint8 -> (N, 128) float32."""
    from anonfaces.encode import _dlib_onnx

    chips = np.asarray(chips)
    if chips.ndim != 4 or chips.shape[1:] != (CHIP_SIZE, CHIP_SIZE, 3):
        raise BadInputError(f"face chips must have shape (n, {CHIP_SIZE}, {CHIP_SIZE}, 3); got {chips.shape}")
    return _dlib_onnx.run(_dlib_onnx.session(threads=threads), chips.astype(np.uint8, copy=False))


def set_embed_threads(n: int) -> None:
    """Threads per ONNX Runtime session in this process; call it in each worker of a
    pool with ``cores // jobs`` so that jobs x threads matches the cores."""
    from anonfaces.encode import _dlib_onnx

    _dlib_onnx.set_threads(n)
