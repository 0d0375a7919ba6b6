"""Piecewise affine warping over a Delaunay triangulation of landmarks.

`PiecewiseAffine` triangulates the *destination* points once and finds, for
every query pixel, its triangle and barycentric coordinates; `map` then gives,
for any source points in the same order, the source coordinates of every query
pixel (the ``map_x``, ``map_y`` of ``cv2.remap``). Averaging m faces onto one
shape therefore costs one triangulation and m remaps.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy.spatial import Delaunay

from anonfaces.detect.align import similarity_transform, transform_points

#: iBUG 68-point indices of the jaw line and the eyebrows (the outline of the face region).
JAW_68 = np.arange(0, 17)
BROWS_68 = np.arange(17, 27)


def boundary_points(size: int, per_side: int = 4) -> np.ndarray:
    """Points along the border of a ``size`` square, shape (4 * per_side, 2), float64.

    Added to the landmarks so the triangulation covers the whole crop and the
    background moves with the face rather than tearing.
    """
    t = np.linspace(0.0, size - 1.0, per_side + 1)[:-1]
    end = float(size - 1)
    top = np.column_stack([t, np.zeros_like(t)])
    right = np.column_stack([np.full_like(t, end), t])
    bottom = np.column_stack([end - t, np.full_like(t, end)])
    left = np.column_stack([np.zeros_like(t), end - t])
    return np.concatenate([top, right, bottom, left])


def grid_points(height: int, width: int, *, x0: float = 0.0, y0: float = 0.0) -> np.ndarray:
    """Pixel centres of a height x width grid (row-major), shape (height * width, 2)."""
    ys, xs = np.mgrid[0:height, 0:width]
    return np.column_stack([xs.ravel() + x0, ys.ravel() + y0]).astype(np.float64)


class PiecewiseAffine:
    """Barycentric coordinates of ``query`` points in the triangulation of ``dst_points``.

    Parameters
    ----------
    dst_points : ndarray of shape (p, 2)
        Where the control points are in the output.
    query : ndarray of shape (q, 2)
        Output pixel positions (for example `grid_points`).

    Query points outside every triangle follow the least-squares similarity of
    the control points (they lie outside the face region in practice).
    """

    def __init__(self, dst_points: np.ndarray, query: np.ndarray):
        dst = np.asarray(dst_points, dtype=np.float64)
        self.dst_points = dst
        self.query = np.asarray(query, dtype=np.float64)
        self.tri = Delaunay(dst)
        # points outside the bounding box cannot be in a triangle; scipy is very slow on them
        lo, hi = dst.min(0), dst.max(0)
        candidate = np.all((self.query >= lo) & (self.query <= hi), axis=1)
        simplex = np.full(len(self.query), -1, dtype=np.intp)
        simplex[candidate] = self.tri.find_simplex(self.query[candidate], bruteforce=True)  # the directed walk can take seconds
        self.inside = simplex >= 0
        s = simplex[self.inside]
        T = self.tri.transform[s]  # [q', 3, 2]: inverse affine (2x2) and offset per triangle
        b = np.einsum("qij,qj->qi", T[:, :2], self.query[self.inside] - T[:, 2])
        self.bary = np.column_stack([b, 1.0 - b.sum(1)])  # [q', 3]
        self.vertices = self.tri.simplices[s]  # [q', 3]

    def map(self, src_points: np.ndarray) -> np.ndarray:
        """Source coordinates of every query point, shape (q, 2), float32."""
        src = np.asarray(src_points, dtype=np.float64)
        if src.shape != self.dst_points.shape:
            raise ValueError(f"src_points has shape {src.shape}; expected {self.dst_points.shape}")
        out = np.empty_like(self.query)
        out[self.inside] = np.einsum("qk,qkd->qd", self.bary, src[self.vertices])
        if not self.inside.all():
            out[~self.inside] = transform_points(self.query[~self.inside], similarity_transform(self.dst_points, src))
        return out.astype(np.float32)


def remap(image: np.ndarray, coords: np.ndarray, height: int, width: int, *, border=cv2.BORDER_REFLECT) -> np.ndarray:
    """Sample ``image`` at ``coords`` (q = height * width points, row-major), bilinear."""
    map_xy = coords.reshape(height, width, 2)
    return cv2.remap(image, map_xy[..., 0], map_xy[..., 1], interpolation=cv2.INTER_LINEAR, borderMode=border)


def face_outline(landmarks68: np.ndarray, *, forehead: float = 0.15) -> np.ndarray:
    """The face region's outline: jaw line and eyebrows, the eyebrows raised toward the forehead.

    ``forehead`` is the lift as a fraction of the chin-to-nose-bridge distance
    (0: stop at the eyebrows). Returns a convex polygon, shape (p, 2), float64.
    """
    lm = np.asarray(landmarks68, dtype=np.float64)
    up = lm[27] - lm[8]
    brows = lm[BROWS_68] + forehead * up
    pts = np.concatenate([lm[JAW_68], brows])
    hull = cv2.convexHull(pts.astype(np.float32)).reshape(-1, 2)
    return hull.astype(np.float64)


def face_scale(landmarks68: np.ndarray) -> float:
    """A face size in pixels: the chin-to-nose-bridge distance."""
    lm = np.asarray(landmarks68, dtype=np.float64)
    return float(np.hypot(*(lm[27] - lm[8])))
