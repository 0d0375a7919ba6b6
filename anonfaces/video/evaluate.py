"""Score anonymized videos: faces left unreplaced, re-identification per track, temporal flicker.

`score_video` reads an original video and its anonymized copy frame by frame, in
step, and measures

- **unreplaced**: on every ``step``-th frame, the faces a *fresh* detector finds in
  the original (dlib HOG at ``upsample``, independent of the faces the run
  encoded) are compared with the same place in the output. A face is *left
  unreplaced* when the output's face there is still its original's (descriptor
  distance < ``unprotected`` = `UNPROTECTED` 0.5, computed at the original
  landmarks: the photos' unprotected face, the one definition the safety net, the
  photo evaluation and the privacy check's own-photo term share) **or** its pixels
  barely changed (mean absolute difference inside the box < ``unchanged`` grey
  levels). ``frames_with_unreplaced`` is the share of frames with a visible face
  in which at least one face was left unreplaced: the failure users fear most.
  Beside it, ``faces_same_person`` counts the faces whose output is still within
  dlib's looser same-person threshold (0.6) of the original: a k-same surrogate of
  a small cast can stand there without being the person's face.
- **re-identification per track**: each encoded track's output faces (at the
  original landmarks, sampled frames) are averaged into one descriptor and
  matched against the original tracks' mean descriptors of every video scored
  (the gallery); a track is re-identified when its nearest gallery track is its
  own person (same video and track id) -- closed-set rank-1 -- and, stricter,
  also nearer than ``same_person``.
- **temporal flicker**: inside each track's box, the mean absolute change from
  one frame to the next in the output divided by the same in the original (every
  frame, consecutive frames of one track): 1.0 means the face changes as much as
  the original did, higher means it flickers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from anonfaces.detect.types import FaceDetection
from anonfaces.utils.distances import SAME_PERSON, UNPROTECTED
from anonfaces.video.io import VideoReadError, read_frames

log = logging.getLogger(__name__)

UNCHANGED = 4.0


@dataclass
class VideoScore:
    """One video's measures (see the module docstring); ``error`` set when it could not be read."""

    path: str
    output: str
    frames: int = 0
    sampled_frames: int = 0
    frames_with_faces: int = 0
    frames_with_unreplaced: int = 0
    faces_seen: int = 0
    faces_unreplaced: int = 0
    faces_same_person: int = 0
    flicker_output: float = float("nan")
    flicker_original: float = float("nan")
    track_embeddings: dict = field(default_factory=dict)  # track -> (original mean, output mean)
    error: str | None = None

    @property
    def unreplaced_frame_share(self) -> float:
        return self.frames_with_unreplaced / self.frames_with_faces if self.frames_with_faces else 0.0

    @property
    def flicker_ratio(self) -> float:
        return self.flicker_output / self.flicker_original if self.flicker_original > 0 else float("nan")


def _box_of(landmarks68: np.ndarray, shape) -> tuple[int, int, int, int]:
    h, w = shape[:2]
    x0, y0 = np.floor(landmarks68.min(0)).astype(int)
    x1, y1 = np.ceil(landmarks68.max(0)).astype(int)
    return max(0, x0), max(0, y0), min(w, x1), min(h, y1)


def score_video(original, anonymized, rows: dict, *, step: int = 6, upsample: int = 1, unprotected: float = UNPROTECTED,
                unchanged: float = UNCHANGED, rel: str = "", output: str = "", same_person: float = SAME_PERSON) -> VideoScore:
    """Measure one video (see the module docstring).

    ``rows``: the run's encoded faces of this video: ``frames`` (n,), ``tracks`` (n,), ``landmarks68`` (n, 68, 2),
    ``landmarks5`` (n, 5, 2) and ``embeddings`` (n, 128) (the original faces' dlib descriptors).
    """
    from anonfaces.detect import make_detector
    from anonfaces.encode import DlibEncoder

    score = VideoScore(rel or str(original), output or str(anonymized))
    detector = make_detector("hog", upsample=upsample)
    encoder = DlibEncoder()
    frames, tracks = np.asarray(rows["frames"]), np.asarray(rows["tracks"])
    by_frame: dict[int, list[int]] = {}
    for i, f in enumerate(frames.tolist()):
        by_frame.setdefault(f, []).append(i)
    out_sum: dict[int, np.ndarray] = {}
    out_n: dict[int, int] = {}
    prev = None  # (frame, original, output) of the previous frame
    flicker_out, flicker_orig = [], []
    try:
        for (fa, _, a), (fb, _, b) in zip(read_frames(original), read_frames(anonymized)):
            score.frames += 1
            if a.shape != b.shape:
                raise VideoReadError(f"{anonymized}: frames are {b.shape[1]}x{b.shape[0]}, the original's {a.shape[1]}x{a.shape[0]}")
            here = by_frame.get(fa, [])
            if prev is not None and prev[0] == fa - 1:
                for i in here:
                    if any(tracks[j] == tracks[i] for j in by_frame.get(fa - 1, [])):
                        x0, y0, x1, y1 = _box_of(rows["landmarks68"][i], a.shape)
                        if x1 > x0 and y1 > y0:
                            flicker_out.append(np.abs(b[y0:y1, x0:x1].astype(np.int16) - prev[2][y0:y1, x0:x1]).mean())
                            flicker_orig.append(np.abs(a[y0:y1, x0:x1].astype(np.int16) - prev[1][y0:y1, x0:x1]).mean())
            prev = (fa, a, b)
            if fa % step:
                continue
            score.sampled_frames += 1
            # the tracks' output faces at their original landmarks (re-identification)
            if here:
                jobs = [FaceDetection(0, np.zeros(4, np.float32), 0.0, rows["landmarks5"][i], rows["landmarks68"][i]) for i in here]
                emb = encoder.encode(b, jobs)
                for i, e in zip(here, emb):
                    t = int(tracks[i])
                    out_sum[t] = out_sum.get(t, 0) + e
                    out_n[t] = out_n.get(t, 0) + 1
            # visible faces (a fresh detector on the original) left unreplaced?
            faces = detector.detect(a)
            if not faces:
                continue
            score.frames_with_faces += 1
            before = encoder.encode(a, faces)
            after = encoder.encode(b, faces)
            left = 0
            for f, e0, e1 in zip(faces, before, after):
                x0, y0, x1, y1 = _box_of(f.landmarks68, a.shape)
                diff = np.abs(a[y0:y1, x0:x1].astype(np.int16) - b[y0:y1, x0:x1]).mean() if x1 > x0 and y1 > y0 else 0.0
                d = float(np.linalg.norm(e0 - e1))
                left += bool(d < unprotected or diff < unchanged)
                score.faces_same_person += bool(d < same_person or diff < unchanged)
            score.faces_seen += len(faces)
            score.faces_unreplaced += left
            score.frames_with_unreplaced += left > 0
    except VideoReadError as exc:
        score.error = str(exc)
        return score
    score.flicker_output = float(np.mean(flicker_out)) if flicker_out else float("nan")
    score.flicker_original = float(np.mean(flicker_orig)) if flicker_orig else float("nan")
    emb = np.asarray(rows["embeddings"], np.float64)
    for t in out_sum:
        score.track_embeddings[t] = (emb[tracks == t].mean(0), out_sum[t] / out_n[t])
    return score


def reidentify_tracks(scores: list[VideoScore], *, same_person: float = SAME_PERSON) -> dict:
    """Closed-set rank-1 and thresholded re-identification of every track against all scored tracks' originals."""
    keys, gallery, probes = [], [], []
    for s in scores:
        for t, (orig, out) in sorted(s.track_embeddings.items()):
            keys.append((s.path, t))
            gallery.append(orig)
            probes.append(out)
    if not keys:
        return {"tracks": 0, "rank1": float("nan"), "reidentified": float("nan"), "chance": float("nan")}
    g, p = np.stack(gallery), np.stack(probes)
    d = np.linalg.norm(p[:, None, :] - g[None], axis=2)
    nearest = d.argmin(1)
    own = nearest == np.arange(len(keys))
    close = d[np.arange(len(keys)), nearest] < same_person
    return {"tracks": len(keys), "rank1": float(own.mean()), "reidentified": float((own & close).mean()),
            "chance": 1.0 / len(keys)}


def score_run_videos(root, out, records: list[dict], encodings, *, fps: float = 2.0) -> tuple[list[VideoScore], dict]:
    """Score every written video of a run: ``records`` are the entries of PRIVATE/videos/run.json's ``videos``,
    ``encodings`` the run's video encodings; returns the scores and a summary dict."""
    from anonfaces.video.io import probe, sample_step

    scores = []
    for v in records:
        if v.get("error") or not v.get("output"):
            continue
        mine = encodings.paths == v["path"]
        rows = {"frames": encodings.frames[mine], "tracks": encodings.tracks[mine], "landmarks68": encodings.landmarks68[mine],
                "landmarks5": encodings.landmarks5[mine], "embeddings": encodings.embeddings[mine]}
        src = Path(root) / v["path"]
        try:
            step = sample_step(float(probe(src).fps), fps)
        except VideoReadError as exc:
            scores.append(VideoScore(v["path"], v["output"], error=str(exc)))
            continue
        scores.append(score_video(src, Path(out) / v["output"], rows, step=step, rel=v["path"], output=v["output"]))
    ok = [s for s in scores if s.error is None]
    with_faces = sum(s.frames_with_faces for s in ok)
    ratios = [s.flicker_ratio for s in ok if np.isfinite(s.flicker_ratio)]
    summary = {
        "videos": len(ok), "unreadable": len(scores) - len(ok),
        "frames_with_faces": with_faces,
        "unreplaced_frame_share": sum(s.frames_with_unreplaced for s in ok) / with_faces if with_faces else 0.0,
        "unreplaced_face_share": (sum(s.faces_unreplaced for s in ok) / max(1, sum(s.faces_seen for s in ok))),
        "same_person_face_share": (sum(s.faces_same_person for s in ok) / max(1, sum(s.faces_seen for s in ok))),
        "flicker_ratio": float(np.mean(ratios)) if ratios else float("nan"),
        **{f"track_{k}": v for k, v in reidentify_tracks(ok).items()},
    }
    return scores, summary


METRIC_COLUMNS = ("video", "output", "frames", "sampled_frames", "frames_with_faces", "frames_with_unreplaced",
                  "unreplaced_frame_share", "faces_seen", "faces_unreplaced", "faces_same_person", "flicker_output", "flicker_original",
                  "flicker_ratio", "error")


def write_video_metrics(path, scores: list[VideoScore]) -> None:
    """``video_metrics.csv``: one row per video (it names the input videos: keep it with the private records)."""
    import csv

    from anonfaces.utils.atomic import atomic_open

    with atomic_open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(METRIC_COLUMNS)
        for s in scores:
            w.writerow([s.path, s.output, s.frames, s.sampled_frames, s.frames_with_faces, s.frames_with_unreplaced,
                        f"{s.unreplaced_frame_share:.4f}", s.faces_seen, s.faces_unreplaced, s.faces_same_person, f"{s.flicker_output:.3f}",
                        f"{s.flicker_original:.3f}", f"{s.flicker_ratio:.3f}", s.error or ""])
