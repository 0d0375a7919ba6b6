"""Encoding: face embeddings for every face in a folder of photos.

Encoders (registry `ENCODERS`): ``dlib`` (128-D ResNet, run by ONNX Runtime unless
``backend="dlib"``), ``pca`` (eigenfaces),
``onnx`` (a user-supplied model). `encode_photos` runs the stage over a folder of photos
(`anonfaces.pipeline.encode_dataset` over photos and videos);
`Encodings` is the record it writes and every later stage reads.
"""

from anonfaces.encode import _dlib, _onnx, _pca  # noqa: F401  (registers the encoders)
from anonfaces.encode._dlib import DlibEncoder, embed_chips, set_embed_threads
from anonfaces.encode._onnx import OnnxEncoder
from anonfaces.encode._pca import PCAEncoder
from anonfaces.encode.base import ENCODERS, Encoder
from anonfaces.encode.encodings import Encodings
from anonfaces.encode.pipeline import (
    EncodeReport,
    MoreFaces,
    encode_photos,
    make_encoder,
    read_skips,
    skipped_path_for,
)

__all__ = [
    "ENCODERS",
    "DlibEncoder",
    "EncodeReport",
    "Encoder",
    "Encodings",
    "MoreFaces",
    "OnnxEncoder",
    "PCAEncoder",
    "embed_chips",
    "encode_photos",
    "make_encoder",
    "read_skips",
    "set_embed_threads",
    "skipped_path_for",
]
