"""Image quality against the original photo: SSIM and PSNR, bucketed by face area share.

As the CNN de-identification work reported them: each photo's SSIM and PSNR
(whole image, anonymized against original) are grouped by the share of the
image the faces cover (`AREA_BUCKETS`) and averaged per group and overall.
"""

from __future__ import annotations

import numpy as np

from anonfaces.errors import BadInputError

#: (label, lower bound exclusive, upper bound inclusive) of the face area share.
AREA_BUCKETS: tuple[tuple[str, float, float], ...] = (
    ("<=10%", -np.inf, 0.10),
    ("10-30%", 0.10, 0.30),
    ("30-50%", 0.30, 0.50),
    ("50-70%", 0.50, 0.70),
    (">70%", 0.70, np.inf),
)
ALL_BUCKET = "average"


def _check_images(original, anonymized) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(original)
    b = np.asarray(anonymized)
    if a.shape != b.shape or a.ndim not in (2, 3):
        raise BadInputError(f"images must have the same 2-D or 3-D shape; got {a.shape} and {b.shape}")
    return a, b


def psnr(original, anonymized, *, data_range: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB (inf for identical images)."""
    a, b = _check_images(original, anonymized)
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else float(10.0 * np.log10(data_range**2 / mse))


def ssim(original, anonymized, *, data_range: float = 255.0) -> float:
    """Mean structural similarity (scikit-image, 7 x 7 window, over colour channels)."""
    from skimage.metrics import structural_similarity

    a, b = _check_images(original, anonymized)
    if min(a.shape[:2]) < 7:
        raise BadInputError(f"SSIM needs images of at least 7 x 7 pixels; got {a.shape[:2]}")
    channel_axis = 2 if a.ndim == 3 else None
    return float(structural_similarity(a, b, data_range=data_range, channel_axis=channel_axis))


def face_area_share(boxes_ltrb, image_size_wh) -> float:
    """Share of the image covered by the union of the face boxes (clipped to the image)."""
    w, h = (int(v) for v in image_size_wh)
    if w <= 0 or h <= 0:
        raise BadInputError(f"image size {image_size_wh} must be positive")
    mask = np.zeros((h, w), bool)
    for left, top, right, bottom in np.asarray(boxes_ltrb, np.float64).reshape(-1, 4):
        l, t = max(int(np.floor(left)), 0), max(int(np.floor(top)), 0)
        r, b = min(int(np.ceil(right)), w), min(int(np.ceil(bottom)), h)
        if r > l and b > t:
            mask[t:b, l:r] = True
    return float(mask.mean())


def area_bucket(share: float) -> str:
    """The label of `AREA_BUCKETS` that ``share`` (0..1) falls in."""
    for label, lo, hi in AREA_BUCKETS:
        if lo < share <= hi:
            return label
    raise BadInputError(f"face area share {share!r} is not a number")


def bucket_means(values, shares) -> dict[str, tuple[float, int]]:
    """{bucket label: (mean value, count)} for every bucket and ``ALL_BUCKET``; NaN mean for empty buckets.

    Infinite values (PSNR of unchanged photos) are averaged as they are: a bucket
    holding one is infinite.
    """
    v = np.asarray(values, np.float64)
    s = np.asarray(shares, np.float64)
    if v.shape != s.shape:
        raise BadInputError(f"values {v.shape} and shares {s.shape} must have the same shape")
    labels = np.array([area_bucket(x) for x in s]) if s.size else np.array([], str)
    out = {}
    for label, _, _ in AREA_BUCKETS:
        sel = v[labels == label]
        out[label] = (float(sel.mean()) if sel.size else float("nan"), int(sel.size))
    out[ALL_BUCKET] = (float(v.mean()) if v.size else float("nan"), int(v.size))
    return out
