#!/usr/bin/env python
"""Evaluation speed: what each stage of ``anonfaces evaluate`` costs per photo, with 1 and 2 workers.

The sweep records per run only cluster / anonymize / measure / score seconds
(``stage_seconds`` in run.json), and its one measuring pass does every attacker,
SSIM/PSNR and re-detection together. Here each stage is timed on its own, with
the library calls the sweep makes, on the same subset of a dataset
(`anonfaces.evaluate.DatasetSubset`, the rule of ``--people/--photos-per-person/--min-photos``):

==================  ===========================================================
encode              dlib encodings of the subset, made into an empty cache
encode (cached)     the same call again: the cache is checked and read
cluster k=<k>       `cluster_encodings` (fixed-kmeans, people as the unit)
anonymize <method>  `anonymize_dataset` with the encodings (and clustering) given
originals + fit     every attacker's features of the original photos, fitting eigen/fisher/LBP
attack <name>       one attacker on one anonymized run (the first method), then its protocols
quality             SSIM/PSNR of that run against the originals
re-detection        the HOG detector on that run, matching and landmark displacement
attributes          attribute agreement and downstream utility (with ``--attributes``)
==================  ===========================================================

Each ``--jobs`` value runs in a fresh process (models loaded inside the timing);
peak RSS is that process and its workers. Per-photo cost = seconds / photos.

    python bench/bench_evaluate.py [--dataset ../shared/data/lfw] [--people 20 --photos-per-person 5 --min-photos 10]
        [--methods ksame:morph,ksame:pixel,blur,pixelate,closing] [--k 5] [--jobs 1,2] [--out results.jsonl]
    python bench/bench_evaluate.py --dataset ../shared/data/celeba-aligned/images --min-photos 3 --people 30 \\
        --photos-per-person 3 --attributes ../shared/data/celeba-aligned/list_attr_celeba_subset.txt

Prints a table and one JSON line per ``--jobs`` value (appended to ``--out`` when given).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_cluster_common import record, run_measured, worker_argv
from photo_sets import DEFAULT_LFW as DEFAULT_DATASET


def _timed(stages: dict, name: str, func, *args, **kwargs):
    t = time.perf_counter()
    out = func(*args, **kwargs)
    stages[name] = time.perf_counter() - t
    return out


def run_worker(args) -> dict:
    """Every stage once, in this process, with ``args.jobs`` workers; returns seconds by stage."""
    from anonfaces.cluster import cluster_encodings
    from anonfaces.evaluate import (
        DatasetSubset,
        link_subset,
        make_recognizer,
        measure_photos,
        parse_methods,
        protocols,
    )
    from anonfaces.evaluate import attributes as attr
    from anonfaces.evaluate.sweep import cached_encodings
    from anonfaces.synthesize import anonymize_dataset

    jobs = int(args.jobs)
    stages: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        subset = DatasetSubset(people=args.people, photos_per_person=args.photos_per_person, min_photos=args.min_photos)
        photos = subset.select(args.dataset)
        root = link_subset(args.dataset, photos, tmp / "cache" / "subset" / Path(args.dataset).name)
        enc = _timed(stages, "encode", cached_encodings, root, tmp / "cache", jobs=jobs, progress=False)
        enc = _timed(stages, "encode (cached)", cached_encodings, root, tmp / "cache", jobs=jobs, progress=False)
        ks = [int(k) for k in str(args.k).split(",")]
        clusterings = {k: _timed(stages, f"cluster k={k}", cluster_encodings, enc, k=k, unit="identity", random_state=0) for k in ks}
        runs = {}
        for spec in parse_methods(args.methods):
            for k in ks if spec.uses_k else [None]:
                label = spec.name if k is None else f"{spec.name} k={k}"
                run_dir = tmp / "runs" / spec.folder / str(k)
                kwargs = {"k": k, "synth": spec.synth, "clusters": clusterings[k]} if spec.uses_k else {}
                # as the evaluate sweep runs it: outputs under the dataset's paths, no sensitive passes
                kwargs.update(names="keep", no_face="copy", second_pass=False, safety_net=False)
                _timed(stages, f"anonymize {label}", anonymize_dataset, root, run_dir, method=spec.method, encodings=enc,
                       jobs=jobs, progress=False, **kwargs)
                runs[label] = run_dir
        first = next(iter(runs.values()))

        names = [n for n in args.recognizers.split(",") if n]
        recs = {n: make_recognizer(n) for n in names}
        t = time.perf_counter()
        original = measure_photos(root, enc, recs, detect=False, jobs=jobs, progress=False)
        ok = original.readable
        for n, rec in recs.items():
            if rec.needs_fit:
                rec.fit(original.features[n][ok], enc.identities[ok])
        G = {n: rec.embed(original.features[n]) if rec.needs_fit else original.features[n] for n, rec in recs.items()}
        stages["originals + fit (all attackers)"] = time.perf_counter() - t
        keys = np.arange(len(enc))
        anonymized_dlib = None
        for n, rec in recs.items():
            t = time.perf_counter()
            meas = measure_photos(first, enc, {n: rec}, detect=False, jobs=jobs, progress=False)
            A = rec.embed(meas.features[n]) if rec.needs_fit else meas.features[n]
            if rec.threshold is not None:
                protocols.reidentification_rate(G[n], A, rec.threshold)
            protocols.closed_set_identification(A, G[n], keys)
            protocols.identity_reidentification(A, enc.identities, G[n], enc.identities, probe_keys=keys, gallery_keys=keys)
            protocols.parrot_reidentification(A, enc.identities, A, enc.identities, probe_keys=keys, gallery_keys=keys)
            stages[f"attack {n}"] = time.perf_counter() - t
            if n == "dlib":
                anonymized_dlib = A
        _timed(stages, "quality (SSIM, PSNR)", measure_photos, first, enc, {}, original_root=root, detect=False, jobs=jobs,
               progress=False)
        _timed(stages, "re-detection", measure_photos, first, enc, {}, detect=True, jobs=jobs, progress=False)
        if args.attributes and anonymized_dlib is not None:
            t = time.perf_counter()
            labels = attr.attribute_labels(enc.paths, attr.read_attributes(args.attributes), attr.DEFAULT_ATTRIBUTES)
            test = attr.identity_split(enc.identities, test_size=0.5, random_state=0)
            for a in labels.columns:
                y = labels[a].to_numpy()
                if np.unique(y[~test]).size < 2:
                    continue
                attr.attribute_agreement(G["dlib"][~test], y[~test], G["dlib"][test], anonymized_dlib[test], y[test])
                attr.downstream_utility(anonymized_dlib[~test], G["dlib"][~test], y[~test], G["dlib"][test], y[test])
            stages["attributes"] = time.perf_counter() - t
    return {"photos": len(photos), "faces": len(enc), "people": int(np.unique(enc.identities).size),
            "first_run": next(iter(runs)), "stages_s": stages}


def _table(results: dict[int, dict]) -> str:
    jobs = sorted(results)
    photos = results[jobs[0]]["photos"]
    head = "| stage | " + " | ".join(f"jobs={j}: s | ms/photo" for j in jobs) + " |"
    lines = [head, "|---|" + "---|---|" * len(jobs)]
    for stage in results[jobs[0]]["stages_s"]:
        cells = []
        for j in jobs:
            s = results[j]["stages_s"].get(stage)
            cells += ["", ""] if s is None else [f"{s:.1f}", f"{1000 * s / photos:.0f}"]
        lines.append(f"| {stage} | " + " | ".join(cells) + " |")
    totals = [sum(results[j]["stages_s"].values()) for j in jobs]
    lines.append("| **all stages** | " + " | ".join(f"{t:.1f} | {1000 * t / photos:.0f}" for t in totals) + " |")
    lines.append("| peak RSS (GiB) | " + " | ".join(f"{results[j]['peak_rss_gb']:.2f} | " for j in jobs) + " |")
    return "\n".join(lines)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    ap.add_argument("--people", type=int, default=20)
    ap.add_argument("--photos-per-person", type=int, default=5)
    ap.add_argument("--min-photos", type=int, default=10)
    ap.add_argument("--methods", default="ksame:morph,ksame:pixel,blur,pixelate,closing")
    ap.add_argument("--k", default="5", help="k values, comma-separated (each ksame method runs at each)")
    ap.add_argument("--recognizers", default="dlib,eigenfaces,fisherfaces,lbp")
    ap.add_argument("--attributes", type=Path, default=None, help="CelebA-format attribute file: time the attribute metrics")
    ap.add_argument("--jobs", default="1,2", help="worker counts to compare, comma-separated")
    ap.add_argument("--out", default=None, help="append one JSON line per --jobs value here")
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:  # one --jobs value, in this fresh process
        print(json.dumps(run_worker(args)))
        return {}
    if not args.dataset.is_dir():
        sys.exit(f"dataset not found at {args.dataset}; pass --dataset (a folder of photos in person sub-folders)")
    settings = ["--dataset", str(args.dataset), "--people", str(args.people), "--photos-per-person", str(args.photos_per_person),
                "--min-photos", str(args.min_photos), "--methods", args.methods, "--k", str(args.k),
                "--recognizers", args.recognizers] + (["--attributes", str(args.attributes)] if args.attributes else [])
    results = {}
    for jobs in [int(j) for j in args.jobs.split(",")]:
        res = run_measured(worker_argv(__file__, *settings, "--jobs", str(jobs)), timeout=args.timeout)
        if res["status"] != "ok":
            sys.exit(f"jobs={jobs}: {res['status']}")
        results[jobs] = res
        photos = res["photos"]
        record(args.out, {
            "benchmark": "evaluate", "dataset": str(args.dataset), "people": args.people,
            "photos_per_person": args.photos_per_person, "min_photos": args.min_photos, "photos": photos,
            "faces": res["faces"], "methods": args.methods, "k": args.k, "recognizers": args.recognizers,
            "attributes": bool(args.attributes), "jobs": jobs, "wall_s": round(res["wall_s"], 2),
            "peak_rss_gb": round(res["peak_rss_gb"], 3), "stages_s": {s: round(v, 2) for s, v in res["stages_s"].items()},
            "ms_per_photo": {s: round(1000 * v / photos, 1) for s, v in res["stages_s"].items()},
        })
    print()
    first = next(iter(results.values()))
    print(f"{first['photos']} photos, {first['faces']} faces, {first['people']} people; "
          f"attack/quality/re-detection rows on the {first['first_run']} run")
    print(_table(results))
    return results


if __name__ == "__main__":
    main()
