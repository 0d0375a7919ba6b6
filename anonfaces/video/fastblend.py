"""A faster `blend_surrogate` for video frames: the same blend, its maps computed on a coarse grid.

`blend_surrogate` (photos) spends most of its ~80 ms per 240 px face at 720p on
two piecewise-affine maps evaluated at every pixel of the face's box (finding
each pixel's triangle and its barycentric coordinates) and on the colour match
(Lab statistics over every masked pixel). `fast_blend` keeps every step of it
(the same placement of the surrogate, the same warped ring around the face, the
same region mask, feathering and colour statistics) and changes only how two
of them are computed:

- each piecewise-affine map is evaluated at the nodes of a grid of ``step``
  pixels over the box and interpolated bilinearly in between (`coarse_map`).
  A piecewise-affine map is linear inside each triangle, so the interpolation is
  exact there and off by a fraction of a pixel only within ``step`` pixels of a
  triangle edge;
- the colour statistics (mean and spread of each Lab channel inside the mask)
  are taken on every ``stride``-th pixel in each direction rather than on all;
- the surrogate is warped and colour-matched only over the box of the region
  mask (smaller than the box of the warped ring around it);
- beyond the ring's triangulation the photo's map is the identity (the photo blend
  extrapolates a similarity there, which shows as a thin seam on the ring's edge).

Per cluster (`FastSurrogate`, cached in each worker) the surrogate's image and
its anchor points are prepared once. The output is compared with
`blend_surrogate`'s, face by face, in ``tests/video/test_fastblend.py`` and
``bench/bench_video.py --compare-blend`` (SSIM over the changed box).

Only ``blend="feather"`` with ``soften=0`` takes the fast path; any other
setting falls back to `blend_surrogate` (same result, photo speed).
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
)
from anonfaces.synthesize.base import Surrogate
from anonfaces.synthesize.blend import (
    BlendSettings,
    _fill,
    blend_surrogate,
    face_geometry,
    face_mask,
)

log = logging.getLogger(__name__)

#: Grid spacing (pixels) of the piecewise-affine maps.
STEP = 4
#: Every STRIDE-th pixel (each direction) enters the colour statistics.
STRIDE = 3


def coarse_map(dst_points: np.ndarray, src_points: np.ndarray, height: int, width: int, *, step: int = STEP,
               x0: float = 0.0, y0: float = 0.0, outside_identity: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``cv2.remap`` maps (map_x, map_y), float32 (height, width): the piecewise-affine map of ``dst_points`` onto
    ``src_points`` (as `PiecewiseAffine`) at pixels (x0 + x, y0 + y), evaluated every ``step`` pixels and
    interpolated bilinearly in between. ``outside_identity``: nodes outside the triangulation map to themselves
    (where the points on the triangulation's hull are fixed, as the ring around a warped face)."""
    if step < 1:
        raise BadInputError(f"step={step!r} must be >= 1")
    gx = np.arange(0, width - 1 + step, step, dtype=np.float64)
    gy = np.arange(0, height - 1 + step, step, dtype=np.float64)
    xs, ys = np.meshgrid(gx + x0, gy + y0)
    query = np.column_stack([xs.ravel(), ys.ravel()])
    pw = PiecewiseAffine(dst_points, query)
    coarse = pw.map(src_points)
    if outside_identity:  # beyond the triangulation nothing moves (a fixed ring around a warp)
        coarse[~pw.inside] = query[~pw.inside]
    coarse = coarse.reshape(len(gy), len(gx), 2)
    if step == 1:
        return coarse[:height, :width, 0].copy(), coarse[:height, :width, 1].copy()
    fx = np.broadcast_to((np.arange(width, dtype=np.float32) / step)[None, :], (height, width))
    fy = np.broadcast_to((np.arange(height, dtype=np.float32) / step)[:, None], (height, width))
    full = cv2.remap(coarse, np.ascontiguousarray(fx), np.ascontiguousarray(fy), interpolation=cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)
    return full[..., 0], full[..., 1]


def match_colors_sampled(source: np.ndarray, reference: np.ndarray, mask: np.ndarray, *, mode: str = "luma",
                         stride: int = STRIDE) -> np.ndarray:
    """`anonfaces.synthesize.blend.match_colors` with its statistics taken on every ``stride``-th pixel."""
    if mode == "none":
        return source
    if mode not in ("lab", "luma", "mean"):
        raise BadInputError(f"color={mode!r} must be one of lab, luma, mean, none")
    sub = (slice(None, None, stride), slice(None, None, stride))
    sel = mask[sub] > 0.5
    if sel.sum() < 16:
        return source
    src = _lab(source)
    s_sub, r_sub = src[sub][sel], _lab(reference[sub])[sel]
    mu_s, mu_r = s_sub.mean(0), r_sub.mean(0)
    if mode == "mean":
        src += mu_r - mu_s
    else:
        ratio = np.clip(r_sub.std(0) / np.maximum(s_sub.std(0), 1e-3), 0.5, 2.0)
        if mode == "luma":
            src[..., 0] = (src[..., 0] - mu_s[0]) * ratio[0] + mu_r[0]
        else:
            src = (src - mu_s) * ratio + mu_r
    rgb = cv2.cvtColor(src.astype(np.float32), cv2.COLOR_LAB2RGB)
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


def _lab(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(rgb, dtype=np.float32) * np.float32(1.0 / 255.0), cv2.COLOR_RGB2LAB)


class FastSurrogate:
    """A surrogate prepared once for `fast_blend`: its image, landmarks, anchor points and border points."""

    def __init__(self, surrogate: Surrogate):
        self.surrogate = surrogate
        self.image = surrogate.image
        self.size = surrogate.size
        self.landmarks = surrogate.landmarks.astype(np.float64)
        self.anchors = anchor_points(self.landmarks)
        self.border = boundary_points(self.size)
        self.template = CANONICAL_TEMPLATE * self.size


def fast_blend(image: np.ndarray, surrogate: FastSurrogate | Surrogate, landmarks68: np.ndarray, *,
               settings: BlendSettings | None = None, out: np.ndarray | None = None, step: int = STEP,
               stride: int = STRIDE) -> np.ndarray:
    """`blend_surrogate` (same arguments as its ``settings`` form) with coarse maps and sampled colour statistics.

    Returns the frame with the face replaced (``out`` if given, which may be ``image`` itself).
    """
    settings = settings or BlendSettings()
    fs = surrogate if isinstance(surrogate, FastSurrogate) else FastSurrogate(surrogate)
    if settings.blend != "feather" or settings.soften > 0 or settings.pose or settings.detail or settings.place != "anchors":
        return blend_surrogate(image, fs.surrogate, landmarks68, settings=settings, out=out)
    image = np.asarray(image)
    lm = np.asarray(landmarks68, dtype=np.float64)
    if lm.shape != (68, 2) or not np.isfinite(lm).all():
        raise BadInputError(f"landmarks68 must be a finite (68, 2) array; got shape {lm.shape}")
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise BadInputError(f"image must be uint8 of shape (H, W, 3); got {image.dtype} {image.shape}")
    result = image.copy() if out is None else out
    forehead_, expand = settings.outline
    weight = settings.weight
    target, region_outline, ring, roi = face_geometry(
        lm, lambda: transform_points(fs.landmarks, similarity_transform(fs.anchors, anchor_points(lm))), settings,
        image.shape)
    x0, y0, x1, y1 = roi
    if x1 - x0 < 4 or y1 - y0 < 4:
        log.warning("face at %s is outside the image; left unchanged", roi)
        return result
    h, w = y1 - y0, x1 - x0
    patch = result[y0:y1, x0:x1]
    original = patch.copy()
    offset = np.array([x0, y0], np.float64)
    if weight == 0.0:
        base = original
        changed = _fill(region_outline - offset, (h, w)) > 0
    else:
        ring_local = ring - offset
        px, py = coarse_map(np.concatenate([target - offset, ring_local]), np.concatenate([lm - offset, ring_local]),
                            h, w, step=step, outside_identity=True)
        changed = _fill(ring_local, (h, w)) > 0
        reshaped = cv2.remap(original, px, py, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        base = np.where(changed[..., None], reshaped, original)
    mask = face_mask((h, w), target, forehead=forehead_, feather=settings.feather, offset=(x0, y0), expand=expand)
    mask *= changed
    patch[:] = base
    # the surrogate only where the mask is above 0 (the region: a smaller box than the warped ring's)
    ys, xs = np.nonzero(mask.max(1) > 0)[0], np.nonzero(mask.max(0) > 0)[0]
    if len(ys) == 0:
        return result
    sy, sx = slice(ys[0], ys[-1] + 1), slice(xs[0], xs[-1] + 1)
    # the surrogate: image pixels -> its crop (the canonical frame of the new face), then piecewise onto its landmarks
    matrix = similarity_transform(anchor_points(target), fs.template)
    crop_dst = np.concatenate([transform_points(target, matrix), fs.border])
    crop_src = np.concatenate([fs.landmarks, fs.border])
    mx, my = _surrogate_map(matrix, crop_dst, crop_src, ys[-1] + 1 - ys[0], xs[-1] + 1 - xs[0], x0 + xs[0],
                            y0 + ys[0], step)
    warped = cv2.remap(fs.image, mx, my, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    sub_mask, sub_base = mask[sy, sx], base[sy, sx]
    warped = match_colors_sampled(warped, sub_base, sub_mask, mode=settings.color, stride=stride)
    alpha = sub_mask[..., None]
    blended = warped.astype(np.float32) * alpha + sub_base.astype(np.float32) * (1.0 - alpha)
    patch[sy, sx] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    return result


def _surrogate_map(matrix, crop_dst, crop_src, h, w, x0, y0, step):
    """Maps of the surrogate's crop pixels for every pixel of the box (as `warp_surrogate`, on a coarse grid)."""
    gx = np.arange(0, w - 1 + step, step, dtype=np.float64) + x0
    gy = np.arange(0, h - 1 + step, step, dtype=np.float64) + y0
    xs, ys = np.meshgrid(gx, gy)
    query = transform_points(np.column_stack([xs.ravel(), ys.ravel()]), matrix)
    coarse = PiecewiseAffine(crop_dst, query).map(crop_src).reshape(len(gy), len(gx), 2)
    if step == 1:
        return coarse[:h, :w, 0].copy(), coarse[:h, :w, 1].copy()
    fx = np.broadcast_to((np.arange(w, dtype=np.float32) / step)[None, :], (h, w))
    fy = np.broadcast_to((np.arange(h, dtype=np.float32) / step)[:, None], (h, w))
    full = cv2.remap(coarse, np.ascontiguousarray(fx), np.ascontiguousarray(fy), interpolation=cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)
    return full[..., 0], full[..., 1]
