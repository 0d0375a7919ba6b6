"""`verify_release`: re-check a finished output folder before it is shared.

Checks, each giving `Finding` records (an empty list means the folder passed):

``layout``     the private folder is not inside OUT (nor OUT inside it);
``file``       OUT holds photos only: no mapping/privacy/run/encodings/key file,
               nothing hidden, nothing that is not an image;
``metadata``   no EXIF, XMP, ICC profile, comment, text chunk or other APPn
               segment in any photo;
``name``       no output file or folder name contains a person's label (the
               dataset's first folder level) or a file stem of the dataset;
``face``       no face the sensitive detector finds in an output photo lies within
               ``threshold`` (dlib distance) of an original face of the dataset, or
               away from every face that was replaced (a face never anonymized);
``k``          every cluster of ``mapping.csv`` stands for at least k units (people);
``video``      the anonymized videos a run lists in ``PRIVATE/videos/run.json`` are
               allowed in OUT; their containers and streams carry no identifying
               tag, and (with ``faces``) on frames sampled at ``video_fps`` no face a
               fresh detector finds in the original is left unreplaced in the copy
               (`anonfaces.video.evaluate`);
``unchecked``  a check that could not run (its input is missing from the private
               folder): a folder that cannot be checked does not pass.

What the checks need comes from the private folder (`anonfaces.release.layout`):
``files.csv``/``mapping.csv`` (the original paths), ``run.json`` (k, unit, dataset)
and ``encodings.npz`` (the original faces); ``dataset`` adds the names of a dataset
folder directly.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from anonfaces.errors import BadInputError
from anonfaces.release.layout import (
    ENCODINGS_FILE,
    FILES_FILE,
    MAPPING_FILE,
    PRIVATE_NAMES,
    RUN_FILE,
    VIDEOS_DIR,
    check_folders,
    default_private_dir,
    is_shareable_name,
    list_files,
)
from anonfaces.release.naming import NameMatcher, person_names
from anonfaces.release.nofaces import DEFAULT_NET_SCAN, MATCH_THRESHOLD
from anonfaces.utils.images import identity_of, list_images

log = logging.getLogger(__name__)

CHECKS = ("layout", "file", "metadata", "name", "face", "k", "unchecked")

#: Image info keys that carry metadata (PIL's names).
_METADATA_KEYS = ("exif", "icc_profile", "xmp", "XML:com.adobe.xmp", "comment", "photoshop", "iptc", "Description")
#: TIFF tags that describe the photo, its camera, place, owner or software.
_TIFF_TAGS = {270: "ImageDescription", 271: "Make", 272: "Model", 305: "Software", 306: "DateTime", 315: "Artist",
              316: "HostComputer", 700: "XMP", 33432: "Copyright", 33723: "IPTC", 34377: "Photoshop",
              34665: "ExifIFD", 34675: "ICCProfile", 34853: "GPSInfo"}


@dataclass(frozen=True)
class Finding:
    """One reason the folder is not safe to share."""

    check: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"[{self.check}] {self.path}: {self.message}" if self.path else f"[{self.check}] {self.message}"


@dataclass
class VerifyReport:
    out: Path
    private: Path
    n_files: int = 0
    findings: list[Finding] = field(default_factory=list)
    checked: dict = field(default_factory=dict)  # check -> what was looked at

    @property
    def ok(self) -> bool:
        return not self.findings

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for f in self.findings:
            out[f.check] = out.get(f.check, 0) + 1
        return out

    def summary(self) -> str:
        if self.ok:
            return f"{self.out}: OK, {self.n_files} files checked ({', '.join(self.checked)})"
        parts = ", ".join(f"{n} {c}" for c, n in self.counts().items())
        return f"{self.out}: NOT SAFE to share, {len(self.findings)} findings ({parts}) in {self.n_files} files"


# --- single checks ------------------------------------------------------------------------------
def image_metadata(path: str | os.PathLike) -> list[str]:
    """The kinds of metadata found in the image file ``path`` (empty when there is none)."""
    found = []
    try:
        with Image.open(path) as im:
            info = im.info
            found += [key for key in _METADATA_KEYS if info.get(key)]
            for marker, data in getattr(im, "applist", None) or []:
                if marker == "APP0" and data[:4] in (b"JFIF", b"JFXX"):
                    continue
                if marker == "APP14" and data[:5] == b"Adobe":
                    continue
                label = data[:12].split(b"\x00")[0].decode("latin-1", "replace")
                found.append(f"{marker} segment ({label})")
            text = getattr(im, "text", None)
            if text:
                found.append("text chunks (" + ", ".join(sorted(text)) + ")")
            if im.format == "TIFF":
                tags = [name for tag, name in _TIFF_TAGS.items() if tag in im.tag_v2]
                found += [f"TIFF tag {t}" for t in tags]
            elif "exif" not in found and im.getexif():
                found.append("exif")
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        found.append(f"unreadable image ({exc})")
    return list(dict.fromkeys(found))


def check_files(out: Path, files: list[str], videos: set[str] = frozenset()) -> list[Finding]:
    """Everything in OUT that is not a shareable photo (or one of the run's anonymized ``videos``)."""
    findings = []
    for rel in files:
        if rel in videos:
            continue
        name = rel.rsplit("/", 1)[-1]
        if name in PRIVATE_NAMES or name.endswith((".npz", ".pickle", ".pkl", ".key")):
            findings.append(Finding("file", rel, "a private file (links back to people): move it to the private folder"))
        elif not is_shareable_name(rel):
            findings.append(Finding("file", rel, "not a photo: OUT may hold only anonymized photos"))
    return findings


def check_metadata(out: Path, photos: list[str]) -> list[Finding]:
    findings = []
    for rel in photos:
        found = image_metadata(out / rel)
        if found:
            findings.append(Finding("metadata", rel, "metadata left in: " + ", ".join(found)))
    return findings


def check_names(files: list[str], identifying: set[str]) -> list[Finding]:
    """Output paths whose file or folder names contain a person's label or a dataset file stem."""
    findings = []
    matcher = NameMatcher(identifying)
    for rel in files:
        parts = rel.split("/")
        for part in [*parts[:-1], Path(parts[-1]).stem]:
            hit = matcher.find(part)
            if hit is not None:
                findings.append(Finding("name", rel, f"the name contains {hit!r}, a name from the dataset"))
                break
    return findings


def check_clusters(rows: list[dict], k: int) -> list[Finding]:
    """Clusters of ``mapping.csv`` rows standing for fewer than ``k`` units (people)."""
    members: dict[int, set[str]] = {}
    for r in rows:
        c = int(r["cluster"])
        if c < 0:
            continue
        unit = r.get("unit") or identity_of(r["path"]) or f"{r['path']}#{r['face']}"
        members.setdefault(c, set()).add(unit)
    return [Finding("k", "", f"cluster {c} stands for {len(u)} people < k={k}")
            for c, u in sorted(members.items()) if len(u) < k]


def check_faces(out: Path, photos: list[str], reference: np.ndarray, reference_paths, *,
                threshold: float = MATCH_THRESHOLD, upsample: int = 1, jobs: int = 1, progress: bool = False,
                replaced: dict | None = None, sources: dict | None = None, scan: str = DEFAULT_NET_SCAN) -> list[Finding]:
    from anonfaces.release.nofaces import find_unprotected, net_detector

    detector, known_boxes = net_detector(scan, upsample)
    report = find_unprotected(out, photos, reference, reference_paths, threshold=threshold,
                              detector=detector, jobs=jobs, progress=progress, known_boxes=known_boxes,
                              desc="verify faces", replaced=replaced, sources=sources)
    findings = [Finding("face", u.path, f"face {u.face} at {[round(v) for v in u.box_ltrb]} "
                                        + (f"is still recognisable: distance {u.distance:.3f} < {threshold} to an original face"
                                           if u.kind == "match" else "was never anonymized (no face was replaced there)"))
                for u in report.unprotected]
    findings += [Finding("face", p, f"could not be checked: {r}") for p, r in report.failed.items()]
    return findings


#: Container and stream tags a muxer writes by itself: they say nothing about the people or the source.
_MUXER_TAGS = frozenset({"encoder", "major_brand", "minor_version", "compatible_brands", "handler_name", "vendor_id",
                         "language", "duration"})


def video_metadata(path: str | os.PathLike) -> list[str]:
    """The identifying tags of a video file (title, comment, creation time, location, ...), or why it cannot be read."""
    try:
        import av

        with av.open(str(path)) as container:
            tags = [f"container {k}" for k in container.metadata if k.lower() not in _MUXER_TAGS]
            for stream in container.streams:
                tags += [f"{stream.type} stream {k}" for k in stream.metadata if k.lower() not in _MUXER_TAGS]
    except ImportError as exc:
        return [f"cannot be read without PyAV (pip install 'anonfaces[video]'): {exc}"]
    except Exception as exc:  # noqa: BLE001  (PyAV raises its own FFmpeg error classes)
        return [f"unreadable video ({exc})"]
    return tags


def _video_run(private: Path) -> dict | None:
    path = private / VIDEOS_DIR / RUN_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BadInputError(f"{path} cannot be read ({exc})") from exc


def _video_encodings(private: Path):
    """The run's video encodings (``PRIVATE/videos/encodings.npz``), or None without them."""
    from anonfaces.encode import Encodings

    path = private / VIDEOS_DIR / ENCODINGS_FILE
    return Encodings.load(path) if path.is_file() else None


def check_videos(out: Path, private: Path, record: dict, *, faces: bool = True, fps: float = 1.0,
                 encodings=None) -> list[Finding]:
    """Metadata and faces left unreplaced in the videos of a run (``record``: ``PRIVATE/videos/run.json``;
    ``encodings``: its video encodings, read from the private folder when not given)."""
    written = [v for v in record.get("videos", []) if v.get("output") and not v.get("error")]
    findings = []
    for v in written:
        tags = video_metadata(out / v["output"])
        if tags:
            findings.append(Finding("metadata", v["output"], "video tags left in: " + ", ".join(tags)))
    if not faces or not written:
        return findings
    enc = encodings if encodings is not None else _video_encodings(private)
    if enc is None or not Path(record.get("dataset", "")).is_dir():
        return findings + [Finding("unchecked", "", f"video faces: {private / VIDEOS_DIR / ENCODINGS_FILE} or the "
                                                     f"original videos ({record.get('dataset')}) not found")]
    from anonfaces.video.evaluate import score_run_videos

    scores, _ = score_run_videos(record["dataset"], out, written, enc, fps=fps)
    for s in scores:
        if s.error is not None:
            findings.append(Finding("face", s.output, f"could not be checked: {s.error}"))
        elif s.faces_unreplaced:
            findings.append(Finding("face", s.output, f"{s.faces_unreplaced} of {s.faces_seen} faces found in "
                                                     f"{s.sampled_frames} sampled frames of the original are left "
                                                     "unreplaced (within 0.5 of the original face to dlib, or pixels unchanged)"))
    return findings


# --- the whole check ------------------------------------------------------------------------------
def _read_csv(path: Path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def verify_release(out: str | os.PathLike, private: str | os.PathLike | None = None, *,
                   dataset: str | os.PathLike | None = None, k: int | None = None, faces: bool = True,
                   threshold: float = MATCH_THRESHOLD, upsample: int = 1, jobs: int | None = None,
                   progress: bool = False, scan: str = DEFAULT_NET_SCAN, video_fps: float = 1.0) -> VerifyReport:
    """Check that ``out`` can be shared as it is; see the module docstring for the checks.

    Parameters
    ----------
    out : path
        The output folder to be shared.
    private : path, optional
        The run's private folder (default ``OUT.private``).
    dataset : path, optional
        The original photos; default: the dataset ``run.json`` names, when it is still there.
    k : int, optional
        The k to check clusters against; default: the run's k.
    faces : bool
        Run the face check (the slow one: the sensitive detector on every photo).
    threshold, upsample, jobs : settings of the face check (jobs None: every core).
    video_fps : float
        Frames per second of each anonymized video the face check looks at.
    scan : {"fast", "full"}
        The face check's look at each photo (`anonfaces.release.nofaces.net_detector`):
        ``full`` (default) the CNN at ``upsample`` plus HOG, ``fast`` the replaced faces plus a cheap pass.
    """
    from anonfaces.utils.parallel import check_jobs

    jobs = check_jobs(jobs)
    out = Path(out)
    if not out.is_dir():
        raise BadInputError(f"output folder not found: {out}")
    private = default_private_dir(out) if private is None else Path(private)
    report = VerifyReport(out, private)
    try:
        check_folders(out, private)
    except BadInputError as exc:
        report.findings.append(Finding("layout", "", str(exc)))
    files = list_files(out)
    photos = [f for f in files if is_shareable_name(f)]
    report.n_files = len(files)
    video_run = _video_run(private)
    videos = {v["output"] for v in (video_run or {}).get("videos", []) if v.get("output") and not v.get("error")}
    report.findings += check_files(out, files, videos)
    report.checked["file"] = len(files)
    report.findings += check_metadata(out, photos)
    report.checked["metadata"] = len(photos)

    def unchecked(check: str, why: str) -> None:
        report.findings.append(Finding("unchecked", "", f"{check}: {why}"))

    run = {}
    run_path = private / RUN_FILE
    if run_path.is_file():
        try:
            run = json.loads(run_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            unchecked("run", f"{run_path} cannot be read ({exc})")
    settings = run.get("settings", {})
    if dataset is None and run.get("dataset") and Path(run["dataset"]).is_dir():
        dataset = run["dataset"]

    # names -----------------------------------------------------------------------------------
    originals: list[str] = []
    for name in (FILES_FILE, MAPPING_FILE):
        if (private / name).is_file():
            originals += [r["path"] for r in _read_csv(private / name)]
    if video_run is not None:
        originals += [v["path"] for v in video_run.get("videos", [])]
    if dataset is not None:
        originals += list_images(dataset)
    originals = list(dict.fromkeys(originals))
    if originals:
        report.findings += check_names(files, person_names(originals))
        report.checked["name"] = len(originals)
    else:
        unchecked("name", f"no {FILES_FILE} or {MAPPING_FILE} in {private} and no dataset to take names from")

    # k -----------------------------------------------------------------------------------------
    mapping = private / MAPPING_FILE
    method = settings.get("method", "ksame")
    k = k if k is not None else settings.get("k")
    if method != "ksame" and k is None:
        report.checked["k"] = f"not clustered ({method})"
    elif not mapping.is_file() and not photos and video_run is not None:
        report.checked["k"] = "no photos (the videos are checked below)"
    elif not mapping.is_file():
        unchecked("k", f"{mapping} not found")
    elif k is None:
        unchecked("k", f"no k given and none recorded in {run_path}")
    else:
        report.findings += check_clusters(_read_csv(mapping), int(k))
        report.checked["k"] = int(k)

    video_enc = _video_encodings(private) if video_run is not None else None
    if video_run is not None:
        _video_clusters(report, private, video_run, k, unchecked, video_enc)

    # faces -------------------------------------------------------------------------------------
    if faces and not photos and video_run is not None:
        report.checked["face"] = "no photos (the videos are checked below)"
    elif faces:
        _faces(report, out, private, photos, settings, dataset, threshold=threshold, upsample=upsample, jobs=jobs,
               progress=progress, unchecked=unchecked, scan=scan)
    if video_run is not None:
        report.findings += check_videos(out, private, video_run, faces=faces, fps=video_fps, encodings=video_enc)
        report.checked["video"] = len(videos)
    log.info("verify: %s", report.summary())
    return report


def _video_clusters(report, private: Path, video_run: dict, k, unchecked, enc) -> None:
    """The k check on the videos' mapping: a unit is a face track (``<video>#t<track>``, from the video encodings
    ``enc``; the tracks of one person in a video are merged when encoding)."""
    mapping = private / VIDEOS_DIR / MAPPING_FILE
    k = k if k is not None else (video_run.get("options") or {}).get("k")
    method = (video_run.get("options") or {}).get("method", "ksame")
    if method != "ksame":
        return
    if k is None or not mapping.is_file() or enc is None:
        unchecked("k", f"videos: no k recorded, or {mapping} / {private / VIDEOS_DIR / ENCODINGS_FILE} not found")
        return
    unit = dict(zip(zip(enc.paths.tolist(), enc.face_index.tolist()), enc.track_units().tolist()))
    rows = [{**r, "unit": unit.get((r["path"], int(r["face"])), "")} for r in _read_csv(mapping)]
    report.findings += check_clusters(rows, int(k))
    report.checked["k (videos)"] = int(k)


def _replaced_boxes(private: Path) -> dict[str, np.ndarray] | None:
    """Output photo -> boxes (m, 4) of the faces replaced in it, from the private files.csv and mapping.csv."""
    if not (private / FILES_FILE).is_file() and not (private / MAPPING_FILE).is_file():
        return None
    boxes: dict[str, list] = {}
    if (private / FILES_FILE).is_file():
        for r in _read_csv(private / FILES_FILE):
            if r.get("output"):
                boxes.setdefault(r["output"], [])
    if (private / MAPPING_FILE).is_file():
        for r in _read_csv(private / MAPPING_FILE):
            if r.get("output"):
                boxes.setdefault(r["output"], []).append([float(r[c]) for c in ("left", "top", "right", "bottom")])
    return {o: np.asarray(b, np.float64).reshape(-1, 4) for o, b in boxes.items()}


def _sources(private: Path) -> dict[str, str] | None:
    """Output photo -> the dataset photo it was made from (the private mapping.csv), or None without one."""
    if not (private / MAPPING_FILE).is_file():
        return None
    return {r["output"]: r["path"] for r in _read_csv(private / MAPPING_FILE) if r.get("output")}


def _faces(report, out, private, photos, settings, dataset, *, threshold, upsample, jobs, progress, unchecked, scan):
    from anonfaces.encode import Encodings
    from anonfaces.release.nofaces import original_dlib_embeddings

    enc_path = private / ENCODINGS_FILE
    if not enc_path.is_file():
        unchecked("face", f"{enc_path} (the original faces) not found")
        return
    enc = Encodings.load(enc_path)
    if enc.encoder.get("name", "dlib") != "dlib" and dataset is None:
        unchecked("face", "the encodings are not dlib's and the dataset is not there to compute them")
        return
    reference = original_dlib_embeddings(dataset, enc) if enc.encoder.get("name", "dlib") != "dlib" else enc.embeddings
    report.findings += check_faces(out, photos, reference, enc.paths, threshold=threshold, upsample=upsample, jobs=jobs,
                                   progress=progress, replaced=_replaced_boxes(private), sources=_sources(private),
                                   scan=scan)
    report.checked["face"] = len(photos)
