"""`anonfaces anonymize`: photos -> de-identified copies (k-anonymous surrogates or a classic baseline)."""

from __future__ import annotations

from pathlib import Path

import click

from anonfaces.cli._common import (
    command_line,
    jobs_option,
    k_option,
    parse_params,
    progress_option,
    user_errors,
)
from anonfaces.cluster import CLUSTERERS
from anonfaces.detect import DETECTORS
from anonfaces.encode import ENCODERS
from anonfaces.pipeline.options import KSAME
from anonfaces.synthesize import SYNTHESIZERS, load_optional_synthesizers
from anonfaces.synthesize.baselines import BASELINES
from anonfaces.synthesize.blend import BLEND_MODES, COLOR_MODES

load_optional_synthesizers()


@click.command("anonymize")
@click.option("--dataset", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder of photos (one sub-folder per person if known). It is only read. Default: the bundled sample.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Output folder (not inside the dataset): same relative paths, surrogates/, mapping.csv, run.json.")
@k_option(help="Every cluster stands for at least k people (an integer >= 2; ignored by the baselines).")
@click.option("--method", type=click.Choice([KSAME, *BASELINES.names()]), default=KSAME, show_default=True,
              help="ksame: k-anonymous replacement; or a classic baseline applied to each face region.")
@click.option("--algo", type=click.Choice(CLUSTERERS.names()), default="fixed-kmeans", show_default=True, help="Clusterer.")
@click.option("--synth", type=click.Choice(SYNTHESIZERS.names()), default="morph", show_default=True, help="Synthesizer.")
@click.option("--encoder", type=click.Choice(ENCODERS.names()), default="dlib", show_default=True)
@click.option("--encodings", "encodings_path", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="Reuse this encodings file of the dataset instead of encoding again.")
@click.option("--save-encodings", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Keep the encodings made here (sensitive: keep them out of OUT).")
@click.option("--clusters", "clusters_path", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="Reuse a clusters.csv of these encodings instead of clustering again.")
@click.option("--unit", type=click.Choice(["identity", "photo"]), default="identity", show_default=True,
              help="What k counts: people (default) or photos (the original research).")
@click.option("--outliers", type=click.Choice(["nearest", "group", "none"]), default="nearest", show_default=True)
@click.option("--allow-small-clusters", is_flag=True, help="Accept clusters of fewer than k people (not k-anonymous).")
@click.option("--param", "cluster_params", multiple=True, metavar="NAME=VALUE", help="Clusterer setting (repeatable).")
@click.option("--synth-param", "synth_params", multiple=True, metavar="NAME=VALUE", help="Synthesizer setting (repeatable).")
@click.option("--method-param", "method_params", multiple=True, metavar="NAME=VALUE", help="Baseline setting (repeatable).")
@click.option("--blend", type=click.Choice(BLEND_MODES), default="feather", show_default=True)
@click.option("--color", type=click.Choice(COLOR_MODES), default="lab", show_default=True, help="Colour matching of surrogates.")
@click.option("--size", type=click.IntRange(min=64), default=None,
              help="Side of the surrogate crops. Default: from the dataset's face size (128 to 512).")
@click.option("--detector", type=click.Choice(DETECTORS.names()), default="hog", show_default=True)
@click.option("--upsample", type=click.IntRange(0, 4), default=1, show_default=True)
@click.option("--quality", type=click.IntRange(1, 100), default=95, show_default=True, help="JPEG quality of the outputs.")
@jobs_option()
@click.option("--seed", "random_state", type=int, default=0, show_default=True)
@click.option("--overwrite", is_flag=True, help="Write into a non-empty OUT.")
@click.option("--contact-sheet", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write a before/after grid here (shows original faces: keep it out of OUT).")
@progress_option()
@user_errors
def command(dataset, out, k, method, algo, synth, encoder, encodings_path, save_encodings, clusters_path, unit, outliers,
            allow_small_clusters, cluster_params, synth_params, method_params, blend, color, size, detector, upsample,
            quality, jobs, random_state, overwrite, contact_sheet, progress):
    """Replace every face under DATASET by its cluster's surrogate (or obfuscate it) into OUT.

    Encodes the dataset unless --encodings is given, clusters it unless --clusters is
    given, then writes OUT: the photos at the same relative paths, surrogates/,
    mapping.csv (which face became which cluster: sensitive) and run.json (the options).
    `anonfaces evaluate --run OUT` scores it.
    """
    from anonfaces.pipeline import anonymize_dataset

    report = anonymize_dataset(
        dataset, out, k=k, algo=algo, synth=synth, method=method, encoder=encoder, encodings=encodings_path,
        clusters=clusters_path, unit=unit, outliers=outliers, allow_small_clusters=allow_small_clusters,
        cluster_params=parse_params(cluster_params), synth_params=parse_params(synth_params),
        method_params=parse_params(method_params), blend=blend, color=color, size=size, detector=detector,
        upsample=upsample, save_encodings=save_encodings, overwrite=overwrite, quality=quality, jobs=jobs,
        random_state=random_state, progress=progress, command=command_line())
    click.echo(f"anonymize: {report.summary()}")
    click.echo(f"mapping (sensitive: original photo -> cluster): {report.mapping_path}")
    if report.no_face:
        click.echo(f"{len(report.no_face)} photos without a face were copied unchanged (listed in {report.run_path})")
    if report.unreadable:
        click.echo(f"{len(report.unreadable)} unreadable photos were not written (listed in {report.run_path})")
    if contact_sheet is not None:
        from anonfaces.synthesize.contact_sheet import write_contact_sheet

        write_contact_sheet(contact_sheet, report.dataset, out)
        click.echo(f"contact sheet: {contact_sheet}")
