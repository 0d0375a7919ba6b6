"""`anonfaces evaluate`: privacy and utility of every method at every k, one table, plots and a report."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from anonfaces.cli._common import parse_params, user_errors


@click.command("evaluate")
@click.option("--dataset", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              help="Folder of photos, one sub-folder per person (default: the bundled sample).")
@click.option("--people", type=click.IntRange(min=1), default=None,
              help="Evaluate only this many people, evenly spaced in sorted order over those with --min-photos photos.")
@click.option("--photos-per-person", type=click.IntRange(min=1), default=None,
              help="Evaluate only each person's first this many photos (sorted by file name).")
@click.option("--min-photos", type=click.IntRange(min=1), default=1, show_default=True,
              help="Evaluate only people with at least this many photos.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Output folder: metrics.csv, report.md, plots/, run.json, cache/, runs/ (keep it private).")
@click.option("--methods", default="ksame:morph,ksame:pixel,blur,pixelate,closing,blocking", show_default=True,
              help="Comma-separated: ksame:<synth>, baselines (blur, pixelate, mask, closing, blocking); 'none' is always added.")
@click.option("--k", "ks", default="2,3,5,10,20", show_default=True, help="Comma-separated k values for the ksame methods.")
@click.option("--recognizers", default="dlib,eigenfaces,fisherfaces,lbp", show_default=True,
              help="Comma-separated attackers: dlib, eigenfaces, fisherfaces, lbp, onnx (needs --onnx-model).")
@click.option("--onnx-model", type=click.Path(dir_okay=False, exists=True), default=None, help="ONNX embedding model for the onnx attacker.")
@click.option("--onnx-param", "onnx_params", multiple=True, metavar="NAME=VALUE",
              help="Setting of the onnx attacker (mean, std, color, threshold, ...), repeatable.")
@click.option("--encodings", "encodings_path", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="dlib encodings of the dataset to reuse (default: made once and cached in OUT/cache).")
@click.option("--anonymize-param", "anonymize_params", multiple=True, metavar="NAME=VALUE",
              help="Setting of every anonymization (shape=member, region=inner, privacy_check=false, on_leak=keep, ...; "
                   "the keywords of anonymize_dataset), repeatable.")
@click.option("--algo", default="fixed-kmeans", show_default=True, help="Clusterer for the ksame methods.")
@click.option("--unit", type=click.Choice(["identity", "photo"]), default="identity", show_default=True, help="What k counts.")
@click.option("--reid-min-photos", default=2, show_default=True, type=click.IntRange(min=2),
              help="Identity-level and parrot attacks probe people with at least this many photos.")
@click.option("--attributes", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="CelebA-format attribute file: adds attribute agreement and downstream utility.")
@click.option("--attribute-names", default="Male,Smiling,Young,Eyeglasses", show_default=True, help="Attributes to score.")
@click.option("--no-detect", is_flag=True,
              help="Skip re-detection (hit rate, landmark displacement): about a fifth of each measuring pass.")
@click.option("--no-quality", is_flag=True, help="Skip SSIM and PSNR.")
@click.option("--examples", default=4, show_default=True, type=click.IntRange(min=0), help="Photos in the example grids.")
@click.option("--jobs", type=click.IntRange(min=1), default=None, help="Worker processes (default: every core).")
@click.option("--seed", "random_state", default=0, show_default=True, type=int, help="random_state.")
@click.option("--no-progress", is_flag=True, help="No progress bars.")
@user_errors
def command(dataset, people, photos_per_person, min_photos, out, methods, ks, recognizers, onnx_model, onnx_params,
            encodings_path, anonymize_params, algo, unit, reid_min_photos, attributes, attribute_names, no_detect, no_quality, examples, jobs,
            random_state, no_progress):
    """Anonymize with every method at every k and measure privacy (attacks) and utility; write a report."""
    from anonfaces.encode.pipeline import default_dataset
    from anonfaces.evaluate import DatasetSubset, evaluate_dataset

    names = [r.strip() for r in recognizers.split(",") if r.strip()]
    settings = {}
    if "onnx" in names:
        if not onnx_model:
            raise click.UsageError("the onnx recognizer needs --onnx-model PATH")
        settings["onnx"] = {"model": onnx_model, **parse_params(onnx_params)}
    report = evaluate_dataset(
        dataset if dataset is not None else default_dataset(),
        out,
        subset=DatasetSubset(people=people, photos_per_person=photos_per_person, min_photos=min_photos),
        methods=methods,
        ks=ks,
        recognizers=names,
        recognizer_settings=settings,
        encodings=encodings_path,
        anonymize_params=parse_params(anonymize_params) or None,
        algo=algo,
        unit=unit,
        reid_min_photos=reid_min_photos,
        attributes=attributes,
        attribute_names=[a.strip() for a in attribute_names.split(",") if a.strip()],
        detect=not no_detect,
        measure_quality=not no_quality,
        examples=examples,
        jobs=jobs,
        random_state=random_state,
        progress=not no_progress,
        command=_command_line(),
    )
    from anonfaces.evaluate.report import markdown_table, summary_table

    click.echo(markdown_table(summary_table(report.table, "dlib" if "dlib" in names else names[0])))
    for note in report.skipped:
        click.echo(f"skipped: {note}", err=True)
    click.echo(report.summary())


def _command_line() -> str:
    """The command as typed (``anonfaces ...`` or ``python scripts/evaluate.py ...``), for run.json."""
    argv = list(sys.argv)
    head = ["anonfaces"] if Path(argv[0]).name == "anonfaces" else ["python", argv[0]]
    return " ".join(shlex.quote(a) for a in [*head, *argv[1:]])
