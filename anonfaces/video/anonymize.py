"""Write a video with every tracked face replaced: the same surrogate for a whole track, steady from frame to frame.

`frame_plan` turns a video's encoded faces (rows of `Encodings` with frames and
tracks) and their clusters into the faces to replace on every frame:

- one cluster per track (the clustering puts a track's faces together; a majority
  vote guards against a clustering made elsewhere);
- frames where the detector missed a face between two detections of its track
  (at most ``max_fill`` frames apart, within one shot) get landmarks interpolated
  linearly, so a detector blink leaves no face unprotected;
- landmarks smoothed over time inside each shot (a Gaussian of ``smooth`` frames
  over each point's x and y), so the replaced face does not jitter.

`write_video` decodes the video here (in a thread, ahead of the workers), sends its frames a batch at a time to the
command's `WorkerPool` (each worker puts the surrogates in, or applies a baseline),
and encodes the results in order at the input's rate and size with its audio
copied (`VideoWriter`: atomic).
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from anonfaces.utils.parallel import WorkerPool, worker_local
from anonfaces.video.io import VideoReadError, VideoWriter, prefetch, probe, read_frames

log = logging.getLogger(__name__)

#: Frames in flight to the workers at a time.
BATCH_FRAMES = 24


@dataclass
class FramePlan:
    """What to replace on each frame: ``faces[frame]`` is a list of (landmarks68, cluster, track, filled)."""

    faces: dict[int, list[tuple[np.ndarray, int, int, bool]]]
    track_clusters: dict[int, int]
    filled: int  # face-frames interpolated where the detector missed
    #: Per track, how its faces are put in when not the run's blend (`treatment_of`; set by the privacy check).
    treatment: dict[int, dict] = field(default_factory=dict)

    @property
    def n_faces(self) -> int:
        return sum(len(v) for v in self.faces.values())


def frame_plan(frames: np.ndarray, tracks: np.ndarray, landmarks68: np.ndarray, labels: np.ndarray, *,
               cuts: list[int] | tuple[int, ...] = (), smooth: float = 1.0, max_fill: int = 12) -> FramePlan:
    """The faces to replace on every frame of one video (see the module docstring).

    ``frames``, ``tracks``, ``landmarks68`` (n, 68, 2) and ``labels`` (the cluster of each row) are the video's
    rows; ``cuts`` the frames that start a new shot; ``smooth`` the Gaussian's sigma in frames (0: none);
    ``max_fill`` the longest run of frames filled between two detections of a track.
    """
    from scipy.ndimage import gaussian_filter1d

    frames = np.asarray(frames, np.int64)
    tracks = np.asarray(tracks, np.int64)
    landmarks68 = np.asarray(landmarks68, np.float64)
    labels = np.asarray(labels, np.int64)
    cuts = np.asarray(sorted(cuts), np.int64)
    faces: dict[int, list] = {}
    track_clusters, filled = {}, 0
    for t in np.unique(tracks).tolist():
        rows = np.flatnonzero(tracks == t)
        rows = rows[np.argsort(frames[rows], kind="stable")]
        values, counts = np.unique(labels[rows], return_counts=True)
        cluster = int(values[np.argmax(counts)])
        track_clusters[int(t)] = cluster
        # contiguous segments: consecutive detections at most max_fill + 1 frames apart, in one shot
        f = frames[rows]
        shot = np.searchsorted(cuts, f, side="right")
        breaks = np.flatnonzero((np.diff(f) > max_fill + 1) | (np.diff(shot) != 0)) + 1
        for seg in np.split(np.arange(len(rows)), breaks):
            fs, lm = f[seg], landmarks68[rows[seg]]
            keep = np.concatenate([[True], np.diff(fs) > 0])  # one row per frame (two faces of a track in a frame: first)
            fs, lm = fs[keep], lm[keep]
            dense_f = np.arange(fs[0], fs[-1] + 1)
            flat = lm.reshape(len(fs), -1)
            dense = np.stack([np.interp(dense_f, fs, flat[:, j]) for j in range(flat.shape[1])], axis=1)
            if smooth > 0 and len(dense_f) > 1:
                dense = gaussian_filter1d(dense, sigma=float(smooth), axis=0, mode="nearest")
            detected = set(fs.tolist())
            for i, frame in enumerate(dense_f.tolist()):
                was_filled = frame not in detected
                filled += was_filled
                faces.setdefault(frame, []).append((dense[i].reshape(68, 2).astype(np.float32), cluster, int(t), was_filled))
    return FramePlan(faces, track_clusters, filled)


# --- worker side --------------------------------------------------------------------------------
def _surrogate(run: dict, cluster: int):
    from anonfaces.synthesize.base import Surrogate
    from anonfaces.utils.images import read_image

    cache = worker_local("video.surrogates", run["token"])
    if cluster not in cache:
        cache[cluster] = Surrogate(read_image(Path(run["surrogates"]) / f"{cluster}.png"), run["sur_landmarks"][cluster])
    return cache[cluster]


def _fast_surrogate(run: dict, cluster: int):
    from anonfaces.video.fastblend import FastSurrogate

    cache = worker_local("video.fast-surrogates", run["token"])
    if cluster not in cache:
        cache[cluster] = FastSurrogate(_surrogate(run, cluster))
    return cache[cluster]


def treatment_of(run: dict, track: int) -> dict:
    """How a track's faces are put in: ``{"mode": "blend", "blend": BlendSettings fields}`` (the run's blend unless
    the privacy check escalated the track), or ``{"mode": "blur", "sigma": s}`` / ``{"mode": "surrogate"}`` (its
    fallback)."""
    return run.get("treatment", {}).get(int(track)) or {"mode": "blend", "blend": run["blend"]}


def render_face(run: dict, image: np.ndarray, landmarks68: np.ndarray, cluster: int, treatment: dict) -> np.ndarray:
    """``image`` (modified in place and returned) with one face replaced as ``treatment`` says (`treatment_of`): the
    video blend (`fast_blend`, or the photo blend with ``run["fast_blend"]`` False), the blur of the face's largest
    region, or the bare surrogate pasted over the head. The writer and the privacy check both use it, so the check
    scores exactly what is written."""
    from anonfaces.synthesize.blend import BlendSettings

    mode = treatment["mode"]
    if mode == "blur":
        from anonfaces.synthesize.baselines import apply_baseline
        from anonfaces.synthesize.blend import REGIONS

        # the photos' fallback (`blur_face`: the largest region, sigma 0.15 of the face), or stronger (``sigma``)
        image[...] = apply_baseline(image, "blur", [np.asarray(landmarks68, np.float64)], forehead=max(REGIONS.values())[0],
                                    sigma=float(treatment.get("sigma", 0.15)))
        return image
    if mode == "surrogate":
        from anonfaces.synthesize.privacy import paste_surrogate

        image[...] = paste_surrogate(image, _surrogate(run, cluster), landmarks68)
        return image
    settings = BlendSettings(**treatment["blend"])
    if run.get("fast_blend", True):
        from anonfaces.video.fastblend import fast_blend

        return fast_blend(image, _fast_surrogate(run, cluster), landmarks68, settings=settings, out=image)
    from anonfaces.synthesize.blend import blend_surrogate

    return blend_surrogate(image, _surrogate(run, cluster), landmarks68, settings=settings, out=image)


def _replace_frame(run: dict, task):
    """One frame with its faces replaced: (frame number, RGB frame)."""
    frame_no, image, faces = task
    if run["blur_all"]:
        from anonfaces.synthesize.baselines import blur_all

        return frame_no, blur_all(image)
    if not faces:
        return frame_no, image
    if run["method"] == "ksame":
        image = image.copy()
        for lm, cluster, track, _ in faces:
            render_face(run, image, lm, cluster, treatment_of(run, track))
        return frame_no, image
    from anonfaces.synthesize.baselines import apply_baseline

    # one seed per video: a baseline's noise (if any) does not flicker from frame to frame
    return frame_no, apply_baseline(image, run["method"], [f[0] for f in faces], random_state=run["seed"],
                                    forehead=run["forehead"], **run["method_params"])


# --- main side ----------------------------------------------------------------------------------
@dataclass
class VideoOutput:
    """One written video: frames, faces replaced (``filled`` of them interpolated), seconds; or ``error``."""

    rel: str
    output: str
    frames: int = 0
    faces: int = 0
    filled: int = 0
    tracks: int = 0
    seconds: dict = field(default_factory=dict)
    error: str | None = None

    def as_dict(self) -> dict:
        return {"path": self.rel, "output": self.output, "frames": self.frames, "faces": self.faces, "filled": self.filled,
                "tracks": self.tracks, "seconds": self.seconds, "error": self.error}


def write_video(pool: WorkerPool, src, dst, plan: FramePlan, *, method: str = "ksame", surrogates=None,
                sur_landmarks: dict | None = None, blend: dict | None = None, method_params: dict | None = None,
                seed: int = 0, forehead: float = 0.15, crf: int = 18, preset: str = "veryfast",
                max_pixels: int | None = None, progress: bool = True, rel: str = "", output: str = "",
                blur_all: bool = False, fast_blend: bool = True) -> VideoOutput:
    """Write ``dst``: ``src`` with the faces of ``plan`` replaced, at ``src``'s rate and size, with its audio.

    ``method`` ``ksame`` reads ``surrogates/<cluster>.png`` with ``sur_landmarks[cluster]`` and blends with the
    `BlendSettings` fields in ``blend``; any other method is a baseline (`apply_baseline`). A video that cannot
    be decoded leaves nothing at ``dst`` and returns a `VideoOutput` with ``error`` set. ``blur_all``: every frame
    blurred whole (a video in which no face was found, with ``--no-face blur``). ``fast_blend`` (default): the
    surrogates are put in by `anonfaces.video.fastblend.fast_blend` (the photo blend with its maps on a coarse grid,
    about 5 times faster); False: by `blend_surrogate` itself.
    """
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    result = VideoOutput(rel or str(src), output or str(dst), tracks=len(plan.track_clusters))
    try:
        info = probe(src)
    except VideoReadError as exc:
        result.error = str(exc)
        return result
    run = {"method": method, "surrogates": str(surrogates) if surrogates is not None else None,
           "sur_landmarks": {int(c): np.asarray(v, np.float32) for c, v in (sur_landmarks or {}).items()},
           "blend": dict(blend or {}), "method_params": dict(method_params or {}), "seed": int(seed),
           "forehead": float(forehead), "token": uuid.uuid4().hex, "blur_all": bool(blur_all),
           "fast_blend": bool(fast_blend), "treatment": dict(plan.treatment)}
    saved, pool.progress = pool.progress, False
    timing = {"decode": 0.0, "replace": 0.0, "encode": 0.0}
    bar = tqdm(total=info.frames or None, desc=f"anonymize {Path(result.rel).name}", unit="frame", disable=not progress)
    frames = prefetch(read_frames(src, max_pixels=max_pixels), depth=BATCH_FRAMES)
    try:
        with VideoWriter(dst, fps=info.fps, width=info.width, height=info.height, audio_from=src, crf=crf,
                         preset=preset) as writer:
            batch = []
            while True:
                t = time.perf_counter()
                item = next(frames, None)
                timing["decode"] += time.perf_counter() - t
                if item is not None:
                    frame_no, _, image = item
                    faces = plan.faces.get(frame_no, [])
                    result.faces += len(faces)
                    result.filled += sum(1 for f in faces if f[3])
                    batch.append((frame_no, image, faces))
                if batch and (item is None or len(batch) >= BATCH_FRAMES):
                    # each frame is encoded as soon as it comes back, while the workers replace the next ones
                    t = time.perf_counter()
                    for _, image in pool.map(_replace_frame, batch, context=run, chunksize=2, leave=False):
                        t1 = time.perf_counter()
                        timing["replace"] += t1 - t
                        writer.write(image)
                        t = time.perf_counter()
                        timing["encode"] += t - t1
                    bar.update(len(batch))
                    batch = []
                if item is None:
                    break
            result.frames = writer.frames
            t = time.perf_counter()
        timing["encode"] += time.perf_counter() - t  # flushing the encoder, copying the audio, moving into place
    except VideoReadError as exc:
        result.error = str(exc)
    finally:
        frames.close()  # stops the decoding thread if the loop ended early
        pool.progress = saved
        bar.close()
    timing["total"] = time.perf_counter() - t0
    result.seconds = timing
    return result
