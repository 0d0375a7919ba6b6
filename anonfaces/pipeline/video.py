"""Videos in a dataset: encode them into tracks, cluster the tracks as people, write each video anonymized.

`anonymize_dataset` hands a dataset that holds videos (a video file, a folder of
videos, or a folder mixing photos and videos) to `anonymize_with_videos`:

- the photos (if any) go through the photo run unchanged (`anonymize_dataset` with
  ``include_videos=False``) into OUT and OUT.private;
- the videos are encoded (every frame by default: ``fps=None``), clustered on their
  own into clusters of at least k people (a face track is a person where no
  identity is known; `anonfaces.cluster.fill_identities`), one surrogate is made
  per cluster from up to `CROPS_PER_TRACK` faces of each track, and every video is
  written into OUT under its neutral name with each track's cluster surrogate
  (`anonfaces.video.anonymize`). What links videos to people goes to
  ``OUT.private/videos/`` (``encodings.npz``, ``mapping.csv``, ``surrogates/``, ``run.json``).

Photos and videos are made k-anonymous separately (each set's clusters hold at
least k people of that set).
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from anonfaces.errors import BadInputError
from anonfaces.pipeline.layout import VIDEOS_DIR, RunLayout
from anonfaces.pipeline.options import (
    AnonymizeOptions,
    ClusterOptions,
    EncodeOptions,
    as_record,
)
from anonfaces.pipeline.record import header, write_record
from anonfaces.utils.parallel import WorkerPool, pool_for
from anonfaces.video.io import is_video, list_videos

log = logging.getLogger(__name__)

#: Faces of each track whose crops go into its cluster's surrogate (evenly spaced over the track).
CROPS_PER_TRACK = 6
#: The private sub-folder of a run's video records.


def video_inputs(dataset) -> tuple[Path, list[str]]:
    """``(root, videos)``: a video file gives its folder and ``[its name]``; a folder its videos (may be empty)."""
    path = Path(dataset)
    if path.is_file():
        if not is_video(path):
            raise BadInputError(f"--dataset {path} is a file but not a video (or give a folder)")
        return path.parent, [path.name]
    if not path.is_dir():
        raise BadInputError(f"dataset folder not found: {path}")
    return path, list_videos(path)


def video_layout(layout: RunLayout) -> RunLayout:
    """The run's layout with its private records under ``PRIVATE/videos/`` (same OUT, same names and key)."""
    return replace(layout, private=layout.private / VIDEOS_DIR)


def video_encodings(root, videos: list[str], encodings, options: EncodeOptions, *, pool: WorkerPool, fps, detect_scale,
                    progress: bool, detect_every: int = 1):
    """The videos' `Encodings` (the video rows of ``encodings`` when given, else encoded now), skipped, info."""
    from anonfaces.encode import Encodings
    from anonfaces.video.encode import encode_videos

    if encodings is not None:
        enc = encodings if isinstance(encodings, Encodings) else Encodings.load(encodings)
        keep = enc.video_rows() & np.isin(enc.paths, videos)
        enc = enc.subset(keep)
        missing = sorted(set(videos) - set(enc.paths.tolist()))
        return enc, [(v, "not in the encodings given") for v in missing], {}
    return encode_videos(pool, root, videos, detector=options.detector, upsample=options.upsample, encoder=options.encoder,
                         fps=fps, scale=detect_scale, max_pixels=options.max_pixels, detect_every=detect_every,
                         progress=progress)


def surrogate_crops(root, enc, *, size: int, per_track: int = CROPS_PER_TRACK, max_pixels=None):
    """Rows and canonical crops (``rows``, ``crops`` (m, S, S, 3), ``points`` (m, 68, 2)) of up to ``per_track``
    faces of every track, evenly spaced in time; one decoding pass per video."""
    from anonfaces.detect import align_face
    from anonfaces.video.io import read_frames

    chosen = []
    for video in dict.fromkeys(enc.paths.tolist()):
        rows = np.flatnonzero(enc.paths == video)
        for t in np.unique(enc.tracks[rows]).tolist():
            tr = rows[enc.tracks[rows] == t]
            tr = tr[np.argsort(enc.frames[tr], kind="stable")]
            chosen.extend(tr[np.unique(np.linspace(0, len(tr) - 1, min(per_track, len(tr))).round().astype(int))].tolist())
    chosen = np.array(sorted(chosen), np.intp)
    crops = np.empty((len(chosen), size, size, 3), np.uint8)
    points = np.empty((len(chosen), 68, 2), np.float32)
    for video in dict.fromkeys(enc.paths[chosen].tolist()):
        mine = chosen[enc.paths[chosen] == video]
        by_frame: dict[int, list[int]] = {}
        for i in mine.tolist():
            by_frame.setdefault(int(enc.frames[i]), []).append(i)
        last = max(by_frame)
        for frame_no, _, image in read_frames(Path(root) / video, max_pixels=max_pixels):
            for i in by_frame.get(frame_no, []):
                face = align_face(image, enc.landmarks68[i], size=size)
                at = int(np.searchsorted(chosen, i))
                crops[at], points[at] = face.image, face.landmarks68
            if frame_no >= last:
                break
    return chosen, crops, points


def anonymize_with_videos(params: dict, root: Path, videos: list[str], *, photos: bool):
    """The run of a dataset with videos (see the module docstring); ``params`` are `anonymize_dataset`'s arguments."""
    from anonfaces.pipeline.anonymize import (
        AnonymizeRun,
        anonymize_dataset,
        release_layout,
    )
    from anonfaces.pipeline.layout import check_out_dir

    out = Path(params["out"])
    single = Path(params["dataset"]).is_file()  # one video: OUT may sit beside it
    if not single:
        check_out_dir(root, out, overwrite=params["overwrite"])
    elif out.is_dir() and any(out.iterdir()) and not params["overwrite"]:
        raise BadInputError(f"--out {out} is not empty; choose a new folder or pass --overwrite")
    photo_run = anonymize_dataset(**{**params, "include_videos": False}) if photos else None
    p = params
    blend = dict(p["blend"]) if isinstance(p["blend"], dict) else {
        "blend": p["blend"], "color": p["color"], "forehead": None if p["forehead"] is None else float(p["forehead"]),
        "feather": float(p["feather"]), "shape": p["shape"], "region": p["region"],
        "ring": float(p["ring"]),
        "pose": 0}  # videos: the fast blend, measured without the member's pose (`--pose`, `--place`, `--detail`: photos)
    options = AnonymizeOptions(method=p["method"], k=p["k"], synth=p["synth"], synth_params=p["synth_params"] or {},
                               method_params=p["method_params"] or {}, blend=blend, privacy_check=p["privacy_check"],
                               privacy_margin=p["privacy_margin"], own_photos=p["own_photos"], on_leak=p["on_leak"],
                               safety_net=p["safety_net"], match_threshold=p["match_threshold"],
                               names=p["names"], keep_folders=p["keep_folders"], no_face=p["no_face"],
                               allow_small_clusters=p["allow_small_clusters"], size=p["size"], quality=p["quality"],
                               max_pixels=p["max_pixels"], random_state=p["random_state"])
    cluster_options = ClusterOptions(algo=p["algo"], k=options.k, unit=p["unit"], outliers=p["outliers"],
                                     params=p["cluster_params"] or {}, random_state=p["random_state"]) if options.is_ksame else None
    encode_options = EncodeOptions(encoder=p["encoder"], detector=p["detector"], upsample=p["upsample"], max_pixels=p["max_pixels"])
    layout = release_layout(out, p["private"], options, dataset=None if single else root, key_file=p["key_file"])
    vlayout = video_layout(layout)
    for folder in (layout.public, vlayout.private):
        folder.mkdir(parents=True, exist_ok=True)
    with pool_for(p["pool"], p["jobs"], p["progress"]) as pool:
        outputs, info = anonymize_videos(root, videos, vlayout, options, cluster_options, encode_options, pool=pool,
                                         encodings=p["encodings"], clusters=p["clusters"], fps=p["fps"],
                                         detect_scale=p["detect_scale"], smooth=p["smooth"], progress=p["progress"],
                                         detect_every=p["detect_every"],
                                         command=p["command"])
    run = photo_run or AnonymizeRun(out=layout.public, method=options.method, synth=None, k=options.k, n_images=0,
                                    n_faces=0, n_clusters=0, dataset=root, layout=layout, no_face_policy=options.no_face)
    run.videos = outputs
    run.video_record = vlayout.run_record
    run.video_privacy = info.get("privacy") or {}
    run.held_back = sorted(run.held_back + [(h["path"], h["reason"]) for h in info["held_back"]])
    for v in outputs:
        if v.error is not None:
            run.unreadable.append((v.rel, v.error))
        elif v.output:
            run.outputs[v.rel] = v.output
    return run


def anonymize_videos(root, videos: list[str], layout: RunLayout, options: AnonymizeOptions, cluster_options: ClusterOptions | None,
                     encode_options: EncodeOptions, *, pool: WorkerPool, encodings=None, clusters=None, fps=None,
                     detect_scale: float = 1.0, smooth: float = 1.0, progress: bool = True, command: str | None = None,
                     detect_every: int = 1, fast_blend: bool = True):
    """Encode, cluster and write every video of ``videos``; returns ([`VideoOutput`], run record)."""
    from anonfaces.pipeline.anonymize import _labels, cluster_faces
    from anonfaces.synthesize.base import make_synthesizer, synthesizer_settings
    from anonfaces.synthesize.mapping import Mapping
    from anonfaces.synthesize.surrogates import auto_crop_size, make_surrogates
    from anonfaces.video.anonymize import VideoOutput, frame_plan, write_video
    from anonfaces.video.privacy import NET_FPS, safety_net

    seconds = {}
    t = time.perf_counter()
    enc, skipped, infos = video_encodings(root, videos, encodings, encode_options, pool=pool, fps=fps,
                                          detect_scale=detect_scale, progress=progress, detect_every=detect_every)
    enc.save(layout.encodings)
    seconds["encode"] = time.perf_counter() - t
    t = time.perf_counter()
    clustering = None
    if options.is_ksame and len(enc):
        if clusters is not None:
            from anonfaces.cluster import Clustering, read_clusters

            clustering = clusters if isinstance(clusters, Clustering) else read_clusters(clusters)
        else:
            clustering = cluster_faces(enc, cluster_options)
    labels, cluster_info = _labels(enc, clustering, options)
    seconds["cluster"] = time.perf_counter() - t
    sur_landmarks, synth_record, units = {}, None, None
    if options.is_ksame and len(enc):
        t = time.perf_counter()
        synthesizer = make_synthesizer(options.synth, **options.synth_params)
        size = options.size if options.size is not None else auto_crop_size(enc.landmarks68)
        rows, crops, points = surrogate_crops(root, enc, size=size, max_pixels=options.max_pixels)
        units = np.asarray(clustering.aligned_to(enc.paths, enc.face_index).units).astype(str)
        sur_landmarks = make_surrogates(pool, synthesizer, crops, points, enc.embeddings[rows], np.asarray(units)[rows],
                                        labels[rows], layout.surrogates)
        synth_record = synthesizer_settings(synthesizer)
        seconds["synthesize"] = time.perf_counter() - t
    t = time.perf_counter()
    names = layout.output_names(videos)
    outputs = []
    bad = dict(skipped)
    held_back = []
    checking = _checks_privacy(options, enc) and units is not None
    netting = options.safety_net and _dlib_encodings(enc)
    privacy_records, seconds["privacy"], seconds["safety_net"], net = [], 0.0, 0.0, {}
    if units is None:  # no clustering (a baseline): the person is the identity if known, else the track
        units = enc.identities.astype(str) if enc.has_identities else enc.track_units()
    persons = np.unique(units, return_inverse=True)[1].astype(np.int64) if len(enc) else np.zeros(0, np.int64)
    if checking or netting:
        check = _check_context(options, enc)
    for rel in videos:
        if rel in bad and bad[rel] != "no face found":
            outputs.append(VideoOutput(rel, "", error=bad[rel]))
            continue
        if rel in bad and options.no_face == "skip":  # no face found: held back, as photos are (--no-face)
            held_back.append((rel, "no face found"))
            continue
        mine = np.flatnonzero(enc.paths == rel)
        cuts = (infos.get(rel) or {}).get("scene_cuts", enc.meta.get("video_scene_cuts", {}).get(rel, []))
        plan = frame_plan(enc.frames[mine], enc.tracks[mine], enc.landmarks68[mine], labels[mine], cuts=cuts, smooth=smooth,
                          max_fill=_max_fill(infos.get(rel), enc, mine))
        if checking and len(mine):
            from anonfaces.video.privacy import check_tracks

            tc = time.perf_counter()
            rows = {"frames": enc.frames[mine], "tracks": enc.tracks[mine], "embeddings": enc.embeddings[mine],
                    "persons": persons[mine]}
            privacy_records += check_tracks(pool, Path(root) / rel, rel, plan, rows,
                                            everyone={"embeddings": enc.embeddings, "persons": persons, "labels": labels},
                                            check=check, surrogates=layout.surrogates, sur_landmarks=sur_landmarks,
                                            blend=options.blend, fast_blend=fast_blend, max_pixels=options.max_pixels)
            seconds["privacy"] += time.perf_counter() - tc
        result = write_video(pool, Path(root) / rel, layout.public / names[rel], plan, method=options.method,
                             surrogates=layout.surrogates, sur_landmarks=sur_landmarks, blend=options.blend,
                             method_params=options.method_params, seed=options.random_state, forehead=options.baseline_forehead,
                             max_pixels=options.max_pixels, progress=progress, rel=rel, output=names[rel],
                             blur_all=rel in bad and options.no_face == "blur", fast_blend=fast_blend)
        if result.error is not None:
            log.warning("video %s not written: %s", rel, result.error)
            result.output = ""
        elif netting and len(mine):
            tn = time.perf_counter()
            written = layout.public / names[rel]
            findings = safety_net(pool, written, rel, plan, {"tracks": enc.tracks[mine], "persons": persons[mine]},
                                  everyone={"embeddings": enc.embeddings, "persons": persons},
                                  make_embed=check["make_embed"], detector=encode_options.detector,
                                  upsample=encode_options.upsample, scale=detect_scale,
                                  threshold=options.match_threshold, max_pixels=options.max_pixels)
            net[rel] = {"findings": findings, "action": None}
            if findings:
                log.warning("safety net: %s: %d faces on %d sampled frames still match their person (< %.2f) or were "
                            "not anonymized; no_face=%s", rel, len(findings), len({f["frame"] for f in findings}),
                            options.match_threshold, options.no_face)
                if options.no_face == "skip":
                    written.unlink()
                    result.output = ""
                    held_back.append((rel, "a face left unprotected"))
                    net[rel]["action"] = "held back"
                elif options.no_face == "blur":
                    result = write_video(pool, Path(root) / rel, written, plan, blur_all=True, max_pixels=options.max_pixels,
                                         progress=progress, rel=rel, output=names[rel])
                    net[rel]["action"] = "blurred whole"
                else:
                    net[rel]["action"] = "written (no_face=copy)"
            seconds["safety_net"] += time.perf_counter() - tn
        outputs.append(result)
    seconds["write"] = time.perf_counter() - t - seconds["privacy"] - seconds["safety_net"]
    privacy_counts = {}
    if checking:
        from anonfaces.video.privacy import track_privacy_summary, write_track_privacy

        write_track_privacy(layout.privacy, privacy_records)
        privacy_counts = track_privacy_summary(privacy_records)
        log.info("video privacy check: %s", privacy_line(privacy_counts))
    written = {v.rel: v.output for v in outputs if v.error is None}
    Mapping(enc.paths, enc.face_index, labels, enc.boxes_ltrb, [written.get(p, "") for p in enc.paths.tolist()]).save(layout.mapping)
    record = {
        **header("anonymize-videos", command=command),
        "dataset": str(Path(root).resolve()), "out": str(layout.public.resolve()),
        "options": as_record(options), "clustering_options": as_record(cluster_options) if cluster_options else None,
        "video": {"fps": fps, "detect_scale": detect_scale, "detect_every": detect_every, "smooth": smooth},
        "synth": synth_record, "clustering": cluster_info,
        "counts": {"videos": len(videos), "written": len(written), "faces": len(enc),
                   "face_frames_replaced": sum(v.faces for v in outputs),
                   "face_frames_interpolated": sum(v.filled for v in outputs), "clusters": len(sur_landmarks)},
        "videos": [{**v.as_dict(), "input": infos.get(v.rel)} for v in outputs],
        "skipped": [{"path": p, "reason": r} for p, r in skipped],
        "held_back": [{"path": p, "reason": r} for p, r in held_back],
        "privacy_check": checking, "privacy_margin": options.privacy_margin, "own_photos": options.own_photos,
        "on_leak": options.on_leak, "privacy": privacy_counts,
        "safety_net": {"on": bool(netting), "threshold": options.match_threshold, "fps": NET_FPS, "videos": net},
        "seconds": seconds,
    }
    write_record(layout.run_record, record)
    return outputs, record


def _checks_privacy(options: AnonymizeOptions, enc) -> bool:
    """Whether the videos' tracks are checked: asked for, ksame, faces, and dlib encodings (as for photos)."""
    return bool(options.privacy_check and options.is_ksame and len(enc)) and _dlib_encodings(enc)


def _dlib_encodings(enc) -> bool:
    """Whether the encodings are dlib's (the privacy check and the safety net compare dlib descriptors)."""
    from anonfaces.pipeline.anonymize import dlib_encodings

    return bool(len(enc)) and dlib_encodings(enc, "video privacy check and safety net")


def _check_context(options: AnonymizeOptions, enc) -> dict:
    """The ``check`` of `anonfaces.video.privacy.check_tracks` (the photo run's settings: margin, own-photo term,
    on_leak; the embedder made once per worker)."""
    import functools

    from anonfaces.pipeline.anonymize import dlib_embedder
    from anonfaces.synthesize.privacy import OWN_DISTANCE

    encoder = enc.meta.get("encoder") or {}
    num_jitters = int(encoder.get("num_jitters", 1)) if isinstance(encoder, dict) else 1
    own = options.own_photos != "off"
    return {"make_embed": functools.partial(dlib_embedder, num_jitters), "margin": options.privacy_margin,
            "own_distance": OWN_DISTANCE if own else None, "own_photos": options.own_photos if own else "person",
            "on_leak": options.on_leak}


def privacy_line(counts: dict) -> str:
    """The video privacy check's counts as one line (the run's summary)."""
    fell = counts.get("blurred", 0) + counts.get("surrogate", 0)
    return (f"{counts.get('tracks', 0)} tracks: {counts.get('passed', 0)} passed, {counts.get('escalated', 0)} "
            f"escalated, {fell} fell back, {counts.get('kept-above-margin', 0)} kept above the margin")


def _max_fill(info: dict | None, enc, rows) -> int:
    """The longest run of frames filled between two detections: the tracker's largest gap, in frames."""
    from anonfaces.video.track import TRACK_DEFAULTS

    step = int((info or {}).get("step", 1))
    gap = int(((info or {}).get("track_settings") or TRACK_DEFAULTS)["max_gap"])
    if info is None and len(rows) > 1:  # encodings given: the sampling step from their frame numbers
        diffs = np.diff(np.unique(enc.frames[rows]))
        step = int(diffs.min()) if diffs.size else 1
    return step * (gap + 1)


def evaluate_video_run(run_dir, out, *, private=None, fps: float = 2.0) -> dict:
    """Score the videos of an anonymization run (`anonfaces.video.evaluate`): writes ``OUT/video_metrics.csv`` and
    ``OUT/video_summary.json``; returns the summary. Raises `BadInputError` when the run holds no videos."""
    import json

    from anonfaces.encode import Encodings
    from anonfaces.pipeline.layout import RunLayout
    from anonfaces.utils.atomic import atomic_write_text
    from anonfaces.video.evaluate import score_run_videos, write_video_metrics

    layout = video_layout(RunLayout.for_out(run_dir) if private is None else RunLayout(Path(run_dir), Path(private)))
    if not layout.run_record.is_file():
        raise BadInputError(f"{run_dir} holds no anonymized videos ({layout.run_record} not found)")
    record = json.loads(layout.run_record.read_text(encoding="utf-8"))
    enc = Encodings.load(layout.encodings)
    scores, summary = score_run_videos(record["dataset"], layout.public, record["videos"], enc, fps=fps)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_video_metrics(out / "video_metrics.csv", scores)
    summary = {"run": str(Path(run_dir).resolve()), "fps": fps, **summary}
    atomic_write_text(out / "video_summary.json", json.dumps(summary, indent=1, sort_keys=True))
    log.info("video evaluation: %s", summary)
    return summary
