"""`anonfaces cluster`: group faces so that each group stands for at least k people."""

from __future__ import annotations

import csv
import warnings

import click

from anonfaces.cli._common import (
    UserError,
    jobs_option,
    k_option,
    parse_params,
    progress_option,
    user_errors,
)


def _algo_names() -> list[str]:
    from anonfaces.cluster import CLUSTERERS

    return CLUSTERERS.names()


def _read_labels(path: str, paths) -> list[str]:
    """Identities from a CSV with columns path,identity ('' for paths it does not list)."""
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"path", "identity"} <= set(reader.fieldnames):
            raise UserError(f"--labels {path}: needs columns path,identity; found {reader.fieldnames}")
        table = {row["path"]: row["identity"] for row in reader}
    return [table.get(str(p), "") for p in paths]


@click.command(name="cluster")
@click.option("--encodings", "encodings_path", required=True, type=click.Path(dir_okay=False), help="encodings.npz from `anonfaces encode`.")
@click.option("--algo", default="fixed-kmeans", show_default=True, type=click.Choice(_algo_names()), help="Clustering algorithm.")
@k_option(help="Minimum people (or photos with --unit photo) per cluster, an integer >= 2.")
@click.option("--unit", default="identity", show_default=True, type=click.Choice(["identity", "photo"]), help="What k counts; 'photo' is the original research's unit (no per-person guarantee).")
@click.option("--outliers", default="nearest", show_default=True, type=click.Choice(["nearest", "group", "none"]), help="Noise handling for aroc/dbscan/hdbscan/optics; 'none' allows clusters smaller than k.")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE", help="An algorithm setting, e.g. --param eps=0.45 (repeatable).")
@click.option("--labels", "labels_path", type=click.Path(exists=True, dir_okay=False), help="CSV path,identity overriding the identities in the encodings.")
@jobs_option(help="Processes for the algorithms that use several. Default: every core.")
@click.option("--seed", "random_state", default=0, show_default=True, type=int, help="random_state.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="clusters.csv to write.")
@click.option("--montage", "montage_dir", type=click.Path(file_okay=False), help="Write one image of faces per cluster here.")
@click.option("--images", "image_root", type=click.Path(exists=True, file_okay=False), help="Dataset root for --montage (default: recorded in the encodings).")
@progress_option()
@user_errors
def command(encodings_path, algo, k, unit, outliers, params, labels_path, jobs, random_state, out, montage_dir, image_root,
            progress):
    """Cluster face encodings into groups of at least k people and write clusters.csv.

    Clustering runs in this process (the algorithms that can use several cores do so
    with --jobs); it shows no progress bar, --progress is accepted for a uniform command line.
    """
    n_jobs = -1 if jobs is None else jobs
    import numpy as np

    import anonfaces
    from anonfaces.cluster import cluster_encodings
    from anonfaces.cluster.metrics import summarize

    settings = parse_params(params)
    enc = anonfaces.load_encodings(encodings_path)
    identities = _read_labels(labels_path, enc.paths) if labels_path else None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = cluster_encodings(
            enc, algo=algo, k=k, unit=unit, identities=identities, outliers=outliers, params=settings, n_jobs=n_jobs,
            random_state=random_state,
        )
    for w in caught:
        click.echo(f"Warning: {w.message}", err=True)
    X = np.asarray(enc.embeddings, dtype=np.float64)
    scores = summarize(X, result.labels, identities=result.units, seconds=result.info["seconds"])
    result.info["scores"] = scores
    result.save(out)
    if montage_dir:
        from anonfaces.cluster.montage import write_montages

        n = write_montages(result, enc, montage_dir, image_root=image_root)
        click.echo(f"wrote {n} montages to {montage_dir}")
    if unit == "identity":
        known = int((result.identities != "").sum())
        click.echo(
            f"faces: {len(result)} ({known} with a known identity); identities clustered: "
            f"{result.info['n_units']}, of which pseudo-identities formed: {result.info['n_pseudo_identities']}"
        )
    if unit == "photo" and len(result) and (result.identities != "").all():
        from anonfaces.cluster.metrics import distinct_identities

        people = distinct_identities(result.labels, result.identities)
        click.echo(f"distinct people per cluster (known identities): min {people.min()}, mean {people.mean():.2f}")
    unit_name = "people" if unit == "identity" else "photos"
    below = "" if scores["min_identities"] >= k else f"  WARNING: clusters with fewer than k={k} {unit_name}"
    header = ["algorithm", "k", "clusters", "min size", "max size", f"min {unit_name}", f"mean {unit_name}", "SSD", "silhouette", "seconds"]
    row = [
        algo,
        str(k),
        str(scores["clusters"]),
        str(scores["min_size"]),
        str(scores["max_size"]),
        str(scores["min_identities"]),
        f"{scores['mean_identities']:.2f}",
        f"{scores['ssd']:.4g}",
        f"{scores['silhouette']:.3f}",
        f"{scores['seconds']:.2f}",
    ]
    widths = [max(len(h), len(v)) for h, v in zip(header, row)]
    click.echo("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths)) + below)
    click.echo(f"wrote {out}")
