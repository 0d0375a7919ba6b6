"""One pass over a folder of (anonymized) photos: what every metric needs, in parallel.

For every face of the original encodings, `measure_photos` reads the photo
with the same relative path under ``root`` and, at the *original* face's
landmarks (the attacker is told where the face is; whether a detector still
finds it is measured separately):

* cuts each recognizer's crop, and embeds it in the worker when the recognizer
  needs no fitting (dlib), else returns the crop for the fitted recognizer;
* optionally re-runs the detector (hit rate, landmark displacement);
* optionally compares the photo with the original (SSIM, PSNR, face area share).
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from anonfaces.detect import FaceDetection, make_detector
from anonfaces.errors import BadInputError
from anonfaces.evaluate import detectability, quality
from anonfaces.utils.images import ImageReadError, read_image
from anonfaces.utils.parallel import WorkerPool, pool_for, worker_local

log = logging.getLogger(__name__)


@dataclass
class Measurements:
    """What `measure_photos` found, row-aligned with the encodings it was given.

    Attributes
    ----------
    features : dict of str to ndarray
        Recognizer name -> embeddings (n_faces, dim) for recognizers that need no
        fitting, else prepared crops (n_faces, ...); rows of unreadable photos are zeros.
    readable : ndarray of shape (n_faces,), bool
        False where the photo under ``root`` was missing or unreadable.
    detected : ndarray of shape (n_faces,), bool
        The detector found the face again (IoU >= min_iou); all False when not measured.
    displacement : ndarray of shape (n_faces,), float
        Normalised landmark displacement of found faces (NaN otherwise).
    photo_paths : ndarray of shape (n_photos,), str
    ssim, psnr, face_share : ndarray of shape (n_photos,), float
        Per photo (NaN when not measured or unreadable).
    """

    features: dict
    readable: np.ndarray
    detected: np.ndarray
    displacement: np.ndarray
    photo_paths: np.ndarray
    ssim: np.ndarray
    psnr: np.ndarray
    face_share: np.ndarray
    settings: dict = field(default_factory=dict)


def faces_of(encodings, rows) -> list[FaceDetection]:
    """`FaceDetection` records for the given rows of an `Encodings`."""
    return [
        FaceDetection(
            int(encodings.face_index[i]),
            encodings.boxes_ltrb[i],
            float(encodings.scores[i]),
            encodings.landmarks5[i],
            encodings.landmarks68[i],
        )
        for i in rows
    ]


# --- worker side ----------------------------------------------------------------------------
def _detector(spec: dict | None):
    """The re-detection detector of this worker, built once per settings."""
    if spec is None:
        return None
    held = worker_local("evaluate.measure.detector", tuple(sorted(spec.items())))
    if "detector" not in held:
        held["detector"] = make_detector(**spec)
    return held["detector"]


def _measure_photo(context, task):
    """context = (root, original_root, recognizers, detector settings, min_iou);
    task = (path, rows, boxes, landmarks68, landmarks5, face_index) -> result dict."""
    root, original_root, recognizers, detector_spec, min_iou = context
    path, rows, boxes, lm68, lm5, face_index = task
    out = {"path": path, "rows": rows, "ok": False}
    try:
        image = read_image(Path(root) / path)
    except ImageReadError as exc:
        out["error"] = str(exc)
        return out
    faces = [FaceDetection(int(face_index[n]), boxes[n], 0.0, lm5[n], lm68[n]) for n in range(len(rows))]
    features = {}
    for name, rec in recognizers.items():
        crops = rec.prepare(image, faces)
        features[name] = rec.embed(crops) if not rec.needs_fit else crops
    out["features"] = features
    out["ok"] = True
    detector = _detector(detector_spec)
    if detector is not None:
        try:
            found = detector.detect(image)
        except (RuntimeError, ValueError) as exc:
            log.warning("detection failed on %s: %s", path, exc)
            found = []
        det_boxes = np.array([f.box_ltrb for f in found], np.float64).reshape(-1, 4)
        match = detectability.match_faces(boxes, det_boxes, min_iou=min_iou)
        out["detected"] = match >= 0
        out["displacement"] = np.array(
            [detectability.landmark_displacement(lm68[n], found[j].landmarks68) if j >= 0 else np.nan for n, j in enumerate(match)]
        )
    if original_root is not None:
        try:
            original = read_image(Path(original_root) / path)
        except ImageReadError as exc:
            out["error"] = f"original: {exc}"
            return out
        if original.shape != image.shape:
            out["error"] = f"size changed from {original.shape} to {image.shape}"
        else:
            out["ssim"] = quality.ssim(original, image)
            out["psnr"] = quality.psnr(original, image)
        h, w = original.shape[:2]
        out["face_share"] = quality.face_area_share(boxes, (w, h))
    return out


# --- main side ------------------------------------------------------------------------------
def measure_photos(
    root,
    encodings,
    recognizers: dict,
    *,
    original_root=None,
    detect: bool = True,
    detector: str = "hog",
    upsample: int = 1,
    min_iou: float = detectability.DEFAULT_MIN_IOU,
    jobs: int | None = None,
    progress: bool = True,
    desc: str = "measure",
    pool: WorkerPool | None = None,
) -> Measurements:
    """Measure every face of ``encodings`` in the photos under ``root`` (see the module docstring).

    Parameters
    ----------
    root : path
        Folder holding photos at the encodings' relative paths (anonymized or original).
    encodings : Encodings
        The original faces (boxes and landmarks say where to look).
    recognizers : dict of str to Recognizer
    original_root : path, optional
        The original photos; given, SSIM, PSNR and the face area share are measured.
    detect : bool
        Re-run the detector (hit rate, landmark displacement).
    jobs : int or None
        Worker processes (None: every core; 1: in this process) when no ``pool`` is given.
    pool : WorkerPool, optional
        The command's worker pool (`anonfaces.utils.parallel`); without one, a pool is
        started for this call.
    """
    root = Path(root)
    if not root.is_dir():
        raise BadInputError(f"folder not found: {root}")
    paths = np.asarray(encodings.paths)
    by_photo = encodings.rows_by_photo()
    photo_paths = np.array(sorted(by_photo), dtype=paths.dtype)
    groups = [by_photo[p] for p in photo_paths.tolist()]
    tasks = [
        (
            str(photo_paths[p]),
            rows,
            encodings.boxes_ltrb[rows].astype(np.float64),
            encodings.landmarks68[rows],
            encodings.landmarks5[rows],
            encodings.face_index[rows],
        )
        for p, rows in enumerate(groups)
    ]
    det = {"name": detector, "upsample": upsample} if detect else None
    context = (str(root), str(original_root) if original_root else None,
               {name: _prepare_only(rec) for name, rec in recognizers.items()}, det, min_iou)

    n, m = len(paths), len(photo_paths)
    readable = np.zeros(n, bool)
    detected = np.zeros(n, bool)
    displacement = np.full(n, np.nan)
    ssim_v, psnr_v, share = np.full(m, np.nan), np.full(m, np.nan), np.full(m, np.nan)
    features: dict[str, np.ndarray | None] = {name: None for name in recognizers}
    index = {str(p): i for i, p in enumerate(photo_paths)}
    errors = 0
    with pool_for(pool, jobs, progress) as workers:
        for res in workers.map(_measure_photo, tasks, context=context, desc=desc, leave=False):
            rows, p = res["rows"], index[res["path"]]
            if "error" in res:
                errors += 1
                if errors <= 5:
                    log.warning("%s: %s", res["path"], res["error"])
            if not res["ok"]:
                continue
            readable[rows] = True
            for name, arr in res["features"].items():
                if features[name] is None:
                    features[name] = np.zeros((n, *arr.shape[1:]), arr.dtype)
                features[name][rows] = arr
            if "detected" in res:
                detected[rows] = res["detected"]
                displacement[rows] = res["displacement"]
            for arr, key in ((ssim_v, "ssim"), (psnr_v, "psnr"), (share, "face_share")):
                if key in res:
                    arr[p] = res[key]
    if errors:
        log.warning("%d of %d photos under %s could not be measured", errors, m, root)
    for name, value in features.items():
        if value is None:
            features[name] = np.zeros((n, 0), np.float32)
    settings = {"detector": det, "min_iou": min_iou, "root": str(root), "original_root": str(original_root) if original_root else None}
    return Measurements(features, readable, detected, displacement, photo_paths.astype(str), ssim_v, psnr_v, share, settings)


def _prepare_only(recognizer):
    """The recognizer without its fitted state (trailing-underscore attributes): what a worker
    needs to cut crops and, for recognizers that need no fitting, embed them; fitted
    recognizers embed in the main process."""
    light = copy.copy(recognizer)
    for name in [a for a in vars(light) if a.endswith("_")]:
        delattr(light, name)
    return light
