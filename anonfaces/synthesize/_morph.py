"""``morph`` (the default): shape-normalised average of the members.

Every member is warped onto the cluster's mean 68-point shape (piecewise affine
over a Delaunay triangulation of the mean shape plus points on the crop border),
the warped textures are averaged, and the surrogate keeps the mean shape. The
result is a sharp composite face with no learned model.
"""

from __future__ import annotations

import numpy as np

from anonfaces.synthesize._warp import (
    PiecewiseAffine,
    boundary_points,
    grid_points,
    remap,
)
from anonfaces.synthesize.base import (
    SYNTHESIZERS,
    Surrogate,
    Synthesizer,
    check_cluster,
)


def warp_to_shape(faces: np.ndarray, landmarks: np.ndarray, shape: np.ndarray) -> np.ndarray:
    """Warp each crop so that its landmarks land on ``shape``.

    Parameters
    ----------
    faces : ndarray of shape (m, S, S, 3), uint8
    landmarks : ndarray of shape (m, 68, 2)
    shape : ndarray of shape (68, 2)
        Target landmarks in crop pixels.

    Returns
    -------
    ndarray of shape (m, S, S, 3), float32
    """
    size = faces.shape[1]
    border = boundary_points(size)
    pw = PiecewiseAffine(np.concatenate([shape, border]), grid_points(size, size))
    out = np.empty(faces.shape, np.float32)
    for i, (face, lm) in enumerate(zip(faces, landmarks)):
        coords = pw.map(np.concatenate([lm, border]))
        out[i] = remap(face, coords, size, size)
    return out


@SYNTHESIZERS.register("morph")
class MorphSynthesizer(Synthesizer):
    """Shape-normalised average: warp every member to the mean shape, average the textures.

    Parameters
    ----------
    shape : {"mean", "medoid"}
        The surrogate's shape: the members' mean landmarks (default), or the
        landmarks of the member closest to that mean (a real face's proportions).
    """

    parallel = True

    def __init__(self, *, shape: str = "mean"):
        if shape not in ("mean", "medoid"):
            from anonfaces.errors import BadInputError

            raise BadInputError(f"shape={shape!r} must be 'mean' or 'medoid'")
        self.shape = shape

    def synthesize(self, faces, landmarks, embeddings=None) -> Surrogate:
        faces, landmarks, _ = check_cluster(faces, landmarks, embeddings)
        target = landmarks.mean(axis=0).astype(np.float64)
        if self.shape == "medoid":
            target = landmarks[np.argmin(((landmarks - target) ** 2).sum(axis=(1, 2)))].astype(np.float64)
        warped = warp_to_shape(faces, landmarks, target)
        image = np.clip(np.rint(warped.mean(axis=0)), 0, 255).astype(np.uint8)
        return Surrogate(image, target.astype(np.float32), {"members": len(faces)})
