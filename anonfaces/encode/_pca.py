"""Eigenfaces: PCA over canonically aligned greyscale crops.

Fitted on the dataset's own faces. The basis (mean, components, explained
variance) is saved in the encodings file, so the same projection can encode
other photos (`PCAEncoder.from_saved` / ``--pca-basis FILE`` on the CLI).
"""

from __future__ import annotations

import numpy as np

from anonfaces.detect.align import align_face
from anonfaces.encode.base import ENCODERS, Encoder
from anonfaces.errors import BadInputError


def grey_crops(image: np.ndarray, faces, size: int) -> np.ndarray:
    """Canonical greyscale crops, uint8 array of shape (len(faces), size, size)."""
    if not faces:
        return np.empty((0, size, size), np.uint8)
    crops = [align_face(image, f.landmarks68, size=size).image for f in faces]
    # ITU-R BT.601 luma
    return np.stack([(c @ np.array([0.299, 0.587, 0.114])).round().clip(0, 255).astype(np.uint8) for c in crops])


@ENCODERS.register("pca")
class PCAEncoder(Encoder):
    """Eigenface embeddings.

    Parameters
    ----------
    n_components : int, default 128
        Dimensions kept (at most the number of faces fitted on).
    size : int, default 64
        Side of the aligned greyscale crop, in pixels.
    whiten : bool, default False
        Scale each component to unit variance.
    """

    requires_fit = True

    def __init__(self, *, n_components: int = 128, size: int = 64, whiten: bool = False):
        if not isinstance(n_components, (int, np.integer)) or n_components < 1:
            raise BadInputError(f"n_components={n_components!r} must be an integer >= 1")
        if not isinstance(size, (int, np.integer)) or not 16 <= size <= 256:
            raise BadInputError(f"size={size!r} must be an integer from 16 to 256")
        self.n_components = int(n_components)
        self.size = int(size)
        self.whiten = bool(whiten)
        self.mean_: np.ndarray | None = None
        self.components_: np.ndarray | None = None
        self.explained_variance_: np.ndarray | None = None

    def settings(self) -> dict:
        return {"name": "pca", "n_components": self.n_components, "size": self.size, "whiten": self.whiten}

    def state(self) -> dict[str, np.ndarray]:
        if not self.is_fitted:
            return {}
        return {"mean": self.mean_, "components": self.components_, "explained_variance": self.explained_variance_}

    @classmethod
    def from_saved(cls, settings, state):
        enc = super().from_saved(settings, state)
        if state:
            enc.mean_ = np.asarray(state["mean"], np.float32)
            enc.components_ = np.asarray(state["components"], np.float32)
            enc.explained_variance_ = np.asarray(state["explained_variance"], np.float32)
        return enc

    @property
    def is_fitted(self) -> bool:
        return self.components_ is not None

    def prepare(self, image, faces) -> np.ndarray:
        return grey_crops(image, faces, self.size)

    def fit(self, prepared: np.ndarray) -> PCAEncoder:
        X = self._flatten(prepared)
        n, d = X.shape
        if n < 2:
            raise BadInputError(f"PCA needs at least 2 faces to fit; got {n}")
        k = min(self.n_components, n - 1, d)
        self.mean_ = X.mean(0)
        # components from the SVD of the centred data (rows are faces)
        _, s, vt = np.linalg.svd(X - self.mean_, full_matrices=False)
        self.components_ = vt[:k].astype(np.float32)
        self.explained_variance_ = (s[:k] ** 2 / (n - 1)).astype(np.float32)
        return self

    def embed(self, prepared: np.ndarray) -> np.ndarray:
        if not self.is_fitted:
            raise BadInputError("the PCA encoder is not fitted: fit it on a dataset or load a saved basis")
        Z = (self._flatten(prepared) - self.mean_) @ self.components_.T
        if self.whiten:
            Z = Z / np.sqrt(self.explained_variance_ + 1e-12)
        return Z.astype(np.float32)

    def reconstruct(self, embeddings: np.ndarray) -> np.ndarray:
        """Greyscale crops (n, size, size) float32 from embeddings: the inverse projection."""
        Z = np.asarray(embeddings, np.float32)
        if self.whiten:
            Z = Z * np.sqrt(self.explained_variance_ + 1e-12)
        return (Z @ self.components_ + self.mean_).reshape(-1, self.size, self.size)

    def _flatten(self, prepared: np.ndarray) -> np.ndarray:
        prepared = np.asarray(prepared)
        if prepared.ndim != 3 or prepared.shape[1:] != (self.size, self.size):
            raise BadInputError(f"expected crops of shape (n, {self.size}, {self.size}); got {prepared.shape}")
        return prepared.reshape(len(prepared), -1).astype(np.float32) / 255.0
