"""The evaluation sweep: every method x every k on one dataset, one tidy table, plots and a report.

`evaluate_dataset` is the library entry point behind ``anonfaces evaluate --dataset``.
It is a loop: for every method and k, one anonymization (`anonfaces.pipeline.anonymize`)
scored by one shared `Evaluation` (the originals are measured once), all in one
worker pool::

    OUT/                          shareable: no paths, no embeddings
      metrics.csv                 the tidy table (`anonfaces.evaluate.table`)
      report.md                   the plots and summary tables
      plots/*.png                 privacy vs k (with 1/k), IL vs k, frontier, SSIM/PSNR buckets, examples
    OUT.private/                  never shared (`RunLayout`): what links photos to people
      run.json                    options, paths, versions, timings (stage_seconds), what was skipped
      cache/encodings.npz         the dataset's encodings
      cache/subset/<name>/        links to the photos of a `DatasetSubset` (when one is asked for)
      cache/clusters-<algo>-<unit>-k<k>-seed<seed>.csv  one clustering per k, shared by every ksame method
      runs/<method>/k<k>/         each anonymization (photos under the dataset's names, mapping.csv, run.json)

Every entry of ``cache/`` and every run folder is reused only while its content
key is unchanged (`anonfaces.pipeline.cache`: the photos' bytes, the encodings'
arrays, the options), so an interrupted sweep continues where it stopped.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import numpy as np

from anonfaces.errors import BadInputError
from anonfaces.evaluate.subset import DatasetSubset, link_subset
from anonfaces.pipeline.anonymize import align_once, anonymize, cluster_faces
from anonfaces.pipeline.cache import (
    cached,
    content_key,
    encodings_digest,
    files_digest,
    model_files_digest,
)
from anonfaces.pipeline.evaluate import Evaluation, EvaluationReport, finish, n_people
from anonfaces.pipeline.layout import RunLayout
from anonfaces.pipeline.options import (
    DEFAULT_ATTRIBUTES,
    DEFAULT_KS,
    DEFAULT_METHODS,
    DEFAULT_RECOGNIZERS,
    NONE,
    AnonymizeOptions,
    ClusterOptions,
    EncodeOptions,
    EvaluateOptions,
    MethodSpec,
    as_record,
    check_ks,
    parse_methods,
)
from anonfaces.pipeline.record import header
from anonfaces.synthesize.surrogates import auto_crop_size
from anonfaces.utils.images import identity_of, list_images
from anonfaces.utils.parallel import WorkerPool, pool_for

log = logging.getLogger(__name__)


def _with_spec_params(params: dict, spec: MethodSpec) -> dict:
    """The anonymization settings of one sweep method: its own settings (``d2gan:detail=true``) over ``method_params``."""
    if not spec.params:
        return params
    return {**params, "method_params": {**dict(params.get("method_params") or {}), **dict(spec.params)}}


def cached_encodings(dataset, cache_dir, *, encodings=None, detector="hog", upsample=1, jobs=None, progress=True,
                     pool: WorkerPool | None = None):
    """The dataset's dlib encodings: ``encodings`` if given, else ``cache_dir/encodings.npz`` (made when stale)."""
    from anonfaces.encode import Encodings, encode_photos

    if encodings is not None:
        return encodings if isinstance(encodings, Encodings) else Encodings.load(encodings)
    root = Path(dataset)
    options = EncodeOptions(encoder="dlib", detector=detector, upsample=upsample)
    key = content_key("encodings", files_digest(root, list_images(root)), as_record(options))

    def make(path):
        with pool_for(pool, jobs, progress) as workers:
            return encode_photos(root, path, encoder="dlib", detector=detector, upsample=upsample, pool=workers).encodings

    return cached(Path(cache_dir) / "encodings.npz", key, make, Encodings.load)


def cached_clustering(enc, cache_dir, options: ClusterOptions, *, enc_digest: str | None = None):
    """One clustering of ``enc`` per options, in ``cache_dir``."""
    from anonfaces.cluster import Clustering

    path = Path(cache_dir) / f"clusters-{options.algo}-{options.unit}-k{options.k}-seed{options.random_state}.csv"
    key = content_key("clustering", enc_digest or encodings_digest(enc), as_record(options))

    def make(p):
        clustering = cluster_faces(enc, options)
        clustering.save(p)
        return clustering

    return cached(path, key, make, Clustering.load)


def evaluate_dataset(
    dataset,
    out,
    *,
    subset: DatasetSubset | dict | None = None,
    methods=DEFAULT_METHODS,
    ks=DEFAULT_KS,
    recognizers=DEFAULT_RECOGNIZERS,
    recognizer_settings: dict | None = None,
    encodings=None,
    algo: str = "fixed-kmeans",
    unit: str = "identity",
    reid_min_photos: int = 2,
    attributes=None,
    attribute_names=DEFAULT_ATTRIBUTES,
    detect: bool = True,
    measure_quality: bool = True,
    anonymize_params: dict | None = None,
    examples: int = 4,
    plots: bool = True,
    detector: str = "hog",
    upsample: int = 1,
    jobs: int | None = None,
    random_state: int = 0,
    progress: bool = True,
    command: str | None = None,
    pool: WorkerPool | None = None,
) -> EvaluationReport:
    """Anonymize ``dataset`` with every method at every k and measure privacy and utility.

    Parameters
    ----------
    dataset : path
        Folder of photos; identities are the first folder level (needed for the
        identity-level and parrot attacks and for fisherfaces).
    out : path
        Output folder (see the module docstring). Must not be inside ``dataset``.
    subset : DatasetSubset or dict, optional
        Evaluate only these photos of ``dataset`` (``{"people": 60, "photos_per_person": 10,
        "min_photos": 10}``; the rule is in `anonfaces.evaluate.subset`). They are linked
        into ``OUT/cache/subset/`` and every stage sees only them; the rule is recorded in
        run.json and names the dataset in metrics.csv (``lfw[people=60,...]``).
    methods : list of str or str
        ``ksame:<synth>`` (``ksame:morph``, ``ksame:pixel``, ...), baselines
        (``blur``, ``pixelate``, ``mask``, ``closing``, ``blocking``, ``inversion``, ``d2gan``; a baseline's
        settings after its name, ``d2gan:detail=true:region=inner``, override ``method_params``) and ``none``
        (the originals, the reference; always added).
    ks : list of int or str
        k values for the ksame methods (baselines have no k and run once).
    recognizers : list of str
        Attackers, names in `RECOGNIZERS`; ``recognizer_settings`` maps a name to its
        settings (``{"onnx": {"model": "facenet.onnx"}}``).
    encodings : path or Encodings, optional
        dlib encodings of ``dataset`` to reuse (else cached in ``OUT/cache``).
    algo, unit : clustering for the ksame methods (`anonfaces.cluster.cluster_encodings`).
    reid_min_photos : int
        Identity-level and parrot attacks probe the people with at least this many photos.
    attributes : path, optional
        CelebA-format attribute file: adds attribute agreement and downstream utility
        for ``attribute_names``.
    detect : bool
        Re-run the detector on anonymized photos (hit rate, landmark displacement).
    measure_quality : bool
        SSIM and PSNR against the originals.
    anonymize_params : dict, optional
        Further settings of every anonymization (`AnonymizeOptions` fields: ``blend``,
        ``method_params``, ``synth_params``, ``size``, ``quality``, ...).
    examples : int
        Photos in the example grids (0: none).
    jobs : int or None
        Worker processes (None: every core) when no ``pool`` is given; one pool serves the whole sweep.
    command : str, optional
        The command line, recorded in run.json.
    """
    t0 = time.perf_counter()
    root = Path(dataset)
    if not root.is_dir():
        raise BadInputError(f"dataset folder not found: {root}")
    out = Path(out)
    if root.resolve() == out.resolve() or root.resolve() in out.resolve().parents:
        raise BadInputError(f"--out {out} is inside the dataset {root}; choose a folder outside it")
    # every name and setting is checked before any work
    specs = parse_methods(methods)
    if NONE not in [s.name for s in specs]:
        specs.insert(0, MethodSpec(NONE, NONE))
    k_values = list(check_ks(ks))
    options = EvaluateOptions(recognizers=recognizers, recognizer_settings=dict(recognizer_settings or {}),
                              reid_min_photos=reid_min_photos, attributes=attributes, attribute_names=attribute_names,
                              detect=detect, measure_quality=measure_quality, detector=detector, upsample=upsample,
                              random_state=random_state)
    # scored against the encodings by relative path: the dataset's names, every photo, no second pass (it would add
    # faces the encodings do not hold) and no safety net (the attacks measure what it would catch)
    params = {"names": "keep", "no_face": "copy", "second_pass": False, "safety_net": False, **dict(anonymize_params or {})}
    run_options = {(s.name, k): AnonymizeOptions.from_flat(method=s.method, k=k, synth=s.synth or "morph", random_state=random_state,
                                                          **_with_spec_params(params, s))
                   for s in specs if s.name != NONE for k in (k_values if s.uses_k else [None])}
    cluster_options = {k: ClusterOptions(algo=algo, k=k, unit=unit, random_state=random_state) for k in k_values}
    if isinstance(subset, dict):
        subset = DatasetSubset(**subset)
    layout = RunLayout.for_out(out)
    for folder in layout.folders():
        folder.mkdir(parents=True, exist_ok=True)
    source, dataset_name, subset_record = root, root.name, None
    t = time.perf_counter()
    if subset is not None and not subset.is_everything:
        photos = subset.select(source)
        root = link_subset(source, photos, layout.cache / "subset" / source.name)
        dataset_name = subset.describe(source.name)
        subset_record = {**subset.to_dict(), "description": dataset_name, "folder": str(root), "n_photos": len(photos),
                         "selected_people": sorted({identity_of(p) for p in photos})}
        log.info("evaluate: %s, %d photos linked into %s", dataset_name, len(photos), root)
    timings = {"subset": time.perf_counter() - t}
    stages: dict[str, dict[str, float]] = {}

    with pool_for(pool, jobs, progress) as workers:
        t = time.perf_counter()
        enc = cached_encodings(root, layout.cache, encodings=encodings, detector=detector, upsample=upsample, pool=workers)
        if subset_record is not None and encodings is not None:  # encodings of the whole dataset: keep the subset's faces
            enc = enc.subset(np.isin(enc.paths, photos))
        enc_digest = encodings_digest(enc)
        stages["originals"] = {"encode": time.perf_counter() - t}
        if len(enc) < 2:
            raise BadInputError(f"found {len(enc)} faces in {root}; the evaluation needs at least 2")
        evaluation = Evaluation(root, enc, options, dataset_name=dataset_name, pool=workers)
        stages["originals"].update(evaluation.seconds)
        timings["encode_and_originals"] = sum(stages["originals"].values())
        skipped = list(evaluation.skipped)
        images_digest = files_digest(root, list_images(root))

        rows: list[dict] = []
        run_dirs: dict[tuple[str, int | None], Path] = {}
        aligned: dict = {}  # crop size option -> AlignedFaces
        for spec in specs:
            for k in (k_values if spec.uses_k else [None]):
                label = spec.name if k is None else f"{spec.name} k={k}"
                t = time.perf_counter()
                if spec.name == NONE:
                    rows.extend(evaluation.reference_rows())
                    run_dirs[(NONE, None)] = root
                    timings[label] = time.perf_counter() - t
                    continue
                if spec.uses_k and k > n_people(enc):
                    skipped.append(f"{label}: k is larger than the {n_people(enc)} people in the dataset")
                    continue
                clustering = cached_clustering(enc, layout.cache, cluster_options[k], enc_digest=enc_digest) if spec.uses_k else None
                stage = stages[label] = {"cluster": time.perf_counter() - t}
                run_dir = layout.run(spec.folder, k)
                log.info("evaluate: %s", label)
                t_stage = time.perf_counter()
                opts = run_options[(spec.name, k)]
                key = content_key("anonymization", images_digest, enc_digest, as_record(opts),
                                  as_record(cluster_options[k]) if spec.uses_k else None, model_files_digest(opts))

                def make(folder, opts=opts, clustering=clustering, k=k):
                    shutil.rmtree(folder, ignore_errors=True)  # nothing of a stale run is left in it
                    if opts.is_ksame and aligned.get(opts.size) is None:  # the crops every ksame run shares, made once
                        size = opts.size if opts.size is not None else auto_crop_size(enc.landmarks68)
                        aligned[opts.size] = align_once(workers, root, enc, size=size, max_pixels=opts.max_pixels)
                    records = {"encodings": {"file": None, "encoder": enc.meta.get("encoder"), "detector": enc.meta.get("detector"),
                                             "dataset": enc.meta.get("dataset"), "n_faces": len(enc)},
                               "clustering_options": as_record(cluster_options[k]) if k is not None else None}
                    # a sweep's runs live in the sweep's private folder: each run's files stay together in one folder
                    return anonymize(root, enc, clustering, opts, RunLayout(Path(folder), Path(folder)), pool=workers, records=records, command=command,
                                     aligned=aligned.get(opts.size) if opts.is_ksame else None)

                cached(run_dir, key, make, lambda folder: None)
                stage["anonymize"] = time.perf_counter() - t_stage
                run_rows, seconds = evaluation.score(run_dir, spec.name, k, desc=label, private=run_dir)
                rows.extend(run_rows)
                stage.update(seconds)
                run_dirs[(spec.name, k)] = run_dir
                timings[label] = time.perf_counter() - t
        rows.extend(evaluation.attribute_reference_rows())
    record = {
        **header("evaluate", command=command),
        "dataset": str(source.resolve()),
        "dataset_name": dataset_name,
        "subset": subset_record,
        "options": as_record(options),
        "settings": {
            "methods": [s.name for s in specs], "ks": k_values,
            "recognizers": {n: r.settings() for n, r in evaluation.recognizers.items()},
            "algo": algo, "unit": unit, "reid_min_photos": reid_min_photos,
            "attributes": str(attributes) if attributes is not None else None, "attribute_names": list(options.attribute_names),
            "detect": detect, "measure_quality": measure_quality, "anonymize_params": params,
            "detector": detector, "upsample": upsample, "jobs": workers.jobs, "random_state": random_state,
        },
        "encodings": evaluation.record(),
        "runs": {f"{m}" + (f" k={k}" if k is not None else ""): str(p) for (m, k), p in run_dirs.items()},
        "seconds": timings,
        "stage_seconds": stages,
    }
    return finish(out, rows, record, enc=enc, run_dirs=run_dirs, ks=k_values, plots=plots, examples=examples, t0=t0,
                  skipped=skipped)
