"""Classic obfuscation baselines, applied to each detected face region only.

The original blur / morphology / inpainting work filtered whole images; here
each filter sees the face's neighbourhood (so it has context at the edge) but
only the pixels inside the face region change: the jaw line and the eyebrows
raised toward the forehead (`anonfaces.synthesize.blend.face_mask` without
feathering). Sizes are relative to the face (its chin-to-nose-bridge
distance), so a setting means the same on small and large faces.

============ ===================================================================
name         what
============ ===================================================================
blur         Gaussian blur, ``sigma`` (x face size)
pixelate     mosaic of ``blocks`` cells across the face
mask         solid colour ``color`` (grey level or r,g,b)
closing      morphological closing (dilate, then erode) with an elliptical
             kernel of ``size`` (x face size), ``iterations`` times
blocking     blocking & merging: square blocks of ``block`` (x face size) are
             dealt at random into ``n_sets`` sets; each set is inpainted from
             its neighbouring pixels (OpenCV Telea), the sets are merged, then
             the original pixels at up to ``orb_features`` ORB keypoints
             (disks of ``keypoint_radius`` px) are put back
inversion    CNN feature inversion (`anonfaces.synthesize.deid`): ``weights``
             (a checkpoint; default the shipped one), ``detail`` (true keeps
             the photo's detail finer than 64 px), ``region`` (face | inner),
             ``contrast``, ``sharpen``, ``sharpen_radius``, ``sharpen_region``
             (face | inner), ``outer_detail`` (0..1), ``seam`` (0..0.5 x face
             size); unset: the checkpoint's own defaults (docs/deid.md)
d2gan        the D2GAN generator (`anonfaces.synthesize.deid`), same settings
============ ===================================================================

A method that needs the face's landmarks sets ``uses_landmarks = True``; it is then
called with ``landmarks=`` (68, 2) in patch pixels.
"""

from __future__ import annotations

import inspect

import cv2
import numpy as np
from sklearn.utils import check_random_state

from anonfaces.errors import BadInputError
from anonfaces.registry import Registry
from anonfaces.synthesize._warp import face_scale
from anonfaces.synthesize.blend import face_mask, face_roi

BASELINES: Registry = Registry("method")


def _positive(name, value, *, integer=False, upper=None):
    ok = isinstance(value, (int, np.integer)) if integer else isinstance(value, (int, float, np.number))
    if isinstance(value, bool) or not ok or not value > 0 or (upper is not None and value > upper):
        what = "an integer" if integer else "a number"
        rng = f" in (0, {upper}]" if upper is not None else " > 0"
        raise BadInputError(f"{name}={value!r} must be {what}{rng}")


@BASELINES.register("blur")
def blur(patch, mask, scale, rng, *, sigma: float = 0.15):
    """Gaussian blur with standard deviation ``sigma`` x face size."""
    _positive("sigma", sigma)
    return cv2.GaussianBlur(patch, (0, 0), sigmaX=max(0.5, sigma * scale), borderType=cv2.BORDER_REFLECT)


@BASELINES.register("pixelate")
def pixelate(patch, mask, scale, rng, *, blocks: int = 8):
    """Mosaic: ``blocks`` cells across the face region's width."""
    _positive("blocks", blocks, integer=True)
    x, y, w, h = cv2.boundingRect(mask.astype(np.uint8))
    cell = max(2, round(w / blocks))
    out = patch.copy()
    region = patch[y:y + h, x:x + w]
    small = cv2.resize(region, (max(1, -(-w // cell)), max(1, -(-h // cell))), interpolation=cv2.INTER_AREA)
    big = np.repeat(np.repeat(small, cell, axis=0), cell, axis=1)[:h, :w]
    out[y:y + h, x:x + w] = big
    return out


@BASELINES.register("mask")
def solid_mask(patch, mask, scale, rng, *, color=0):
    """Fill with one colour: a grey level 0..255 or an (r, g, b) triple (or "r,g,b")."""
    if isinstance(color, str):
        try:
            color = [int(v) for v in color.split(",")]
        except ValueError:
            raise BadInputError(f"color={color!r} must be a grey level or r,g,b") from None
    value = np.broadcast_to(np.asarray(color), (3,)) if np.ndim(color) == 0 else np.asarray(color)
    if value.shape != (3,) or not np.all((value >= 0) & (value <= 255)):
        raise BadInputError(f"color={color!r} must be a grey level or r,g,b with values 0..255")
    out = np.empty_like(patch)
    out[:] = value.astype(np.uint8)
    return out


@BASELINES.register("closing")
def closing(patch, mask, scale, rng, *, size: float = 0.15, iterations: int = 1):
    """Morphological closing (dilate, then erode) with an ellipse of ``size`` x face size."""
    _positive("size", size)
    _positive("iterations", iterations, integer=True, upper=20)
    d = max(3, round(size * scale) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (d, d))
    return cv2.morphologyEx(patch, cv2.MORPH_CLOSE, kernel, iterations=int(iterations), borderType=cv2.BORDER_REFLECT)


@BASELINES.register("blocking")
def blocking(patch, mask, scale, rng, *, block: float = 0.12, n_sets: int = 4, inpaint_radius: int = 3,
             orb_features: int = 100, keypoint_radius: int = 1):
    """Blocking & merging with OpenCV inpainting, then the original's ORB keypoints added back."""
    _positive("block", block)
    _positive("n_sets", n_sets, integer=True, upper=64)
    _positive("inpaint_radius", inpaint_radius, integer=True, upper=50)
    if isinstance(orb_features, bool) or not isinstance(orb_features, (int, np.integer)) or orb_features < 0:
        raise BadInputError(f"orb_features={orb_features!r} must be an integer >= 0")
    if isinstance(keypoint_radius, bool) or not isinstance(keypoint_radius, (int, np.integer)) or keypoint_radius < 0:
        raise BadInputError(f"keypoint_radius={keypoint_radius!r} must be an integer >= 0")
    b = max(2, round(block * scale))
    x, y, w, h = cv2.boundingRect(mask.astype(np.uint8))
    cells = [(cx, cy) for cy in range(y, y + h, b) for cx in range(x, x + w, b) if mask[cy:cy + b, cx:cx + b].any()]
    order = rng.permutation(len(cells))
    merged = patch.copy()
    for part in np.array_split(order, int(n_sets)):
        holes = np.zeros(mask.shape, np.uint8)
        for i in part.tolist():
            cx, cy = cells[i]
            holes[cy:cy + b, cx:cx + b] = 255
        if holes.any():
            filled = cv2.inpaint(patch, holes, int(inpaint_radius), cv2.INPAINT_TELEA)
            merged[holes > 0] = filled[holes > 0]
    if orb_features:
        orb = cv2.ORB_create(nfeatures=int(orb_features), edgeThreshold=8, patchSize=15)
        keypoints = orb.detect(cv2.cvtColor(patch, cv2.COLOR_RGB2GRAY), mask.astype(np.uint8) * 255)
        spots = np.zeros(mask.shape, np.uint8)
        for kp in keypoints:
            cv2.circle(spots, (round(kp.pt[0]), round(kp.pt[1])), int(keypoint_radius), 255, -1)
        merged[spots > 0] = patch[spots > 0]
    return merged


def _deid(model):
    def method(patch, mask, scale, rng, *, landmarks=None, weights=None, detail=None, region=None, contrast=None,
               sharpen=None, sharpen_radius=None, sharpen_region=None, outer_detail=None, seam=None):
        from anonfaces.synthesize.deid import deidentify_patch

        for name, value in (("detail", detail), ("contrast", contrast)):
            if value is not None and not isinstance(value, (bool, np.bool_)):
                raise BadInputError(f"{name}={value!r} must be true or false")
        if sharpen is not None and (isinstance(sharpen, bool) or not isinstance(sharpen, (int, float, np.number))
                                    or not 0 <= sharpen <= 5):
            raise BadInputError(f"sharpen={sharpen!r} must be a number in [0, 5]")
        if sharpen_radius is not None and (isinstance(sharpen_radius, bool) or not isinstance(sharpen_radius, (int, float, np.number))
                                           or not 0.25 <= sharpen_radius <= 8):
            raise BadInputError(f"sharpen_radius={sharpen_radius!r} must be a number in [0.25, 8] (network pixels)")
        for name, value, upper in (("outer_detail", outer_detail, 1), ("seam", seam, 0.5)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float, np.number))
                                      or not 0 <= value <= upper):
                raise BadInputError(f"{name}={value!r} must be a number in [0, {upper}]")
        if weights is not None and not isinstance(weights, str):
            raise BadInputError(f"weights={weights!r} must be a checkpoint path")
        if landmarks is None:
            raise BadInputError(f"the {model} method needs the face's landmarks")
        return deidentify_patch(model, patch, mask, landmarks, weights=weights, detail=detail, region=region,
                                contrast=contrast, sharpen=sharpen, sharpen_radius=sharpen_radius,
                                sharpen_region=sharpen_region, outer_detail=outer_detail, seam=seam)

    method.__name__ = model
    method.__doc__ = f"The learned {model} de-identifier (`anonfaces.synthesize.deid`), one new face per face."
    method.uses_landmarks = True
    return method


inversion = BASELINES.register("inversion")(_deid("inversion"))
d2gan = BASELINES.register("d2gan")(_deid("d2gan"))


def check_baseline_params(method: str, params: dict) -> None:
    """Refuse unknown or invalid settings of a baseline before any photo is processed."""
    func = BASELINES.get(method)
    valid = [p for p, v in inspect.signature(func).parameters.items()
             if v.kind is inspect.Parameter.KEYWORD_ONLY and p != "landmarks"]
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise BadInputError(f"unknown setting(s) {', '.join(unknown)} for method {method!r}; valid: {', '.join(valid) or 'none'}")
    patch = np.full((64, 64, 3), 128, np.uint8)
    mask = np.zeros((64, 64), bool)
    mask[16:48, 16:48] = True
    if getattr(func, "uses_landmarks", False):
        params = {**params, "landmarks": np.full((68, 2), 32.0)}
    func(patch, mask, 32.0, np.random.RandomState(0), **params)


def apply_baseline(image: np.ndarray, method: str, landmarks: list, *, random_state=None, forehead: float = 0.15,
                   **params) -> np.ndarray:
    """A copy of ``image`` with every face region (one (68, 2) landmark array per face) obfuscated by ``method``.

    Pixels outside the face regions are returned unchanged, bit for bit.
    """
    func = BASELINES.get(method)
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise BadInputError(f"expected an RGB uint8 image of shape (H, W, 3); got {image.dtype} {image.shape}")
    rng = check_random_state(random_state)
    result = image.copy()
    for lm in landmarks:
        lm = np.asarray(lm, dtype=np.float64)
        if lm.shape != (68, 2) or not np.isfinite(lm).all():
            raise BadInputError(f"landmarks must be finite (68, 2) arrays; got shape {lm.shape}")
        x0, y0, x1, y1 = face_roi(lm, image.shape[:2], forehead=forehead, margin=0.3)
        if x1 - x0 < 4 or y1 - y0 < 4:
            continue
        patch = np.ascontiguousarray(result[y0:y1, x0:x1])
        mask = face_mask((y1 - y0, x1 - x0), lm, forehead=forehead, feather=0, offset=(x0, y0)) > 0
        if not mask.any():
            continue
        extra = {"landmarks": lm - (x0, y0)} if getattr(func, "uses_landmarks", False) else {}
        filtered = func(patch, mask, face_scale(lm), rng, **params, **extra)
        view = result[y0:y1, x0:x1]
        view[mask] = filtered[mask]
    return result


#: Cells along the long side of a photo blurred whole (`blur_all`: the release's ``blur`` policy; a face spans
#: only a few).
BLUR_CELLS = 12


def blur_all(image: np.ndarray, *, cells: int = BLUR_CELLS) -> np.ndarray:
    """The whole photo reduced to ``cells`` blocks along its long side, then smoothed.

    No face survives: at 12 cells a face filling half the photo spans 6 x 6 blocks.
    """
    import cv2

    image = np.asarray(image, np.uint8)
    h, w = image.shape[:2]
    scale = cells / max(h, w)
    small = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    big = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    sigma = max(h, w) / cells / 2
    return np.ascontiguousarray(cv2.GaussianBlur(big, (0, 0), sigmaX=sigma))
