"""One anonymization run: `Encodings` + `Clustering` + `AnonymizeOptions` -> photos, surrogates, `Mapping`, run.json.

`anonymize` is the run itself (the stages below it do the work: canonical crops and
surrogates in `anonfaces.synthesize.surrogates`, photos in `anonfaces.synthesize.replace`).
`anonymize_dataset` is the entry point behind ``anonfaces anonymize``: it encodes
the dataset when no encodings are given and clusters it when no clustering is
given, then calls `anonymize`.

Output tree (`RunLayout`; OUT must not be inside the dataset; the input is only read)::

    OUT/
      <same relative paths as the dataset>   every photo, faces replaced, no metadata
      surrogates/<cluster>.png               one surrogate per cluster (ksame only)
      mapping.csv                            path,face,cluster,left,top,right,bottom (`Mapping`)
      privacy.csv                            per face: leak and evenness before/after, step, outcome (ksame photos)
      run.json                               options, settings, counts, timings, photos without a face

``mapping.csv`` is the only link from the original photos to the clusters (it is
sensitive: keep it apart when the photos are shared). ``cluster`` is -1 for the
baselines, which do not cluster. Photos in which no face was found are written
unchanged (decoded and re-encoded, so without metadata) and listed in ``run.json``
under ``no_face``; photos that could not be read are listed under ``unreadable``
and not written.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from anonfaces.errors import BadInputError
from anonfaces.pipeline.layout import RunLayout, check_layout, check_out_dir
from anonfaces.pipeline.options import (
    KSAME,
    AnonymizeOptions,
    ClusterOptions,
    EncodeOptions,
    as_record,
)
from anonfaces.pipeline.record import header, write_record
from anonfaces.synthesize.base import make_synthesizer, synthesizer_settings
from anonfaces.synthesize.blend import RING_SCALE
from anonfaces.synthesize.mapping import NOT_CLUSTERED, Mapping
from anonfaces.synthesize.privacy import REROLL_STEPS_DEFAULT, SOFTEN
from anonfaces.synthesize.replace import replace_faces
from anonfaces.synthesize.surrogates import align_faces, auto_crop_size, make_surrogates
from anonfaces.utils.images import DEFAULT_MAX_PIXELS, list_images
from anonfaces.utils.parallel import WorkerPool, pool_for

log = logging.getLogger(__name__)


@dataclass
class AnonymizeRun:
    """What an anonymization run did; `summary()` is the line the command prints."""

    out: Path
    method: str
    synth: str | None
    k: int | None
    n_images: int
    n_faces: int
    n_clusters: int
    written: list[str] = field(default_factory=list)
    no_face: list[tuple[str, str]] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    seconds: dict = field(default_factory=dict)
    dataset: Path | None = None  # the photos that were read (the bundled sample when none was named)
    layout: RunLayout | None = None
    mapping: Mapping | None = None
    privacy: dict = field(default_factory=dict)  # privacy.csv's counts by outcome (ksame photos only)
    outputs: dict = field(default_factory=dict)  # dataset path -> name under OUT, for every photo written
    held_back: list[tuple[str, str]] = field(default_factory=list)  # photos not written (no face, a face left in)
    unprotected: list = field(default_factory=list)  # the safety net's findings (`UnprotectedFace`)
    recovered_faces: int = 0  # faces found by the second detector pass
    second_pass_photos: int = 0  # photos the second pass looked at (those without a face from the first)
    no_face_policy: str = "copy"  # what was done with photos without a face (and with faces left unprotected)
    videos: list = field(default_factory=list)  # `anonfaces.video.anonymize.VideoOutput` of every video
    video_record: Path | None = None  # the videos' run.json (PRIVATE/videos/run.json)
    video_privacy: dict = field(default_factory=dict)  # the videos' privacy check: tracks by outcome (PRIVATE/videos/privacy.csv)

    @property
    def private(self) -> Path:
        return self.layout.private

    def __post_init__(self):
        if self.layout is None:
            self.layout = RunLayout.for_out(self.out)

    @property
    def mapping_path(self) -> Path:
        return self.layout.mapping

    @property
    def run_path(self) -> Path:
        return self.layout.run_record

    @property
    def surrogates_dir(self) -> Path:
        return self.layout.surrogates

    @property
    def privacy_path(self) -> Path:
        return self.layout.privacy

    def summary(self) -> str:
        what = f"{self.method}:{self.synth} k={self.k}, {self.n_clusters} clusters" if self.method == KSAME else self.method
        check = ""
        if self.privacy:
            p = self.privacy
            fell = p.get("blurred", 0) + p.get("surrogate", 0)
            check = (f"; privacy check: {p.get('passed', 0)} passed, {p.get('escalated', 0)} escalated, {fell} fell back, "
                     f"{p.get('kept-above-margin', 0)} kept above the margin, {p.get('unchecked', 0)} unchecked")
        handled = {"skip": "held back", "copy": "copied unchanged", "blur": "blurred whole"}[self.no_face_policy]
        if self.videos:
            ok = [v for v in self.videos if v.error is None]
            videos = (f"{len(ok)} of {len(self.videos)} videos written ({sum(v.frames for v in ok)} frames, "
                      f"{sum(v.faces for v in ok)} face-frames replaced, {sum(v.filled for v in ok)} of them interpolated, "
                      f"{sum(v.tracks for v in ok)} tracks; record: {self.video_record})")
            if self.video_privacy:
                from anonfaces.pipeline.video import privacy_line

                videos += f"; video privacy check: {privacy_line(self.video_privacy)}"
            if not self.n_images:
                return f"{videos} -> {self.out} (private: {self.private})"
            return f"{videos}; photos: " + self._photo_summary(what, check, handled)
        return self._photo_summary(what, check, handled)

    def _photo_summary(self, what: str, check: str, handled: str) -> str:
        second = ""
        if "second_pass" in self.seconds:
            second = (f" in {self.second_pass_photos} photos without a face, "
                      f"{self.seconds['second_pass']:.1f} s")
        net = f", safety net {self.seconds['safety_net']:.1f} s" if "safety_net" in self.seconds else ""
        return (
            f"{self.n_images} images, {self.n_faces} faces replaced ({what}; {self.recovered_faces} found by the second "
            f"pass{second}){check}, {len(self.no_face)} without a face {handled}, {len(self.unprotected)} faces left "
            f"unprotected in the outputs ({handled}), {len(self.held_back)} photos held back in all, "
            f"{len(self.unreadable)} unreadable, {self.seconds.get('total', 0):.1f} s{net} -> {self.out} "
            f"(private: {self.private})"
        )


#: The name the run had before the pipeline layer (kept for callers of `anonymize_dataset`).
AnonymizeReport = AnonymizeRun


def check_min_size(labels: np.ndarray, units: np.ndarray, k: int) -> list[tuple[int, int]]:
    """Clusters with fewer than ``k`` distinct units, as (cluster, n_units) pairs (empty when all are >= k)."""
    from anonfaces.cluster import people_per_cluster

    labels = np.asarray(labels)
    if labels.size and labels.min() < 0:
        raise BadInputError(f"cluster labels must be >= 0; found {labels.min()}")
    return [(c, n) for c, n in sorted(people_per_cluster(labels, units).items()) if n < k]


def _labels(enc, clustering, options: AnonymizeOptions) -> tuple[np.ndarray, dict]:
    """Each face's cluster (row-aligned with ``enc``), checked to stand for >= k people; and the clustering's info."""
    if not options.is_ksame:
        return np.full(len(enc), NOT_CLUSTERED, dtype=np.int64), {}
    if len(enc) == 0:
        return np.empty(0, np.int64), {}
    if clustering is None:
        raise BadInputError("method 'ksame' needs a clustering of the encodings")
    joined = clustering.aligned_to(enc.paths, enc.face_index)
    labels, info, k = np.asarray(joined.labels, np.int64), dict(clustering.info), options.k
    small = check_min_size(labels, joined.units, k)
    if small:
        sizes = ", ".join(f"cluster {c}: {n}" for c, n in small[:10])
        if not options.allow_small_clusters:
            raise BadInputError(
                f"{len(small)} clusters stand for fewer than k={k} people ({sizes}); they would not be k-anonymous. "
                f"Change the clustering, or pass --allow-small-clusters to accept them explicitly"
            )
        log.warning("%d clusters have fewer than k=%d people (accepted explicitly): %s", len(small), k, sizes)
    info["n_small_clusters"] = len(small)
    return labels, info


def anonymize(root, encodings, clustering, options: AnonymizeOptions, out, *, pool: WorkerPool,
              skipped: dict | None = None, records: dict | None = None, command: str | None = None,
              aligned: AlignedFaces | None = None) -> AnonymizeRun:
    """Replace every face of ``encodings`` in the photos under ``root``; write the run into ``out``.

    Parameters
    ----------
    root : path
        The dataset the encodings were made from (only read).
    encodings : Encodings
    clustering : Clustering or None
        One cluster per face of ``encodings`` (joined on path and face); None for the baselines.
    options : AnonymizeOptions
    out : path or RunLayout
        Where the run is written (an existing folder is written into).
    pool : WorkerPool
        The command's workers.
    skipped : dict, optional
        Photo -> why the encoder found no face (listed under ``no_face`` in run.json).
    records : dict, optional
        What else run.json records about the inputs (``encodings``, ``clustering_options``).
    aligned : AlignedFaces, optional
        The faces' canonical crops, made once for several runs (`align_once`); used when
        their size is the one this run needs, else the faces are aligned again.
    """
    t_start = time.perf_counter()
    root = Path(root)
    layout = out if isinstance(out, RunLayout) else release_layout(out, None, options)
    images = list_images(root)
    if not images:
        raise BadInputError(f"no image files (jpg, png, ...) found under {root}")
    if len(encodings) and not np.isfinite(encodings.landmarks68).all():
        raise BadInputError("the encodings hold no landmarks (imported from a pickle?); re-encode the dataset")
    synthesizer = make_synthesizer(options.synth, **options.synth_params) if options.is_ksame else None
    seconds: dict[str, float] = dict((records or {}).get("seconds", {}))
    t = time.perf_counter()
    labels, cluster_info = _labels(encodings, clustering, options)
    seconds["cluster"] = seconds.get("cluster", 0.0) + time.perf_counter() - t
    size = options.size if options.size is not None else auto_crop_size(encodings.landmarks68)
    by_photo = encodings.rows_by_photo()
    for folder in layout.folders():
        folder.mkdir(parents=True, exist_ok=True)

    sur_landmarks: dict[int, np.ndarray] = {}
    variant_landmarks: dict[tuple[int, int], np.ndarray] = {}
    if options.is_ksame:
        t = time.perf_counter()
        if aligned is None or aligned.size != size or aligned.max_pixels != options.max_pixels:
            aligned = align_once(pool, root, encodings, size=size, max_pixels=options.max_pixels)
        crops, points = aligned.crops, aligned.points
        seconds["align"] = time.perf_counter() - t
        t = time.perf_counter()
        sur_landmarks = make_surrogates(pool, synthesizer, crops, points, encodings.embeddings, encodings.identities, labels,
                                        layout.surrogates)
        if options.variants and options.output == "photos":
            from anonfaces.synthesize.surrogates import make_variants

            variant_landmarks = make_variants(pool, synthesizer, crops, points, encodings.embeddings,
                                              encodings.identities, labels, _persons(encodings, unit_of(records)),
                                              layout.surrogates, variants=options.variants,
                                              seed=options.random_state, per_person=options.variant_photos)
        del crops, points
        seconds["synthesize"] = time.perf_counter() - t

    t = time.perf_counter()
    checking = _checks_privacy(options, encodings)
    out_names = layout.output_names(images)
    photos = [(rel, out_names[rel], [_face_tuple(encodings, labels, sur_landmarks, variant_landmarks, rel, int(i),
                                                 options)
                                     for i in by_photo.get(rel, [])])
              for rel in (images if options.output == "photos" else [])]
    written, unreadable, n_faces, privacy_records, outputs = [], [], 0, [], {}
    unit = unit_of(records)
    check = privacy_context(encodings, labels, options, unit=unit) if checking else None
    for rel, n, error, recs, was_written in replace_faces(pool, root, layout.public, photos, method=options.method, blend=options.blend,
                                             method_params=options.method_params, seed=options.random_state,
                                             quality=options.quality, max_pixels=options.max_pixels,
                                             surrogates=layout.surrogates, forehead=options.baseline_forehead, check=check,
                                             no_face=options.no_face, variants=variant_landmarks):
        if error is not None:
            unreadable.append((rel, error))
            continue
        n_faces += n
        privacy_records.extend(recs)
        if was_written:
            outputs[rel] = out_names[rel]
        if n:
            written.append(rel)
    if options.output == "surrogates":
        n_faces = len(encodings)
    seconds["rewrite"] = time.perf_counter() - t
    skipped = skipped or {}
    faceless = set(images) - set(by_photo) - {p for p, _ in unreadable}
    no_face = sorted((p, skipped.get(p, "no face in the encodings")) for p in faceless)
    if unreadable and any(p in by_photo for p, _ in unreadable):
        raise BadInputError("photos with faces could not be read again: " + "; ".join(f"{p}: {r}" for p, r in unreadable[:3]))

    if options.is_ksame and (options.share_surrogates or options.output == "surrogates"):
        from anonfaces.utils.atomic import atomic_write_bytes

        for c in sorted(sur_landmarks):
            name = f"surrogates/{c}.png"
            atomic_write_bytes(layout.public / name, (layout.surrogates / f"{c}.png").read_bytes())
            outputs[name] = name
    net = None
    if options.safety_net and outputs:
        t = time.perf_counter()
        net = _safety_net(root, layout, encodings, outputs, options, pool)
        seconds["safety_net"] = time.perf_counter() - t
    back = {v: k for k, v in outputs.items()}
    unprotected_sources = sorted({back[u.path] for u in net.unprotected}) if net is not None else []
    if options.no_face == "skip":
        for rel in unprotected_sources:
            outputs.pop(rel, None)
    held_back = sorted([(p, r) for p, r in no_face if p not in outputs]
                       + [(p, "a face left unprotected in the output") for p in unprotected_sources if p not in outputs])
    mapping = Mapping(encodings.paths, encodings.face_index, labels, encodings.boxes_ltrb,
                      [outputs.get(p, "") for p in encodings.paths.tolist()])
    mapping.save(layout.mapping)
    _write_files(layout.files, images, outputs, no_face=no_face, unprotected=unprotected_sources, unreadable=unreadable,
                 policy=options.no_face)
    privacy_counts = {}
    if options.is_ksame and options.output == "photos":
        from anonfaces.synthesize.privacy import privacy_summary, write_privacy_csv

        write_privacy_csv(layout.privacy, privacy_records)
        privacy_counts = privacy_summary(privacy_records)
    seconds["total"] = sum(v for key, v in (records or {}).get("seconds", {}).items()) + time.perf_counter() - t_start
    synth_record = synthesizer_settings(synthesizer) if synthesizer is not None else None
    run = AnonymizeRun(out=layout.public, method=options.method, synth=synth_record.get("name") if synth_record else None,
                       k=options.k, n_images=len(images), n_faces=n_faces, n_clusters=len(sur_landmarks),
                       written=sorted(written), no_face=no_face, unreadable=sorted(unreadable), seconds=seconds,
                       dataset=root, layout=layout, mapping=mapping, privacy=privacy_counts, outputs=dict(outputs),
                       held_back=held_back, unprotected=list(net.unprotected) if net is not None else [],
                       recovered_faces=int((records or {}).get("recovered_faces", 0)), no_face_policy=options.no_face,
                       second_pass_photos=int(((records or {}).get("second_pass") or {}).get("photos", 0)))
    records = records or {}
    cluster_options = records.get("clustering_options")
    record = {
        **header("anonymize", command=command),
        "dataset": str(root.resolve()), "out": str(layout.public.resolve()),
        "options": as_record(options),
        "clustering_options": cluster_options,
        "settings": {  # what was used (resolved), in the layout of format_version 1
            "method": options.method, "k": options.k,
            "algo": cluster_options.get("algo") if (cluster_options and options.is_ksame) else None,
            "unit": cluster_options.get("unit") if cluster_options else None,
            "outliers": cluster_options.get("outliers") if cluster_options else None,
            "allow_small_clusters": options.allow_small_clusters,
            "cluster_params": cluster_options.get("params", {}) if cluster_options else {},
            "synth": synth_record, "method_params": options.method_params, **options.blend,
            "size": size, "quality": options.quality, "jobs": pool.jobs, "random_state": options.random_state,
            "max_pixels": options.max_pixels, "encodings": records.get("encodings"),
            "privacy_check": checking, "privacy_margin": options.privacy_margin, "on_leak": options.on_leak,
            "variants": options.variants, "reroll": options.reroll, "reroll_steps": options.reroll_steps,
            "soften": list(options.soften), "check_found": options.check_found, "variant_photos": options.variant_photos,
            "output": options.output,
        },
        "clustering": cluster_info,
        "counts": {"images": len(images), "faces": n_faces, "photos_with_faces": len(written), "clusters": len(sur_landmarks),
                   "no_face": len(no_face), "unreadable": len(unreadable)},
        "privacy": privacy_counts,
        "release": {"private": str(layout.private.resolve()), "names": options.names, "keep_folders": options.keep_folders,
                    "key_file": (records or {}).get("key_file"), "no_face": options.no_face,
                    "surrogates_shared": bool(options.is_ksame and (options.share_surrogates or options.output == "surrogates")),
                    "held_back": [{"path": p, "reason": r} for p, r in held_back]},
        "second_pass": (records or {}).get("second_pass"),
        "safety_net": ({**net.as_dict(), "threshold": options.match_threshold, "scan": options.net_scan,
                        "unprotected": [{"output": u.path, "path": back.get(u.path, u.path), "face": u.face, "kind": u.kind,
                                         "box_ltrb": list(u.box_ltrb), "distance": u.distance,
                                         "nearest_original": u.original} for u in net.unprotected]}
                       if net is not None else None),
        "seconds": seconds,
        "no_face": [{"path": p, "reason": r} for p, r in no_face],
        "unreadable": [{"path": p, "reason": r} for p, r in unreadable],
    }
    write_record(layout.run_record, record)
    log.info("anonymize: %s", run.summary())
    return run


FILES_COLUMNS = ("path", "output", "status")


def _write_files(path: Path, images, outputs: dict, *, no_face, unprotected, unreadable, policy: str) -> None:
    """``files.csv`` (private): one row per input photo, where it went and why."""
    import csv

    from anonfaces.utils.atomic import atomic_open

    faceless, flagged, bad = {p for p, _ in no_face}, set(unprotected), {p for p, _ in unreadable}
    with atomic_open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(FILES_COLUMNS)
        for rel in images:
            if rel in bad:
                status = "unreadable"
            elif rel in flagged:
                status = {"skip": "held back: face left unprotected", "copy": "face left unprotected, written",
                          "blur": "face left unprotected, blurred"}[policy]
            elif rel in faceless:
                status = {"skip": "held back: no face found", "copy": "no face found, copied",
                          "blur": "no face found, blurred"}[policy]
            else:
                status = "anonymized"
            w.writerow([rel, outputs.get(rel, ""), status])


def _safety_net(root, layout: RunLayout, encodings, outputs: dict, options: AnonymizeOptions, pool: WorkerPool):
    """The sensitive detector on every output; photos with a face still recognisable follow ``options.no_face``."""
    from anonfaces.release.nofaces import (
        apply_no_face_policy,
        find_unprotected,
        net_detector,
        original_dlib_embeddings,
    )
    from anonfaces.utils.images import read_image, write_image

    reference = original_dlib_embeddings(root, encodings)
    detector, known_boxes = net_detector(options.net_scan, options.sensitive_upsample)
    replaced = {o: encodings.boxes_ltrb[encodings.paths == rel] for rel, o in outputs.items()
                if not rel.startswith("surrogates/")}
    net = find_unprotected(layout.public, sorted(outputs.values()), reference, encodings.paths,
                           threshold=options.match_threshold, detector=detector, known_boxes=known_boxes,
                           pool=pool, replaced=replaced,
                           sources={o: rel for rel, o in outputs.items() if not rel.startswith("surrogates/")})
    for photo in net.photos:
        if options.no_face == "skip":
            (layout.public / photo).unlink()
        elif options.no_face == "blur":
            write_image(layout.public / photo, apply_no_face_policy(read_image(layout.public / photo), "blur"),
                        quality=options.quality)
    if net.unprotected:
        log.warning("safety net: %d faces in %d output photos still match an original face (< %.2f) or were not "
                    "anonymized; no_face=%s", len(net.unprotected), len(net.photos), options.match_threshold, options.no_face)
    return net


def release_layout(out, private, options: AnonymizeOptions, *, dataset=None, key_file=None) -> RunLayout:
    """The run's checked `RunLayout` with its naming: the key read from ``key_file``, or PRIVATE/release.key (made once)."""
    from dataclasses import replace

    layout = check_layout(out, private, dataset=dataset)
    key = None
    if options.names == "hash":
        from anonfaces.release.naming import load_or_create_key, read_key

        layout.private.mkdir(parents=True, exist_ok=True)
        key = read_key(key_file) if key_file is not None else load_or_create_key(layout.key_file)[0]
    return replace(layout, names=options.names, key=key, keep_folders=options.keep_folders)


def _remove_earlier_outputs(layout: RunLayout) -> None:
    """Before a run over an earlier one: remove the photos it wrote to OUT (as its files.csv lists them) and its
    shared surrogates, so that nothing this run holds back, or names differently, is left behind in OUT."""
    import csv

    if layout.files.is_file():
        with open(layout.files, encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                target = (layout.public / row["output"]).resolve() if row.get("output") else None
                if target is not None and layout.public.resolve() in target.parents and target.is_file():
                    target.unlink()
    if layout.shared_surrogates.is_dir():
        shutil.rmtree(layout.shared_surrogates)


def unit_of(records: dict | None) -> str | None:
    """The clustering's unit (``identity`` or ``photo``) recorded with the inputs, if any."""
    return ((records or {}).get("clustering_options") or {}).get("unit")


def variant_of(rel: str, face: int, variants: int, seed: int) -> int:
    """The surrogate variant (1 .. ``variants``) of one face: a hash of its photo, face index and the seed.

    The choice depends on the photo only, never on whose face it is, so every
    person's faces carry the same spread of variants (0 when ``variants`` is 0).
    """
    if not variants:
        return 0
    return 1 + (zlib.crc32(f"{seed}\0{rel}\0{face}".encode()) % int(variants))


def _face_tuple(encodings, labels, sur_landmarks: dict, variant_landmarks: dict, rel: str, i: int,
                options: AnonymizeOptions) -> tuple:
    """``(landmarks68, cluster, surrogate landmarks, face index, row, variant)`` of face row ``i``."""
    cluster, face = int(labels[i]), int(encodings.face_index[i])
    variant = variant_of(rel, face, options.variants, options.random_state)
    sur_lm = variant_landmarks.get((cluster, variant)) if variant else sur_landmarks.get(cluster)
    return encodings.landmarks68[i], cluster, sur_lm, face, i, variant


def _persons(encodings, unit: str | None) -> np.ndarray:
    """One int person id per face row: the identity, or the face itself (``unit="photo"`` or no identities)."""
    if unit != "photo" and encodings.has_identities:
        persons = np.asarray(encodings.identities).astype(str)
    else:
        persons = np.array([f"{p}#{f}" for p, f in zip(encodings.paths.tolist(), encodings.face_index.tolist())])
    return np.unique(persons, return_inverse=True)[1].astype(np.int64)


def _checks_privacy(options: AnonymizeOptions, encodings) -> bool:
    """Whether this run checks every replaced face: asked for, ksame photos, faces, and dlib encodings."""
    if not (options.privacy_check and options.is_ksame and options.output == "photos" and len(encodings)):
        return False
    return dlib_encodings(encodings, "privacy check")


def dlib_encodings(encodings, what: str) -> bool:
    """Whether ``encodings`` are dlib's (the privacy check and the safety net compare dlib descriptors); if not,
    logs that ``what`` is skipped."""
    encoder = encodings.meta.get("encoder") or {}
    name = encoder.get("name", "dlib") if isinstance(encoder, dict) else str(encoder)
    if name != "dlib":
        log.warning("%s skipped: it needs dlib encodings (these are %s)", what, encoder)
        return False
    return True


def dlib_embedder(num_jitters: int = 1):
    """``embed(chips) -> (n, 128)`` with dlib's network (made once per worker by the privacy check)."""
    from anonfaces.encode import DlibEncoder

    return DlibEncoder(num_jitters=num_jitters).embed


def found_detector(encodings) -> dict:
    """The ``make_detector`` settings of the check's found test: the detector (and upsampling) that found the faces
    in the originals, as the encodings record it (dlib's HOG with upsample 1 by default, the evaluation's)."""
    detector = encodings.meta.get("detector") or {}
    if not isinstance(detector, dict) or detector.get("name") not in ("hog", "cnn"):
        return {"name": "hog", "upsample": 1}
    return {"name": detector["name"], "upsample": int(detector.get("upsample", 1))}


def privacy_context(encodings, labels: np.ndarray, options: AnonymizeOptions, *, unit: str | None = None) -> dict:
    """The ``check`` of `anonfaces.synthesize.replace.replace_faces`: what the per-face privacy check needs.

    The person is the clustering's unit: the identity, or the face itself with
    ``unit="photo"`` or without identities. Each face row gets an int person id;
    the embeddings travel once per worker chunk and each worker derives a face's
    person mean, own faces and the cluster's other people from them.
    """
    person_ids = _persons(encodings, unit)
    encoder = encodings.meta.get("encoder") or {}
    num_jitters = int(encoder.get("num_jitters", 1)) if isinstance(encoder, dict) else 1
    from anonfaces.synthesize.privacy import OWN_DISTANCE

    own = options.own_photos != "off"
    return {"make_embed": functools.partial(dlib_embedder, num_jitters), "margin": options.privacy_margin,
            "own_distance": OWN_DISTANCE if own else None, "own_photos": options.own_photos if own else "person",
            "on_leak": options.on_leak, "reroll": options.reroll, "reroll_steps": options.reroll_steps,
            "soften": tuple(options.soften),
            "found": found_detector(encodings) if options.check_found else None,
            "boxes": np.asarray(encodings.boxes_ltrb, dtype=np.float64) if options.check_found else None,
            "embeddings": np.asarray(encodings.embeddings, dtype=np.float32),
            "persons": person_ids, "labels": np.asarray(labels, dtype=np.int64)}


@dataclass(frozen=True)
class AlignedFaces:
    """Every face's canonical crop at one size: ``crops`` (n, S, S, 3) uint8, ``points`` (n, 68, 2)."""

    size: int
    max_pixels: int
    crops: np.ndarray
    points: np.ndarray


def align_once(pool: WorkerPool, root, encodings, *, size: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> AlignedFaces:
    """The canonical crops of every face of ``encodings`` (the same for every ksame run of a dataset at this size)."""
    crops, points, bad = align_faces(pool, root, encodings.rows_by_photo(), encodings.landmarks68, encodings.image_sizes,
                                     size=size, max_pixels=max_pixels)
    if bad:
        raise BadInputError(f"{len(bad)} encoded photos cannot be used: " + "; ".join(f"{p}: {r}" for p, r in bad[:3]))
    return AlignedFaces(int(size), int(max_pixels), crops, points)


# --- the command's entry point: encode and cluster when not given -----------------------------------
def load_encodings(root: Path, encodings, options: EncodeOptions, *, pool: WorkerPool, save_to=None):
    """The dataset's encodings, the skip reasons by photo, and what run.json records about them.

    ``encodings``: an `Encodings`, a file, or None (encoded now; kept at ``save_to``
    when given, else in a temporary folder that is removed).
    """
    from anonfaces.encode import Encodings, encode_photos, read_skips, skipped_path_for

    skipped: dict[str, str] = {}
    if encodings is None:
        with tempfile.TemporaryDirectory(prefix="anonfaces-") as tmp:
            path = Path(save_to) if save_to is not None else Path(tmp) / "encodings.npz"
            report = encode_photos(root, path, encoder=options.encoder, detector=options.detector, upsample=options.upsample,
                                    max_pixels=options.max_pixels, pool=pool)
            enc = report.encodings
            skipped = dict(report.skipped)
        source = str(report.encodings_path) if save_to is not None else None
    else:
        if isinstance(encodings, Encodings):
            enc, source = encodings, None
        else:
            enc, source = Encodings.load(encodings), str(Path(encodings).resolve())
            sk = skipped_path_for(encodings)
            if sk.is_file():
                skipped = dict(read_skips(sk))
        missing = [p for p in dict.fromkeys(enc.paths.tolist()) if not (root / p).is_file()]
        if missing:
            raise BadInputError(
                f"the encodings do not match the dataset {root}: {len(missing)} encoded photos are not there "
                f"(e.g. {missing[0]}); encodings made from {enc.meta.get('dataset', '?')}"
            )
    if enc.has_video:  # the photo run: videos go through anonfaces/pipeline/video.py
        enc = enc.subset(~enc.video_rows())
    meta = {"file": source, "encoder": enc.meta.get("encoder"), "detector": enc.meta.get("detector"),
            "dataset": enc.meta.get("dataset"), "n_faces": len(enc)}
    return enc, skipped, meta


def join_nearest(clustering, enc, n_given: int):
    """``clustering`` of the first ``n_given`` faces of ``enc``, with every later face (found by the second
    detector pass) joined to the cluster whose mean embedding is nearest (a cluster only grows: it keeps its k)."""
    from anonfaces.cluster import Clustering
    from anonfaces.utils.images import identity_of

    given = clustering.aligned_to(enc.paths[:n_given], enc.face_index[:n_given])
    labels = np.asarray(given.labels, np.int64)
    ids = np.unique(labels)
    centroids = np.stack([enc.embeddings[:n_given][labels == c].mean(0) for c in ids])
    extra = np.arange(n_given, len(enc))
    d = ((enc.embeddings[extra, None, :] - centroids[None]) ** 2).sum(-1)
    paths, faces = enc.paths[extra].tolist(), enc.face_index[extra].tolist()
    units = [identity_of(p) or f"{p}#{f}" for p, f in zip(paths, faces)]
    return Clustering(np.concatenate([np.asarray(given.paths, str), np.asarray(paths, str)]),
                      np.concatenate([given.face_index, faces]).astype(np.int64),
                      np.concatenate([labels, ids[d.argmin(1)]]),
                      np.concatenate([np.asarray(given.identities, str), np.asarray([identity_of(p) for p in paths], str)]),
                      np.concatenate([np.asarray(given.units, str), np.asarray(units, str)]),
                      {**given.info, "second_pass_faces_assigned_to_nearest_cluster": len(extra)})


def cluster_faces(enc, options: ClusterOptions):
    """Cluster the encodings with ``options`` (k no larger than the people, or faces, there are)."""
    from anonfaces.cluster import cluster_encodings

    if options.unit == "identity" and enc.has_identities:
        n_people = np.unique(enc.identities).size
        if n_people < options.k:
            raise BadInputError(f"k={options.k} is larger than the number of people in the dataset ({n_people})")
    elif len(enc) < options.k:
        raise BadInputError(f"k={options.k} is larger than the number of faces in the dataset ({len(enc)})")
    return cluster_encodings(enc, algo=options.algo, k=options.k, unit=options.unit, outliers=options.outliers,
                             params=options.params, random_state=options.random_state)


def _remove_new_out_on_failure(func):
    """A failed run leaves nothing half-written behind in an OUT folder it created."""

    @functools.wraps(func)
    def wrapper(dataset, out, **kwargs):
        out_path = Path(out)
        created = not out_path.exists()
        try:
            return func(dataset, out, **kwargs)
        except BaseException:
            if created and out_path.is_dir():
                shutil.rmtree(out_path, ignore_errors=True)
            raise

    return wrapper


@_remove_new_out_on_failure
def anonymize_dataset(
    dataset: str | os.PathLike | None,
    out: str | os.PathLike,
    *,
    k: int = 5,
    algo: str = "fixed-kmeans",
    synth: str | object = "morph",
    method: str = KSAME,
    encoder: str = "dlib",
    encodings=None,
    clusters=None,
    unit: str = "identity",
    outliers: str = "nearest",
    allow_small_clusters: bool = False,
    cluster_params: dict | None = None,
    synth_params: dict | None = None,
    method_params: dict | None = None,
    blend: str | dict = "feather",
    color: str = "luma",
    forehead: float | None = None,
    feather: float = 0.06,
    shape: str | float = "cluster",
    region: str = "head",
    pose: int = 0,
    place: str = "anchors",
    detail: float = 0.0,
    ring: float = RING_SCALE,
    privacy_check: bool = True,
    privacy_margin: float = 0.05,
    own_photos: str = "person",
    on_leak: str = "blur",
    variants: int | None = None,
    reroll: bool = True,
    reroll_steps: str = REROLL_STEPS_DEFAULT,
    soften=SOFTEN,
    check_found: bool = False,
    variant_photos: int = 1,
    output: str = "photos",
    private: str | os.PathLike | None = None,
    names: str = "hash",
    key_file: str | os.PathLike | None = None,
    keep_folders: bool = False,
    no_face: str = "skip",
    second_pass: bool = True,
    safety_net: bool = True,
    sensitive_upsample: int = 1,
    net_scan: str = "full",
    surrogates: bool = False,
    match_threshold: float = 0.5,
    size: int | None = None,
    detector: str = "hog",
    upsample: int = 1,
    save_encodings: str | os.PathLike | None = None,
    overwrite: bool = False,
    quality: int = 95,
    jobs: int | None = None,
    random_state: int = 0,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    progress: bool = True,
    pool: WorkerPool | None = None,
    command: str | None = None,
    fps: float | None = None,
    detect_scale: float = 1.0,
    detect_every: int = 1,
    smooth: float = 1.0,
    include_videos: bool = True,
) -> AnonymizeRun:
    """Write a de-identified copy of every photo under ``dataset`` into ``out``.

    Parameters
    ----------
    dataset : path or None
        Folder of photos (searched recursively; identities are the first folder level).
        None: the bundled sample.
    out : path
        Output folder (see the module docstring for its tree). Must not be inside
        ``dataset``; must be new or empty unless ``overwrite``.
    k : int
        Every cluster stands for at least ``k`` people (``unit="identity"``) or faces.
    algo : str
        Clusterer (a name in `anonfaces.cluster.CLUSTERERS`).
    synth : str or synthesizer
        A name in `SYNTHESIZERS` (``morph``, ``pixel``, ``eigen``, ...) or an instance.
        Each cluster's faces, landmarks and embeddings are passed to its
        ``synthesize``; one that declares ``uses_identities = True`` (``gnn``) also
        gets the members' identity labels from the encodings (``identities=``,
        ``""`` where unknown; see `anonfaces.synthesize.base`).
    method : str
        ``"ksame"`` (k-anonymous replacement) or a baseline in `BASELINES`
        (``blur``, ``pixelate``, ``mask``, ``closing``, ``blocking``, ``inversion``, ``d2gan``).
    encoder : str
        Encoder used when ``encodings`` is not given.
    encodings : path or Encodings, optional
        Reuse an encodings file of this dataset instead of encoding again.
    clusters : path or Clustering, optional
        Reuse a clustering (``clusters.csv``) of these encodings instead of clustering again.
    unit, outliers, cluster_params : see `anonfaces.cluster.cluster_encodings`.
    allow_small_clusters : bool
        Accept clusters with fewer than ``k`` people (only when asked for explicitly;
        otherwise such a clustering is refused).
    synth_params, method_params : dict
        Settings of the synthesizer, or of the baseline.
    blend : str or dict
        The blend mode (with ``color``, ``forehead``, ``feather``, ``shape``, ``region``, ``pose``, ``place``,
        ``detail``, ``ring``: see
        `anonfaces.synthesize.blend.BlendSettings`), or all of those settings as one dict.
    privacy_check, privacy_margin, own_photos, on_leak : the per-face privacy check
        (`anonfaces.synthesize.privacy`; ksame with dlib encodings): faces whose
        ``max(leak, evenness)`` exceeds the margin are escalated, then handled by
        ``on_leak`` (``blur``, ``surrogate``, ``keep``); every face goes into privacy.csv.
    variants : int or None
        None (default): `DEFAULT_VARIANTS` (8) for ksame with morph, else 0. 0: one surrogate per cluster. n >= 1: each face gets one of n
        surrogates of its cluster (each from one random photo of every member), chosen
        per photo independently of the person (`AnonymizeOptions`).
    reroll : bool
        With variants and the check: a face that fails tries its cluster's other variants
        before the stronger steps (default true).
    reroll_steps, soften, check_found : the check's escalation (`AnonymizeOptions`): where variants are re-rolled
        (``given`` or ``every`` step), the softened steps' blurs, and whether a face must also still be found by
        the detector that found it (the first try that passes and is found is kept).
    variant_photos : int
        Photos of every member in each variant (default 1: the most variation; more: smoother faces).
    private, names, key_file, keep_folders, no_face, second_pass, safety_net, sensitive_upsample, net_scan, surrogates,
    match_threshold : the release settings (`AnonymizeOptions`; ``private`` defaults to ``OUT.private``,
        ``key_file`` to PRIVATE/release.key, ``surrogates`` is ``share_surrogates``).
    output : {"photos", "surrogates"}
        ``surrogates`` (ksame only): write only the surrogate crops, mapping.csv and
        run.json, none of the photos (the 1/k bound holds exactly).
    size : int or None
        Side of the canonical crops the surrogates are made at. None: from the
        dataset's faces (`auto_crop_size`: the median face at its own resolution,
        128 to 512 pixels), so small faces are not upsampled for nothing.
    detector, upsample : detector settings when encoding.
    save_encodings : path, optional
        Keep the encodings made here (they describe the original faces: keep them
        apart from OUT). By default they go to a temporary folder and are deleted.
    quality : int
        JPEG/WebP quality of the rewritten photos.
    jobs : int or None
        Worker processes (None: every core) when no ``pool`` is given.
    random_state : int
        Seed for clustering, synthesizers and baselines.
    pool : WorkerPool, optional
        The command's worker pool.
    fps, detect_scale, detect_every, smooth, include_videos : videos (`anonfaces.pipeline.video`)
        A video file, or a folder holding videos, is handed to `anonymize_with_videos`
        (``include_videos=False``: only the photos): its videos are encoded at ``fps``
        sampled frames a second (None: every frame) with the detector on frames scaled
        by ``detect_scale`` and run on the whole of every ``detect_every``-th of them (near
        the faces being followed in between), and written with landmarks smoothed over
        ``smooth`` frames; ``privacy_check`` etc. check each video track as photos are
        checked face by face (`anonfaces.video.privacy`).

    Returns
    -------
    AnonymizeRun
        With ``videos`` (one `anonfaces.video.anonymize.VideoOutput` per video) when there were videos.
    """
    from anonfaces.encode.pipeline import default_dataset

    if include_videos and dataset is not None:  # videos: their own branch (anonfaces/pipeline/video.py)
        from anonfaces.pipeline.video import anonymize_with_videos, video_inputs

        params = {k: v for k, v in locals().items() if k not in ("default_dataset", "anonymize_with_videos", "video_inputs")}
        video_root, videos = video_inputs(dataset)
        if videos:
            return anonymize_with_videos(params, video_root, videos,
                                         photos=Path(dataset).is_dir() and bool(list_images(video_root)))

    root = Path(dataset) if dataset is not None else default_dataset()
    if not root.is_dir():
        raise BadInputError(f"dataset folder not found: {root}")
    out = Path(out)
    check_out_dir(root, out, overwrite=overwrite)
    blend_settings = dict(blend) if isinstance(blend, dict) else {
        "blend": blend, "color": color, "forehead": None if forehead is None else float(forehead), "feather": float(feather),
        "shape": shape, "region": region, "pose": pose,
        "place": place, "detail": float(detail), "ring": float(ring)}
    options = AnonymizeOptions(method=method, k=k, synth=synth, synth_params=synth_params or {}, method_params=method_params or {},
                               blend=blend_settings, privacy_check=privacy_check, privacy_margin=privacy_margin,
                               own_photos=own_photos, on_leak=on_leak, variants=variants, reroll=reroll, reroll_steps=reroll_steps, soften=soften, check_found=check_found, variant_photos=variant_photos, output=output, names=names, keep_folders=keep_folders, no_face=no_face,
                               second_pass=second_pass, safety_net=safety_net, sensitive_upsample=sensitive_upsample,
                               net_scan=net_scan,
                               share_surrogates=surrogates, match_threshold=match_threshold, allow_small_clusters=allow_small_clusters, size=size,
                               quality=quality, max_pixels=max_pixels, random_state=random_state)
    cluster_options = ClusterOptions(algo=algo, k=options.k, unit=unit, outliers=outliers, params=cluster_params or {},
                                     random_state=random_state) if options.is_ksame else None
    encode_options = EncodeOptions(encoder=encoder, detector=detector, upsample=upsample, max_pixels=max_pixels)
    if options.is_ksame:
        make_synthesizer(synth, **options.synth_params)  # refuse a bad synthesizer or its settings before any work
    if not list_images(root):
        raise BadInputError(f"no image files (jpg, png, ...) found under {root}")
    layout = release_layout(out, private, options, dataset=root, key_file=key_file)
    if not overwrite and any(p.exists() for p in (layout.mapping, layout.run_record, layout.files)):
        raise BadInputError(f"--private {layout.private} holds an earlier run; choose a new folder or pass --overwrite")
    if overwrite:
        _remove_earlier_outputs(layout)
    layout.private.mkdir(parents=True, exist_ok=True)
    with pool_for(pool, jobs, progress) as workers:
        t = time.perf_counter()
        enc, skipped, enc_meta = load_encodings(root, encodings, encode_options, pool=workers, save_to=save_encodings)
        seconds = {"encode": time.perf_counter() - t}
        recovery, n_given = None, len(enc)
        if options.second_pass:
            from anonfaces.detect.sensitive import SensitiveDetector
            from anonfaces.release.nofaces import recover_faces

            t = time.perf_counter()
            done = {p for p, r in skipped.items() if r != "no face found"} | set(enc.paths.tolist())
            enc, recovery = recover_faces(root, enc, [p for p in list_images(root) if p not in done],
                                          detector=SensitiveDetector(upsample=options.sensitive_upsample),
                                          pool=workers, progress=progress, max_pixels=max_pixels)
            seconds["second_pass"] = time.perf_counter() - t
        enc.save(layout.encodings)
        enc_meta["file"] = str(layout.encodings.resolve())  # the faces this run replaced (second-pass faces included)
        t = time.perf_counter()
        clustering = None
        if options.is_ksame and len(enc):
            if clusters is not None:
                from anonfaces.cluster import Clustering, read_clusters

                clustering = clusters if isinstance(clusters, Clustering) else read_clusters(clusters)
                clustering.info.setdefault("source", str(clusters) if not isinstance(clusters, Clustering) else "given")
                if n_given < len(enc):
                    clustering = join_nearest(clustering, enc, n_given)
            else:
                clustering = cluster_faces(enc, cluster_options)
        seconds["cluster"] = time.perf_counter() - t
        records = {"encodings": enc_meta, "seconds": seconds,
                   "second_pass": recovery.as_dict() if recovery is not None else None,
                   "recovered_faces": recovery.n_faces if recovery is not None else 0,
                   "key_file": (str(Path(key_file).resolve()) if key_file is not None else str(layout.key_file.resolve()))
                   if options.names == "hash" else None,
                   "clustering_options": as_record(cluster_options) if cluster_options is not None else None}
        run = anonymize(root, enc, clustering, options, layout, pool=workers, skipped=skipped, records=records, command=command)
    return run
