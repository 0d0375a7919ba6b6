"""Scoring what exists: an `anonfaces anonymize` output measured against the originals.

`Evaluation` prepares, once per dataset, what every scored run shares: the
attackers fitted on the original faces and the originals' embeddings. The dlib
attacker's embeddings of the originals are the encodings' own (`dlib_from_encodings`:
the same network on the same aligned chips), so only the attackers that need
their own crops (eigenfaces, fisherfaces, LBP, ONNX) read the original photos.
`Evaluation.score` measures one anonymization folder (its photos at the encoded
faces' places, its `Mapping` for the clusters) and returns its metric rows.

`evaluate_run` is the library entry point behind ``anonfaces evaluate --run OUT``;
the sweep (`anonfaces.pipeline.sweep`) is a loop of anonymizations scored by one
`Evaluation`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from anonfaces.errors import BadInputError
from anonfaces.evaluate import attributes as attr
from anonfaces.evaluate.measure import measure_photos
from anonfaces.evaluate.recognizers import make_recognizer
from anonfaces.evaluate.scoring import (
    _attribute_rows,
    _Context,
    _embeddings,
    privacy_rows,
    utility_rows,
)
from anonfaces.evaluate.table import to_frame, write_table
from anonfaces.pipeline.layout import RunLayout
from anonfaces.pipeline.options import KSAME, NONE, EvaluateOptions, as_record
from anonfaces.pipeline.record import header, read_record, write_record
from anonfaces.synthesize.mapping import NOT_CLUSTERED, Mapping
from anonfaces.utils.parallel import WorkerPool, pool_for

log = logging.getLogger(__name__)


@dataclass
class EvaluationReport:
    """What an evaluation wrote; ``table`` is the tidy metrics DataFrame."""

    out: Path
    table: object
    plots: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def metrics_path(self) -> Path:
        return RunLayout.for_out(self.out).metrics

    @property
    def report_path(self) -> Path:
        return RunLayout.for_out(self.out).report

    def summary(self) -> str:
        return f"{len(self.table)} metric rows, {len(self.plots)} plots, {self.seconds:.0f} s -> {self.report_path}"


def n_people(enc) -> int:
    return int(np.unique(enc.identities).size) if enc.has_identities else len(enc)


def dlib_from_encodings(enc, recognizer, detector_settings: dict) -> bool:
    """True when ``enc`` holds what the dlib attacker would compute on the originals.

    The attacker embeds dlib's chip cut at the encoded 5-point landmarks with
    ``num_jitters``: the encodings hold exactly that when they are dlib embeddings
    with the same ``num_jitters``, made with the evaluation's detector settings.
    """
    encoder = enc.meta.get("encoder") or {}
    detector = enc.meta.get("detector") or {}
    same_detector = (detector.get("name"), int(detector.get("upsample", -1))) == (detector_settings["name"],
                                                                                 int(detector_settings["upsample"]))
    ok = (encoder.get("name") == "dlib" and int(encoder.get("num_jitters", 1)) == int(recognizer.num_jitters) and same_detector
          and enc.embeddings.shape[1:] == (128,))
    if not ok:
        log.info("evaluate: the encodings are not the dlib attacker's embeddings (encoder %s, detector %s); "
                 "the originals are embedded again", encoder, detector)
    return ok


class Evaluation:
    """What scoring needs from the originals, made once: fitted attackers and the originals' embeddings.

    Parameters
    ----------
    root : path
        The original photos.
    enc : Encodings
        Their faces (every scored run replaced exactly these).
    options : EvaluateOptions
    dataset_name : str
        The ``dataset`` column of metrics.csv.
    pool : WorkerPool
    """

    def __init__(self, root, enc, options: EvaluateOptions, *, dataset_name: str, pool: WorkerPool):
        self.root, self.enc, self.options, self.pool = Path(root), enc, options, pool
        self.skipped: list[str] = []
        self.seconds: dict[str, float] = {}
        if len(enc) < 2:
            raise BadInputError(f"found {len(enc)} faces in {root}; the evaluation needs at least 2")
        from anonfaces.cluster import unit_names

        identities = enc.identities if enc.has_identities else unit_names(enc.paths, enc.face_index)
        names = list(options.recognizers)
        if not enc.has_identities:
            self.skipped.append("identity-level and parrot attacks, fisherfaces: the dataset has no identity folders")
            if "fisherfaces" in names:
                names.remove("fisherfaces")
        recs = {n: make_recognizer(n, **options.recognizer_settings.get(n, {})) for n in names}
        if not recs:
            raise BadInputError("no recognizer left to attack with")

        t = time.perf_counter()
        from_enc = {n for n, r in recs.items() if n == "dlib" and dlib_from_encodings(enc, r, options.detector_settings())}
        to_measure = {n: r for n, r in recs.items() if n not in from_enc}
        readable = np.ones(len(enc), bool)
        features: dict[str, np.ndarray] = {}
        if to_measure:
            original = measure_photos(self.root, enc, to_measure, detect=False, pool=pool, desc="originals")
            readable, features = original.readable, dict(original.features)
        for n in from_enc:
            features[n] = np.asarray(enc.embeddings, np.float32)
        self.seconds["measure"] = time.perf_counter() - t
        t = time.perf_counter()
        fit_ids = identities if enc.has_identities else None
        for name, rec in recs.items():
            if rec.needs_fit:
                rec.fit(features[name][readable], None if fit_ids is None else fit_ids[readable])
        originals = {n: (recs[n].embed(features[n]) if recs[n].needs_fit else np.asarray(features[n], np.float32)) for n in recs}
        people, counts = np.unique(identities, return_counts=True)
        self.probed = set(people[counts >= options.reid_min_photos].tolist()) if enc.has_identities else set()
        self.ctx = _Context(dataset_name, enc, recs, originals, identities, np.isin(identities, list(self.probed)))
        if options.attributes is not None:
            self.ctx.attribute_labels = attr.attribute_labels(enc.paths, attr.read_attributes(options.attributes),
                                                              list(options.attribute_names))
            self.ctx.attribute_test = attr.identity_split(identities, test_size=0.5, random_state=options.random_state)
        self.seconds["fit"] = time.perf_counter() - t
        self.readable = readable
        self.dlib_from_encodings = bool(from_enc)

    @property
    def recognizers(self) -> dict:
        return self.ctx.recognizers

    def reference_rows(self) -> list[dict]:
        """The originals' own rows (method ``none``): what the attackers get from faces not anonymized."""
        return privacy_rows(self.ctx, NONE, None, self.ctx.originals, self.readable)

    def attribute_reference_rows(self) -> list[dict]:
        if self.options.attributes is None:
            return []
        return _attribute_rows(self.ctx, NONE, None, self.ctx.originals["dlib"], self.readable)

    def score(self, run_dir, method: str, k, *, desc: str | None = None) -> tuple[list[dict], dict[str, float]]:
        """The metric rows of the anonymization in ``run_dir`` (its photos and mapping.csv), and seconds by step."""
        run_dir = Path(run_dir)
        layout = RunLayout.for_out(run_dir)
        seconds = {}
        clustering = _clustering_of(layout.mapping, self.enc) if layout.mapping.is_file() else None
        t = time.perf_counter()
        meas = measure_photos(run_dir, self.enc, self.ctx.recognizers, original_root=self.root if self.options.measure_quality else None,
                              detect=self.options.detect, detector=self.options.detector, upsample=self.options.upsample,
                              pool=self.pool, desc=desc or method)
        seconds["measure"] = time.perf_counter() - t
        t = time.perf_counter()
        anonymized = _embeddings(self.ctx, meas)
        rows = privacy_rows(self.ctx, method, k, anonymized, meas.readable)
        rows += utility_rows(self.ctx, method, k, meas, anonymized, clustering)
        seconds["score"] = time.perf_counter() - t
        return rows, seconds

    def record(self) -> dict:
        """What run.json says about the originals."""
        enc = self.enc
        return {"n_faces": len(enc), "n_photos": int(np.unique(enc.paths).size), "n_people": n_people(enc),
                "people_probed": len(self.probed), "faces_probed": int(self.ctx.reid_probe.sum()), "meta": enc.meta,
                "dlib_from_encodings": self.dlib_from_encodings}


def _clustering_of(mapping_path: Path, enc):
    """The clusters of a ksame run, read back from its mapping.csv (None for a baseline), joined to ``enc``."""
    from anonfaces.cluster import Clustering

    mapping = Mapping.load(mapping_path)
    if len(mapping) == 0 or np.all(mapping.clusters == NOT_CLUSTERED):
        return None
    empty = np.full(len(mapping), "", dtype=str)
    clustering = Clustering(mapping.paths, mapping.face_index, mapping.clusters, empty, empty, {"source": str(mapping_path)})
    return clustering.aligned_to(enc.paths, enc.face_index)


def method_name(settings: dict) -> str:
    """The ``method`` column of a run from its run.json settings: ``ksame:<synth>`` or the baseline's name."""
    if settings.get("method") == KSAME:
        return f"{KSAME}:{(settings.get('synth') or {}).get('name', '?')}"
    return str(settings.get("method"))


def finish(out, rows: list[dict], record: dict, *, enc, run_dirs: dict, ks, plots: bool, examples: int, t0: float,
           skipped: list[str]) -> EvaluationReport:
    """Write metrics.csv, the plots, run.json and report.md of an evaluation; return its report."""
    layout = RunLayout.for_out(out)
    table = to_frame(rows)
    write_table(table, layout.metrics)
    plot_paths: list[Path] = []
    if plots:
        from anonfaces.evaluate import plots as plotting

        plot_paths = plotting.plot_all(table, layout.plots)
        if examples:
            plot_paths += plotting.example_grids(enc, run_dirs, layout.plots, n_photos=examples, ks=list(ks))
    seconds = time.perf_counter() - t0
    record["seconds"] = {**record.get("seconds", {}), "total": seconds}
    record["skipped"] = skipped
    write_record(layout.run_record, record)
    from anonfaces.evaluate.report import write_report

    write_report(layout.public, table, record, plot_paths)
    report = EvaluationReport(Path(out), table, plot_paths, skipped, seconds)
    log.info("evaluate: %s", report.summary())
    return report


def evaluate_run(run, out, *, options: EvaluateOptions | None = None, encodings=None, examples: int = 4, plots: bool = True,
                 jobs: int | None = None, progress: bool = True, pool: WorkerPool | None = None,
                 command: str | None = None) -> EvaluationReport:
    """Score the anonymization ``run`` (an `anonfaces anonymize` OUT) against its originals; write into ``out``.

    Nothing is anonymized again: the run's photos, mapping.csv and run.json are read.

    Parameters
    ----------
    run : path
        The anonymization's folder (its run.json names the dataset and the encodings file).
    out : path
        Where metrics.csv, report.md, plots/ and run.json go (not inside ``run``).
    options : EvaluateOptions
    encodings : path or Encodings, optional
        The encodings the run used, when its run.json does not name a kept file
        (``anonfaces anonymize --encodings`` or ``--save-encodings``).
    """
    from anonfaces.encode import Encodings

    t0 = time.perf_counter()
    options = options or EvaluateOptions()
    run_layout = RunLayout.for_out(run)
    record = read_record(run_layout.run_record, "anonymize")
    if not run_layout.mapping.is_file():
        raise BadInputError(f"{run_layout.mapping} not found: {run} is not a finished `anonfaces anonymize` output")
    out = Path(out)
    if out.resolve() == Path(run).resolve() or Path(run).resolve() in out.resolve().parents:
        raise BadInputError(f"--out {out} is inside the run {run}; choose a folder outside it")
    root = Path(record["dataset"])
    if not root.is_dir():
        raise BadInputError(f"the run's dataset {root} is not there any more")
    settings = record["settings"]
    if encodings is None:
        source = (settings.get("encodings") or {}).get("file")
        if source is None:
            raise BadInputError(f"{run} does not name the encodings it used (made in a temporary folder); pass --encodings "
                                f"(next time: anonfaces anonymize --save-encodings FILE)")
        encodings = source
    enc = encodings if isinstance(encodings, Encodings) else Encodings.load(encodings)
    mapping = Mapping.load(run_layout.mapping)
    if set(zip(mapping.paths.tolist(), mapping.face_index.tolist())) != set(zip(enc.paths.tolist(), enc.face_index.tolist())):
        raise BadInputError(f"the encodings ({len(enc)} faces) are not the ones {run} replaced ({len(mapping)} faces in its mapping.csv)")
    method, k = method_name(settings), settings.get("k")
    out.mkdir(parents=True, exist_ok=True)
    with pool_for(pool, jobs, progress) as workers:
        evaluation = Evaluation(root, enc, options, dataset_name=root.name, pool=workers)
        rows = evaluation.reference_rows()
        run_rows, stage = evaluation.score(run, method, k, desc=f"{method}" + (f" k={k}" if k else ""))
        rows += run_rows + evaluation.attribute_reference_rows()
    label = method + (f" k={k}" if k is not None else "")
    result = {
        **header("evaluate", command=command),
        "dataset": str(root.resolve()), "dataset_name": root.name, "subset": None,
        "options": as_record(options),
        "settings": {"methods": [NONE, method], "ks": [k] if k is not None else [], "jobs": jobs,
                     "recognizers": {n: r.settings() for n, r in evaluation.recognizers.items()}},
        "encodings": evaluation.record(),
        "runs": {label: str(Path(run))},
        "seconds": {"originals": sum(evaluation.seconds.values()), label: sum(stage.values())},
        "stage_seconds": {"originals": evaluation.seconds, label: stage},
    }
    run_dirs = {(NONE, None): root, (method, k): Path(run)}
    return finish(out, rows, result, enc=enc, run_dirs=run_dirs, ks=[k] if k is not None else [], plots=plots,
                  examples=examples, t0=t0, skipped=list(evaluation.skipped))
