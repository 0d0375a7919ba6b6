"""``eigen`` (k-Same-Eigen): average in a PCA face space and reconstruct.

The face space (mean face and principal components of the canonical crops) is
fitted on the dataset's faces through the ``fit`` hook (on at most
``max_fit_faces`` of them, drawn with ``random_state``); each member is
projected, the coefficients are averaged and the average is reconstructed.
Without ``fit``, the space is fitted on the cluster alone, and the surrogate is
then the pixel average (the mean always lies in that space).
"""

from __future__ import annotations

import numbers

import cv2
import numpy as np
from sklearn.utils import check_random_state

from anonfaces.errors import BadInputError
from anonfaces.synthesize.base import (
    SYNTHESIZERS,
    Surrogate,
    Synthesizer,
    check_cluster,
)


@SYNTHESIZERS.register("eigen")
class EigenSynthesizer(Synthesizer):
    """k-Same-Eigen.

    Parameters
    ----------
    n_components : int or float, default 0.95
        Principal components kept: a number, or the fraction of variance (0 < f < 1).
    resolution : int, default 128
        Side of the crops in the face space (crops are resized; the reconstruction
        is resized back to the crop size).
    max_fit_faces : int, default 1000
    random_state : int, RandomState or None
    """

    def __init__(self, *, n_components: float = 0.95, resolution: int = 128, max_fit_faces: int = 1000,
                 random_state=0):
        if isinstance(n_components, bool) or not isinstance(n_components, numbers.Real) or n_components <= 0 or (
            not isinstance(n_components, numbers.Integral) and n_components >= 1
        ):
            raise BadInputError(f"n_components={n_components!r} must be an integer >= 1 or a fraction in (0, 1)")
        if not isinstance(resolution, numbers.Integral) or resolution < 16:
            raise BadInputError(f"resolution={resolution!r} must be an integer >= 16")
        if not isinstance(max_fit_faces, numbers.Integral) or max_fit_faces < 2:
            raise BadInputError(f"max_fit_faces={max_fit_faces!r} must be an integer >= 2")
        self.n_components = n_components
        self.resolution = int(resolution)
        self.max_fit_faces = int(max_fit_faces)
        self.random_state = random_state
        self.mean_ = None
        self.components_ = None

    def settings(self) -> dict:
        return {"name": "eigen", "n_components": self.n_components, "resolution": self.resolution,
                "max_fit_faces": self.max_fit_faces,
                "random_state": self.random_state if isinstance(self.random_state, (int, type(None))) else "RandomState",
                "fitted_components": None if self.components_ is None else len(self.components_)}

    def _vectors(self, faces: np.ndarray) -> np.ndarray:
        r = self.resolution
        return np.stack([cv2.resize(f, (r, r), interpolation=cv2.INTER_AREA) for f in faces]).reshape(len(faces), -1).astype(np.float32)

    def _basis(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean = X.mean(axis=0)
        Xc = X - mean
        # SVD through the small Gram matrix (n_faces x n_faces): n_faces << pixels
        gram = Xc.astype(np.float64) @ Xc.T.astype(np.float64)
        evals, evecs = np.linalg.eigh(gram)
        order = np.argsort(evals)[::-1]
        evals, evecs = np.clip(evals[order], 0, None), evecs[:, order]
        keep = evals > evals[0] * 1e-10 if evals[0] > 0 else np.zeros(len(evals), bool)
        evals, evecs = evals[keep], evecs[:, keep]
        if isinstance(self.n_components, numbers.Integral):
            n = min(int(self.n_components), len(evals))
        else:
            ratio = np.cumsum(evals) / evals.sum() if len(evals) else np.array([])
            n = int(np.searchsorted(ratio, self.n_components) + 1) if len(evals) else 0
            n = min(n, len(evals))
        comps = (evecs[:, :n].T @ Xc.astype(np.float64)) / np.sqrt(evals[:n])[:, None]  # [n, d], orthonormal rows
        return mean, comps.astype(np.float32)

    def fit(self, faces, landmarks=None) -> EigenSynthesizer:
        """Fit the face space on the dataset's crops, uint8 of shape (n, S, S, 3)."""
        faces = np.asarray(faces)
        if faces.ndim != 4 or len(faces) < 2:
            raise BadInputError(f"eigen needs at least 2 faces of shape (n, S, S, 3) to fit; got {faces.shape}")
        rng = check_random_state(self.random_state)
        if len(faces) > self.max_fit_faces:
            faces = faces[np.sort(rng.choice(len(faces), self.max_fit_faces, replace=False))]
        self.mean_, self.components_ = self._basis(self._vectors(faces))
        return self

    def synthesize(self, faces, landmarks, embeddings=None) -> Surrogate:
        faces, landmarks, _ = check_cluster(faces, landmarks, embeddings)
        X = self._vectors(faces)
        if self.components_ is None:
            mean, comps = self._basis(X)
        else:
            mean, comps = self.mean_, self.components_
            if mean.shape[0] != X.shape[1]:
                raise BadInputError(f"the face space was fitted on {mean.shape[0]} values per face; got {X.shape[1]}")
        coef = (X - mean) @ comps.T  # [m, n]
        recon = mean + coef.mean(axis=0) @ comps
        r, size = self.resolution, faces.shape[1]
        small = np.clip(recon.reshape(r, r, 3), 0, 255).astype(np.float32)
        image = cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC) if r != size else small
        image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
        return Surrogate(image, landmarks.mean(axis=0), {"members": len(faces), "components": len(comps)})
