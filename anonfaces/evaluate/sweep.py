"""The evaluation sweep: every method x every k on one dataset, one tidy table, plots and a report.

`evaluate_dataset` is the library entry point behind ``anonfaces evaluate``::

    OUT/
      metrics.csv                 the tidy table (`anonfaces.evaluate.table`)
      report.md                   the plots and summary tables
      run.json                    every setting, versions, timings, what was skipped
      plots/*.png                 privacy vs k (with 1/k), IL vs k, frontier, SSIM/PSNR buckets, examples
      cache/encodings.npz         the dataset's encodings (reused while the photos are unchanged)
      cache/subset/<name>/        links to the photos of a `DatasetSubset` (when one is asked for)
      cache/clusters-<algo>-k<k>.csv  one clustering per k, shared by every ksame method
      runs/<method>/k<k>/         each anonymization (`anonfaces.synthesize.anonymize_dataset`)

Runs whose folder already holds a finished anonymization with the same
settings are reused, so an interrupted sweep continues where it stopped.
``cache/`` and ``runs/*.private/`` (mapping.csv, run.json, encodings) link photos to clusters: keep OUT private.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from anonfaces._version import __version__
from anonfaces.errors import BadInputError
from anonfaces.evaluate import attributes as attr
from anonfaces.evaluate import protocols, quality
from anonfaces.evaluate.measure import Measurements, measure_photos
from anonfaces.evaluate.recognizers import RECOGNIZERS, make_recognizer
from anonfaces.evaluate.subset import DatasetSubset, link_subset
from anonfaces.evaluate.table import make_row, to_frame, write_table
from anonfaces.utils.atomic import atomic_write_text
from anonfaces.utils.images import identity_of, list_images

log = logging.getLogger(__name__)

NONE = "none"
DEFAULT_METHODS = ("ksame:morph", "ksame:pixel", "blur", "pixelate", "closing", "blocking")
DEFAULT_KS = (2, 3, 5, 10, 20)
DEFAULT_RECOGNIZERS = ("dlib", "eigenfaces", "fisherfaces", "lbp")


@dataclass(frozen=True)
class MethodSpec:
    """A method of the sweep: ``ksame:<synth>`` (uses k), a baseline name, or ``none``."""

    name: str
    method: str
    synth: str | None = None

    @property
    def uses_k(self) -> bool:
        return self.method == "ksame"

    @property
    def folder(self) -> str:
        return self.name.replace(":", "-")


def parse_methods(specs) -> list[MethodSpec]:
    """``["ksame:morph", "blur", ...]`` (or one comma-separated string) -> `MethodSpec` list, validated."""
    from anonfaces.synthesize import SYNTHESIZERS, load_optional_synthesizers
    from anonfaces.synthesize.baselines import BASELINES

    if isinstance(specs, str):
        specs = [s for s in specs.split(",")]
    out, seen = [], set()
    for raw in specs:
        spec = str(raw).strip()
        if not spec or spec in seen:
            continue
        seen.add(spec)
        if spec == NONE:
            out.append(MethodSpec(NONE, NONE))
        elif spec == "ksame" or spec.startswith("ksame:"):
            synth = spec.partition(":")[2] or "morph"
            if synth not in SYNTHESIZERS:
                load_optional_synthesizers()
            SYNTHESIZERS.get(synth)  # refuses unknown names with the valid ones
            out.append(MethodSpec(f"ksame:{synth}", "ksame", synth))
        elif spec in BASELINES:
            out.append(MethodSpec(spec, spec))
        else:
            valid = ["ksame:<synth>", *BASELINES.names(), NONE]
            raise BadInputError(f"unknown method {spec!r}; valid: {', '.join(valid)} (synthesizers: {', '.join(SYNTHESIZERS.names())})")
    if not out:
        raise BadInputError("no method given")
    return out


def parse_ks(ks) -> list[int]:
    """``[2, 5]`` or ``"2,5"`` -> sorted unique ints >= 2."""
    if isinstance(ks, str):
        ks = [v for v in ks.split(",") if v.strip()]
    try:
        values = sorted({int(v) for v in ks})
    except (TypeError, ValueError):
        raise BadInputError(f"k values {ks!r} must be integers") from None
    if not values or values[0] < 2:
        raise BadInputError(f"k values {values} must be integers >= 2 (k=1 hides no one)")
    return values


@dataclass
class EvaluationReport:
    """What `evaluate_dataset` wrote; ``table`` is the tidy metrics DataFrame."""

    out: Path
    table: object
    plots: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def metrics_path(self) -> Path:
        return self.out / "metrics.csv"

    @property
    def report_path(self) -> Path:
        return self.out / "report.md"

    def summary(self) -> str:
        return f"{len(self.table)} metric rows, {len(self.plots)} plots, {self.seconds:.0f} s -> {self.report_path}"


# --- encodings and clusterings, cached --------------------------------------------------------
def _dataset_key(root: Path, images: list[str], encoder_settings: dict) -> str:
    h = hashlib.sha256()
    for rel in images:
        st = (root / rel).stat()
        h.update(f"{rel}\0{st.st_size}\0{int(st.st_mtime)}\n".encode())
    h.update(json.dumps(encoder_settings, sort_keys=True).encode())
    return h.hexdigest()


def cached_encodings(dataset, cache_dir, *, encodings=None, detector="hog", upsample=1, jobs=None, progress=True):
    """The dataset's dlib encodings: ``encodings`` if given, else ``cache_dir/encodings.npz`` (made when stale)."""
    from anonfaces.encode import Encodings, encode_dataset

    if encodings is not None:
        return encodings if isinstance(encodings, Encodings) else Encodings.load(encodings)
    root, cache_dir = Path(dataset), Path(cache_dir)
    path, key_file = cache_dir / "encodings.npz", cache_dir / "encodings.key"
    key = _dataset_key(root, list_images(root), {"encoder": "dlib", "detector": detector, "upsample": upsample})
    if path.is_file() and key_file.is_file() and key_file.read_text().strip() == key:
        log.info("reusing cached encodings %s", path)
        return Encodings.load(path)
    encode_dataset(root, path, encoder="dlib", detector=detector, upsample=upsample, jobs=jobs, progress=progress)
    atomic_write_text(key_file, key)
    return Encodings.load(path)


def _clustering(enc, cache_dir: Path, *, k, algo, unit, random_state):
    from anonfaces.cluster import Clustering, cluster_encodings

    path = cache_dir / f"clusters-{algo}-{unit}-k{k}-seed{random_state}.csv"
    if path.is_file():
        clustering = Clustering.load(path)
        if np.array_equal(clustering.paths, enc.paths) and np.array_equal(clustering.face_index, enc.face_index):
            return clustering
    clustering = cluster_encodings(enc, algo=algo, k=k, unit=unit, random_state=random_state)
    clustering.save(path)
    return clustering


def _n_people(enc) -> int:
    return int(np.unique(enc.identities).size) if enc.has_identities else len(enc)


# --- one anonymization ----------------------------------------------------------------------
def _anonymize(spec: MethodSpec, k, dataset: Path, run_dir: Path, enc, clustering, *, algo, random_state, jobs, progress,
               anonymize_params):
    from anonfaces.synthesize.anonymize import anonymize_dataset

    private = run_dir.with_name(run_dir.name + ".private")  # mapping, run record, encodings (evaluate's OUT is private anyway)
    done = private / "run.json"
    want = {"method": spec.method, "k": k if spec.uses_k else None, "synth": spec.synth, "algo": algo if spec.uses_k else None,
            "random_state": random_state, "params": anonymize_params}
    marker = private / "evaluate-settings.json"
    if done.is_file() and marker.is_file() and json.loads(marker.read_text()) == want and (private / "mapping.csv").is_file():
        log.info("reusing %s", run_dir)
        return
    kwargs = dict(anonymize_params or {})
    if spec.uses_k:
        kwargs.update(k=k, synth=spec.synth, clusters=clustering, algo=algo)
    # measured against the encodings by relative path: same names, every photo, no second pass (it would add faces
    # the encodings do not hold) and no safety net (the attacks measure what it would catch)
    kwargs = {"names": "keep", "no_face": "copy", "second_pass": False, "safety_net": False, **kwargs}
    anonymize_dataset(dataset, run_dir, method=spec.method, encodings=enc, random_state=random_state, jobs=jobs,
                      progress=progress, overwrite=True, private=private, **kwargs)
    atomic_write_text(marker, json.dumps(want, sort_keys=True))


# --- scoring ----------------------------------------------------------------------------------
@dataclass
class _Context:
    dataset_name: str
    enc: object
    recognizers: dict
    originals: dict  # recognizer name -> embeddings of the original faces
    identities: np.ndarray
    reid_probe: np.ndarray  # faces whose person has >= reid_min_photos photos
    attribute_labels: object = None
    attribute_test: np.ndarray | None = None


def _embeddings(ctx: _Context, meas: Measurements) -> dict[str, np.ndarray]:
    out = {}
    for name, rec in ctx.recognizers.items():
        feats = meas.features[name]
        out[name] = rec.embed(feats) if rec.needs_fit else np.asarray(feats, np.float32)
    return out


def privacy_rows(ctx: _Context, method: str, k, anonymized: dict[str, np.ndarray], readable: np.ndarray) -> list[dict]:
    """RI, IL, closed-set, identity-level and parrot re-identification for every recognizer."""
    rows = []
    bound = protocols.k_bound(k) if k is not None else None
    keys = np.arange(len(ctx.identities))
    ok = readable
    for name, rec in ctx.recognizers.items():
        G, A = ctx.originals[name], anonymized[name]
        n = int(ok.sum())

        def row(metric, value, b=bound, nn=n, rec_name=name):
            return make_row(ctx.dataset_name, method, k, metric, value, recognizer=rec_name, bound=b, n=nn)

        if rec.threshold is not None:
            rows.append(row("threshold", rec.threshold, None))
            rows.append(row("ri", protocols.reidentification_rate(G[ok], A[ok], rec.threshold)))
        rows.append(row("il", protocols.information_loss(G[ok], A[ok]), None))
        rows.append(row("closed_set", protocols.closed_set_identification(A[ok], G, np.flatnonzero(ok))))
        probe = ok & ctx.reid_probe
        if probe.any():
            ids = ctx.identities
            n_probe = int(probe.sum())
            rows.append(row("identity_reid", protocols.identity_reidentification(
                A[probe], ids[probe], G, ids, probe_keys=keys[probe], gallery_keys=keys), bound, n_probe))
            rows.append(row("parrot_reid", protocols.parrot_reidentification(
                A[probe], ids[probe], A[ok], ids[ok], probe_keys=keys[probe], gallery_keys=keys[ok]), bound, n_probe))
    return rows


def utility_rows(ctx: _Context, method: str, k, meas: Measurements, anonymized: dict, clustering=None) -> list[dict]:
    rows = []
    name = ctx.dataset_name
    if clustering is not None:
        from anonfaces.cluster import metrics as cm

        labels = _labels_for(ctx.enc, clustering)
        rows.append(make_row(name, method, k, "ssd", cm.ssd(ctx.enc.embeddings, labels), n=len(labels)))
        rows.append(make_row(name, method, k, "clusters", int(np.unique(labels).size), n=len(labels)))
    if np.isfinite(meas.ssim).any():
        good = np.isfinite(meas.face_share) & ~np.isnan(meas.ssim)
        for metric, values in (("ssim", meas.ssim), ("psnr", meas.psnr)):
            for bucket, (mean, count) in quality.bucket_means(values[good], meas.face_share[good]).items():
                rows.append(make_row(name, method, k, metric, mean, subset=bucket, n=count))
    if meas.settings.get("detector"):
        ok = meas.readable
        rows.append(make_row(name, method, k, "detection_rate", meas.detected[ok].mean() if ok.any() else np.nan, n=int(ok.sum())))
        found = meas.detected & ok
        disp = meas.displacement[found]
        rows.append(make_row(name, method, k, "landmark_displacement", disp.mean() if disp.size else np.nan, n=int(disp.size)))
    if ctx.attribute_labels is not None and "dlib" in anonymized:
        rows.extend(_attribute_rows(ctx, method, k, anonymized["dlib"], meas.readable))
    return rows


def _attribute_rows(ctx: _Context, method, k, A: np.ndarray, readable: np.ndarray) -> list[dict]:
    rows = []
    G = ctx.originals["dlib"]
    test = ctx.attribute_test & readable
    train = ~ctx.attribute_test & readable
    for attribute in ctx.attribute_labels.columns:
        y = ctx.attribute_labels[attribute].to_numpy()
        if np.unique(y[train]).size < 2 or not test.any():
            log.warning("attribute %s: one class only in the training faces; skipped", attribute)
            continue
        agree = attr.attribute_agreement(G[train], y[train], G[test], A[test], y[test])
        base = {"subset": attribute, "recognizer": "dlib", "n": int(test.sum())}
        rows.append(make_row(ctx.dataset_name, method, k, "attribute_agreement", agree["agreement"], **base))
        rows.append(make_row(ctx.dataset_name, method, k, "attribute_accuracy", agree["accuracy_anonymized"], **base))
        down = attr.downstream_utility(A[train], G[train], y[train], G[test], y[test])
        rows.append(make_row(ctx.dataset_name, method, k, "downstream_accuracy", down["accuracy_anonymized_train"], **base))
        rows.append(make_row(ctx.dataset_name, method, k, "downstream_ratio", down["ratio"], **base))
    return rows


def _labels_for(enc, clustering) -> np.ndarray:
    index = {(p, int(f)): int(c) for p, f, c in zip(clustering.paths.tolist(), clustering.face_index.tolist(), clustering.labels.tolist())}
    return np.array([index[(p, int(f))] for p, f in zip(enc.paths.tolist(), enc.face_index.tolist())], np.int64)


# --- the sweep ----------------------------------------------------------------------------------
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
    attribute_names=attr.DEFAULT_ATTRIBUTES,
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
        (``blur``, ``pixelate``, ``mask``, ``closing``, ``blocking``) and ``none``
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
        Re-run the detector on anonymized photos (hit rate, landmark displacement; about a fifth
        of each measuring pass, the dlib attacker being most of the rest).
    measure_quality : bool
        SSIM and PSNR against the originals.
    anonymize_params : dict, optional
        Further keyword arguments of `anonymize_dataset` (``blend``, ``method_params``, ...).
    examples : int
        Photos in the example grids (0: none).
    jobs : int or None
        Worker processes (None: every core).
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
    specs = parse_methods(methods)
    if NONE not in [s.name for s in specs]:
        specs.insert(0, MethodSpec(NONE, NONE))
    k_values = parse_ks(ks)
    names = [recognizers] if isinstance(recognizers, str) else list(recognizers)
    names = [n.strip() for r in names for n in str(r).split(",") if n.strip()]
    for n in names:
        RECOGNIZERS.get(n)
    if not isinstance(reid_min_photos, (int, np.integer)) or reid_min_photos < 2:
        raise BadInputError(f"reid_min_photos={reid_min_photos!r} must be an integer >= 2")
    settings_by_name = dict(recognizer_settings or {})
    if isinstance(subset, dict):
        subset = DatasetSubset(**subset)
    out.mkdir(parents=True, exist_ok=True)
    cache = out / "cache"
    source, dataset_name, subset_record = root, root.name, None
    t = time.perf_counter()
    if subset is not None and not subset.is_everything:
        photos = subset.select(source)
        root = link_subset(source, photos, cache / "subset" / source.name)
        dataset_name = subset.describe(source.name)
        subset_record = {**subset.to_dict(), "description": dataset_name, "folder": str(root), "n_photos": len(photos),
                         "selected_people": sorted({identity_of(p) for p in photos})}
        log.info("evaluate: %s, %d photos linked into %s", dataset_name, len(photos), root)
    timings = {"subset": time.perf_counter() - t}
    stages: dict[str, dict[str, float]] = {}

    t = time.perf_counter()
    enc = cached_encodings(root, cache, encodings=encodings, detector=detector, upsample=upsample, jobs=jobs, progress=progress)
    if subset_record is not None and encodings is not None:  # encodings of the whole dataset: keep the subset's faces
        enc = enc.subset(np.isin(enc.paths, photos))
    stages["originals"] = {"encode": time.perf_counter() - t}
    if len(enc) < 2:
        raise BadInputError(f"found {len(enc)} faces in {root}; the evaluation needs at least 2")
    identities = enc.identities if enc.has_identities else np.array([f"{p}#{f}" for p, f in zip(enc.paths, enc.face_index)])
    skipped: list[str] = []
    if not enc.has_identities:
        skipped.append("identity-level and parrot attacks, fisherfaces: the dataset has no identity folders")
        if "fisherfaces" in names:
            names.remove("fisherfaces")
    recs = {n: make_recognizer(n, **settings_by_name.get(n, {})) for n in names}
    if not recs:
        raise BadInputError("no recognizer left to attack with")

    # the original faces, once: features and fitted recognizers
    t = time.perf_counter()
    original = measure_photos(root, enc, recs, detect=False, jobs=jobs, progress=progress, desc="originals")
    stages["originals"]["measure"] = time.perf_counter() - t
    t_fit = time.perf_counter()
    fit_ids = identities if enc.has_identities else None
    for rec_name, rec in recs.items():
        if rec.needs_fit:
            rec.fit(original.features[rec_name][original.readable], None if fit_ids is None else fit_ids[original.readable])
    originals = {n: (recs[n].embed(original.features[n]) if recs[n].needs_fit else np.asarray(original.features[n], np.float32)) for n in recs}
    people, counts = np.unique(identities, return_counts=True)
    many = set(people[counts >= reid_min_photos].tolist()) if enc.has_identities else set()
    ctx = _Context(dataset_name, enc, recs, originals, identities, np.isin(identities, list(many)))
    if attributes is not None:
        if "dlib" not in recs:
            raise BadInputError("attribute metrics use dlib embeddings: add 'dlib' to the recognizers")
        ctx.attribute_labels = attr.attribute_labels(enc.paths, attr.read_attributes(attributes), attribute_names)
        ctx.attribute_test = attr.identity_split(identities, test_size=0.5, random_state=random_state)
    stages["originals"]["fit"] = time.perf_counter() - t_fit
    timings["encode_and_originals"] = sum(stages["originals"].values())

    rows: list[dict] = []
    run_dirs: dict[tuple[str, int | None], Path] = {}
    for spec in specs:
        for k in (k_values if spec.uses_k else [None]):
            label = spec.name if k is None else f"{spec.name} k={k}"
            t = time.perf_counter()
            if spec.name == NONE:
                rows.extend(privacy_rows(ctx, NONE, None, originals, original.readable))
                run_dirs[(NONE, None)] = root
                timings[label] = time.perf_counter() - t
                continue
            if spec.uses_k and k > _n_people(enc):
                skipped.append(f"{label}: k is larger than the {_n_people(enc)} people in the dataset")
                continue
            clustering = _clustering(enc, cache, k=k, algo=algo, unit=unit, random_state=random_state) if spec.uses_k else None
            stage = stages[label] = {"cluster": time.perf_counter() - t}
            run_dir = out / "runs" / spec.folder / (f"k{k}" if k is not None else "all")
            log.info("evaluate: %s", label)
            t_stage = time.perf_counter()
            _anonymize(spec, k, root, run_dir, enc, clustering, algo=algo, random_state=random_state, jobs=jobs,
                       progress=progress, anonymize_params=anonymize_params)
            stage["anonymize"] = time.perf_counter() - t_stage
            t_stage = time.perf_counter()
            meas = measure_photos(run_dir, enc, recs, original_root=root if measure_quality else None, detect=detect,
                                  detector=detector, upsample=upsample, jobs=jobs, progress=progress, desc=label)
            stage["measure"] = time.perf_counter() - t_stage
            t_stage = time.perf_counter()
            anonymized = _embeddings(ctx, meas)
            rows.extend(privacy_rows(ctx, spec.name, k, anonymized, meas.readable))
            rows.extend(utility_rows(ctx, spec.name, k, meas, anonymized, clustering))
            stage["score"] = time.perf_counter() - t_stage
            run_dirs[(spec.name, k)] = run_dir
            timings[label] = time.perf_counter() - t
    if attributes is not None:
        rows.extend(r for r in _attribute_rows(ctx, NONE, None, originals["dlib"], original.readable))
    table = to_frame(rows)
    write_table(table, out / "metrics.csv")

    plot_paths: list[Path] = []
    if plots:
        from anonfaces.evaluate import plots as plotting

        plot_paths = plotting.plot_all(table, out / "plots")
        if examples:
            plot_paths += plotting.example_grids(enc, run_dirs, out / "plots", n_photos=examples, ks=k_values)
    seconds = time.perf_counter() - t0
    record = {
        "format": "anonfaces-evaluate-run",
        "format_version": 1,
        "anonfaces_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": command,
        "machine": {"platform": platform.platform(), "machine": platform.machine(), "cpus": os.cpu_count()},
        "dataset": str(source.resolve()),
        "dataset_name": dataset_name,
        "subset": subset_record,
        "settings": {
            "methods": [s.name for s in specs], "ks": k_values, "recognizers": {n: r.settings() for n, r in recs.items()},
            "algo": algo, "unit": unit, "reid_min_photos": reid_min_photos,
            "attributes": str(attributes) if attributes is not None else None, "attribute_names": list(attribute_names),
            "detect": detect, "measure_quality": measure_quality, "anonymize_params": anonymize_params or {},
            "detector": detector, "upsample": upsample, "jobs": jobs, "random_state": random_state,
        },
        "encodings": {"n_faces": len(enc), "n_photos": int(np.unique(enc.paths).size), "n_people": _n_people(enc),
                      "people_probed": len(many), "faces_probed": int(ctx.reid_probe.sum()), "meta": enc.meta},
        "runs": {f"{m}" + (f" k={k}" if k is not None else ""): str(p) for (m, k), p in run_dirs.items()},
        "skipped": skipped,
        "seconds": {**timings, "total": seconds},
        "stage_seconds": stages,
    }
    atomic_write_text(out / "run.json", json.dumps(record, indent=1, default=str))
    from anonfaces.evaluate.report import write_report

    write_report(out, table, record, plot_paths)
    report = EvaluationReport(out, table, plot_paths, skipped, seconds)
    log.info("evaluate: %s", report.summary())
    return report
