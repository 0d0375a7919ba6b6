"""Anonymize a folder of photos: encode -> cluster -> synthesize -> put the surrogates back.

`anonymize_dataset` is the library entry point behind ``anonfaces anonymize``.
With ``method="ksame"`` (the default) every face is replaced by its cluster's
surrogate; with a baseline name (`anonfaces.synthesize.baselines.BASELINES`)
each face region is obfuscated in place and nothing is clustered.

Output (OUT must not be inside the dataset; the input is only read): two folders
that are never mixed (`anonfaces.release.layout`)::

    OUT/                                     shareable as it is (`anonfaces verify` re-checks it)
      <keyed hash>.jpg ...                   photos, faces replaced, no metadata, neutral names
      surrogates/<cluster>.png               one surrogate per cluster (ksame, only with surrogates=True)
    OUT.private/ (or ``private``)            never shared
      mapping.csv                            path,face,cluster,left,top,right,bottom,output,unit
      files.csv                              path,output,status for every photo
      run.json                               settings, counts, timings, held-back photos
      encodings.npz, release.key, surrogates/

``mapping.csv`` and ``files.csv`` are the only link from the outputs back to the
original photos. ``cluster`` is -1 for the baselines, which do not cluster.
Photos in which the fast detector found no face get a second, more sensitive pass
(`anonfaces.release.nofaces`); faces found there are anonymized like the others.
Photos still without a face follow ``no_face`` (default ``skip``: not written).
After writing, the sensitive detector looks at every output photo, and photos with
a face still within ``match_threshold`` of an original face follow the same rule.
Photos that could not be read are listed under ``unreadable`` and not written.

Photos are processed in parallel worker processes (``jobs``, default: every core).
"""

from __future__ import annotations

import csv
import functools
import json
import logging
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from anonfaces._version import __version__
from anonfaces.detect.align import CANONICAL_TEMPLATE
from anonfaces.encode.pipeline import default_dataset
from anonfaces.errors import BadInputError
from anonfaces.synthesize.base import (
    Surrogate,
    call_synthesize,
    make_synthesizer,
    synthesizer_settings,
)
from anonfaces.utils.atomic import atomic_open, atomic_write_text
from anonfaces.utils.images import (
    DEFAULT_MAX_PIXELS,
    ImageReadError,
    list_images,
    read_image,
    write_image,
)
from anonfaces.utils.parallel import check_jobs

log = logging.getLogger(__name__)

KSAME = "ksame"
#: ``cluster`` in mapping.csv for faces that were not clustered (baseline methods).
NOT_CLUSTERED = -1
MAPPING_COLUMNS = ("path", "face", "cluster", "left", "top", "right", "bottom", "output", "unit")


@dataclass
class AnonymizeReport:
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
    private: Path | None = None  # where everything that links back went (`anonfaces.release.layout`)
    no_face_policy: str = "skip"
    outputs: dict = field(default_factory=dict)  # dataset path -> output path (relative to out), written ones only
    recovered_faces: int = 0  # faces found only by the second (sensitive) pass
    unprotected: list = field(default_factory=list)  # `UnprotectedFace`s the safety net found in the outputs
    held_back: list[tuple[str, str]] = field(default_factory=list)  # (dataset path, reason): not written to OUT

    @property
    def mapping_path(self) -> Path:
        return (self.private or self.out) / "mapping.csv"

    @property
    def run_path(self) -> Path:
        return (self.private or self.out) / "run.json"

    @property
    def surrogates_dir(self) -> Path:
        return (self.private or self.out) / "surrogates"

    def summary(self) -> str:
        what = f"{self.method}:{self.synth} k={self.k}, {self.n_clusters} clusters" if self.method == KSAME else self.method
        handled = {"skip": "held back", "copy": "copied unchanged", "blur": "blurred whole"}[self.no_face_policy]
        return (
            f"{self.n_images} images, {self.n_faces} faces replaced ({what}; {self.recovered_faces} found by the second "
            f"pass), {len(self.no_face)} without a face {handled}, {len(self.unprotected)} faces left unprotected "
            f"in the outputs ({handled}), {len(self.unreadable)} unreadable, {self.seconds.get('total', 0):.1f} s -> {self.out} "
            f"(private: {self.private})"
        )


# --- checks -----------------------------------------------------------------------------------
def check_out_dir(dataset: Path, out: Path, *, overwrite: bool) -> None:
    """Refuse an OUT inside the dataset (or holding it), or a non-empty OUT without ``overwrite``."""
    d, o = dataset.resolve(), out.resolve()
    if o == d or d in o.parents:
        raise BadInputError(f"--out {out} is inside the dataset {dataset}; choose a folder outside it (the input is never modified)")
    if o in d.parents:
        raise BadInputError(f"the dataset {dataset} is inside --out {out}; choose an output folder that does not contain it")
    if o.exists() and not o.is_dir():
        raise BadInputError(f"--out {out} exists and is not a folder")
    if o.is_dir() and any(o.iterdir()) and not overwrite:
        raise BadInputError(f"--out {out} is not empty; choose a new folder or pass --overwrite")


def check_min_size(labels: np.ndarray, units: np.ndarray, k: int) -> list[tuple[int, int]]:
    """Clusters with fewer than ``k`` distinct units, as (cluster, n_units) pairs (empty when all are >= k)."""
    labels = np.asarray(labels)
    if labels.size and labels.min() < 0:
        raise BadInputError(f"cluster labels must be >= 0; found {labels.min()}")
    small = []
    for c in np.unique(labels):
        n = np.unique(np.asarray(units)[labels == c]).size
        if n < k:
            small.append((int(c), int(n)))
    return small


def auto_crop_size(landmarks68: np.ndarray, *, low: int = 128, high: int = 512) -> int:
    """Crop side at which the median face keeps its own resolution.

    The canonical crop puts the eye centres 0.3 x size apart; the size is the
    median eye distance / 0.3, rounded up to a multiple of 32 and clipped to
    [``low``, ``high``] (``high`` when there is no face).
    """
    lm = np.asarray(landmarks68, dtype=np.float64).reshape(-1, 68, 2)
    if len(lm) == 0:
        return high
    eyes = np.linalg.norm(lm[:, 36:42].mean(1) - lm[:, 42:48].mean(1), axis=1)
    eyes = eyes[np.isfinite(eyes)]
    if len(eyes) == 0:
        return high
    side = np.median(eyes) / (CANONICAL_TEMPLATE[1, 0] - CANONICAL_TEMPLATE[0, 0])
    return int(np.clip(np.ceil(side / 32.0) * 32, low, high))


def _check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2:
        raise BadInputError(f"k={k!r} must be an integer >= 2 (k=1 hides no one)")
    return int(k)


# --- worker side --------------------------------------------------------------------------------
_WORKER: dict = {}


def _init_worker(root: str, out: str, size: int, max_pixels: int, quality: int, options: dict,
                 surrogates: str | None = None) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import cv2
    from threadpoolctl import threadpool_limits

    cv2.setNumThreads(1)
    threadpool_limits(1)  # one BLAS thread per worker: the workers already use every core
    _WORKER.clear()
    _WORKER.update(root=Path(root), out=Path(out), size=size, max_pixels=max_pixels, quality=quality, options=options,
                   surrogates={}, surrogates_dir=Path(surrogates) if surrogates else Path(out) / "surrogates")


def _read(rel: str) -> np.ndarray:
    return read_image(_WORKER["root"] / rel, max_pixels=_WORKER["max_pixels"])


def _align_task(task):
    """Canonical crops of every face of one photo -> (rows, crops [m,S,S,3], landmarks [m,68,2]) or an error."""
    from anonfaces.detect import align_face

    rel, rows, landmarks, size_wh = task
    try:
        image = _read(rel)
    except ImageReadError as exc:
        return rel, rows, None, f"unreadable: {exc}"
    h, w = image.shape[:2]
    if (w, h) != tuple(size_wh):
        return rel, rows, None, f"image is {w}x{h} but the encodings recorded {size_wh[0]}x{size_wh[1]} (stale encodings?)"
    faces = [align_face(image, lm, size=_WORKER["size"]) for lm in landmarks]
    crops = np.stack([f.image for f in faces])
    points = np.stack([f.landmarks68 for f in faces]).astype(np.float32)
    return rel, rows, (crops, points), None


def _surrogate(cluster: int, landmarks: np.ndarray) -> Surrogate:
    cache = _WORKER["surrogates"]
    if cluster not in cache:
        image = read_image(_WORKER["surrogates_dir"] / f"{cluster}.png")
        cache[cluster] = Surrogate(image, landmarks)
    return cache[cluster]


def _rewrite_task(task):
    """Write one photo under OUT (as ``out_rel``) with its faces replaced, or a faceless one by the no-face rule.

    Returns (rel, n_faces, error or None, written).
    """
    from anonfaces.release.nofaces import apply_no_face_policy

    rel, out_rel, faces = task
    opts = _WORKER["options"]
    try:
        image = _read(rel)
    except ImageReadError as exc:
        return rel, 0, str(exc), False
    if not faces:
        image = apply_no_face_policy(image, opts["no_face"])
        if image is None:
            return rel, 0, None, False
    else:
        result = image.copy()
        if opts["method"] == KSAME:
            from anonfaces.synthesize.blend import blend_surrogate

            for lm, cluster, sur_lm in faces:
                blend_surrogate(image, _surrogate(cluster, sur_lm), lm, blend=opts["blend"], color=opts["color"],
                                forehead=opts["forehead"], feather=opts["feather"], out=result)
        else:
            from anonfaces.synthesize.baselines import apply_baseline

            seed = (zlib.crc32(rel.encode()) ^ int(opts["seed"])) & 0x7FFFFFFF
            result = apply_baseline(image, opts["method"], [lm for lm, _, _ in faces], random_state=seed,
                                    forehead=opts["forehead"], **opts["method_params"])
        image = result
    write_image(_WORKER["out"] / out_rel, image, quality=_WORKER["quality"])
    return rel, len(faces), None, True


def _synthesize_task(task):
    """One cluster's surrogate, written to OUT/surrogates/<cluster>.png; returns (cluster, landmarks)."""
    synthesizer, cluster, faces, points, embeddings, identities = task
    return cluster, _make_surrogate(synthesizer, cluster, faces, points, embeddings, identities,
                                    _WORKER["surrogates_dir"])


def _make_surrogate(synthesizer, cluster, faces, points, embeddings, identities, folder: Path) -> np.ndarray:
    sur = call_synthesize(synthesizer, faces, points, embeddings, identities)
    if not isinstance(sur, Surrogate):  # a generator that returns its own record with the same fields
        sur = Surrogate(sur.image, sur.landmarks)
    write_image(folder / f"{cluster}.png", sur.image)
    return sur.landmarks


class _Workers:
    """One pool of worker processes for every phase of a run (or this process when jobs == 1)."""

    def __init__(self, initargs, jobs: int, progress: bool):
        self.initargs, self.jobs, self.progress = initargs, jobs, progress
        self.pool = None
        self._saved = None

    def __enter__(self):
        if self.jobs > 1:
            ctx = mp.get_context("forkserver" if sys.platform.startswith("linux") else "spawn")
            self.pool = ctx.Pool(self.jobs, initializer=_init_worker, initargs=self.initargs)
        else:
            self._saved = dict(_WORKER)
            _init_worker(*self.initargs)
        return self

    def __exit__(self, *exc):
        if self.pool is not None:
            self.pool.terminate() if exc[0] is not None else self.pool.close()
            self.pool.join()
        else:
            _WORKER.clear()
            _WORKER.update(self._saved or {})

    def imap(self, func, tasks, *, desc: str, unit: str = "img", chunksize: int = 4):
        from tqdm.auto import tqdm

        with tqdm(total=len(tasks), desc=desc, unit=unit, disable=not self.progress, smoothing=0.1) as bar:
            results = map(func, tasks) if self.pool is None else self.pool.imap(func, tasks, chunksize=chunksize)
            for result in results:
                yield result
                bar.update()


# --- main side ------------------------------------------------------------------------------------
def _remove_new_out_on_failure(func):
    """A failed run leaves nothing half-written behind in an OUT folder it created."""

    @functools.wraps(func)
    def wrapper(dataset, out, **kwargs):
        from anonfaces.release.layout import default_private_dir

        out_path = Path(out)
        private = kwargs.get("private")
        private_path = Path(private) if private is not None else default_private_dir(out_path)
        created = [p for p in (out_path, private_path) if not p.exists()]
        try:
            return func(dataset, out, **kwargs)
        except BaseException:
            for path in created:
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
            raise

    return wrapper


@_remove_new_out_on_failure
def anonymize_dataset(
    dataset: str | os.PathLike,
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
    blend: str = "feather",
    color: str = "lab",
    forehead: float = 0.15,
    feather: float = 0.06,
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
    private: str | os.PathLike | None = None,
    names: str = "hash",
    key_file: str | os.PathLike | None = None,
    keep_folders: bool = False,
    no_face: str = "skip",
    second_pass: bool = True,
    safety_net: bool = True,
    match_threshold: float = 0.5,
    sensitive_upsample: int = 1,
    surrogates: bool = False,
) -> AnonymizeReport:
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
        (``blur``, ``pixelate``, ``mask``, ``closing``, ``blocking``).
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
    blend, color, forehead, feather : see `anonfaces.synthesize.blend.blend_surrogate`.
    size : int or None
        Side of the canonical crops the surrogates are made at. None: from the
        dataset's faces (`auto_crop_size`: the median face at its own resolution,
        128 to 512 pixels), so small faces are not upsampled for nothing.
    detector, upsample : detector settings when encoding.
    save_encodings : path, optional
        Also keep the encodings made here at this path (they describe the original
        faces: keep them apart from OUT). They are always saved in the private folder.
    quality : int
        JPEG/WebP quality of the rewritten photos.
    jobs : int or None
        Worker processes (None: every core).
    random_state : int
        Seed for clustering, synthesizers and baselines.
    private : path, optional
        Folder for everything that links back to people (mapping, files list, run
        record, encodings, naming key, surrogates); default ``OUT.private`` beside
        OUT. Never inside OUT.
    names : {"hash", "keep"}
        Output names: a keyed hash of the relative path (default) or the dataset's own.
    key_file : path, optional
        Naming key (64 hex digits) to use; default ``PRIVATE/release.key``, made on
        the first run and reused after (same key, same names).
    keep_folders : bool
        Keep folders that do not name people (`anonfaces.release.naming`).
    no_face : {"skip", "copy", "blur"}
        Photos with no face found even by the second pass, and photos with a face
        the safety net still recognises: not written (default), written unchanged,
        or written blurred whole.
    second_pass, safety_net : bool
        Run the sensitive detector on photos without a face / on every output photo.
    match_threshold : float
        dlib distance under which an output face counts as an original face still recognisable.
    sensitive_upsample : int
        Upsampling of the sensitive detector (`anonfaces.detect.sensitive`).
    surrogates : bool
        Also put the surrogates into ``OUT/surrogates`` (they always go to the private folder).

    Returns
    -------
    AnonymizeReport
    """
    from anonfaces.synthesize.baselines import BASELINES

    t_start = time.perf_counter()
    seconds: dict[str, float] = {}
    root = Path(dataset) if dataset is not None else default_dataset()
    if not root.is_dir():
        raise BadInputError(f"dataset folder not found: {root}")
    out = Path(out)
    check_out_dir(root, out, overwrite=overwrite)
    policy = no_face  # the --no-face rule; `no_face` below is the list of photos without a face
    from anonfaces.release.layout import prepare_release

    layout, key = prepare_release(out, private, dataset=root, names=names, key_file=key_file, no_face=policy,
                                  overwrite=overwrite)
    jobs = check_jobs(jobs)
    if size is not None and (isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 64):
        raise BadInputError(f"size={size!r} must be None or an integer >= 64")
    if not isinstance(quality, (int, np.integer)) or not 1 <= quality <= 100:
        raise BadInputError(f"quality={quality!r} must be an integer from 1 to 100")
    if method != KSAME:
        BASELINES.get(method)  # unknown names are refused with the valid ones
        # validate settings on a tiny image before any expensive work
        from anonfaces.synthesize.baselines import check_baseline_params

        check_baseline_params(method, method_params or {})
        synthesizer = None
        k_checked = None
    else:
        k_checked = _check_k(k)
        synthesizer = make_synthesizer(synth, **(synth_params or {}))
        from anonfaces.synthesize.blend import BLEND_MODES, COLOR_MODES

        if blend not in BLEND_MODES:
            raise BadInputError(f"blend={blend!r} must be one of {', '.join(BLEND_MODES)}")
        if color not in COLOR_MODES:
            raise BadInputError(f"color={color!r} must be one of {', '.join(COLOR_MODES)}")
    images = list_images(root)
    if not images:
        raise BadInputError(f"no image files (jpg, png, ...) found under {root}")

    # 1. encodings ----------------------------------------------------------------------------
    t = time.perf_counter()
    enc, skipped, enc_meta = _encodings(root, encodings, encoder=encoder, detector=detector, upsample=upsample, jobs=jobs,
                                        progress=progress, max_pixels=max_pixels, save_encodings=save_encodings)
    seconds["encode"] = time.perf_counter() - t
    n_first_pass = len(enc)
    recovery = None
    if second_pass:
        from anonfaces.detect.sensitive import SensitiveDetector
        from anonfaces.release.nofaces import recover_faces

        t = time.perf_counter()
        done = {p for p, r in skipped.items() if r != "no face found"} | set(enc.paths.tolist())  # unreadable, or with faces
        faceless_first = [p for p in images if p not in done]
        enc, recovery = recover_faces(root, enc, faceless_first, detector=SensitiveDetector(upsample=sensitive_upsample),
                                      jobs=jobs, progress=progress, max_pixels=max_pixels)
        seconds["second_pass"] = time.perf_counter() - t
    enc.save(layout.encodings_path)
    if len(enc) and not np.isfinite(enc.landmarks68).all():
        raise BadInputError("the encodings hold no landmarks (imported from a pickle?); re-encode the dataset")

    # 2. clusters -----------------------------------------------------------------------------
    t = time.perf_counter()
    labels = np.full(len(enc), NOT_CLUSTERED, dtype=np.int64)
    units = np.full(len(enc), "", dtype=object)
    cluster_info: dict = {}
    if method == KSAME:
        labels, units, cluster_info = _cluster(enc, clusters, k=k_checked, algo=algo, unit=unit, outliers=outliers,
                                               params=cluster_params, random_state=random_state,
                                               allow_small_clusters=allow_small_clusters, n_given=n_first_pass)
    seconds["cluster"] = time.perf_counter() - t

    if size is None:
        size = auto_crop_size(enc.landmarks68)
    by_photo: dict[str, list[int]] = {}
    for i, rel in enumerate(enc.paths.tolist()):
        by_photo.setdefault(rel, []).append(i)
    out.mkdir(parents=True, exist_ok=True)
    from anonfaces.release.naming import output_names

    out_names = output_names(images, names=names, key=key, keep_folders=keep_folders)
    options = {"method": method, "blend": blend, "color": color, "forehead": float(forehead), "feather": float(feather),
               "seed": int(random_state), "method_params": dict(method_params or {}), "no_face": policy}
    initargs = (str(root), str(out), int(size), int(max_pixels), int(quality), options, str(layout.work_surrogates))
    unreadable: list[tuple[str, str]] = []

    sur_landmarks: dict[int, np.ndarray] = {}
    written, n_faces = [], 0
    with _Workers(initargs, min(jobs, len(images)), progress) as workers:
        # 3. surrogates -----------------------------------------------------------------------
        if method == KSAME:
            t = time.perf_counter()
            crops, points, bad = _align_all(workers, enc, by_photo, size=size)
            if bad:
                raise BadInputError(f"{len(bad)} encoded photos cannot be used: " + "; ".join(f"{p}: {r}" for p, r in bad[:3]))
            seconds["align"] = time.perf_counter() - t
            t = time.perf_counter()
            sur_landmarks = _synthesize_all(workers, synthesizer, crops, points, enc.embeddings, enc.identities, labels,
                                            layout.work_surrogates)
            del crops, points
            seconds["synthesize"] = time.perf_counter() - t

        # 4. photos ---------------------------------------------------------------------------
        t = time.perf_counter()
        tasks = []
        for rel in images:
            rows = by_photo.get(rel, [])
            tasks.append((rel, out_names[rel],
                          [(enc.landmarks68[i], int(labels[i]), sur_landmarks.get(int(labels[i]))) for i in rows]))
        outputs: dict[str, str] = {}
        for rel, n, error, was_written in workers.imap(_rewrite_task, tasks, desc="anonymize"):
            if error is not None:
                unreadable.append((rel, error))
                continue
            n_faces += n
            if n:
                written.append(rel)
            if was_written:
                outputs[rel] = out_names[rel]
        seconds["rewrite"] = time.perf_counter() - t
    faceless = set(images) - set(by_photo) - {p for p, _ in unreadable}
    no_face = sorted((p, skipped.get(p, "no face in the encodings")) for p in faceless)
    if unreadable and any(p in by_photo for p, _ in unreadable):
        raise BadInputError("photos with faces could not be read again: " + "; ".join(f"{p}: {r}" for p, r in unreadable[:3]))
    if surrogates and method == KSAME:
        from anonfaces.release.layout import share_surrogates

        share_surrogates(layout, sur_landmarks)
        outputs.update({f"surrogates/{c}.png": f"surrogates/{c}.png" for c in sur_landmarks})

    # 5. safety net: the sensitive detector on every output ---------------------------------------
    net = None
    if safety_net and outputs:
        t = time.perf_counter()
        from anonfaces.release.nofaces import safety_net as run_safety_net

        net = run_safety_net(root, out, enc, outputs, policy=policy, threshold=match_threshold,
                             upsample=sensitive_upsample, jobs=jobs, progress=progress, quality=quality)
        seconds["safety_net"] = time.perf_counter() - t
    back = {v: k for k, v in outputs.items()}
    unprotected_sources = sorted({back[u.path] for u in net.unprotected}) if net is not None else []
    if policy == "skip":
        for rel in unprotected_sources:
            outputs.pop(rel, None)
    held_back = sorted([(p, r) for p, r in no_face if p not in outputs]
                       + [(p, "a face left unprotected in the output") for p in unprotected_sources if p not in outputs])

    _write_mapping(layout.mapping_path, enc, labels, units=units, outputs=outputs)
    from anonfaces.release.layout import write_files_csv

    write_files_csv(layout.files_path, images, outputs, no_face=[p for p, _ in no_face], unprotected=unprotected_sources,
                    unreadable=[p for p, _ in unreadable], policy=policy)
    seconds["total"] = time.perf_counter() - t_start
    report = AnonymizeReport(out=out, method=method, synth=(synthesizer_settings(synthesizer).get("name") if synthesizer is not None else None),
                             k=k_checked, n_images=len(images), n_faces=n_faces,
                             n_clusters=len(sur_landmarks), written=sorted(written), no_face=no_face,
                             unreadable=sorted(unreadable), seconds=seconds, dataset=root, private=layout.private,
                             no_face_policy=policy, outputs=dict(outputs),
                             recovered_faces=recovery.n_faces if recovery is not None else 0,
                             unprotected=list(net.unprotected) if net is not None else [], held_back=held_back)
    run = {
        "format": "anonfaces-anonymize-run", "format_version": 1, "anonfaces_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "dataset": str(root.resolve()), "out": str(out.resolve()),
        "settings": {
            "method": method, "k": k_checked, "algo": algo if method == KSAME else None, "unit": unit, "outliers": outliers,
            "allow_small_clusters": allow_small_clusters, "cluster_params": cluster_params or {},
            "synth": synthesizer_settings(synthesizer) if synthesizer is not None else None,
            "method_params": method_params or {}, "blend": blend, "color": color, "forehead": forehead, "feather": feather,
            "size": size, "quality": quality, "jobs": jobs, "random_state": random_state, "max_pixels": max_pixels,
            "encodings": enc_meta,
        },
        "clustering": cluster_info,
        "counts": {"images": len(images), "faces": n_faces, "photos_with_faces": len(written), "clusters": len(sur_landmarks),
                   "no_face": len(no_face), "unreadable": len(unreadable)},
        "seconds": seconds,
        "no_face": [{"path": p, "reason": r} for p, r in no_face],
        "unreadable": [{"path": p, "reason": r} for p, r in unreadable],
        "release": {"private": str(layout.private.resolve()), "names": names, "keep_folders": keep_folders,
                    "key_file": str(Path(key_file).resolve()) if key_file is not None else str(layout.key_path.resolve()) if names == "hash" else None,
                    "no_face": policy, "surrogates_shared": bool(surrogates and method == KSAME),
                    "held_back": [{"path": p, "reason": r} for p, r in held_back]},
        "second_pass": recovery.as_dict() if recovery is not None else None,
        "safety_net": ({**net.as_dict(), "threshold": match_threshold,
                        "unprotected": [{"output": u.path, "path": back.get(u.path, u.path), "face": u.face,
                                         "kind": u.kind, "box_ltrb": list(u.box_ltrb), "distance": u.distance,
                                         "nearest_original": u.original} for u in net.unprotected]}
                       if net is not None else None),
    }
    run["counts"].update(held_back=len(held_back), recovered_faces=recovery.n_faces if recovery is not None else 0,
                         unprotected_faces=len(net.unprotected) if net is not None else None, written=len(outputs))
    atomic_write_text(layout.run_path, json.dumps(run, indent=1, default=_jsonable))
    log.info("anonymize: %s", report.summary())
    return report


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return repr(value)


def _encodings(root, encodings, *, encoder, detector, upsample, jobs, progress, max_pixels, save_encodings):
    """The dataset's encodings, the skip reasons by path, and what to record about them."""
    from anonfaces.encode import Encodings, encode_dataset, read_skips, skipped_path_for

    skipped: dict[str, str] = {}
    if encodings is None:
        with tempfile.TemporaryDirectory(prefix="anonfaces-") as tmp:
            path = Path(save_encodings) if save_encodings is not None else Path(tmp) / "encodings.npz"
            report = encode_dataset(root, path, encoder=encoder, detector=detector, upsample=upsample, jobs=jobs,
                                    progress=progress, max_pixels=max_pixels)
            enc = Encodings.load(report.encodings_path)
            skipped = dict(report.skipped)
        source = str(report.encodings_path) if save_encodings is not None else None
    else:
        if isinstance(encodings, Encodings):
            enc, source = encodings, None
        else:
            enc, source = Encodings.load(encodings), str(encodings)
            sk = skipped_path_for(encodings)
            if sk.is_file():
                skipped = dict(read_skips(sk))
        missing = [p for p in dict.fromkeys(enc.paths.tolist()) if not (root / p).is_file()]
        if missing:
            raise BadInputError(
                f"the encodings do not match the dataset {root}: {len(missing)} encoded photos are not there "
                f"(e.g. {missing[0]}); encodings made from {enc.meta.get('dataset', '?')}"
            )
    meta = {"file": source, "encoder": enc.meta.get("encoder"), "detector": enc.meta.get("detector"),
            "dataset": enc.meta.get("dataset"), "n_faces": len(enc)}
    return enc, skipped, meta


def _cluster(enc, clusters, *, k, algo, unit, outliers, params, random_state, allow_small_clusters, n_given=None):
    """(labels, units, info) of every face of ``enc``.

    A given clustering covers the first ``n_given`` faces (those of the encodings it was
    made from); faces the second detector pass added after them join the cluster
    whose mean embedding is nearest (a cluster only grows, so it keeps its k).
    """
    if clusters is not None and n_given is not None and n_given < len(enc):
        from anonfaces.utils.images import identity_of

        labels, units, info = _cluster(enc.subset(np.arange(n_given)), clusters, k=k, algo=algo, unit=unit,
                                       outliers=outliers, params=params, random_state=random_state,
                                       allow_small_clusters=allow_small_clusters)
        extra = np.arange(n_given, len(enc))
        ids = np.unique(labels)
        centroids = np.stack([enc.embeddings[:n_given][labels == c].mean(0) for c in ids])
        d = ((enc.embeddings[extra, None, :] - centroids[None]) ** 2).sum(-1)
        new_labels = ids[d.argmin(1)]
        new_units = [identity_of(p) or f"{p}#{f}" for p, f in zip(enc.paths[extra].tolist(), enc.face_index[extra].tolist())]
        info = {**info, "second_pass_faces_assigned_to_nearest_cluster": len(extra)}
        return np.concatenate([labels, new_labels]), np.concatenate([units, np.asarray(new_units, dtype=units.dtype if len(units) else str)]), info
    from anonfaces.cluster import Clustering, cluster_encodings, read_clusters

    if len(enc) == 0:
        return np.empty(0, np.int64), np.empty(0, str), {}
    if clusters is not None:
        clustering = clusters if isinstance(clusters, Clustering) else read_clusters(clusters)
        index = {(p, int(f)): i for i, (p, f) in enumerate(zip(clustering.paths.tolist(), clustering.face_index.tolist()))}
        try:
            order = np.array([index[(p, int(f))] for p, f in zip(enc.paths.tolist(), enc.face_index.tolist())])
        except KeyError as exc:
            raise BadInputError(f"the clustering has no row for face {exc.args[0]} of the encodings") from None
        labels = np.asarray(clustering.labels)[order]
        units = np.asarray(clustering.units)[order]
        if np.all(units == ""):
            units = np.array([f"{p}#{f}" for p, f in zip(enc.paths.tolist(), enc.face_index.tolist())])
        info = dict(clustering.info)
        info.setdefault("source", str(clusters) if not isinstance(clusters, Clustering) else "given")
    else:
        if unit == "identity" and enc.has_identities:
            n_people = np.unique(enc.identities).size
            if n_people < k:
                raise BadInputError(f"k={k} is larger than the number of people in the dataset ({n_people})")
        elif len(enc) < k:
            raise BadInputError(f"k={k} is larger than the number of faces in the dataset ({len(enc)})")
        clustering = cluster_encodings(enc, algo=algo, k=k, unit=unit, outliers=outliers, params=params,
                                       random_state=random_state)
        if not (np.array_equal(clustering.paths, enc.paths) and np.array_equal(clustering.face_index, enc.face_index)):
            raise RuntimeError("cluster_encodings returned rows in another order than the encodings")  # a bug, not user error
        labels, units, info = np.asarray(clustering.labels, np.int64), np.asarray(clustering.units), dict(clustering.info)
    small = check_min_size(labels, units, k)
    if small:
        sizes = ", ".join(f"cluster {c}: {n}" for c, n in small[:10])
        if not allow_small_clusters:
            raise BadInputError(
                f"{len(small)} clusters stand for fewer than k={k} people ({sizes}); they would not be k-anonymous. "
                f"Change the clustering, or pass --allow-small-clusters to accept them explicitly"
            )
        log.warning("%d clusters have fewer than k=%d people (accepted explicitly): %s", len(small), k, sizes)
    info["n_small_clusters"] = len(small)
    return labels, np.asarray(units).astype(str), info


def _align_all(workers: _Workers, enc, by_photo, *, size):
    n = len(enc)
    crops = np.empty((n, size, size, 3), np.uint8)
    points = np.empty((n, 68, 2), np.float32)
    tasks = [(rel, rows, enc.landmarks68[rows], tuple(int(v) for v in enc.image_sizes[rows[0]])) for rel, rows in by_photo.items()]
    bad = []
    for rel, rows, result, error in workers.imap(_align_task, tasks, desc="align"):
        if error is not None:
            bad.append((rel, error))
            continue
        crops[rows], points[rows] = result
    return crops, points, bad


def _synthesize_all(workers: _Workers, synthesizer, crops, points, embeddings, identities, labels,
                    folder: Path) -> dict[int, np.ndarray]:
    """Every cluster's surrogate; built-in synthesizers run in the workers, others (learned ones) here.

    ``identities`` (the members' labels, ``""`` when unknown) reach only synthesizers
    that declare ``uses_identities`` (`anonfaces.synthesize.base.call_synthesize`).
    """
    # labels as str, once (not per cluster); None for synthesizers that do not take them
    identities = np.asarray(identities).astype(str) if getattr(synthesizer, "uses_identities", False) else None
    if callable(getattr(synthesizer, "fit", None)) and len(crops):
        synthesizer.fit(crops, points)
    if folder.is_dir():  # an earlier run's surrogates (overwrite=True): remove them so none is left over
        for old in folder.glob("*.png"):
            old.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    clusters = np.unique(labels).tolist()
    members = {c: np.flatnonzero(labels == c) for c in clusters}
    if getattr(synthesizer, "parallel", False) and workers.pool is not None:
        tasks = [(synthesizer, c, crops[m], points[m], embeddings[m], _labels(identities, m)) for c, m in members.items()]
        return dict(workers.imap(_synthesize_task, tasks, desc="synthesize", unit="cluster", chunksize=1))
    result = {}
    from tqdm.auto import tqdm

    for c in tqdm(clusters, desc="synthesize", unit="cluster", disable=not workers.progress):
        m = members[c]
        result[int(c)] = _make_surrogate(synthesizer, int(c), crops[m], points[m], embeddings[m],
                                         _labels(identities, m), folder)
    return result


def _labels(identities, members: np.ndarray) -> list[str] | None:
    return None if identities is None else identities[members].tolist()


def _write_mapping(path: Path, enc, labels: np.ndarray, *, units=None, outputs: dict | None = None) -> None:
    """One row per face: the original photo, cluster, box, the output it went to ('' when held back) and its unit."""
    order = np.lexsort((enc.face_index, enc.paths))
    outputs = outputs or {}
    with atomic_open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(MAPPING_COLUMNS)
        for i in order.tolist():
            box = [f"{v:.1f}" for v in enc.boxes_ltrb[i].tolist()]
            unit = "" if units is None else str(units[i])
            w.writerow([enc.paths[i], int(enc.face_index[i]), int(labels[i]), *box, outputs.get(str(enc.paths[i]), ""), unit])


def read_mapping(path) -> list[dict]:
    """Rows of a ``mapping.csv`` as dicts (``face`` and ``cluster`` as int, the box as float)."""
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        r["face"], r["cluster"] = int(r["face"]), int(r["cluster"])
        for key in ("left", "top", "right", "bottom"):
            if key in r:
                r[key] = float(r[key])
    return rows
