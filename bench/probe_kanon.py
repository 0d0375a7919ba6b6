#!/usr/bin/env python
"""Probe for issue 16: how each way of putting a surrogate into a photo keeps the 1/k promise.

Anonymizes one subset once per configuration (``ksame:<synth>`` at one k; the
encodings and the clustering made once and shared), measures it with the
library calls of ``anonfaces evaluate`` (`measure_photos`, the `protocols`,
the dlib attacker with the originals' descriptors as its gallery) and prints,
per configuration, closed-set, identity-level and parrot re-identification,
the residual parrot (`protocols.residual_parrot_reidentification`: the parrot on what
is left after each anonymized face's nearest anonymized neighbours are subtracted),
the method-aware attacker (`protocols.method_aware_identification`, trained on
anonymized photos of the people; chance 1/people), the unprotected-face rate
(output faces within dlib 0.5 of their original), SSIM, the re-detection rate and
the privacy check's outcomes. ``own_distance`` in a configuration sets the check's
own-photo term (None: off). Configurations are named below (`CONFIGS`) or given
as JSON (``--config '{"name": "x", "shape": "cluster", ...}'``, the keywords of
`anonfaces.pipeline.anonymize_dataset`).

    python bench/probe_kanon.py --dataset ../shared/data/lfw --people 60 --photos-per-person 5 \\
        --min-photos 5 --k 5 --configs old,cluster-inner,cluster-head --out /tmp/probe [--jobs 2]

By default the probe subset is people with at least 5 photos (evenly spaced): a
different set of people from the README's sweep (people with at least 10 photos),
so the defaults are not chosen on the figures they are then reported with.
Appends one JSON line per configuration to ``OUT/probe.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

NO_CHECK = {"privacy_check": False}
#: as `anonfaces evaluate` anonymizes (anonfaces.pipeline.sweep): every photo written under its own name, no safety net
SWEEP_PARAMS = {"names": "keep", "no_face": "copy", "second_pass": False, "safety_net": False}
CONFIGS = {
    "old": {"shape": "member", "region": "inner", "color": "lab", **NO_CHECK},
    "cluster-inner": {"shape": "cluster", "region": "inner", **NO_CHECK},
    "cluster-forehead": {"shape": "cluster", "region": "forehead", **NO_CHECK},
    "cluster-head": {"shape": "cluster", "region": "head", **NO_CHECK},
    "cluster-head-luma": {"shape": "cluster", "region": "head", "color": "luma", **NO_CHECK},
    "cluster-head-none": {"shape": "cluster", "region": "head", "color": "none", **NO_CHECK},
    "cluster-head-seamless": {"shape": "cluster", "region": "head", "blend": "seamless", **NO_CHECK},
    "check-0.05-blur": {"shape": "cluster", "region": "head", "privacy_margin": 0.05, "on_leak": "blur"},
    "check-0.1-blur": {"shape": "cluster", "region": "head", "privacy_margin": 0.1, "on_leak": "blur"},
    "check-0.05-surrogate": {"shape": "cluster", "region": "head", "privacy_margin": 0.05, "on_leak": "surrogate"},


    # the own-photo term off (the check before 2026-12-01 evening): leak and evenness only
    "check-0.05-blur-noown": {"shape": "cluster", "region": "head", "privacy_margin": 0.05, "on_leak": "blur",
                              "own_distance": None},
    "default": {},
    "default-none": {"color": "none"},
    "default-surrogate": {"on_leak": "surrogate"},
    "all-surrogate": {"privacy_margin": -10.0, "on_leak": "surrogate"},  # every face: the bare surrogate crop pasted
    "chip": {"region": "chip"},
    "chip-none": {"region": "chip", "color": "none"},
}


KEYS = ("closed_set", "identity_reid", "parrot_reid", "residual_parrot", "method_aware", "unprotected", "ssim", "detection_rate",
        "fisher_closed_set", "fisher_identity_reid", "fisher_parrot_reid")


def load_probe_output(out: Path, ap: argparse.ArgumentParser | None = None):
    """``(encodings, dataset root)`` of a probe output ``out`` (its ``cache/``: the encodings and the linked subset),
    for the scripts that measure its run folders again (ssim_zones, hybrid_attribution, donor_ceiling). A folder that
    is not one: ``ap.error`` (a one-line message, exit 2) when a parser is given, else `BadInputError`."""
    from anonfaces.encode import Encodings
    from anonfaces.errors import BadInputError

    out = Path(out)
    subsets = sorted((out / "cache" / "subset").iterdir()) if (out / "cache" / "subset").is_dir() else []
    if len(subsets) != 1 or not (out / "cache" / "encodings.npz").is_file():
        message = (f"{out} is not a bench/probe_kanon.py output: cache/subset must hold one dataset folder "
                   f"(found {len(subsets)}) beside cache/encodings.npz")
        if ap is not None:
            ap.error(message)
        raise BadInputError(message)
    return Encodings.load(out / "cache" / "encodings.npz"), subsets[0]


def fit_fisherfaces(root: Path, enc, *, jobs: int = 2):
    """The independent Fisherfaces attacker fitted on the subset's original photos: ``(recognizer, gallery)``, the
    gallery being the originals' Fisherfaces features (one row per face of ``enc``)."""
    import numpy as np

    from anonfaces.evaluate.measure import measure_photos
    from anonfaces.evaluate.recognizers import make_recognizer

    fisher = make_recognizer("fisherfaces")
    crops = measure_photos(root, enc, {"fisherfaces": fisher}, detect=False, jobs=jobs,
                           progress=False).features["fisherfaces"]
    fisher.fit(crops, np.asarray(enc.identities))
    return fisher, fisher.embed(crops)


def _line(name, m, outcomes, seconds) -> str:
    return f"{name:24s} " + " ".join(f"{key}={m.get(key, float('nan')):.3f}" for key in KEYS) + f" {outcomes} {seconds:.0f}s"


def _missed_by_step(privacy_csv, enc, detected) -> dict:
    """{kind of step: [faces, of them not found again]}: given, variant (re-rolled), region/colour, softened, blurred."""
    import csv

    steps = {}
    if Path(privacy_csv).is_file():
        with open(privacy_csv, newline="") as fh:
            steps = {(r["path"], int(r["face"])): r["step"] for r in csv.DictReader(fh)}
    out = {}
    for rel, face, hit in zip(enc.paths.tolist(), enc.face_index.tolist(), detected.tolist()):
        step = steps.get((rel, face), "unchecked")
        kind = ("blurred" if step.startswith("on_leak") else "softened" if "softened" in step else
                "variant" if step.startswith("variant") else step if step in ("given", "unchecked") else "region/colour")
        faces, missed = out.get(kind, (0, 0))
        out[kind] = (faces + 1, missed + (not hit))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="../shared/data/lfw")
    ap.add_argument("--people", type=int, default=60)
    ap.add_argument("--photos-per-person", type=int, default=5)
    ap.add_argument("--min-photos", type=int, default=5)
    ap.add_argument("--reid-min-photos", type=int, default=None, help="default: --photos-per-person")
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--synth", default="morph")
    ap.add_argument("--configs", default="old,cluster-head")
    ap.add_argument("--config", action="append", default=[], help="a JSON configuration (repeatable)")
    ap.add_argument("--exclude-people-of", default=None, metavar="PEOPLE,PHOTOS,MIN",
                    help="leave out the people of that subset (e.g. 60,10,10: the README sweep's), then choose --people "
                         "evenly among the rest")
    ap.add_argument("--no-fisherfaces", action="store_true",
                    help="skip the independent Fisherfaces attacker (fitted on the subset's originals)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)

    import logging

    import numpy as np

    logging.basicConfig(level=logging.WARNING)
    import importlib

    from anonfaces.cluster import cluster_encodings
    from anonfaces.evaluate import DatasetSubset, protocols
    from anonfaces.evaluate.measure import measure_photos
    from anonfaces.evaluate.recognizers import make_recognizer
    from anonfaces.evaluate.subset import link_subset
    from anonfaces.pipeline import anonymize_dataset

    anonymize_module = importlib.import_module("anonfaces.pipeline.anonymize")
    from anonfaces.pipeline.sweep import cached_encodings

    configs = [{"name": n, **CONFIGS[n]} for n in args.configs.split(",") if n]
    configs += [json.loads(c) for c in args.config]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    subset = DatasetSubset(people=args.people, photos_per_person=args.photos_per_person, min_photos=args.min_photos)
    source = Path(args.dataset)
    chosen = subset.select(source)
    if args.exclude_people_of:
        people, photos, least = (int(v) for v in args.exclude_people_of.split(","))
        sweep = {Path(p).parts[0] for p in DatasetSubset(people=people, photos_per_person=photos,
                                                          min_photos=least).select(source)}
        rest = sorted({Path(p).parts[0] for p in DatasetSubset(people=None, photos_per_person=args.photos_per_person,
                                                                min_photos=args.min_photos).select(source)} - sweep)
        keep = {rest[i] for i in np.round(np.linspace(0, len(rest) - 1, args.people)).astype(int)}
        chosen = [p for p in DatasetSubset(people=None, photos_per_person=args.photos_per_person,
                                           min_photos=args.min_photos).select(source) if Path(p).parts[0] in keep]
    root = link_subset(source, chosen, out / "cache" / "subset" / source.name)
    enc = cached_encodings(root, out / "cache", jobs=args.jobs, progress=False)
    clustering = cluster_encodings(enc, algo="fixed-kmeans", k=args.k, unit="identity", random_state=0)
    ids = np.asarray(enc.identities)
    G = np.asarray(enc.embeddings, np.float32)  # the originals' dlib descriptors (the attacker's gallery)
    counts = {p: int((ids == p).sum()) for p in np.unique(ids)}
    probe = np.array([counts[p] >= (args.reid_min_photos or args.photos_per_person) for p in ids])
    keys = np.arange(len(ids))
    dlib = {"dlib": make_recognizer("dlib")}
    fisher = None
    if not args.no_fisherfaces:  # an attacker the privacy check does not share, fitted on the originals
        fisher, G_f = fit_fisherfaces(root, enc, jobs=args.jobs)
        dlib["fisherfaces"] = fisher
    for cfg in configs:
        cfg = dict(cfg)
        name = cfg.pop("name")
        own_distance = cfg.pop("own_distance", "default")
        context = anonymize_module.privacy_context
        if own_distance != "default":  # the check's context is made here and shipped to the workers
            def with_own(*a, _make=context, _own=own_distance, **kw):
                return {**_make(*a, **kw), "own_distance": _own}

            anonymize_module.privacy_context = with_own
        run = out / name
        t = time.perf_counter()
        report = anonymize_dataset(root, run, k=args.k, synth=args.synth, encodings=enc, clusters=clustering,
                                   jobs=args.jobs, progress=False, overwrite=True,
                                   **{**SWEEP_PARAMS, **cfg})
        anonymize_module.privacy_context = context
        t_anon = time.perf_counter() - t
        meas = measure_photos(run, enc, dlib, original_root=root, detect=True, jobs=args.jobs, progress=False)
        ok = meas.readable
        A = np.asarray(meas.features["dlib"], np.float32)
        m = {
            "closed_set": protocols.closed_set_identification(A[ok], G, np.flatnonzero(ok)),
            "identity_reid": protocols.identity_reidentification(A[probe & ok], ids[probe & ok], G, ids,
                                                                 probe_keys=keys[probe & ok], gallery_keys=keys),
            "parrot_reid": protocols.parrot_reidentification(A[probe & ok], ids[probe & ok], A[ok], ids[ok],
                                                             probe_keys=keys[probe & ok], gallery_keys=keys[ok]),
            "residual_parrot": protocols.residual_parrot_reidentification(
                A[probe & ok], ids[probe & ok], A[ok], ids[ok], probe_keys=keys[probe & ok], gallery_keys=keys[ok]),
            "method_aware": protocols.method_aware_identification(A[probe & ok], ids[probe & ok],
                                                                  groups=np.asarray(enc.paths)[probe & ok]).accuracy,
            "unprotected": float(protocols.unprotected_faces(G[ok], A[ok]).mean()),
            "ssim": float(np.nanmean(meas.ssim)), "detection_rate": float(meas.detected[ok].mean()),
        }
        if fisher is not None:
            F = fisher.embed(meas.features["fisherfaces"])
            m["fisher_closed_set"] = protocols.closed_set_identification(F[ok], G_f, np.flatnonzero(ok))
            m["fisher_identity_reid"] = protocols.identity_reidentification(
                F[probe & ok], ids[probe & ok], G_f, ids, probe_keys=keys[probe & ok], gallery_keys=keys)
            m["fisher_parrot_reid"] = protocols.parrot_reidentification(
                F[probe & ok], ids[probe & ok], F[ok], ids[ok], probe_keys=keys[probe & ok], gallery_keys=keys[ok])
        seconds = time.perf_counter() - t
        outcomes = report.privacy
        m["missed_by_step"] = _missed_by_step(report.privacy_path, enc, meas.detected & ok)
        if own_distance != "default":
            cfg["own_distance"] = own_distance
        row = {"name": name, "settings": cfg, "k": args.k, "bound": 1 / args.k, "dataset": args.dataset,
               "subset": subset.to_dict(), "n_faces": len(ids), "seconds": round(seconds, 1),
               "anonymize_seconds": round(t_anon, 1), "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "privacy": outcomes, **m}
        with open(out / "probe.jsonl", "a") as fh:
            fh.write(json.dumps(row) + "\n")
        print(_line(name, m, {k: v for k, v in outcomes.items() if v}, seconds), "missed by step:",
              m["missed_by_step"], flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
