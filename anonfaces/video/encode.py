"""Encode the faces of videos: sampled frames -> detections and embeddings in the workers -> tracks -> `Encodings`.

This process decodes each video once and sends its sampled frames, a batch at a
time, to the command's `WorkerPool`; each worker detects the faces of a frame
(optionally on a downscaled copy, landmarks on the full frame), embeds them and
returns the rows with the frame's colour histogram. Tracks are then linked here
(`anonfaces.video.track`), and every face becomes a row of `Encodings` with its
video (``paths``), frame number, timestamp and track; ``face_index`` counts the
faces through the video.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from anonfaces.detect import _models, make_detector
from anonfaces.detect.types import FaceDetection
from anonfaces.encode.base import ENCODERS
from anonfaces.encode.encodings import Encodings
from anonfaces.utils.images import identity_of
from anonfaces.utils.parallel import WorkerPool, worker_local
from anonfaces.video.io import VideoReadError, prefetch, probe, read_frames, sample_step
from anonfaces.video.track import (
    TRACK_DEFAULTS,
    frame_histogram,
    link_tracks,
    merge_tracks,
    scene_cuts,
)

log = logging.getLogger(__name__)

#: Frames sent to the workers at a time (bounds the memory held: a 1280x720 frame is 2.8 MB).
BATCH_FRAMES = 24


def detect_frame(detector, image: np.ndarray, *, scale: float = 1.0) -> list[FaceDetection]:
    """``detector.detect(image)``, with the boxes searched on a copy downscaled by ``scale`` (< 1) and the
    landmarks predicted on the full frame (faster on large frames; finds faces of at least 80 x ``1/scale``
    pixels with HOG at upsample 0)."""
    if scale >= 1.0:
        return detector.detect(image)
    import cv2
    import dlib

    h, w = image.shape[:2]
    small = cv2.resize(image, (max(1, int(w * scale)), max(1, int(h * scale))), interpolation=cv2.INTER_AREA)
    faces = []
    for index, (rect, score) in enumerate(detector._boxes(np.ascontiguousarray(small))):
        big = dlib.rectangle(int(rect.left() / scale), int(rect.top() / scale), int(rect.right() / scale),
                             int(rect.bottom() / scale))
        faces.append(landmarks_in_box(image, big, index=index, score=float(score)))
    return faces


def landmarks_in_box(image: np.ndarray, rect, *, index: int = 0, score: float = 0.0) -> FaceDetection:
    """A `FaceDetection` with dlib's 5- and 68-point landmarks predicted inside ``rect`` (a dlib rectangle, or
    an ltrb box)."""
    import dlib

    if not isinstance(rect, dlib.rectangle):
        l, t, r, b = (int(round(v)) for v in rect)
        rect = dlib.rectangle(l, t, r, b)
    s5 = _models.shape_predictor(5)(image, rect)
    s68 = _models.shape_predictor(68)(image, rect)
    box = np.array([rect.left(), rect.top(), rect.right(), rect.bottom()], np.float32)
    return FaceDetection(index, box, score, np.array([(p.x, p.y) for p in s5.parts()], np.float32),
                         np.array([(p.x, p.y) for p in s68.parts()], np.float32))


# --- worker side --------------------------------------------------------------------------------
def _models_for(context):
    token = json.dumps([context["detector"], context["encoder"]], sort_keys=True, default=str)
    held = worker_local("video.encode", token)
    if not held:
        held["detector"] = make_detector(context["detector"]["name"], upsample=context["detector"]["upsample"])
        held["encoder"] = ENCODERS.get(context["encoder"]["name"]).from_saved(context["encoder"], {})
    return held["detector"], held["encoder"]


def _frame_task(context, task):
    """(frame, seconds, histogram, faces [(box, score, lm5, lm68)], embeddings (m, d) or None) of one frame."""
    frame, seconds, image = task
    detector, encoder = _models_for(context)
    faces = detect_frame(detector, image, scale=context["scale"])
    emb = encoder.encode(image, faces) if faces else None
    rows = [(f.box_ltrb, f.score, f.landmarks5, f.landmarks68) for f in faces]
    return frame, seconds, frame_histogram(image), rows, emb


def _segment_task(context, task):
    """Consecutive sampled frames: faces detected on the first, then followed on the others by predicting the
    landmarks inside each face's box moved with its landmarks (no detector, no new embedding: the first frame's);
    a frame that starts a new shot (`scene_cuts`' test against the previous frame) is detected afresh.
    Returns the `_frame_task` result of every frame."""
    detector, encoder = _models_for(context)
    frame, seconds, image = task[0]
    faces = detect_frame(detector, image, scale=context["scale"])
    emb = encoder.encode(image, faces) if faces else None
    out = [(frame, seconds, frame_histogram(image), [(f.box_ltrb, f.score, f.landmarks5, f.landmarks68) for f in faces], emb)]
    h, w = image.shape[:2]
    previous = out[0][2]
    for frame, seconds, image in task[1:]:
        hist = frame_histogram(image)
        if 0.5 * float(np.abs(hist - previous).sum()) > context["cut_threshold"]:  # a scene cut: look again
            faces = detect_frame(detector, image, scale=context["scale"])
            emb = encoder.encode(image, faces) if faces else None
            out.append((frame, seconds, hist, [(f.box_ltrb, f.score, f.landmarks5, f.landmarks68) for f in faces], emb))
            previous = hist
            continue
        previous = hist
        moved = []
        for f in faces:
            g = landmarks_in_box(image, f.box_ltrb, index=f.index, score=f.score)
            shift = g.landmarks68.mean(0) - f.landmarks68.mean(0)
            box = f.box_ltrb + np.tile(shift, 2)
            if box[2] <= 0 or box[3] <= 0 or box[0] >= w or box[1] >= h:
                continue  # left the frame
            moved.append(FaceDetection(f.index, box.astype(np.float32), f.score, g.landmarks5, g.landmarks68))
        keep = [i for i, f in enumerate(faces) if any(m.index == f.index for m in moved)]
        emb = emb[keep] if emb is not None and keep else None
        faces = moved
        out.append((frame, seconds, hist, [(f.box_ltrb, f.score, f.landmarks5, f.landmarks68) for f in faces], emb))
    return out


# --- main side ----------------------------------------------------------------------------------
@dataclass
class VideoEncoding:
    """One video's encodings and what happened (``error`` set when it was unreadable and skipped)."""

    rel: str
    encodings: Encodings | None
    info: dict = field(default_factory=dict)
    error: str | None = None


def encode_video(pool: WorkerPool, root, rel: str, *, detector: dict, encoder: dict, fps: float | None = None,
                 scale: float = 1.0, max_pixels: int | None = None, track: dict | None = None,
                 detect_every: int = 1, progress: bool = False) -> VideoEncoding:
    """Every face of the video ``root/rel`` at about ``fps`` sampled frames a second (None: every frame).

    ``detector`` and ``encoder`` are their ``settings()`` dicts (with ``name``); the encoder must need no
    fitting (dlib, onnx). ``track`` overrides `TRACK_DEFAULTS`. ``detect_every`` > 1: the detector runs on every
    ``detect_every``-th sampled frame only, and the faces are followed in between by dlib's landmark predictor
    (faster; a face that enters between two detections is found at the next one). An unreadable or truncated
    video gives a `VideoEncoding` with ``error`` set (never an exception).
    """
    t0 = time.perf_counter()
    path = Path(root) / rel
    settings = {**TRACK_DEFAULTS, **(track or {})}
    try:
        info = probe(path)
    except VideoReadError as exc:
        return VideoEncoding(rel, None, error=str(exc))
    step = sample_step(float(info.fps), fps)
    context = {"detector": detector, "encoder": encoder, "scale": float(scale), "cut_threshold": settings["cut_threshold"]}
    every = max(1, int(detect_every))
    results = []
    from tqdm.auto import tqdm

    bar = tqdm(total=info.frames or None, desc=f"encode {Path(rel).name}", unit="frame", disable=not progress)
    frames = prefetch(read_frames(path, step=step, max_pixels=max_pixels), depth=BATCH_FRAMES)
    try:
        batch = []
        for item in frames:
            batch.append(item)
            if len(batch) >= every * max(1, BATCH_FRAMES // every):
                results.extend(_run(pool, batch, context, every))
                bar.update(len(batch) * step)
                batch = []
        if batch:
            results.extend(_run(pool, batch, context, every))
            bar.update(len(batch) * step)
    except VideoReadError as exc:
        bar.close()
        return VideoEncoding(rel, None, error=str(exc))
    finally:
        frames.close()  # stops the decoding thread if the loop ended early
    bar.close()
    if not results:
        return VideoEncoding(rel, None, error="no frame could be decoded")
    enc = _to_encodings(rel, results, settings, info.width, info.height)
    seconds = time.perf_counter() - t0
    meta = {**info.as_dict(), "step": step, "sampled_frames": len(results), "faces": len(enc),
            "tracks": int(enc.tracks.max()) + 1 if len(enc) else 0, "seconds": seconds, "track_settings": settings,
            "scene_cuts": enc.meta.get("scene_cuts", [])}
    log.info("video %s: %d sampled frames, %d faces, %d tracks, %.1f s", rel, len(results), len(enc), meta["tracks"], seconds)
    return VideoEncoding(rel, enc, meta)


def _run(pool: WorkerPool, batch, context, every: int = 1):
    # chunks of 2 frames: the tasks are large (frames), the per-chunk overhead small
    progress, pool.progress = pool.progress, False  # one bar in frames for the whole video, not one per batch
    try:
        if every == 1:
            return list(pool.map(_frame_task, batch, context=context, chunksize=2, leave=False, desc="frames", unit="frame"))
        segments = [batch[i:i + every] for i in range(0, len(batch), every)]
        return [r for seg in pool.map(_segment_task, segments, context=context, chunksize=1, leave=False) for r in seg]
    finally:
        pool.progress = progress


def _to_encodings(rel: str, results, settings: dict, width: int, height: int) -> Encodings:
    hists = [r[2] for r in results]
    cuts = scene_cuts(hists, threshold=settings["cut_threshold"])
    steps, frames, seconds, boxes, scores, lm5, lm68, embs = [], [], [], [], [], [], [], []
    for step_no, (frame, sec, _, rows, emb) in enumerate(results):
        for j, (box, score, l5, l68) in enumerate(rows):
            steps.append(step_no)
            frames.append(frame)
            seconds.append(sec)
            boxes.append(box)
            scores.append(score)
            lm5.append(l5)
            lm68.append(l68)
            embs.append(emb[j])
    n = len(frames)
    dim = next((r[4].shape[1] for r in results if r[4] is not None), 128)
    embeddings = np.stack(embs).astype(np.float32) if n else np.empty((0, dim), np.float32)
    ids = link_tracks(np.array(steps, np.int64), np.array(boxes).reshape(n, 4), embeddings, cuts,
                      min_iou=settings["min_iou"], max_distance=settings["max_distance"],
                      relink_distance=settings["relink_distance"], max_gap=settings["max_gap"])
    ids = merge_tracks(ids, np.array(frames, np.int64), embeddings, merge_distance=settings["merge_distance"])
    enc = Encodings(embeddings=embeddings, paths=np.full(n, rel, dtype=object).astype(str), face_index=np.arange(n),
                    boxes_ltrb=np.array(boxes, np.float32).reshape(n, 4), scores=np.array(scores, np.float32),
                    landmarks68=np.array(lm68, np.float32).reshape(n, 68, 2),
                    landmarks5=np.array(lm5, np.float32).reshape(n, 5, 2),
                    identities=np.full(n, identity_of(rel), dtype=object).astype(str),
                    image_sizes=np.tile(np.array([width, height], np.int32), (n, 1)),
                    frames=np.array(frames, np.int32), timestamps=np.array(seconds, np.float32), tracks=ids)
    enc.meta["scene_cuts"] = [int(results[i][0]) for i in np.flatnonzero(cuts)]
    return enc


def encode_videos(pool: WorkerPool, root, videos: list[str], *, detector: str = "hog", upsample: int = 1,
                  encoder: str = "dlib", encoder_settings: dict | None = None, fps: float | None = 1.0,
                  scale: float = 1.0, max_pixels: int | None = None, track: dict | None = None,
                  detect_every: int = 1, progress: bool = True) -> tuple[Encodings, list[tuple[str, str]], dict]:
    """Encode every video of ``videos`` (paths relative to ``root``).

    Returns ``(encodings of all their faces, skipped [(video, reason)], per-video info)``; a video that cannot
    be read is skipped with its reason, never an exception.
    """
    enc_obj = ENCODERS.get(encoder)(**(encoder_settings or {}))
    if not enc_obj.is_fitted:
        raise VideoReadError(f"the {encoder} encoder must be fitted first; videos are encoded with dlib or onnx")
    det = make_detector(detector, upsample=upsample)
    parts, skipped, infos = [], [], {}
    for rel in videos:
        result = encode_video(pool, root, rel, detector=det.settings(), encoder=enc_obj.settings(), fps=fps, scale=scale,
                              max_pixels=max_pixels, track=track, detect_every=detect_every, progress=progress)
        if result.error is not None:
            log.warning("skipping video %s: %s", rel, result.error)
            skipped.append((rel, result.error))
            continue
        infos[rel] = result.info
        if len(result.encodings):
            parts.append(result.encodings)
        else:
            skipped.append((rel, "no face found"))
    meta = {"encoder": enc_obj.settings(), "detector": det.settings(), "video_fps": fps, "detect_scale": scale,
            "detect_every": int(detect_every),
            "video_scene_cuts": {rel: info["scene_cuts"] for rel, info in infos.items()},
            "video_steps": {rel: info["step"] for rel, info in infos.items()}}
    return Encodings.concatenate(parts, meta=meta, dim=128), skipped, infos
