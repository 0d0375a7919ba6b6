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


#: Search window around a tracked face: the predicted box grown by this share of its width on each side.
ROI_MARGIN = 0.5
#: Inside the window, the face is scaled to this width (pixels) and HOG runs at upsample 0 (it finds faces from about
#: 80 px): a face that shrinks by a third between frames is still found, at a fraction of a full-frame pass's cost.
ROI_FACE = 120.0


def _rows(faces):
    return [(f.box_ltrb, f.score, f.landmarks5, f.landmarks68) for f in faces]


def roi_detect(detector, image: np.ndarray, box, *, taken=()) -> FaceDetection | None:
    """The face near ``box`` (ltrb, the face's predicted place): HOG on a window of the frame around it, scaled so the
    face is about `ROI_FACE` pixels wide, at upsample 0; the box that overlaps ``box`` most (IoU >= 0.2) and none of
    ``taken`` (boxes already found on this frame) by more than half, with landmarks predicted on the full frame.
    None when no face is there."""
    import cv2
    import dlib

    from anonfaces.video.track import box_iou

    h, w = image.shape[:2]
    box = np.asarray(box, np.float64)
    bw, bh = box[2] - box[0], box[3] - box[1]
    if bw < 4 or bh < 4:
        return None
    x0, y0 = int(max(0, box[0] - ROI_MARGIN * bw)), int(max(0, box[1] - ROI_MARGIN * bh))
    x1, y1 = int(min(w, box[2] + ROI_MARGIN * bw)), int(min(h, box[3] + ROI_MARGIN * bh))
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None
    r = ROI_FACE / bw
    crop = cv2.resize(image[y0:y1, x0:x1], (max(1, int(round((x1 - x0) * r))), max(1, int(round((y1 - y0) * r)))),
                      interpolation=cv2.INTER_AREA if r < 1 else cv2.INTER_LINEAR)
    model = detector._model()
    if hasattr(model, "run"):  # HOG
        rects, scores, _ = model.run(np.ascontiguousarray(crop), 0, 0.0)
    else:  # CNN (MMOD)
        dets = model(np.ascontiguousarray(crop), 0)
        rects, scores = [d.rect for d in dets], [d.confidence for d in dets]
    if not len(rects):
        return None
    found = np.array([[x0 + q.left() / r, y0 + q.top() / r, x0 + q.right() / r, y0 + q.bottom() / r] for q in rects])
    iou = box_iou(box[None], found)[0]
    if len(taken):
        iou[box_iou(np.asarray(taken, np.float64).reshape(-1, 4), found).max(0) > 0.5] = 0.0
    best = int(np.argmax(iou))
    if iou[best] < 0.2:
        return None
    l, t, rr, b = found[best]
    return landmarks_in_box(image, dlib.rectangle(int(round(l)), int(round(t)), int(round(rr)), int(round(b))),
                            score=float(scores[best]))


def _roi_task(context, task):
    """One segment between two full-frame passes: the faces of the pass at its first frame looked for on each next
    frame near where they were (`roi_detect`, the box moved at the face's last speed); a frame that starts a new shot
    is searched whole. Then, backwards from the next pass's faces that no forward search holds (a face that entered
    during the segment), each is looked for near its place on the frames before, until it is not found. Returns the
    `_frame_task` result of every frame of the segment (its first: the full pass's, given)."""
    start, frames, end = task  # start: the full pass's result; frames: the others (frame, seconds, image); end: next pass
    detector, encoder = _models_for(context)
    found = [list(_faces_of(start))] + [[] for _ in frames]
    hists = [start[2]] + [frame_histogram(image) for _, _, image in frames]
    full = [True] + [False] * len(frames)
    cut_at = 0  # the last frame searched whole (the backward search stops after it)
    active = [[f.box_ltrb.astype(np.float64), np.zeros(4)] for f in found[0]]  # [box, speed per frame]
    for j, (_, _, image) in enumerate(frames, start=1):
        if 0.5 * float(np.abs(hists[j] - hists[j - 1]).sum()) > context["cut_threshold"]:
            found[j] = detect_frame(detector, image, scale=context["scale"])
            full[j], cut_at = True, j
            active = [[f.box_ltrb.astype(np.float64), np.zeros(4)] for f in found[j]]
            continue
        for tr in active:
            face = roi_detect(detector, image, tr[0] + tr[1], taken=[f.box_ltrb for f in found[j]])
            if face is not None:
                tr[1] = face.box_ltrb - tr[0]
                tr[0] = face.box_ltrb.astype(np.float64)
                found[j].append(face)
    if end is not None and 0.5 * float(np.abs(end[2] - hists[-1]).sum()) <= context["cut_threshold"]:
        from anonfaces.video.track import box_iou

        for box, *_ in end[3]:
            box, speed = np.asarray(box, np.float64), np.zeros(4)
            for j in range(len(found) - 1, cut_at, -1):
                held = [f.box_ltrb for f in found[j]]
                if held and box_iou(np.asarray(held, np.float64).reshape(-1, 4), (box + speed)[None]).max() >= 0.3:
                    break  # the forward search holds it
                face = roi_detect(detector, frames[j - 1][2], box + speed, taken=held)
                if face is None:
                    break  # not there yet: it entered here
                speed = face.box_ltrb - box
                box = face.box_ltrb.astype(np.float64)
                found[j].append(face)
    out = [start]
    for j, (frame, seconds, image) in enumerate(frames, start=1):
        faces = found[j]
        out.append((frame, seconds, hists[j], _rows(faces), encoder.encode(image, faces) if faces else None))
    return out


def _faces_of(result):
    """The `FaceDetection` of a `_frame_task` result's rows."""
    return [FaceDetection(i, np.asarray(box, np.float32), float(score), np.asarray(l5), np.asarray(l68))
            for i, (box, score, l5, l68) in enumerate(result[3])]


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
    fitting (dlib, onnx). ``track`` overrides `TRACK_DEFAULTS`. ``detect_every`` > 1: the detector searches the
    whole frame on every ``detect_every``-th sampled frame (and on every frame that starts a new shot) and, on the
    frames in between, only near the faces it is following (`roi_detect`); a face that enters between two
    full-frame passes is found at the next and followed back to where it entered (`_roi_task`). An unreadable or truncated
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
        batch, carried, size = [], None, every * max(2, BATCH_FRAMES // every)
        for item in frames:
            batch.append(item)
            if every == 1 and len(batch) >= size:
                results.extend(_run(pool, batch, context))
                bar.update(len(batch) * step)
                batch = []
            elif every > 1 and len(batch) > size:  # whole segments, and the next one's first frame to look ahead
                done, carried = _run(pool, batch[:size], context, every, lookahead=batch[size], first=carried)
                results.extend(done)
                bar.update(size * step)
                batch = batch[size:]
        if batch:
            results.extend(_run(pool, batch, context) if every == 1 else _run(pool, batch, context, every, first=carried)[0])
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


def _run(pool: WorkerPool, batch, context, every: int = 1, *, lookahead=None, first=None):
    """The `_frame_task` results of ``batch`` (sampled frames in order). ``every`` > 1: ``batch`` is whole segments
    of ``every`` frames (the last may be shorter); the full-frame passes (each segment's first frame, but ``first``
    when given: the pass made on it as the previous batch's look-ahead; and ``lookahead``, the next batch's first
    frame, or None at the end) run first, then the segments (`_roi_task`); returns (results, the look-ahead's pass)."""
    # chunks of 2 frames: the tasks are large (frames), the per-chunk overhead small
    progress, pool.progress = pool.progress, False  # one bar in frames for the whole video, not one per batch
    try:
        if every == 1:
            return list(pool.map(_frame_task, batch, context=context, chunksize=2, leave=False, desc="frames", unit="frame"))
        segments = [batch[i:i + every] for i in range(0, len(batch), every)]
        firsts = [seg[0] for seg in segments[1 if first is not None else 0:]] + ([lookahead] if lookahead is not None else [])
        passes = ([first] if first is not None else []) + list(pool.map(_frame_task, firsts, context=context, chunksize=1,
                                                                         leave=False))
        tasks = [(passes[i], seg[1:], passes[i + 1] if i + 1 < len(passes) else None) for i, seg in enumerate(segments)]
        out = [r for seg in pool.map(_roi_task, tasks, context=context, chunksize=1, leave=False) for r in seg]
        return out, (passes[-1] if lookahead is not None else None)
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
