"""`anonfaces evaluate`: privacy and utility of anonymizations, one table, plots and a report.

Two forms: ``--run OUT`` scores one `anonfaces anonymize` output as it is; ``--dataset``
(the default: the bundled sample) runs the sweep, every method at every k.
"""

from __future__ import annotations

from pathlib import Path

import click

from anonfaces.cli._common import (
    backend_options,
    command_line,
    jobs_option,
    k_option,
    open_pool,
    parse_params,
    progress_option,
    registry_names,
    user_errors,
)


def _recognizers():
    from anonfaces.evaluate.recognizers import RECOGNIZERS

    return RECOGNIZERS


def _clusterers():
    from anonfaces.cluster import CLUSTERERS

    return CLUSTERERS


def _methods(ctx, param, value):
    from anonfaces.errors import AnonfacesError
    from anonfaces.pipeline.options import parse_methods

    try:
        return [s.name for s in parse_methods(value)]
    except AnonfacesError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


@click.command("evaluate")
@click.option("--run", "run_dir", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              help="Score this `anonfaces anonymize` output as it is (its photos, mapping.csv, run.json); "
                   "the sweep options (--dataset, --methods, --k, ...) do not apply.")
@click.option("--private", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              help="With --run: the run's private folder (mapping.csv, run.json, encodings). Default: RUN.private.")
@click.option("--dataset", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              help="Sweep: folder of photos, one sub-folder per person (default: the bundled sample).")
@click.option("--fps", type=click.FloatRange(min=0.1), default=2.0, show_default=True,
              help="With --run on a run with videos: frames scored per second (detection, re-identification).")
@click.option("--people", type=click.IntRange(min=1), default=None,
              help="Sweep only this many people, evenly spaced in sorted order over those with --min-photos photos.")
@click.option("--photos-per-person", type=click.IntRange(min=1), default=None,
              help="Sweep only each person's first this many photos (sorted by file name).")
@click.option("--min-photos", type=click.IntRange(min=1), default=1, show_default=True,
              help="Sweep only people with at least this many photos.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Output folder: metrics.csv, report.md, plots/, run.json; the sweep also cache/ and runs/ (keep it private).")
@click.option("--methods", default="ksame:morph,ksame:pixel,blur,pixelate,closing,blocking", show_default=True,
              callback=_methods,
              help="Sweep: comma-separated ksame:<synth> and one-face-per-face methods (blur, pixelate, mask, closing, blocking, "
                   "and the learned inversion, d2gan), a method's settings after its name (d2gan:detail=true:sharpen=1.5: "
                   "one sweep can compare settings); "
                   "'none' (the originals) is always added.")
@k_option(many=True, default="2,3,5,10,20", help="Sweep: comma-separated k values (integers >= 2) for the ksame methods.")
@click.option("--recognizers", default="dlib,eigenfaces,fisherfaces,lbp", show_default=True,
              callback=registry_names(_recognizers, many=True),
              help="Comma-separated attackers: dlib, eigenfaces, fisherfaces, lbp, onnx (needs --onnx-model).")
@click.option("--onnx-model", type=click.Path(dir_okay=False, exists=True), default=None, help="ONNX embedding model for the onnx attacker.")
@click.option("--onnx-param", "onnx_params", multiple=True, metavar="NAME=VALUE",
              help="Setting of the onnx attacker (mean, std, color, threshold, ...), repeatable.")
@click.option("--encodings", "encodings_path", type=click.Path(exists=True, path_type=Path), default=None,
              help="dlib encodings (file or store folder) of the dataset to reuse (sweep default: made once and cached in OUT/cache; "
                   "--run default: the file the run's run.json names).")
@click.option("--anonymize-param", "anonymize_params", multiple=True, metavar="NAME=VALUE",
              help="Sweep: setting of every anonymization (shape=member, region=inner, color=lab, privacy_check=false, "
                   "on_leak=keep, ...: the options of `anonfaces anonymize`, with _ for -), repeatable.")
@click.option("--algo", default="fixed-kmeans", show_default=True, callback=registry_names(_clusterers),
              help="Sweep: clusterer for the ksame methods.")
@click.option("--unit", type=click.Choice(["identity", "photo"]), default="identity", show_default=True, help="Sweep: what k counts.")
@click.option("--reid-min-photos", default=2, show_default=True, type=click.IntRange(min=2),
              help="Identity-level and parrot attacks probe people with at least this many photos.")
@click.option("--attributes", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="CelebA-format attribute file: adds attribute agreement and downstream utility.")
@click.option("--attribute-names", default="Male,Smiling,Young,Eyeglasses", show_default=True, help="Attributes to score.")
@click.option("--no-detect", is_flag=True,
              help="Skip re-detection (hit rate, landmark displacement): about a fifth of each measuring pass.")
@click.option("--no-quality", is_flag=True, help="Skip SSIM and PSNR.")
@click.option("--examples", default=4, show_default=True, type=click.IntRange(min=0), help="Photos in the example grids.")
@jobs_option()
@backend_options()
@click.option("--seed", "random_state", default=0, show_default=True, type=int, help="random_state.")
@progress_option()
@user_errors
def command(run_dir, private, dataset, fps, people, photos_per_person, min_photos, out, methods, ks, recognizers, onnx_model, onnx_params,
            encodings_path, anonymize_params, algo, unit, reid_min_photos, attributes, attribute_names, no_detect, no_quality, examples, jobs,
            backend, address, random_state, progress):
    """Measure privacy (attacks) and utility of anonymized photos; write metrics.csv, plots and a report.

    With --run OUT: score that anonymization. Otherwise: anonymize DATASET with every
    method at every k (one run per method and k under OUT/runs/) and score each.
    """
    from anonfaces.pipeline import EvaluateOptions, evaluate_dataset, evaluate_run

    names = list(recognizers)
    settings = {}
    if "onnx" in names:
        if not onnx_model:
            raise click.UsageError("the onnx recognizer needs --onnx-model PATH")
        settings["onnx"] = {"model": onnx_model, **parse_params(onnx_params)}
    attribute_list = [a.strip() for a in attribute_names.split(",") if a.strip()]
    if run_dir is not None:
        if dataset is not None:
            raise click.UsageError("--run scores an existing anonymization; --dataset starts a sweep: give one of them")
        from anonfaces.pipeline.layout import RunLayout
        from anonfaces.pipeline.video import evaluate_video_run, video_layout

        layout = RunLayout.for_out(run_dir, private)
        if video_layout(layout).run_record.is_file():  # a run with videos: their measures first
            summary = evaluate_video_run(run_dir, out, private=private, fps=fps)
            click.echo("videos: " + ", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
                                              for k, v in summary.items() if k != "run"))
            click.echo(f"per video: {Path(out) / 'video_metrics.csv'}")
            if not layout.run_record.is_file():
                return
    elif dataset is not None:
        from anonfaces.video.io import list_videos

        if list_videos(dataset):
            raise click.UsageError(f"{dataset} holds videos: the sweep scores photos. Anonymize the videos with "
                                   "`anonfaces anonymize --dataset ... --out OUT`, then score them with "
                                   "`anonfaces evaluate --run OUT --out SCORES`")
    if run_dir is not None:
        options = EvaluateOptions(recognizers=names, recognizer_settings=settings, reid_min_photos=reid_min_photos,
                                  attributes=attributes, attribute_names=attribute_list, detect=not no_detect,
                                  measure_quality=not no_quality, random_state=random_state)
        with open_pool(jobs, progress, backend, address) as pool:
            report = evaluate_run(run_dir, out, options=options, encodings=encodings_path, examples=examples, jobs=jobs,
                                  progress=progress, command=command_line(), private=private, pool=pool)
    else:
        from anonfaces.encode.pipeline import default_dataset
        from anonfaces.evaluate import DatasetSubset

        with open_pool(jobs, progress, backend, address) as pool:
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
                attribute_names=attribute_list,
                detect=not no_detect,
                measure_quality=not no_quality,
                examples=examples,
                jobs=jobs,
                random_state=random_state,
                progress=progress,
                command=command_line(),
                pool=pool,
            )
    from anonfaces.evaluate.report import markdown_table, summary_table

    click.echo(markdown_table(summary_table(report.table, "dlib" if "dlib" in names else names[0])))
    for note in report.skipped:
        click.echo(f"skipped: {note}", err=True)
    click.echo(report.summary())
