"""Put a surrogate into a photo: warp it onto a face's landmarks and blend it in.

For one face, `blend_surrogate`

1. maps every pixel of the face's neighbourhood in the photo into the canonical
   frame (the face's alignment matrix), and from there into the surrogate by a
   piecewise affine warp that takes the face's landmarks onto the surrogate's
   (one bilinear resampling of the surrogate);
2. builds the face mask: the jaw line and the eyebrows raised toward the
   forehead (`face_outline`), feathered at the edge;
3. matches the surrogate's colours to the face it replaces (mean and spread of
   each channel in CIE Lab inside the mask, so skin tone and lighting follow the
   photo), and
4. blends: ``"feather"`` (alpha blending with the soft mask, the default) or
   ``"seamless"`` (Poisson seamless cloning, `poisson_clone`: the surrogate's
   gradients, the photo's colours on the mask's edge; no colour matching needed).

Only pixels inside the feathered mask change.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

from anonfaces.detect.align import (
    CANONICAL_TEMPLATE,
    anchor_points,
    similarity_transform,
    transform_points,
)
from anonfaces.errors import BadInputError
from anonfaces.synthesize._warp import (
    PiecewiseAffine,
    boundary_points,
    face_outline,
    face_scale,
    grid_points,
    remap,
)
from anonfaces.synthesize.base import Surrogate

log = logging.getLogger(__name__)

BLEND_MODES = ("feather", "seamless")
COLOR_MODES = ("lab", "mean", "none")


def face_mask(shape_hw: tuple[int, int], landmarks68: np.ndarray, *, forehead: float = 0.15, feather: float = 0.06,
              offset=(0, 0)) -> np.ndarray:
    """Soft face mask, float32 in [0, 1] of shape ``shape_hw``.

    The hard region is `face_outline`; with ``feather`` > 0 its edge is shrunk
    and blurred over ``feather`` times the face size, so the mask is 1 well inside
    the face and reaches 0 at the outline (nothing outside the outline changes).
    ``offset`` (x0, y0) is subtracted from the landmarks (a region of interest).
    """
    h, w = shape_hw
    outline = face_outline(landmarks68, forehead=forehead) - np.asarray(offset, dtype=np.float64)
    hard = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(hard, np.round(outline * 16).astype(np.int32), 255, lineType=cv2.LINE_AA, shift=4)
    if feather <= 0:
        return (hard > 127).astype(np.float32)
    width = max(1.0, feather * face_scale(landmarks68))
    radius = int(np.ceil(width))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    inner = cv2.erode(hard, kernel)
    soft = cv2.GaussianBlur(inner.astype(np.float32) / 255.0, (0, 0), sigmaX=width / 2.0)
    return np.minimum(soft, (hard > 127).astype(np.float32))


def match_colors(source: np.ndarray, reference: np.ndarray, mask: np.ndarray, *, mode: str = "lab") -> np.ndarray:
    """Give ``source`` (uint8 RGB) the colour statistics of ``reference`` inside ``mask`` (> 0.5)."""
    if mode == "none":
        return source
    if mode not in COLOR_MODES:
        raise BadInputError(f"color={mode!r} must be one of {', '.join(COLOR_MODES)}")
    sel = mask > 0.5
    if sel.sum() < 16:
        return source
    src = cv2.cvtColor(source.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    ref = cv2.cvtColor(reference.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    mu_s, mu_r = src[sel].mean(0), ref[sel].mean(0)
    if mode == "lab":
        sd_s, sd_r = src[sel].std(0), ref[sel].std(0)
        ratio = np.clip(sd_r / np.maximum(sd_s, 1e-3), 0.5, 2.0)
        out = (src - mu_s) * ratio + mu_r
    else:
        out = src - mu_s + mu_r
    rgb = cv2.cvtColor(out.astype(np.float32), cv2.COLOR_LAB2RGB)
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


def face_roi(landmarks68: np.ndarray, image_hw: tuple[int, int], *, forehead: float = 0.15, margin: float = 0.05):
    """The box (x0, y0, x1, y1) holding the face outline plus a margin, clipped to the image."""
    h, w = image_hw
    outline = face_outline(landmarks68, forehead=forehead)
    pad = margin * face_scale(landmarks68) + 2
    x0, y0 = np.floor(outline.min(0) - pad).astype(int)
    x1, y1 = np.ceil(outline.max(0) + pad).astype(int) + 1
    return max(0, x0), max(0, y0), min(w, x1), min(h, y1)


def warp_surrogate(surrogate: Surrogate, landmarks68: np.ndarray, roi) -> np.ndarray:
    """The surrogate warped onto a face with ``landmarks68`` (image pixels), over ``roi``; uint8 (h, w, 3)."""
    x0, y0, x1, y1 = roi
    # the face's canonical frame at the surrogate's size: image -> crop
    matrix = similarity_transform(anchor_points(landmarks68), CANONICAL_TEMPLATE * surrogate.size)
    target = transform_points(landmarks68, matrix)  # the face's landmarks in crop pixels
    border = boundary_points(surrogate.size)
    query = transform_points(grid_points(y1 - y0, x1 - x0, x0=x0, y0=y0), matrix)
    pw = PiecewiseAffine(np.concatenate([target, border]), query)
    coords = pw.map(np.concatenate([surrogate.landmarks.astype(np.float64), border]))
    return remap(surrogate.image, coords, y1 - y0, x1 - x0)


def blend_surrogate(image: np.ndarray, surrogate: Surrogate, landmarks68: np.ndarray, *, blend: str = "feather",
                    color: str = "lab", forehead: float = 0.15, feather: float = 0.06, out: np.ndarray | None = None
                    ) -> np.ndarray:
    """Replace the face with ``landmarks68`` (image pixels) in ``image`` by ``surrogate``.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3), uint8
        The photo; not modified unless it is also ``out``.
    surrogate : Surrogate
    landmarks68 : ndarray of shape (68, 2)
    blend : {"feather", "seamless"}
    color : {"lab", "mean", "none"}
        Colour matching of the surrogate to the face (ignored by ``seamless``, which
        takes its colours from the photo's border by construction).
    forehead, feather : float
        See `face_mask`.
    out : ndarray, optional
        Write into this array (may be ``image`` itself, to blend several faces).

    Returns
    -------
    ndarray of shape (H, W, 3), uint8
    """
    if blend not in BLEND_MODES:
        raise BadInputError(f"blend={blend!r} must be one of {', '.join(BLEND_MODES)}")
    image = np.asarray(image)
    lm = np.asarray(landmarks68, dtype=np.float64)
    if lm.shape != (68, 2) or not np.isfinite(lm).all():
        raise BadInputError(f"landmarks68 must be a finite (68, 2) array; got shape {lm.shape}")
    result = image.copy() if out is None else out
    roi = face_roi(lm, image.shape[:2], forehead=forehead, margin=feather + 0.05)
    x0, y0, x1, y1 = roi
    if x1 - x0 < 4 or y1 - y0 < 4:
        log.warning("face at %s is outside the image; left unchanged", roi)
        return result
    patch = result[y0:y1, x0:x1]
    warped = warp_surrogate(surrogate, lm, roi)
    mask = face_mask((y1 - y0, x1 - x0), lm, forehead=forehead, feather=feather, offset=(x0, y0))
    if blend == "seamless":
        patch[:] = poisson_clone(warped, patch, mask > 0.02)
        return result
    warped = match_colors(warped, patch, mask, mode=color)
    alpha = mask[..., None]
    patch[:] = np.clip(np.rint(warped * alpha + patch * (1.0 - alpha)), 0, 255).astype(np.uint8)
    return result


def poisson_clone(source: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Seamless cloning (Poisson image editing, Perez et al. 2003) of ``source`` into ``target`` inside ``mask``.

    Solves, per channel, the discrete Poisson equation whose guidance field is the
    gradient of ``source``, with the values of ``target`` on the mask's boundary:
    the surrogate's details with the photo's colours and light. Pixels outside
    ``mask`` (and on the patch border) keep ``target``'s values. (OpenCV's
    ``seamlessClone`` is not used: in OpenCV 5.0 it returns nearly the target.)
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.linalg import splu

    mask = np.asarray(mask, bool).copy()
    mask[0, :] = mask[-1, :] = mask[:, 0] = mask[:, -1] = False
    out = target.astype(np.float64)
    ys, xs = np.nonzero(mask)
    n = len(ys)
    if n == 0:
        return target.copy()
    index = np.full(mask.shape, -1, np.int64)
    index[ys, xs] = np.arange(n)
    g = source.astype(np.float64)
    rows, cols = [np.arange(n)], [np.arange(n)]
    data = [np.full(n, 4.0)]
    rhs = 4.0 * g[ys, xs]
    for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        ny, nx = ys + dy, xs + dx
        rhs -= g[ny, nx]
        neighbour = index[ny, nx]
        inner = neighbour >= 0
        rows.append(np.flatnonzero(inner))
        cols.append(neighbour[inner])
        data.append(np.full(int(inner.sum()), -1.0))
        rhs[~inner] += out[ny[~inner], nx[~inner]]
    A = coo_matrix((np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)).tocsc()
    out[ys, xs] = splu(A).solve(rhs)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
