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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from anonfaces.errors import BadInputError
from anonfaces.pipeline.layout import RunLayout, check_out_dir, output_name
from anonfaces.pipeline.options import (
    KSAME,
    AnonymizeOptions,
    ClusterOptions,
    EncodeOptions,
    as_record,
)
from anonfaces.pipeline.record import header, write_record
from anonfaces.synthesize.base import make_synthesizer, synthesizer_settings
from anonfaces.synthesize.mapping import NOT_CLUSTERED, Mapping
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

    def summary(self) -> str:
        what = f"{self.method}:{self.synth} k={self.k}, {self.n_clusters} clusters" if self.method == KSAME else self.method
        return (
            f"{self.n_images} images, {self.n_faces} faces replaced ({what}), {len(self.no_face)} without a face "
            f"copied, {len(self.unreadable)} unreadable, {self.seconds.get('total', 0):.1f} s -> {self.out}"
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
    layout = out if isinstance(out, RunLayout) else RunLayout.for_out(out)
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
    if options.is_ksame:
        t = time.perf_counter()
        if aligned is None or aligned.size != size or aligned.max_pixels != options.max_pixels:
            aligned = align_once(pool, root, encodings, size=size, max_pixels=options.max_pixels)
        crops, points = aligned.crops, aligned.points
        seconds["align"] = time.perf_counter() - t
        t = time.perf_counter()
        sur_landmarks = make_surrogates(pool, synthesizer, crops, points, encodings.embeddings, encodings.identities, labels,
                                        layout.surrogates)
        del crops, points
        seconds["synthesize"] = time.perf_counter() - t

    t = time.perf_counter()
    photos = [(rel, output_name(rel), [(encodings.landmarks68[i], int(labels[i]), sur_landmarks.get(int(labels[i])))
                                       for i in by_photo.get(rel, [])]) for rel in images]
    written, unreadable, n_faces = [], [], 0
    for rel, n, error in replace_faces(pool, root, layout.public, photos, method=options.method, blend=options.blend,
                                       method_params=options.method_params, seed=options.random_state,
                                       quality=options.quality, max_pixels=options.max_pixels, surrogates=layout.surrogates):
        if error is not None:
            unreadable.append((rel, error))
            continue
        n_faces += n
        if n:
            written.append(rel)
    seconds["rewrite"] = time.perf_counter() - t
    skipped = skipped or {}
    faceless = set(images) - set(by_photo) - {p for p, _ in unreadable}
    no_face = sorted((p, skipped.get(p, "no face in the encodings")) for p in faceless)
    if unreadable and any(p in by_photo for p, _ in unreadable):
        raise BadInputError("photos with faces could not be read again: " + "; ".join(f"{p}: {r}" for p, r in unreadable[:3]))

    mapping = Mapping(encodings.paths, encodings.face_index, labels, encodings.boxes_ltrb)
    mapping.save(layout.mapping)
    seconds["total"] = sum(v for key, v in (records or {}).get("seconds", {}).items()) + time.perf_counter() - t_start
    synth_record = synthesizer_settings(synthesizer) if synthesizer is not None else None
    run = AnonymizeRun(out=layout.public, method=options.method, synth=synth_record.get("name") if synth_record else None,
                       k=options.k, n_images=len(images), n_faces=n_faces, n_clusters=len(sur_landmarks),
                       written=sorted(written), no_face=no_face, unreadable=sorted(unreadable), seconds=seconds,
                       dataset=root, layout=layout, mapping=mapping)
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
        },
        "clustering": cluster_info,
        "counts": {"images": len(images), "faces": n_faces, "photos_with_faces": len(written), "clusters": len(sur_landmarks),
                   "no_face": len(no_face), "unreadable": len(unreadable)},
        "seconds": seconds,
        "no_face": [{"path": p, "reason": r} for p, r in no_face],
        "unreadable": [{"path": p, "reason": r} for p, r in unreadable],
    }
    write_record(layout.run_record, record)
    log.info("anonymize: %s", run.summary())
    return run


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
    from anonfaces.encode import Encodings, encode_dataset, read_skips, skipped_path_for

    skipped: dict[str, str] = {}
    if encodings is None:
        with tempfile.TemporaryDirectory(prefix="anonfaces-") as tmp:
            path = Path(save_to) if save_to is not None else Path(tmp) / "encodings.npz"
            report = encode_dataset(root, path, encoder=options.encoder, detector=options.detector, upsample=options.upsample,
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
    meta = {"file": source, "encoder": enc.meta.get("encoder"), "detector": enc.meta.get("detector"),
            "dataset": enc.meta.get("dataset"), "n_faces": len(enc)}
    return enc, skipped, meta


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
    pool: WorkerPool | None = None,
    command: str | None = None,
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
    blend : str or dict
        The blend mode (with ``color``, ``forehead``, ``feather``: see
        `anonfaces.synthesize.blend.blend_surrogate`), or all of its keyword settings as one dict.
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

    Returns
    -------
    AnonymizeRun
    """
    from anonfaces.encode.pipeline import default_dataset

    root = Path(dataset) if dataset is not None else default_dataset()
    if not root.is_dir():
        raise BadInputError(f"dataset folder not found: {root}")
    out = Path(out)
    check_out_dir(root, out, overwrite=overwrite)
    blend_settings = dict(blend) if isinstance(blend, dict) else {"blend": blend, "color": color, "forehead": float(forehead),
                                                                  "feather": float(feather)}
    options = AnonymizeOptions(method=method, k=k, synth=synth, synth_params=synth_params or {}, method_params=method_params or {},
                               blend=blend_settings, allow_small_clusters=allow_small_clusters, size=size, quality=quality,
                               max_pixels=max_pixels, random_state=random_state)
    cluster_options = ClusterOptions(algo=algo, k=options.k, unit=unit, outliers=outliers, params=cluster_params or {},
                                     random_state=random_state) if options.is_ksame else None
    encode_options = EncodeOptions(encoder=encoder, detector=detector, upsample=upsample, max_pixels=max_pixels)
    if options.is_ksame:
        make_synthesizer(synth, **options.synth_params)  # refuse a bad synthesizer or its settings before any work
    if not list_images(root):
        raise BadInputError(f"no image files (jpg, png, ...) found under {root}")
    with pool_for(pool, jobs, progress) as workers:
        t = time.perf_counter()
        enc, skipped, enc_meta = load_encodings(root, encodings, encode_options, pool=workers, save_to=save_encodings)
        seconds = {"encode": time.perf_counter() - t}
        t = time.perf_counter()
        clustering = None
        if options.is_ksame and len(enc):
            if clusters is not None:
                from anonfaces.cluster import Clustering, read_clusters

                clustering = clusters if isinstance(clusters, Clustering) else read_clusters(clusters)
                clustering.info.setdefault("source", str(clusters) if not isinstance(clusters, Clustering) else "given")
            else:
                clustering = cluster_faces(enc, cluster_options)
        seconds["cluster"] = time.perf_counter() - t
        records = {"encodings": enc_meta, "seconds": seconds,
                   "clustering_options": as_record(cluster_options) if cluster_options is not None else None}
        run = anonymize(root, enc, clustering, options, out, pool=workers, skipped=skipped, records=records, command=command)
    return run
