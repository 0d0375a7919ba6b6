"""No face left unprotected: the second detector pass, the no-face policy and the output safety net.

In a face collection a photo in which the fast detector finds no face almost
always holds a face it missed. So:

1. `recover_faces`: photos where the first pass found nothing get the
   `~anonfaces.detect.sensitive.SensitiveDetector`; the faces it finds get
   landmarks and embeddings from the run's own encoder and are anonymized like
   the others.
2. `apply_no_face_policy`: photos where still no face is found are held back
   (``skip``, the default), written unchanged (``copy``) or written with the whole
   photo blurred beyond recognition (``blur``).
3. `find_unprotected`: after writing, the sensitive detector looks at every output
   photo; a face whose dlib embedding lies within ``threshold`` (0.5) of an original
   face of the dataset is still recognisable (``kind="match"``), and a face away from
   every face that was replaced was never anonymized (``kind="unanonymized"``: a
   bystander both detectors' first looks missed). Both are reported, and their
   photos are handled by the same policy.

Photos are scanned in worker processes (`scan_photos`), each loading the models once.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from anonfaces.detect.sensitive import SensitiveDetector
from anonfaces.detect.types import FaceDetection
from anonfaces.errors import BadInputError
from anonfaces.synthesize.baselines import BLUR_CELLS, blur_all  # noqa: F401  (the ``blur`` policy; re-exported)
from anonfaces.utils.distances import UNPROTECTED
from anonfaces.utils.images import (
    DEFAULT_MAX_PIXELS,
    ImageReadError,
    identity_of,
    read_image,
)
from anonfaces.utils.parallel import WorkerPool, pool_for, worker_local

log = logging.getLogger(__name__)

NO_FACE_POLICIES = ("skip", "copy", "blur")
#: dlib distance under which an output face still matches an original face.
MATCH_THRESHOLD = UNPROTECTED
#: The safety net's looks at an output photo (``--net-scan``); see `net_detector`.
NET_SCANS = ("full", "fast")
DEFAULT_NET_SCAN = "full"


def net_detector(scan: str = DEFAULT_NET_SCAN, upsample: int = 1) -> tuple[SensitiveDetector, bool]:
    """The safety net's detector for ``scan``, and whether it also takes the replaced faces' boxes.

    ``full`` (the default): dlib's CNN at ``upsample`` plus HOG at the same scale over the
    whole photo (about 1.3 CPU s for a 250 x 250 LFW photo at upsample 1).
    ``fast``: every face replaced in the photo, at its known box (landmarks fitted again on
    the output), plus a whole-photo look with the CNN at upsample 0 and HOG at upsample 1,
    about a quarter of the time. It is not the default because it loses recall: on LFW
    outputs of the defaults the faces the full scan flags are mostly bystanders the first
    pass missed, too small for the CNN without upsampling; ``fast`` flagged 9 of the 14
    (``bench/bench_release.py --part net``, docs/benchmarks.md).
    """
    if scan not in NET_SCANS:
        raise BadInputError(f"net_scan={scan!r} must be one of {', '.join(NET_SCANS)}")
    if scan == "full":
        return SensitiveDetector(upsample=upsample), False
    return SensitiveDetector(upsample=0, hog_upsample=1), True


def check_no_face_policy(policy: str) -> str:
    if policy not in NO_FACE_POLICIES:
        raise BadInputError(f"no_face={policy!r} must be one of {', '.join(NO_FACE_POLICIES)}")
    return policy


def apply_no_face_policy(image: np.ndarray, policy: str) -> np.ndarray | None:
    """What is written for a photo with no face found (or a face left recognisable): None for ``skip``."""
    check_no_face_policy(policy)
    if policy == "skip":
        return None
    if policy == "blur":
        return blur_all(image)
    return image


# --- scanning photos in worker processes ------------------------------------------------------
@dataclass(frozen=True)
class PhotoFaces:
    """The faces the sensitive detector found in one photo, with their embeddings (n_faces, dim)."""

    path: str
    faces: list[FaceDetection]
    embeddings: np.ndarray
    image_size: tuple[int, int] = (0, 0)  # (width, height)
    error: str | None = None
    seconds: float = 0.0


def _scan_models(context) -> dict:
    """This process's detector and encoder for one scan (built once per worker and call)."""
    token, _root, detector, (name, enc_settings, enc_state), _max_pixels = context
    held = worker_local("release.scan", token)
    if "detector" not in held:
        from anonfaces.encode.base import ENCODERS

        held["detector"] = SensitiveDetector(**{k: v for k, v in detector.items() if k != "name"})
        held["encoder"] = ENCODERS.get(name).from_saved(enc_settings, enc_state)
    return held


def _scan_task(context, task) -> PhotoFaces:
    """One photo: ``task`` is its path, or (path, known boxes (m, 4) or None)."""
    rel, known = (task, None) if isinstance(task, str) else task
    t = time.perf_counter()
    models = _scan_models(context)
    try:
        image = read_image(Path(context[1]) / rel, max_pixels=context[4])
    except ImageReadError as exc:
        return PhotoFaces(rel, [], np.empty((0, 0), np.float32), error=str(exc))
    h, w = image.shape[:2]
    try:
        faces = models["detector"].detect(image, known)
        emb = models["encoder"].encode(image, faces) if faces else np.empty((0, 0), np.float32)
    except (RuntimeError, ValueError, MemoryError) as exc:  # dlib raises RuntimeError on odd inputs
        return PhotoFaces(rel, [], np.empty((0, 0), np.float32), (w, h), f"detection failed: {exc}")
    return PhotoFaces(rel, faces, np.asarray(emb, np.float32), (w, h), None, time.perf_counter() - t)


def _encoder_spec(encoder) -> tuple[str, dict, dict]:
    if encoder is None:
        from anonfaces.encode._dlib import DlibEncoder

        encoder = DlibEncoder()
    return encoder.registry_name, encoder.settings(), encoder.state()


def _scan_context(root, detector: SensitiveDetector | None, encoder, max_pixels: int) -> tuple:
    detector = detector or SensitiveDetector()
    return (uuid.uuid4().hex, str(root), detector.settings(), _encoder_spec(encoder), int(max_pixels))


def scan_photos(root: str | os.PathLike, paths: list[str], *, detector: SensitiveDetector | None = None,
                encoder=None, jobs: int | None = 1, progress: bool = False, desc: str = "sensitive pass",
                max_pixels: int = DEFAULT_MAX_PIXELS, pool: WorkerPool | None = None,
                known: dict[str, np.ndarray] | None = None) -> list[PhotoFaces]:
    """`PhotoFaces` of every photo ``root/path`` (in the order of ``paths``), in the command's ``pool``
    (or a pool of ``jobs`` workers for this call).

    ``detector`` defaults to `SensitiveDetector()`; ``encoder`` (an `anonfaces.encode`
    encoder instance) to dlib's 128-D descriptor. ``known`` maps photos to boxes (m, 4)
    where faces are known to be: they are encoded whatever the detector finds there
    (`SensitiveDetector.detect`'s ``known``).
    """
    context = _scan_context(root, detector, encoder, max_pixels)
    if not paths:
        return []
    tasks = [(p, known.get(p)) for p in paths] if known else list(paths)
    with pool_for(pool, jobs, progress) as workers:
        return list(workers.map(_scan_task, tasks, context=context, desc=desc, chunksize=1))


# --- 1. the second pass -------------------------------------------------------------------------
@dataclass
class RecoveryReport:
    """What the second pass did: photos looked at, faces found per photo, time per photo."""

    n_photos: int = 0
    recovered: dict[str, int] = field(default_factory=dict)  # path -> faces found
    failed: dict[str, str] = field(default_factory=dict)  # path -> reason
    seconds: float = 0.0

    @property
    def n_faces(self) -> int:
        return sum(self.recovered.values())

    @property
    def seconds_per_photo(self) -> float:
        return self.seconds / self.n_photos if self.n_photos else 0.0

    def as_dict(self) -> dict:
        return {"photos": self.n_photos, "photos_recovered": len(self.recovered), "faces_recovered": self.n_faces,
                "seconds": self.seconds, "seconds_per_photo": self.seconds_per_photo,
                "recovered": dict(sorted(self.recovered.items())), "failed": dict(sorted(self.failed.items()))}


def recover_faces(root: str | os.PathLike, enc, paths: list[str], *, detector: SensitiveDetector | None = None,
                  jobs: int = 1, progress: bool = False, max_pixels: int = DEFAULT_MAX_PIXELS,
                  pool: WorkerPool | None = None):
    """Look again at ``paths`` (photos without a face in ``enc``) with the sensitive detector.

    Returns ``(encodings, report)``: ``enc`` with one row more per face found (embedded
    with the encoder ``enc`` records, so they cluster with the others) and a `RecoveryReport`.
    """
    from anonfaces.encode import Encodings

    paths = [p for p in dict.fromkeys(paths)]
    report = RecoveryReport(n_photos=len(paths))
    if not paths:
        return enc, report
    encoder = enc.make_encoder() if "name" in enc.encoder else None
    t = time.perf_counter()
    scans = scan_photos(root, paths, detector=detector, encoder=encoder, jobs=jobs, progress=progress, pool=pool,
                        max_pixels=max_pixels)
    report.seconds = time.perf_counter() - t
    parts = [enc]
    for s in scans:
        if s.error is not None:
            report.failed[s.path] = s.error
            continue
        if not s.faces:
            continue
        report.recovered[s.path] = len(s.faces)
        n = len(s.faces)
        parts.append(Encodings(
            embeddings=s.embeddings, paths=[s.path] * n, face_index=[f.index for f in s.faces],
            boxes_ltrb=np.stack([f.box_ltrb for f in s.faces]), scores=[f.score for f in s.faces],
            landmarks68=np.stack([f.landmarks68 for f in s.faces]), landmarks5=np.stack([f.landmarks5 for f in s.faces]),
            identities=[identity_of(s.path)] * n, image_sizes=[s.image_size] * n))
    if len(parts) == 1:
        return enc, report
    meta = dict(enc.meta)
    meta["second_pass"] = {"detector": (detector or SensitiveDetector()).settings(), "faces": report.n_faces,
                           "photos": len(report.recovered)}
    merged = Encodings.concatenate(parts, meta=meta)
    merged.encoder_state = enc.encoder_state
    log.info("second pass: %d faces in %d of %d photos without a face (%.2f s/photo)", report.n_faces,
             len(report.recovered), report.n_photos, report.seconds_per_photo)
    return merged, report


# --- 3. the safety net ----------------------------------------------------------------------------
@dataclass(frozen=True)
class UnprotectedFace:
    """A face in an output photo that still matches an original face of the dataset."""

    path: str  # the output photo, relative to its folder
    face: int
    box_ltrb: tuple[float, float, float, float]
    distance: float
    original: str  # the dataset photo of the nearest original face
    kind: str = "match"  # "match": within the threshold of an original face; "unanonymized": where no face was replaced


@dataclass
class SafetyNetReport:
    n_photos: int = 0
    n_faces: int = 0  # faces the sensitive detector found in the outputs
    unprotected: list[UnprotectedFace] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def photos(self) -> list[str]:
        return sorted({u.path for u in self.unprotected})

    @property
    def seconds_per_photo(self) -> float:
        return self.seconds / self.n_photos if self.n_photos else 0.0

    def as_dict(self) -> dict:
        return {"photos": self.n_photos, "faces_found": self.n_faces, "unprotected_faces": len(self.unprotected),
                "matching_faces": sum(u.kind == "match" for u in self.unprotected),
                "unanonymized_faces": sum(u.kind == "unanonymized" for u in self.unprotected),
                "unprotected_photos": len(self.photos), "seconds": self.seconds,
                "seconds_per_photo": self.seconds_per_photo, "failed": dict(sorted(self.failed.items()))}


def nearest_original(embeddings: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each row of ``embeddings`` (m, d): distance to and index of the nearest row of ``reference`` (n, d)."""
    embeddings = np.asarray(embeddings, np.float64)
    reference = np.asarray(reference, np.float64)
    if len(embeddings) == 0 or len(reference) == 0:
        return np.full(len(embeddings), np.inf), np.full(len(embeddings), -1, np.int64)
    embeddings = embeddings.reshape(len(embeddings), -1)
    if embeddings.shape[1] != reference.shape[1]:
        raise BadInputError(f"embeddings of dim {embeddings.shape[1]} cannot be compared with dim {reference.shape[1]}")
    dist = np.empty(len(embeddings))
    index = np.empty(len(embeddings), np.int64)
    ref_sq = (reference ** 2).sum(1)
    for start in range(0, len(embeddings), 256):
        block = embeddings[start:start + 256]
        d2 = (block ** 2).sum(1)[:, None] + ref_sq[None, :] - 2 * block @ reference.T
        j = d2.argmin(1)
        index[start:start + len(block)] = j
        dist[start:start + len(block)] = np.sqrt(np.maximum(d2[np.arange(len(block)), j], 0))
    return dist, index


def person_of(rel: str) -> str:
    """Who a dataset photo shows, for the safety net: its identity folder, else the photo itself."""
    from anonfaces.utils.images import identity_of

    return identity_of(rel) or rel


def find_unprotected(folder: str | os.PathLike, paths: list[str], reference: np.ndarray, reference_paths, *,
                     threshold: float = MATCH_THRESHOLD, detector: SensitiveDetector | None = None, jobs: int = 1,
                     pool: WorkerPool | None = None,
                     progress: bool = False, desc: str = "safety net",
                     replaced: dict[str, np.ndarray] | None = None,
                     sources: dict[str, str] | None = None, known_boxes: bool = False) -> SafetyNetReport:
    """Faces in the photos ``folder/path`` left unprotected (see the module docstring).

    ``reference`` holds the dlib embeddings (n, 128) of the dataset's original faces
    (`original_dlib_embeddings`), ``reference_paths`` their photos. ``replaced`` maps
    output photos to the boxes (m, 4) of the faces replaced in them (empty for a photo
    written without a face); a face found in such a photo away from all of them
    (intersection over union <= 0.3) is ``unanonymized``. Photos not in ``replaced``
    (surrogates) get only the match check.

    ``sources`` maps output photos to the dataset photos they were made from. With it, a
    face is a match only within ``threshold`` of an original photo of the person that
    photo shows (`person_of`): that is a re-identification. Without it, any original face
    counts; that also flags faces that merely sit near some other person's photo
    ("hubs": blurred and averaged faces lie within 0.5 of many unrelated faces; on the
    bundled sample at k = 5, 48 of 64 such matches were to another person).

    ``known_boxes``: the faces at the ``replaced`` boxes are encoded whatever the detector
    finds there (the ``fast`` scan of `net_detector`), so a replaced face still like its
    original is checked even where the detector would not find it.
    """
    from anonfaces.detect.sensitive import SAME_FACE_IOU, box_iou

    if not 0 < threshold < 2:
        raise BadInputError(f"threshold={threshold!r} must be between 0 and 2 (dlib distances)")
    reference_paths = np.asarray(reference_paths, dtype=str)
    reference = np.asarray(reference)
    reference_persons = np.array([person_of(p) for p in reference_paths.tolist()], dtype=str) if sources else None
    report = SafetyNetReport(n_photos=len(paths))
    t = time.perf_counter()
    scans = scan_photos(folder, paths, detector=detector, jobs=jobs, progress=progress, desc=desc, pool=pool,
                        known=replaced if known_boxes else None)
    report.seconds = time.perf_counter() - t
    for s in scans:
        if s.error is not None:
            report.failed[s.path] = s.error
            continue
        report.n_faces += len(s.faces)
        if sources is not None and s.path in sources:
            rows = np.flatnonzero(reference_persons == person_of(sources[s.path]))
            dist, index = nearest_original(s.embeddings, reference[rows])
            index = np.where(index >= 0, rows[np.maximum(index, 0)] if len(rows) else -1, -1)
        else:
            dist, index = nearest_original(s.embeddings, reference)
        boxes = None if replaced is None else replaced.get(s.path)
        for f, d, j in zip(s.faces, dist.tolist(), index.tolist()):
            kind = "match" if d < threshold else None
            if kind is None and boxes is not None and all(box_iou(f.box_ltrb, b) <= SAME_FACE_IOU for b in boxes):
                kind = "unanonymized"
            if kind is not None:
                report.unprotected.append(UnprotectedFace(s.path, f.index, tuple(float(v) for v in f.box_ltrb), d,
                                                          str(reference_paths[j]) if j >= 0 else "", kind))
    return report


def _chip_task(context, task):
    rel, landmarks5 = task
    from anonfaces.detect.align import face_chip

    image = read_image(Path(context[1]) / rel, max_pixels=context[4])
    chips = np.stack([face_chip(image, lm, size=150) for lm in landmarks5])
    return _scan_models(context)["encoder"].embed(chips)


def original_dlib_embeddings(root: str | os.PathLike, enc, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """dlib 128-D embeddings (n_faces, 128) of the faces in ``enc``: its own when it was made with dlib,
    otherwise computed from the photos under ``root`` and the recorded 5-point landmarks."""
    if enc.encoder.get("name") == "dlib" or (not enc.encoder and enc.dim == 128):
        return np.asarray(enc.embeddings, np.float32)
    out = np.empty((len(enc), 128), np.float32)
    rows: dict[str, list[int]] = {}
    for i, p in enumerate(enc.paths.tolist()):
        rows.setdefault(p, []).append(i)
    tasks = [(p, enc.landmarks5[r]) for p, r in rows.items()]
    context = _scan_context(root, None, None, max_pixels)
    for (p, _), emb in zip(tasks, (_chip_task(context, t) for t in tasks)):  # the chips are cheap: this process
        out[rows[p]] = emb
    return out
