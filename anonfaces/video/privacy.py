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
   region on every frame (the photos' blur, sigma 0.15 of the face size, made stronger,
   `BLUR_SIGMAS`, until the track passes; the strongest if none does), paste the bare
   ``surrogate`` crop over the head, or ``keep`` the last step (recorded as
   ``kept-above-margin``).

The person is the clustering's unit (`Clustering.units`): a known identity, or the
track itself (``"<video>#t<track>"``) where none is known. Each track's outcome is a
`TrackPrivacy`, one row of ``PRIVATE/videos/privacy.csv`` (`write_track_privacy`);
the chosen treatment goes into the `FramePlan` (``plan.treatment``) the writer follows.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from dataclasses import asdict, dataclass

import numpy as np

from anonfaces.synthesize.privacy import csv_row, outcome_counts, write_outcomes_csv
from anonfaces.utils.parallel import WorkerPool, worker_local
from anonfaces.video.io import read_frames

log = logging.getLogger(__name__)

#: Frames of a track the check looks at (spread over the track).
SAMPLES = 4
#: The check renders each sampled face on the frame's part around it: the face's box grown by this many face widths.
CROP_MARGIN = 1.0
#: ``on_leak="blur"``: the blur's sigma (share of the face size) -- the photos' fallback (0.15), then stronger until the
#: track passes (dlib still finds its person in a face of ~100 px blurred at 0.15: the tests' clip).
BLUR_SIGMAS = (0.15, 0.3, 0.6)
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
        return csv_row(self, TRACK_PRIVACY_COLUMNS)


def sample_rows(plan_faces: dict, samples: int = SAMPLES) -> tuple[dict, Counter]:
    """Per track, up to ``samples`` (frame, landmarks68) from a `FramePlan`'s ``faces``, detected frames only
    (not interpolated), evenly spread over the track; and every track's number of face-frames. One pass over the plan."""
    detected: dict[int, list] = {}
    counts: Counter = Counter()
    for f, faces in plan_faces.items():
        for lm, _, t, filled in faces:
            counts[t] += 1
            if not filled:
                detected.setdefault(t, []).append((f, lm))
    picks = {}
    for t, mine in detected.items():
        mine.sort(key=lambda item: item[0])
        at = np.unique(np.linspace(0, len(mine) - 1, min(samples, len(mine))).round().astype(int))
        picks[t] = [mine[i] for i in at.tolist()]
    return picks, counts


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


#: The softened steps of a track's escalation (the photos' before their third step, 0.1, was added: videos were
#: measured with these two).
TRACK_SOFTEN = (0.03, 0.06)


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
    for i, (name, settings) in enumerate(escalation_steps(BlendSettings(**run["blend"]), TRACK_SOFTEN)):
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
    record.outcome = "blurred" if check.on_leak == "blur" else "surrogate"
    fallbacks = [(f"on_leak=blur-{s:g}" if i else "on_leak=blur", {"mode": "blur", "sigma": s})
                 for i, s in enumerate(BLUR_SIGMAS)] if check.on_leak == "blur" else \
        [("on_leak=surrogate", {"mode": "surrogate"})]
    for record.step, record.treatment in fallbacks:  # the blur made stronger until it passes (the strongest if none)
        worst = scores(record.treatment)
        record.leak_after, record.evenness_after, record.nearest_own_after = worst
        if check.passes(worst):
            break
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
    sampled_rows, face_frames = sample_rows(plan.faces, samples)
    picks = {t: sampled_rows.get(t, []) for t in sorted(plan.track_clusters)}
    images = sample_frames(src, {f for chosen in picks.values() for f, _ in chosen}, max_pixels=max_pixels)
    tasks = []
    for t, chosen in picks.items():
        mine = np.flatnonzero(tracks == t)
        record = TrackPrivacy(rel, int(t), int(plan.track_clusters[t]),
                              frames=face_frames[t])
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
    write_outcomes_csv(path, TRACK_PRIVACY_COLUMNS, records, key=lambda r: (r.video, r.track))


def track_privacy_summary(records: list[TrackPrivacy]) -> dict:
    """Tracks by outcome (every `anonfaces.synthesize.privacy.OUTCOMES` key) and the number of tracks."""
    return outcome_counts(records, "tracks")


# --- the safety net: the written video looked at again ---------------------------------------------------------------
#: Frames a second of a written video the safety net looks at.
NET_FPS = 1.0


def _net_task(run: dict, task):
    """One frame of a written video: the faces a fresh detector finds there and the replaced faces at their planned
    landmarks, each as (box ltrb, embedding, track or -1)."""
    from anonfaces.detect import face_chip, make_detector
    from anonfaces.video.encode import detect_frame

    frame_no, image, known = task
    held = worker_local("video.net", run["token"])
    if "embed" not in held:
        held["embed"] = run["make_embed"]()
        held["detector"] = make_detector(run["detector"], upsample=run["upsample"])
    faces = detect_frame(held["detector"], image, scale=run["scale"])
    items = [(f.box_ltrb, f.landmarks68, -1) for f in faces]
    items += [(np.r_[lm.min(0), lm.max(0)], lm, t) for lm, t in known]
    if not items:
        return frame_no, []
    chips = np.stack([face_chip(image, np.asarray(lm, np.float64), size=150) for _, lm, _ in items])
    emb = np.asarray(held["embed"](chips), np.float32)
    return frame_no, [(np.asarray(box, np.float32), e, int(t)) for (box, _, t), e in zip(items, emb)]


def safety_net(pool: WorkerPool, written, rel: str, plan, rows: dict, *, everyone: dict, make_embed, fps: float = NET_FPS,
               detector: str = "hog", upsample: int = 1, scale: float = 1.0, threshold: float | None = None,
               max_pixels: int | None = None) -> list[dict]:
    """The faces of the written video ``written`` left unprotected, on ``fps`` frames a second (the photos' safety net,
    `anonfaces.release.nofaces.find_unprotected`, on video): every replaced face, embedded from the output at its
    planned landmarks, and every face a fresh detector (``detector`` at ``upsample``, on frames scaled by ``scale``: the
    run's own full-frame pass) finds there. A face is a ``match`` when it lies within ``threshold`` (`UNPROTECTED`,
    0.5) of an original face of its person (``rows``' and ``everyone``'s ``persons``, as in `check_tracks`), and
    ``unanonymized`` when the detector finds it away from every replaced face (IoU <= 0.3): someone the encoding missed.
    Returns one dict per finding (frame, kind, box, distance, track)."""
    from anonfaces.utils.distances import UNPROTECTED
    from anonfaces.video.io import probe, sample_step
    from anonfaces.video.track import box_iou

    threshold = UNPROTECTED if threshold is None else float(threshold)
    step = sample_step(float(probe(written).fps), fps)
    tracks, persons = np.asarray(rows["tracks"]), np.asarray(rows["persons"])
    person_of = {int(t): int(np.bincount(persons[tracks == t]).argmax()) for t in np.unique(tracks).tolist()}
    all_emb, all_persons = np.asarray(everyone["embeddings"], np.float64), np.asarray(everyone["persons"])
    run = {"token": uuid.uuid4().hex, "make_embed": make_embed, "detector": detector, "upsample": int(upsample),
           "scale": float(scale)}
    findings = []
    for frame_no, items in _scan(pool, run, written, plan, step, max_pixels):
        planned = [(box, t) for box, _, t in items if t >= 0]
        for box, e, t in items:
            if t < 0:
                iou = box_iou(box[None], np.stack([b for b, _ in planned])).ravel() if planned else np.zeros(0)
                if not iou.size or iou.max() <= 0.3:
                    findings.append({"frame": int(frame_no), "kind": "unanonymized", "box": [float(v) for v in box],
                                     "distance": float("nan"), "track": -1})
                    continue
                t = planned[int(iou.argmax())][1]
            own = all_emb[all_persons == person_of.get(int(t), -1)]
            d = float(np.linalg.norm(own - np.asarray(e, np.float64)[None], axis=1).min()) if len(own) else float("inf")
            if d < threshold:
                findings.append({"frame": int(frame_no), "kind": "match", "box": [float(v) for v in box],
                                 "distance": d, "track": int(t)})
    return findings


def _scan(pool: WorkerPool, run: dict, written, plan, step: int, max_pixels):
    """`_net_task` on every ``step``-th frame of ``written``, a few frames in memory at a time."""
    batch = []
    for frame_no, _, image in read_frames(written, step=step, max_pixels=max_pixels):
        batch.append((frame_no, image, [(lm, t) for lm, _, t, _ in plan.faces.get(frame_no, [])]))
        if len(batch) >= 8:
            yield from pool.map(_net_task, batch, context=run, chunksize=1, leave=False)
            batch = []
    if batch:
        yield from pool.map(_net_task, batch, context=run, chunksize=1, leave=False)
