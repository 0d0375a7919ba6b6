"""The per-track privacy check: the photos' promise (`anonfaces.synthesize.privacy`) on video, one track at a time.

A track is one person on screen; it gets one surrogate and must keep one look
from frame to frame, so the check decides **per track**, not per frame:

1. up to ``samples`` (default 4) frames of the track where its face was detected,
   spread evenly over the track, are decoded once (`sample_frames`);
2. on each, the face is replaced exactly as the writer will replace it
   (`anonfaces.video.anonymize.render_face`) and scored by the photos'
   `PrivacyCheck` with the person's figures: ``leak`` (against the person's mean
   embedding), ``evenness`` (against the cluster's other people) and the own-photo
   term ``nearest_own`` (the nearest of the person's original faces: every frame of
   every track of the person, or with ``own_photos="this"`` the frame's own face);
3. the track passes a step when **every** sample passes (its record keeps the worst:
   the largest leak and evenness, the smallest ``nearest_own``); otherwise the whole
   track is redone with the next step of `escalation_steps` (the photos' steps:
   cluster shape, largest region, cluster colours, softened) -- one setting for the
   whole track, so the face stays stable in time;
4. when no step passes, ``on_leak`` decides for the whole track: ``blur`` its face
   region on every frame, paste the bare ``surrogate`` crop over the head, or ``keep``
   the last step (recorded as ``kept-above-margin``).

The person is the clustering's unit (`Clustering.units`): a known identity, or the
track itself (``"<video>#t<track>"``) where none is known. Each track's outcome is a
`TrackPrivacy`, one row of ``PRIVATE/videos/privacy.csv`` (`write_track_privacy`);
the chosen treatment goes into the `FramePlan` (``plan.treatment``) the writer follows.
"""

from __future__ import annotations

import csv
import logging
import uuid
from dataclasses import asdict, dataclass
import numpy as np

from anonfaces.utils.atomic import atomic_open
from anonfaces.utils.parallel import WorkerPool, worker_local
from anonfaces.video.io import read_frames

log = logging.getLogger(__name__)

#: Frames of a track the check looks at (spread over the track).
SAMPLES = 4
#: The check renders each sampled face on the frame's part around it: the face's box grown by this many face widths.
CROP_MARGIN = 1.0
TRACK_PRIVACY_COLUMNS = ("video", "track", "cluster", "frames", "sampled", "leak_before", "evenness_before",
                         "nearest_own_before", "leak_after", "evenness_after", "nearest_own_after", "step", "outcome")


@dataclass
class TrackPrivacy:
    """What the check found for one track (one row of the video ``privacy.csv``); the figures are the worst over its
    sampled frames (largest leak and evenness, smallest distance to the person's own faces); NaN where not computed.
    ``treatment``: how the writer puts the track's faces in (`anonfaces.video.anonymize.treatment_of`)."""

    video: str
    track: int
    cluster: int
    frames: int = 0
    sampled: int = 0
    leak_before: float = float("nan")
    evenness_before: float = float("nan")
    nearest_own_before: float = float("nan")
    leak_after: float = float("nan")
    evenness_after: float = float("nan")
    nearest_own_after: float = float("nan")
    step: str = "given"
    outcome: str = "unchecked"
    treatment: dict | None = None

    def row(self) -> list:
        out = []
        for key in TRACK_PRIVACY_COLUMNS:
            value = getattr(self, key)
            out.append(f"{value:.4f}" if isinstance(value, float) else value)
        return out


def sample_rows(plan_faces: dict, track: int, samples: int = SAMPLES) -> list[tuple[int, np.ndarray]]:
    """Up to ``samples`` (frame, landmarks68) of ``track`` from a `FramePlan`'s ``faces``, detected frames only
    (not interpolated), evenly spread over the track."""
    mine = sorted((f, lm) for f, faces in plan_faces.items() for lm, _, t, filled in faces if t == track and not filled)
    if not mine:
        return []
    picks = np.unique(np.linspace(0, len(mine) - 1, min(samples, len(mine))).round().astype(int))
    return [mine[i] for i in picks.tolist()]


def sample_frames(src, frames: set[int], *, max_pixels: int | None = None) -> dict[int, np.ndarray]:
    """The decoded frames ``frames`` of video ``src`` (one pass, stopping after the last)."""
    out = {}
    if not frames:
        return out
    last = max(frames)
    for frame_no, _, image in read_frames(src, max_pixels=max_pixels):
        if frame_no in frames:
            out[frame_no] = image
        if frame_no >= last:
            break
    return out


def _around(image: np.ndarray, landmarks68: np.ndarray, *, margin: float = CROP_MARGIN):
    """(the part of ``image`` around the face, the landmarks in it): the landmarks' box grown by ``margin`` face
    widths on each side, which holds everything the blend, the fallbacks and the face chip read."""
    lm = np.asarray(landmarks68, np.float64)
    h, w = image.shape[:2]
    size = float(max(np.ptp(lm[:, 0]), np.ptp(lm[:, 1])))
    x0, y0 = (np.floor(lm.min(0) - margin * size)).astype(int)
    x1, y1 = (np.ceil(lm.max(0) + margin * size)).astype(int)
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    return np.ascontiguousarray(image[y0:y1, x0:x1]), (lm - [x0, y0]).astype(np.float32)


def _worst(scores: list) -> tuple[float, float, float]:
    """(largest leak, largest evenness, smallest nearest_own) over the samples; NaN where no sample has the term."""
    a = np.array([tuple(s) for s in scores], np.float64).reshape(-1, 3)

    def pick(col, fn):
        v = a[:, col][np.isfinite(a[:, col])]
        return float(fn(v)) if v.size else float("nan")

    return pick(0, np.max), pick(1, np.max), pick(2, np.min)


# --- worker side --------------------------------------------------------------------------------
def _check(run: dict):
    held = worker_local("video.privacy", run["token"])
    if "check" not in held:
        from anonfaces.synthesize.privacy import PrivacyCheck

        c = run["check"]
        held["check"] = PrivacyCheck(c["make_embed"](), margin=c["margin"], on_leak=c["on_leak"],
                                     own_distance=c["own_distance"], own_photos=c["own_photos"])
    return held["check"]


def _check_track(run: dict, task):
    """One track through the escalation steps (see the module docstring); returns its `TrackPrivacy`."""
    from anonfaces.synthesize.blend import BlendSettings
    from anonfaces.synthesize.privacy import FaceJob, escalation_steps
    from anonfaces.video.anonymize import _surrogate, render_face

    record, samples, person = task  # samples: [(image, landmarks68, original embedding)]
    check = _check(run)
    surrogate = _surrogate(run, record.cluster)
    jobs = [FaceJob(lm, surrogate, cluster=record.cluster, member=person["member"], own=person["own"],
                    others=person["others"], original=orig) for _, lm, orig in samples]

    def scores(treatment):
        out = []
        for (image, lm, _), job in zip(samples, jobs):
            out.append(check.scores(render_face(run, image.copy(), lm, record.cluster, treatment), job))
        return _worst(out)

    last = None
    for i, (name, settings) in enumerate(escalation_steps(BlendSettings(**run["blend"]))):
        last = {"mode": "blend", "blend": asdict(settings)}
        worst = scores(last)
        if i == 0:
            record.leak_before, record.evenness_before, record.nearest_own_before = worst
        record.leak_after, record.evenness_after, record.nearest_own_after = worst
        record.step = name
        if check.passes(worst):
            record.outcome = "passed" if i == 0 else "escalated"
            record.treatment = last
            return record
    if check.on_leak == "keep":
        record.outcome, record.treatment = "kept-above-margin", last
        return record
    record.treatment = {"mode": check.on_leak}
    record.outcome = "blurred" if check.on_leak == "blur" else "surrogate"
    record.step = f"on_leak={check.on_leak}"
    record.leak_after, record.evenness_after, record.nearest_own_after = scores(record.treatment)
    return record


# --- main side ----------------------------------------------------------------------------------
def check_tracks(pool: WorkerPool, src, rel: str, plan, rows: dict, *, everyone: dict, check: dict, surrogates,
                 sur_landmarks: dict, blend: dict, fast_blend: bool = True, samples: int = SAMPLES,
                 max_pixels: int | None = None) -> list[TrackPrivacy]:
    """Check every track of one video and set ``plan.treatment`` for those escalated or fallen back.

    ``rows``: this video's encoded faces, ``frames``, ``tracks``, ``embeddings`` (the original faces' dlib
    descriptors) and ``persons`` (int person id of each); ``everyone``: ``embeddings``, ``persons`` and ``labels``
    (cluster) of every encoded face of the run (a person's own faces and a cluster's other people may be in other
    videos). ``check``: ``make_embed`` (a picklable callable returning ``embed(chips) -> (n, 128)``), ``margin``,
    ``on_leak``, ``own_distance``, ``own_photos`` (as `PrivacyCheck`). Returns one `TrackPrivacy` per track.
    """
    frames, tracks = np.asarray(rows["frames"]), np.asarray(rows["tracks"])
    emb, persons = np.asarray(rows["embeddings"], np.float64), np.asarray(rows["persons"])
    all_emb = np.asarray(everyone["embeddings"], np.float64)
    all_persons, all_labels = np.asarray(everyone["persons"]), np.asarray(everyone["labels"])
    picks = {t: sample_rows(plan.faces, t, samples) for t in sorted(plan.track_clusters)}
    images = sample_frames(src, {f for chosen in picks.values() for f, _ in chosen}, max_pixels=max_pixels)
    tasks = []
    for t, chosen in picks.items():
        mine = np.flatnonzero(tracks == t)
        record = TrackPrivacy(rel, int(t), int(plan.track_clusters[t]),
                              frames=sum(1 for faces in plan.faces.values() for f in faces if f[2] == t))
        sampled = []
        for f, lm in chosen:
            at = mine[frames[mine] == f]
            if f in images and len(at):
                sampled.append((*_around(images[f], lm), emb[at[0]]))  # the frame's own original face
        record.sampled = len(sampled)
        info = None
        if sampled:
            own = all_persons == int(np.bincount(persons[mine]).argmax())
            info = {"member": all_emb[own].mean(0), "own": all_emb[own],
                    "others": all_emb[(all_labels == record.cluster) & ~own]}
        tasks.append((record, sampled, info))
    run = {"check": check, "surrogates": str(surrogates), "token": uuid.uuid4().hex, "blend": dict(blend),
           "sur_landmarks": {int(c): np.asarray(v, np.float32) for c, v in sur_landmarks.items()},
           "fast_blend": bool(fast_blend)}
    todo = [task for task in tasks if task[1]]
    results = {r.track: r for r in pool.map(_check_track, todo, context=run, chunksize=1, leave=False,
                                            desc="privacy check", unit="track")}
    out = []
    for record, _, _ in tasks:
        record = results.get(record.track, record)
        if record.outcome not in ("passed", "unchecked") and record.treatment is not None:
            plan.treatment[record.track] = record.treatment
        out.append(record)
    return out


def write_track_privacy(path, records: list[TrackPrivacy]) -> None:
    """The video ``privacy.csv``: one row per track (`TRACK_PRIVACY_COLUMNS`), sorted by video and track. It names
    the input videos: it belongs in the private folder."""
    with atomic_open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(TRACK_PRIVACY_COLUMNS)
        for r in sorted(records, key=lambda r: (r.video, r.track)):
            w.writerow(r.row())


def track_privacy_summary(records: list[TrackPrivacy]) -> dict:
    """Tracks by outcome (every `anonfaces.synthesize.privacy.OUTCOMES` key) and the number of tracks."""
    from anonfaces.synthesize.privacy import OUTCOMES

    counts = {o: 0 for o in OUTCOMES}
    for r in records:
        counts[r.outcome] = counts.get(r.outcome, 0) + 1
    return {"tracks": len(records), **counts}
