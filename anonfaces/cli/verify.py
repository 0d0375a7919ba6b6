"""`anonfaces verify`: re-check an output folder before sharing it; exit 1 with the findings when it is not safe."""

from __future__ import annotations

from pathlib import Path

import click

from anonfaces.cli._common import jobs_option, k_option, progress_option, user_errors


@click.command("verify")
@click.argument("out", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--private", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The run's private folder (mapping.csv, files.csv, run.json, encodings.npz). Default: OUT.private.")
@click.option("--dataset", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="The original photos (default: the dataset run.json names, when it is still there).")
@k_option(default=None, help="k to check the clusters against (an integer >= 2). Default: the run's k.")
@click.option("--faces/--no-faces", default=True, show_default=True,
              help="Look for original faces still recognisable in the outputs (the slow check).")
@click.option("--threshold", type=click.FloatRange(0, 2, min_open=True, max_open=True), default=0.5, show_default=True,
              help="dlib distance under which an output face matches an original face.")
@click.option("--upsample", type=click.IntRange(0, 3), default=1, show_default=True,
              help="Sensitive detector upsampling (the full scan).")
@click.option("--scan", type=click.Choice(["full", "fast"]), default="full", show_default=True,
              help="The face check's look: full = the CNN at --upsample plus HOG over every photo; fast = every "
                   "replaced face at its own box plus a cheap whole-photo pass (misses small faces).")
@click.option("--video-fps", type=click.FloatRange(0, min_open=True), default=1.0, show_default=True,
              help="Frames per second of each anonymized video the face check looks at.")
@jobs_option(help="Worker processes for the face check. Default: every core.")
@progress_option()
@user_errors
def command(out, private, dataset, k, faces, threshold, upsample, scan, video_fps, jobs, progress):
    """Check that OUT can be shared as it is: no metadata, no names from the dataset, no private file,
    no original face still recognisable, every cluster of >= k people; the run's anonymized videos too (tags,
    faces left unreplaced on sampled frames, k over face tracks). Exit 1 with the findings if not."""
    from anonfaces.release.verify import verify_release

    report = verify_release(out, private, dataset=dataset, k=k, faces=faces, threshold=threshold, upsample=upsample,
                            jobs=jobs, progress=progress, scan=scan, video_fps=video_fps)
    for finding in report.findings:
        click.echo(str(finding))
    click.echo(f"verify: {report.summary()}")
    if not report.ok:
        raise SystemExit(1)
