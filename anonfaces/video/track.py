"""Face tracks: the faces of one person on screen, linked from frame to frame.

Three steps, all on one video's detections in frame order:

1. **Scene cuts** (`scene_cuts`): a frame whose colour histogram (HSV, 16 x 4 x 4
   bins of a downscaled frame) differs from the previous sampled frame's by more
   than ``cut_threshold`` (total variation distance, 0..1) starts a new shot. No
   track crosses a cut.
2. **Linking** (`link_tracks`): a detection continues a track of the same shot
   seen at most ``max_gap`` sampled frames earlier when their boxes overlap
   (IoU >= ``min_iou``) and their embeddings are close (distance < ``max_distance``),
   or, without overlap (fast motion, a detector blink), when the embeddings are very
   close (< ``relink_distance``) and the box centre moved less than 1.5 box widths.
   Pairs are assigned one-to-one (Hungarian assignment on IoU minus distance).
3. **Merging** (`merge_tracks`): tracks of one video whose mean embeddings are
   closer than ``merge_distance`` and that are never on screen in the same frame are
   one person (someone leaving and coming back, or seen again after a cut): they
   get one track id, average linkage, closest pairs first.

The track id is the person unit of a video where no identity is known.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: Defaults for dlib 128-D embeddings (same-person threshold 0.6).
TRACK_DEFAULTS = {"min_iou": 0.3, "max_distance": 0.6, "relink_distance": 0.45, "max_gap": 5, "cut_threshold": 0.5,
                  "merge_distance": 0.5}


def frame_histogram(frame: np.ndarray, *, side: int = 64) -> np.ndarray:
    """Normalised HSV histogram (16 x 4 x 4 bins, sums to 1) of an RGB frame downscaled to ``side`` pixels wide."""
    h, w = frame.shape[:2]
    small = cv2.resize(frame, (side, max(1, int(round(h * side / max(w, 1))))), interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1, 2], None, [16, 4, 4], [0, 180, 0, 256, 0, 256]).ravel()
    return (hist / max(hist.sum(), 1.0)).astype(np.float32)


def scene_cuts(histograms: list[np.ndarray], *, threshold: float = TRACK_DEFAULTS["cut_threshold"]) -> np.ndarray:
    """Boolean (n,): True where sampled frame i starts a new shot (its histogram's total variation distance to
    frame i - 1's exceeds ``threshold``); frame 0 is never a cut."""
    cuts = np.zeros(len(histograms), dtype=bool)
    for i in range(1, len(histograms)):
        cuts[i] = 0.5 * float(np.abs(histograms[i] - histograms[i - 1]).sum()) > threshold
    return cuts


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a`` (m, 4) with every box of ``b`` (n, 4), ltrb; shape (m, n)."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


@dataclass
class _Track:
    id: int
    shot: int
    last_step: int
    box: np.ndarray
    embedding_sum: np.ndarray
    n: int

    @property
    def mean(self) -> np.ndarray:
        return self.embedding_sum / self.n


def link_tracks(steps: np.ndarray, boxes: np.ndarray, embeddings: np.ndarray, cuts: np.ndarray | None = None, *,
                min_iou: float = TRACK_DEFAULTS["min_iou"], max_distance: float = TRACK_DEFAULTS["max_distance"],
                relink_distance: float = TRACK_DEFAULTS["relink_distance"],
                max_gap: int = TRACK_DEFAULTS["max_gap"]) -> np.ndarray:
    """Track id (from 0) of every detection.

    Parameters
    ----------
    steps : (n,) int
        The sampled-frame number of each detection (0, 1, 2, ... over the frames sampled; not the video frame
        number), non-decreasing.
    boxes : (n, 4)
        ltrb boxes.
    embeddings : (n, d)
        Face embeddings (for dlib: same person below 0.6).
    cuts : (n_steps,) bool, optional
        `scene_cuts` of the sampled frames.
    """
    from scipy.optimize import linear_sum_assignment

    steps = np.asarray(steps, np.int64)
    n = len(steps)
    ids = np.full(n, -1, np.int64)
    if n == 0:
        return ids
    if np.any(np.diff(steps) < 0):
        raise ValueError("detections must come in frame order")
    boxes = np.asarray(boxes, np.float64).reshape(n, 4)
    embeddings = np.asarray(embeddings, np.float64).reshape(n, -1)
    cuts = np.zeros(int(steps.max()) + 1, bool) if cuts is None else np.asarray(cuts, bool)
    shot_of = np.cumsum(cuts)
    active: list[_Track] = []
    next_id = 0
    for step in np.unique(steps):
        rows = np.flatnonzero(steps == step)
        shot = int(shot_of[step]) if step < len(shot_of) else int(shot_of[-1])
        active = [t for t in active if t.shot == shot and step - t.last_step <= max_gap]
        matched: dict[int, int] = {}
        if active:
            tb = np.stack([t.box for t in active])
            iou = box_iou(tb, boxes[rows])
            dist = np.linalg.norm(np.stack([t.mean for t in active])[:, None, :] - embeddings[rows][None], axis=2)
            width = (tb[:, 2] - tb[:, 0])[:, None]
            centre_t = (tb[:, :2] + tb[:, 2:]) / 2
            centre_d = (boxes[rows, :2] + boxes[rows, 2:]) / 2
            moved = np.linalg.norm(centre_t[:, None] - centre_d[None], axis=2)
            ok = ((iou >= min_iou) & (dist < max_distance)) | ((dist < relink_distance) & (moved < 1.5 * width))
            cost = np.where(ok, -(iou - dist) + 10.0, 1e6)
            r, c = linear_sum_assignment(cost)
            for ti, di in zip(r.tolist(), c.tolist()):
                if ok[ti, di]:
                    matched[di] = ti
        for di, row in enumerate(rows.tolist()):
            if di in matched:
                t = active[matched[di]]
                t.box, t.last_step = boxes[row], int(step)
                t.embedding_sum = t.embedding_sum + embeddings[row]
                t.n += 1
            else:
                t = _Track(next_id, shot, int(step), boxes[row], embeddings[row].copy(), 1)
                next_id += 1
                active.append(t)
            ids[row] = t.id
    return ids


def merge_tracks(track_ids: np.ndarray, frames: np.ndarray, embeddings: np.ndarray, *,
                 merge_distance: float = TRACK_DEFAULTS["merge_distance"]) -> np.ndarray:
    """Track ids after joining tracks of one person (see the module docstring), renumbered from 0 in order of
    first appearance."""
    track_ids = np.asarray(track_ids, np.int64)
    if len(track_ids) == 0:
        return track_ids.copy()
    embeddings = np.asarray(embeddings, np.float64)
    frames = np.asarray(frames, np.int64)
    names = list(dict.fromkeys(track_ids.tolist()))
    groups = {t: [t] for t in names}
    owner = {t: t for t in names}
    seen = {t: set(frames[track_ids == t].tolist()) for t in names}
    sums = {t: embeddings[track_ids == t].sum(0) for t in names}
    counts = {t: int((track_ids == t).sum()) for t in names}
    while True:
        alive = [t for t in names if owner[t] == t]
        best = None
        for i, a in enumerate(alive):
            for b in alive[i + 1:]:
                if seen[a] & seen[b]:
                    continue  # on screen together: two people
                d = float(np.linalg.norm(sums[a] / counts[a] - sums[b] / counts[b]))
                if d < merge_distance and (best is None or d < best[0]):
                    best = (d, a, b)
        if best is None:
            break
        _, a, b = best
        for t in groups[b]:
            owner[t] = a
        groups[a] += groups.pop(b)
        seen[a] |= seen[b]
        sums[a] = sums[a] + sums[b]
        counts[a] += counts[b]
    order = {}
    for t in track_ids.tolist():
        order.setdefault(owner[t], len(order))
    return np.array([order[owner[t]] for t in track_ids.tolist()], np.int64)
