"""Put a surrogate into a photo: place it on a face and blend it in.

For one face, `blend_surrogate`

1. places the surrogate on the face. With ``shape="cluster"`` (the default) the
   surrogate keeps its own shape (the cluster's mean landmarks): a similarity
   transform (position, scale, roll from the eyes and mouth) puts it on the face,
   and the photo around the face (jaw, cheeks, chin, out to a ring beyond the
   region) is warped so that the face's own landmarks move to the surrogate's:
   the person's head meets the new outline with no seam or double chin. With
   ``shape="member"`` (the behaviour before issue 16) the surrogate is warped
   piecewise-affinely onto the face's own 68 landmarks, so it takes the person's
   face geometry. With ``place="landmarks"`` the similarity transform is fitted
   to all 68 landmarks (the face's outline too), so less of the photo is warped;
   ``ring`` sets how far out the photo is warped;
2. builds the region mask (`REGIONS`): ``inner`` is the jaw line and the
   eyebrows raised a little toward the forehead (the old region); ``forehead``
   raises it toward the hairline; ``head`` also scales it out under the chin and
   toward the ears (most of dlib's 150 x 150 face chip); ``chip`` reaches further
   (into the hairline, past the ears, well under the chin). The mask is feathered at
   its edge;
3. matches colours (`COLOR_MODES`): ``lab`` gives the surrogate the mean and
   spread of each CIE Lab channel of the face it replaces (the person's skin and
   light); ``luma`` matches only lightness (chroma from the cluster); ``mean``
   shifts the means; ``none`` keeps the cluster's colours;
4. blends: ``"feather"`` (alpha blending with the soft mask) or ``"seamless"``
   (Poisson seamless cloning, `poisson_clone`: the surrogate's gradients, the
   photo's colours on the mask's edge; no colour matching needed).

With ``detail`` > 0 the photo's own fine detail (the band finer than `DETAIL_SIGMA`
of the face size: hair strands, skin grain, the background's texture) is put back
where the photo changed outside the inner face (`restore_detail`); the surrogate's
coarser structure stays. Then ``soften`` blurs the region (the privacy check's
last steps).

Only pixels inside the changed region (`FaceReplacement.changed`: the region
and, with ``shape="cluster"``, the warped ring around it) change.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

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
    polygon_ring,
    remap,
)
from anonfaces.synthesize.base import Surrogate

log = logging.getLogger(__name__)

BLEND_MODES = ("feather", "seamless")
COLOR_MODES = ("lab", "luma", "mean", "none")
SHAPES = ("cluster", "member")
#: How the surrogate is placed on a face: the similarity transform fitted to the eye and mouth centres, or to all 68
#: landmarks.
PLACEMENTS = ("anchors", "landmarks")
#: ``detail`` > 0: the photo's band finer than a Gaussian of this share of the face size (`face_scale`) is put back.
DETAIL_SIGMA = 0.06
#: `restore_detail`'s weight rises from 0 at the inner face's outline to its full share over this share of the face size.
DETAIL_RAMP = 0.08
#: Region presets: (forehead lift, outline scale about the nose tip); see `anonfaces.synthesize._warp.face_outline`.
REGIONS = {"inner": (0.15, 1.0), "forehead": (0.35, 1.0), "head": (0.35, 1.12), "chip": (0.6, 1.3)}
#: The default ``ring``: how far around the region the photo is warped to meet the surrogate's outline
#: (``shape="cluster"``), as a scale of the hull of the face's and the new region's outlines about the nose tip.
RING_SCALE = 1.2
#: The ``ring`` values accepted (a ring at 1 would leave no room to warp the photo to the new outline).
RING_RANGE = (1.02, 2.0)


@dataclass(frozen=True)
class BlendSettings:
    """How a surrogate is put into a photo (see the module docstring).

    ``forehead`` overrides the region preset's forehead lift when not None.
    ``soften`` > 0 blurs the replaced region (Gaussian, sigma that share of the
    face size, weighted by the region mask): the privacy check's last step before
    its fallback, leaving a face that is still found but carries less detail.
    ``pose`` > 0 (with the cluster's shape) takes that many leading modes of the
    shape model (`anonfaces.synthesize.shape_modes`: yaw, pitch, then face width and
    mouth opening) from the member and the rest of the shape from the cluster, so the
    new face keeps the member's pose and its outline meets the photo where it is.
    ``place`` (`PLACEMENTS`): the landmarks the similarity transform is fitted to.
    ``detail`` (0 to 1): the share of the photo's own fine detail put back outside the
    inner face (`restore_detail`). ``ring`` (> 1, at most 2): how far out the photo is
    warped to meet the new outline (a scale of both outlines' hull about the nose tip;
    smaller moves fewer of the photo's pixels, each further).
    """

    shape: str | float = "cluster"
    region: str = "head"
    blend: str = "feather"
    color: str = "luma"
    feather: float = 0.06
    forehead: float | None = None
    soften: float = 0.0
    pose: int = 0
    place: str = "anchors"
    detail: float = 0.0
    ring: float = RING_SCALE

    def __post_init__(self):
        shape_weight(self.shape)
        from anonfaces.synthesize.shape_modes import N_MODES

        if isinstance(self.pose, bool) or not isinstance(self.pose, (int, np.integer)) or not 0 <= self.pose <= N_MODES:
            raise BadInputError(f"pose={self.pose!r} must be an integer from 0 to {N_MODES} (shape modes from the member)")
        if isinstance(self.detail, bool) or not (isinstance(self.detail, (int, float)) and 0 <= self.detail <= 1):
            raise BadInputError(f"detail={self.detail!r} must be a number from 0 to 1 (the share of the photo's fine "
                                "detail put back outside the inner face)")
        if isinstance(self.ring, bool) or not (isinstance(self.ring, (int, float))
                                               and RING_RANGE[0] <= self.ring <= RING_RANGE[1]):
            raise BadInputError(f"ring={self.ring!r} must be a number from {RING_RANGE[0]:g} to {RING_RANGE[1]:g} "
                                "(the warped ring's scale about the face)")
        if not (isinstance(self.soften, (int, float)) and 0 <= self.soften <= 0.2):
            raise BadInputError(f"soften={self.soften!r} must be a number from 0 to 0.2")
        for name, value, valid in (("region", self.region, tuple(REGIONS)),
                                   ("blend", self.blend, BLEND_MODES), ("color", self.color, COLOR_MODES),
                                   ("place", self.place, PLACEMENTS)):
            if value not in valid:
                raise BadInputError(f"{name}={value!r} must be one of {', '.join(valid)}")
        if not (isinstance(self.feather, (int, float)) and 0 <= self.feather <= 0.5):
            raise BadInputError(f"feather={self.feather!r} must be a number from 0 to 0.5")
        if self.forehead is not None and not (isinstance(self.forehead, (int, float)) and -0.2 <= self.forehead <= 1.5):
            raise BadInputError(f"forehead={self.forehead!r} must be None or a number from -0.2 to 1.5")

    @property
    def weight(self) -> float:
        """The share of the cluster's shape in the new face (0: the member's own, 1: the cluster's)."""
        return shape_weight(self.shape)

    @property
    def outline(self) -> tuple[float, float]:
        """(forehead, expand) of the region."""
        forehead, expand = REGIONS[self.region]
        return (forehead if self.forehead is None else float(self.forehead)), expand

    def replace(self, **changes) -> BlendSettings:
        from dataclasses import replace

        return replace(self, **changes)


def shape_weight(shape) -> float:
    """``"cluster"`` -> 1.0, ``"member"`` -> 0.0, a number from 0 to 1 (or its string) -> itself."""
    if isinstance(shape, str) and shape in SHAPES:
        return 1.0 if shape == "cluster" else 0.0
    try:
        weight = float(shape)
    except (TypeError, ValueError):
        weight = float("nan")
    if isinstance(shape, bool) or not 0.0 <= weight <= 1.0:
        raise BadInputError(f"shape={shape!r} must be one of {', '.join(SHAPES)} or a number from 0 to 1 "
                            "(the share of the cluster's shape)")
    return weight


def face_mask(shape_hw: tuple[int, int], landmarks68: np.ndarray, *, forehead: float = 0.15, feather: float = 0.06,
              offset=(0, 0), expand: float = 1.0) -> np.ndarray:
    """Soft face mask, float32 in [0, 1] of shape ``shape_hw``.

    The hard region is `face_outline`; with ``feather`` > 0 its edge is shrunk
    and blurred over ``feather`` times the face size, so the mask is 1 well inside
    the face and reaches 0 at the outline (nothing outside the outline changes).
    ``offset`` (x0, y0) is subtracted from the landmarks (a region of interest).
    """
    h, w = shape_hw
    outline = face_outline(landmarks68, forehead=forehead, expand=expand) - np.asarray(offset, dtype=np.float64)
    hard = _fill(outline, (h, w))
    if feather <= 0:
        return (hard > 127).astype(np.float32)
    width = max(1.0, feather * face_scale(landmarks68))
    radius = int(np.ceil(width))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    inner = cv2.erode(hard, kernel)
    soft = cv2.GaussianBlur(inner.astype(np.float32) / 255.0, (0, 0), sigmaX=width / 2.0)
    return np.minimum(soft, (hard > 127).astype(np.float32))


def _fill(polygon: np.ndarray, shape_hw) -> np.ndarray:
    """uint8 raster (0/255, anti-aliased edge) of a convex polygon."""
    hard = np.zeros(shape_hw, np.uint8)
    cv2.fillConvexPoly(hard, np.round(polygon * 16).astype(np.int32), 255, lineType=cv2.LINE_AA, shift=4)
    return hard


def match_colors(source: np.ndarray, reference: np.ndarray, mask: np.ndarray, *, mode: str = "lab") -> np.ndarray:
    """Give ``source`` (uint8 RGB) the colour statistics of ``reference`` inside ``mask`` (> 0.5).

    ``lab``: mean and spread of every CIE Lab channel; ``luma``: of lightness only
    (the source keeps its chroma); ``mean``: the means only; ``none``: unchanged.
    """
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
    if mode in ("lab", "luma"):
        sd_s, sd_r = src[sel].std(0), ref[sel].std(0)
        ratio = np.clip(sd_r / np.maximum(sd_s, 1e-3), 0.5, 2.0)
        out = (src - mu_s) * ratio + mu_r
        if mode == "luma":
            out[..., 1:] = src[..., 1:]
    else:
        out = src - mu_s + mu_r
    rgb = cv2.cvtColor(out.astype(np.float32), cv2.COLOR_LAB2RGB)
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


def face_roi(landmarks68: np.ndarray, image_hw: tuple[int, int], *, forehead: float = 0.15, margin: float = 0.05,
             expand: float = 1.0):
    """The box (x0, y0, x1, y1) holding the face outline plus a margin, clipped to the image."""
    return _roi(face_outline(landmarks68, forehead=forehead, expand=expand), face_scale(landmarks68), image_hw, margin)


def _roi(outline: np.ndarray, scale: float, image_hw, margin: float):
    h, w = image_hw
    pad = margin * scale + 2
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


def place_surrogate(surrogate: Surrogate, landmarks68: np.ndarray, *, pose: int = 0,
                    place: str = "anchors") -> tuple[np.ndarray, np.ndarray]:
    """The similarity transform putting the surrogate on a face, and the surrogate's landmarks there.

    Returns the (2, 3) matrix from surrogate-crop pixels to image pixels (least
    squares over the eye centres and the mouth centre, or with ``place="landmarks"``
    over all 68 landmarks) and the surrogate's 68
    landmarks in image pixels (its own shape, only moved, scaled and rolled; with
    ``pose`` > 0, in the face's pose: `anonfaces.synthesize.shape_modes.pose_shape`).
    """
    if place not in PLACEMENTS:
        raise BadInputError(f"place={place!r} must be one of {', '.join(PLACEMENTS)}")
    if place == "landmarks":
        matrix = similarity_transform(np.asarray(surrogate.landmarks, np.float64), np.asarray(landmarks68, np.float64))
    else:
        matrix = similarity_transform(anchor_points(surrogate.landmarks), anchor_points(landmarks68))
    shape = surrogate.landmarks
    if pose:
        from anonfaces.synthesize.shape_modes import pose_shape

        back = cv2.invertAffineTransform(matrix)
        member = transform_points(np.asarray(landmarks68, np.float64), back)  # the face in the surrogate's frame
        shape = pose_shape(member, shape, pose, size=surrogate.size)
    return matrix, transform_points(shape, matrix)


@dataclass(frozen=True)
class FaceReplacement:
    """Where one `blend_surrogate` call put the surrogate.

    Attributes
    ----------
    roi : tuple of int
        (x0, y0, x1, y1): the box holding every changed pixel.
    changed : ndarray of shape (y1 - y0, x1 - x0), bool
        The pixels of ``roi`` that may have changed (outside it nothing changes).
    landmarks68 : ndarray of shape (68, 2), float64
        Where the new face's landmarks are in the photo (the surrogate's shape
        placed on the face, or the face's own landmarks with ``shape="member"``).
    """

    roi: tuple
    changed: np.ndarray
    landmarks68: np.ndarray


def face_geometry(lm: np.ndarray, placed, settings: BlendSettings, image_shape) -> tuple:
    """Where one face is replaced: ``(target, region_outline, ring, roi)``.

    ``target``: the landmarks the surrogate goes onto (the member's ``lm`` moved by
    ``settings.weight`` toward ``placed()``, the surrogate's own shape placed on the
    member; ``placed`` is called only when the weight is not 0); ``region_outline``: the
    replaced region's outline around ``target``; ``ring``: the outline the photo is
    warped within (beyond both the face's and the new region's outline; the region's own
    outline when the shape is the member's); ``roi``: the box ``(x0, y0, x1, y1)``
    worked on, clipped to ``image_shape``. Shared by `blend_surrogate` and the video
    blend (`anonfaces.video.fastblend`).
    """
    forehead_, expand = settings.outline
    weight = settings.weight
    target = lm if weight == 0.0 else lm + weight * (placed() - lm)
    region_outline = face_outline(target, forehead=forehead_, expand=expand)
    if weight == 0.0:
        ring = region_outline
    else:  # the warped ring: beyond both the face's and the new region's outline
        both = np.concatenate([face_outline(lm, forehead=forehead_, expand=expand), region_outline])
        centre = (lm[30] + target[30]) / 2.0
        hull = cv2.convexHull(both.astype(np.float32)).reshape(-1, 2).astype(np.float64)
        ring = polygon_ring(centre + (hull - centre) * settings.ring, 40)
    roi = _roi(ring, face_scale(target), image_shape[:2], settings.feather + 0.02)
    return target, region_outline, ring, roi


def blend_surrogate(image: np.ndarray, surrogate: Surrogate, landmarks68: np.ndarray, *, blend: str = "feather",
                    color: str = "luma", forehead: float | None = None, feather: float = 0.06,
                    shape: str = "cluster", region: str = "head", out: np.ndarray | None = None,
                    settings: BlendSettings | None = None, details: bool = False):
    """Replace the face with ``landmarks68`` (image pixels) in ``image`` by ``surrogate``.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3), uint8
        The photo; not modified unless it is also ``out``.
    surrogate : Surrogate
    landmarks68 : ndarray of shape (68, 2)
    blend : {"feather", "seamless"}
    color : {"lab", "luma", "mean", "none"}
        Colour matching of the surrogate to the face (ignored by ``seamless``, which
        takes its colours from the photo's border by construction).
    forehead : float or None
        Forehead lift of the region (None: the ``region`` preset's).
    feather : float
        See `face_mask`.
    shape : {"cluster", "member"} or float
        The new face's geometry: the surrogate's own (placed by a similarity
        transform, the photo around it warped to meet it), the face's own, or a
        number from 0 (member) to 1 (cluster): the landmarks move that share of
        the way from the face's to the placed surrogate's.
    region : {"inner", "forehead", "head"}
        How much of the head the surrogate covers (`REGIONS`).
    out : ndarray, optional
        Write into this array (may be ``image`` itself, to blend several faces).
    settings : BlendSettings, optional
        All of the above in one record (then the keywords are ignored).
    details : bool
        Also return the `FaceReplacement`.

    Returns
    -------
    ndarray of shape (H, W, 3), uint8, or (that, FaceReplacement) with ``details``.
    """
    if settings is None:
        settings = BlendSettings(shape=shape, region=region, blend=blend, color=color, feather=float(feather),
                                 forehead=forehead)
    image = np.asarray(image)
    lm = np.asarray(landmarks68, dtype=np.float64)
    if lm.shape != (68, 2) or not np.isfinite(lm).all():
        raise BadInputError(f"landmarks68 must be a finite (68, 2) array; got shape {lm.shape}")
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise BadInputError(f"image must be uint8 of shape (H, W, 3); got {image.dtype} {image.shape}")
    result = image.copy() if out is None else out
    forehead_, expand = settings.outline
    weight = settings.weight
    target, region_outline, ring, roi = face_geometry(lm, lambda: place_surrogate(surrogate, lm, pose=settings.pose,
                                                                                  place=settings.place)[1],
                                                      settings, image.shape)
    scale = face_scale(target)
    x0, y0, x1, y1 = roi
    empty = FaceReplacement(roi, np.zeros((max(0, y1 - y0), max(0, x1 - x0)), bool), target)
    if x1 - x0 < 4 or y1 - y0 < 4:
        log.warning("face at %s is outside the image; left unchanged", roi)
        return (result, empty) if details else result
    patch = result[y0:y1, x0:x1]
    original = patch.copy()
    offset = np.array([x0, y0], np.float64)
    hw = (y1 - y0, x1 - x0)
    if weight == 0.0:
        warped = warp_surrogate(surrogate, lm, roi)
        base = original
        changed = _fill(region_outline - offset, hw) > 0
    else:
        # the photo, reshaped so that the face's landmarks move onto the surrogate's; the ring stays put
        ring_local = ring - offset
        grid = grid_points(*hw)
        pw = PiecewiseAffine(np.concatenate([target - offset, ring_local]), grid)
        coords = pw.map(np.concatenate([lm - offset, ring_local]))
        inside = _fill(ring_local, hw) > 0
        reshaped = remap(original, coords, *hw, border=cv2.BORDER_REPLICATE)
        base = np.where(inside[..., None], reshaped, original)
        changed = inside
        warped = warp_surrogate(surrogate, target, roi)  # with weight 1: the surrogate only moved, scaled and rolled
    mask = face_mask(hw, target, forehead=forehead_, feather=settings.feather, offset=(x0, y0), expand=expand)
    mask *= changed
    if settings.blend == "seamless":
        patch[:] = poisson_clone(warped, base, mask > 0.02)
        patch[:] = np.where(changed[..., None], patch, original)
    else:
        warped = match_colors(warped, base, mask, mode=settings.color)
        alpha = mask[..., None]
        patch[:] = np.clip(np.rint(warped * alpha + base * (1.0 - alpha)), 0, 255).astype(np.uint8)
    if settings.detail > 0:
        restore_detail(patch, original, [lm, target], settings.detail, offset=(x0, y0), changed=changed)
    if settings.soften > 0:
        soft = cv2.GaussianBlur(patch, (0, 0), sigmaX=max(0.5, settings.soften * scale)).astype(np.float32)
        alpha = mask[..., None]
        patch[:] = np.clip(np.rint(soft * alpha + patch * (1.0 - alpha)), 0, 255).astype(np.uint8)
    replacement = FaceReplacement(roi, changed, target)
    return (result, replacement) if details else result


def restore_detail(patch: np.ndarray, original: np.ndarray, faces, share: float, *, offset=(0, 0),
                   changed: np.ndarray | None = None) -> None:
    """Put ``share`` of the photo's own fine detail back into ``patch`` outside the inner face (in place).

    The band finer than `DETAIL_SIGMA` of the face size is taken from ``original``
    (the photo before any change, not warped) and replaces the patch's own band where
    ``changed`` (default: everywhere) and outside the inner face (the ``inner``
    region's outline of every landmark set in ``faces``: the member's and the new
    face's), rising from 0 at that outline to ``share`` over `DETAIL_RAMP` of the
    face size. Hair, skin grain and the background's texture stay where the photo
    had them; inside the inner face (eyes, brows, nose, mouth, cheeks) every pixel
    stays the surrogate's.
    """
    hw = patch.shape[:2]
    scale = face_scale(faces[-1])
    forehead, _ = REGIONS["inner"]
    inner = np.zeros(hw, np.uint8)
    for lm in faces:
        inner |= _fill(face_outline(lm, forehead=forehead) - np.asarray(offset, np.float64), hw)
    outside = (inner == 0).astype(np.uint8)  # anti-aliased edge pixels count as inside
    distance = cv2.distanceTransform(outside, cv2.DIST_L2, 5)
    weight = share * np.clip(distance / max(1.0, DETAIL_RAMP * scale), 0.0, 1.0)
    if changed is not None:
        weight *= changed
    sigma = max(0.6, DETAIL_SIGMA * scale)
    cur = patch.astype(np.float32)
    own = original.astype(np.float32)
    fine = (own - cv2.GaussianBlur(own, (0, 0), sigma)) - (cur - cv2.GaussianBlur(cur, (0, 0), sigma))
    patch[:] = np.clip(np.rint(cur + weight[..., None] * fine), 0, 255).astype(np.uint8)


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
