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

    Query points outside the triangulation follow the affine map of the nearest
    triangle (with border points around the crop they lie outside the face region).
    """

    def __init__(self, dst_points: np.ndarray, query: np.ndarray):
        dst = np.asarray(dst_points, dtype=np.float64)
        self.dst_points = dst
        self.query = np.asarray(query, dtype=np.float64)
        simplices = Delaunay(dst).simplices  # [t, 3]
        inverse, ok = _inverse_edges(dst, simplices)
        simplex = _locate(dst, simplices[ok], self.query)  # index into the non-degenerate triangles, -1 outside
        simplices, inverse = simplices[ok], inverse[ok]
        self.inside = simplex >= 0
        s = simplex[self.inside]
        # barycentric coordinates: (l1, l2) = inverse @ (p - a), weights (1 - l1 - l2, l1, l2)
        l12 = np.einsum("qij,qj->qi", inverse[s], self.query[self.inside] - dst[simplices[s, 0]])
        self.bary = np.column_stack([1.0 - l12.sum(1), l12])  # [q', 3]
        self.vertices = simplices[s]  # [q', 3]

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


def _inverse_edges(points: np.ndarray, simplices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of each triangle's edge matrix [b - a, c - a] (closed form, no LAPACK), and which are not degenerate."""
    a, b, c = (points[simplices[:, i]] for i in range(3))
    e1, e2 = b - a, c - a
    det = e1[:, 0] * e2[:, 1] - e2[:, 0] * e1[:, 1]
    ok = np.abs(det) > 1e-9
    det = np.where(ok, det, 1.0)
    inverse = np.stack([np.stack([e2[:, 1], -e2[:, 0]], 1), np.stack([-e1[:, 1], e1[:, 0]], 1)], 1) / det[:, None, None]
    return inverse, ok  # [t, 2, 2], [t]


def _locate(points: np.ndarray, simplices: np.ndarray, query: np.ndarray) -> np.ndarray:
    """The triangle holding each query point, from a raster of the triangles (-1: none found).

    Rasterising is exact inside triangles; on their shared edges either neighbour
    may be chosen, which does not matter because the piecewise affine map is
    continuous there. (scipy's ``find_simplex`` is slower and, through its BLAS
    calls, can stall for seconds on a busy machine.)
    """
    lo = np.floor(points.min(0)).astype(int) - 1
    hi = np.ceil(points.max(0)).astype(int) + 1
    w, h = (hi - lo + 1).tolist()
    raster = np.full((h, w), -1, np.int32)
    corners = np.round((points[simplices] - lo) * 16).astype(np.int32)  # [t, 3, 2] in 1/16 pixel
    for index, tri in enumerate(corners):
        cv2.fillConvexPoly(raster, tri, int(index), lineType=cv2.LINE_8, shift=4)
    # points beyond the triangulation take the triangle at the nearest place inside its bounds
    # (the affine map of that triangle, extrapolated)
    ij = np.round(query - lo).astype(np.int64)
    ij[:, 0] = np.clip(ij[:, 0], 1, w - 2)
    ij[:, 1] = np.clip(ij[:, 1], 1, h - 2)
    return raster[ij[:, 1], ij[:, 0]].astype(np.int64)


def remap(image: np.ndarray, coords: np.ndarray, height: int, width: int, *, border=cv2.BORDER_REFLECT) -> np.ndarray:
    """Sample ``image`` at ``coords`` (q = height * width points, row-major), bilinear."""
    map_xy = coords.reshape(height, width, 2)
    return cv2.remap(image, map_xy[..., 0], map_xy[..., 1], interpolation=cv2.INTER_LINEAR, borderMode=border)


def face_outline(landmarks68: np.ndarray, *, forehead: float = 0.15, expand: float = 1.0) -> np.ndarray:
    """The face region's outline: jaw line and eyebrows, the eyebrows raised toward the forehead.

    ``forehead`` is the lift as a fraction of the chin-to-nose-bridge distance
    (0: stop at the eyebrows). ``expand`` > 1 scales the outline about the nose
    tip (landmark 30): under the chin, out toward the ears and further up.
    Returns a convex polygon, shape (p, 2), float64.
    """
    lm = np.asarray(landmarks68, dtype=np.float64)
    up = lm[27] - lm[8]
    brows = lm[BROWS_68] + forehead * up
    pts = np.concatenate([lm[JAW_68], brows])
    if expand != 1.0:
        pts = lm[30] + (pts - lm[30]) * expand
    hull = cv2.convexHull(pts.astype(np.float32)).reshape(-1, 2)
    return hull.astype(np.float64)


def polygon_ring(polygon: np.ndarray, n: int = 32) -> np.ndarray:
    """``n`` points spaced evenly along a closed polygon's perimeter, shape (n, 2), float64."""
    poly = np.asarray(polygon, dtype=np.float64)
    closed = np.concatenate([poly, poly[:1]])
    seg = np.hypot(*np.diff(closed, axis=0).T)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    t = np.linspace(0.0, cum[-1], n, endpoint=False)
    return np.column_stack([np.interp(t, cum, closed[:, 0]), np.interp(t, cum, closed[:, 1])])


def face_scale(landmarks68: np.ndarray) -> float:
    """A face size in pixels: the chin-to-nose-bridge distance."""
    lm = np.asarray(landmarks68, dtype=np.float64)
    return float(np.hypot(*(lm[27] - lm[8])))
