"""The encoder interface and registry.

An encoder turns the faces found in one image into embedding vectors, in two
steps so that the expensive part can run in worker processes and an encoder
that must be fitted (PCA) can see every face first:

* ``prepare(image, faces)`` -> ndarray with one row per face (an aligned crop);
* ``embed(prepared)`` -> float32 ndarray of shape (n_faces, dim).

``settings()`` and ``state()`` are written into the encodings file, so that
``ENCODERS.get(name).from_saved(settings, state)`` rebuilds the same encoder
(for example the fitted PCA basis) to encode other photos the same way.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from anonfaces.detect.types import FaceDetection
from anonfaces.registry import Registry

ENCODERS: Registry = Registry("encoder")


class Encoder:
    #: True when `fit` must see the prepared faces of the dataset before `embed`.
    requires_fit: ClassVar[bool] = False
    registry_name: ClassVar[str]

    def settings(self) -> dict:
        """JSON-serialisable settings that, with `state`, rebuild this encoder."""
        raise NotImplementedError

    def state(self) -> dict[str, np.ndarray]:
        """Arrays a fitted encoder needs (saved as ``encoder__<key>``)."""
        return {}

    @classmethod
    def from_saved(cls, settings: dict, state: dict[str, np.ndarray]) -> Encoder:
        settings = {k: v for k, v in settings.items() if k != "name"}
        return cls(**settings)

    @property
    def is_fitted(self) -> bool:
        return not self.requires_fit

    #: False when the encoder holds state that must not cross a fork (threads of a runtime).
    fork_safe: ClassVar[bool] = True

    def warm_up(self) -> None:
        """Load models now, so that forked worker processes share them."""

    def prepare(self, image: np.ndarray, faces: list[FaceDetection]) -> np.ndarray:
        raise NotImplementedError

    def embed(self, prepared: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def fit(self, prepared: np.ndarray) -> Encoder:
        return self

    def encode(self, image: np.ndarray, faces: list[FaceDetection]) -> np.ndarray:
        """Embeddings of ``faces`` in ``image``: float32 array of shape (len(faces), dim)."""
        return self.embed(self.prepare(image, faces))
