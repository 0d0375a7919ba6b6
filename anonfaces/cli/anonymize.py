"""`anonfaces anonymize`: photos -> de-identified copies (k-anonymous surrogates or a classic baseline)."""

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
    user_errors,
)
from anonfaces.cluster import CLUSTERERS
from anonfaces.detect import DETECTORS
from anonfaces.encode import ENCODERS
from anonfaces.pipeline.options import KSAME, OUTPUTS
from anonfaces.synthesize import SYNTHESIZERS, load_optional_synthesizers
from anonfaces.synthesize.baselines import BASELINES
from anonfaces.synthesize.blend import (
    BLEND_MODES,
    COLOR_MODES,
    PLACEMENTS,
    REGIONS,
    RING_RANGE,
    RING_SCALE,
    SHAPES,
)
from anonfaces.synthesize.privacy import (
    ON_LEAK,
    REROLL_STEPS,
    REROLL_STEPS_DEFAULT,
    SOFTEN,
)

load_optional_synthesizers()


@click.command("anonymize")
@click.option("--dataset", type=click.Path(path_type=Path), default=None,
              help="Folder of photos and/or videos (one sub-folder per person if known), or one video file. It is only "
                   "read. Default: the bundled sample.")
@click.option("--fps", type=click.FloatRange(min=0), default=0, show_default=True,
              help="Videos: frames encoded per second (0: every frame; faces between encoded frames are interpolated).")
@click.option("--detect-scale", type=click.FloatRange(0.1, 1.0), default=1.0, show_default=True,
              help="Videos: look for faces on frames scaled by this (faster on large frames; landmarks at full size).")
@click.option("--detect-every", type=click.IntRange(1, 50), default=1, show_default=True,
              help="Videos: search the whole frame on every N-th encoded frame (and at scene cuts), and in between "
                   "only near the faces being followed (faster; a face entering in between is found at the next "
                   "full-frame pass and followed back to where it entered).")
@click.option("--smooth", type=click.FloatRange(0, 10), default=1.0, show_default=True,
              help="Videos: landmarks smoothed over time (Gaussian sigma in frames; 0: off).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Output folder (not inside the dataset): only the anonymized photos, shareable as it is.")
@click.option("--private", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for what links back to people (mapping.csv, files.csv, privacy.csv, run.json, encodings, key). "
                   "Default: OUT.private beside OUT; never inside OUT.")
@click.option("--names", type=click.Choice(["hash", "keep"]), default="hash", show_default=True,
              help="Output names: a keyed hash of the path, or the dataset's own names (may name people).")
@click.option("--key-file", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="Naming key (64 hex digits) for stable names across runs. Default: PRIVATE/release.key (made once).")
@click.option("--keep-folders", is_flag=True, help="Keep sub-folders that do not name people (never the person level).")
@click.option("--no-face", "no_face", type=click.Choice(["skip", "copy", "blur"]), default="skip", show_default=True,
              help="Photos with no face found (even by the sensitive pass) or a face left unprotected: "
                   "not written, written unchanged, or blurred whole.")
@click.option("--second-pass/--no-second-pass", default=True, show_default=True,
              help="Look again with dlib's CNN detector where HOG found no face.")
@click.option("--safety-net/--no-safety-net", default=True, show_default=True,
              help="After writing, look for faces in every output that still match an original face, or that "
                   "were never anonymized.")
@click.option("--sensitive-upsample", type=click.IntRange(0, 3), default=1, show_default=True,
              help="Upsampling of the sensitive (CNN) detector (the second pass, and the safety net's full scan).")
@click.option("--net-scan", type=click.Choice(["full", "fast"]), default="full", show_default=True,
              help="The safety net's look at each output: full = CNN at --sensitive-upsample plus HOG; fast = every "
                   "replaced face at its own box plus a cheap whole-photo pass (CNN upsample 0 + HOG), about 4x "
                   "faster but it misses small bystanders the full scan finds.")
@click.option("--surrogates", is_flag=True, help="Also put the surrogates into OUT/surrogates.")
@k_option(help="Every cluster stands for at least k people (an integer >= 2; ignored by the baselines).")
@click.option("--method", type=click.Choice([KSAME, *BASELINES.names()]), default=KSAME, show_default=True,
              help="ksame: k-anonymous replacement; or a classic baseline applied to each face region.")
@click.option("--algo", type=click.Choice(CLUSTERERS.names()), default="fixed-kmeans", show_default=True, help="Clusterer.")
@click.option("--synth", type=click.Choice(SYNTHESIZERS.names()), default="morph", show_default=True, help="Synthesizer.")
@click.option("--encoder", type=click.Choice(ENCODERS.names()), default="dlib", show_default=True)
@click.option("--encodings", "encodings_path", type=click.Path(exists=True, path_type=Path), default=None,
              help="Reuse this encodings file (or encodings store folder) of the dataset instead of encoding again.")
@click.option("--save-encodings", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also keep the encodings here (they are always saved in the private folder; keep them out of OUT).")
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
@click.option("--color", type=click.Choice(COLOR_MODES), default="luma", show_default=True,
              help="Colour matching of surrogates: lab (the face's skin and light), luma (light only, chroma from the cluster), mean, none.")
@click.option("--shape", default="cluster", show_default=True,
              help=f"Face geometry: {' or '.join(SHAPES)} (the surrogate's own shape placed by a similarity transform, or "
                   "the member's own: the old behaviour), or a number from 0 (member) to 1 (cluster).")
@click.option("--region", type=click.Choice(list(REGIONS)), default="head", show_default=True,
              help="Region replaced: inner (jaw to just above the brows, old), forehead, head (most of the face chip).")
@click.option("--pose", type=click.IntRange(0, 8), default=0, show_default=True,
              help="With --shape cluster: take this many leading modes of the face-shape model (yaw, pitch, then "
                   "face width and mouth opening) from the member, the rest of the shape from the cluster (0: the "
                   "cluster's shape only).")
@click.option("--place", type=click.Choice(PLACEMENTS), default="anchors", show_default=True,
              help="With --shape cluster: fit the similarity transform placing the surrogate to the eye and mouth "
                   "centres (anchors) or to all 68 landmarks (less of the photo warped).")
@click.option("--detail", type=click.FloatRange(0.0, 1.0), default=0.0, show_default=True,
              help="Share of the photo's own fine detail (hair, skin grain, background texture) put back where it "
                   "changed outside the inner face: higher SSIM; pixel-level attackers gain (docs/results.md).")
@click.option("--ring", type=click.FloatRange(*RING_RANGE), default=RING_SCALE, show_default=True,
              help="With --shape cluster: how far out the photo is warped to meet the new face's outline (a scale "
                   "of the outlines' hull): smaller keeps more of the photo as it was (higher SSIM; pixel-level attackers "
                   "gain, docs/results.md).")
@click.option("--privacy-check/--no-privacy-check", default=True, show_default=True,
              help="Embed every replaced face and escalate the ones above --privacy-margin (privacy.csv).")
@click.option("--privacy-margin", type=float, default=0.05, show_default=True,
              help="Largest accepted max(leak, evenness) of a replaced face (dlib distances); a face must also stand "
                   "0.5 + this margin from its person's original photos (--own-photos).")
@click.option("--own-photos", type=click.Choice(["person", "this", "off"]), default="person", show_default=True,
              help="The privacy check's own-photo term: keep every face beyond 0.5 + margin from every original photo "
                   "of its person (person), from this photo's original only (this), or no such term (off).")
@click.option("--on-leak", type=click.Choice(ON_LEAK), default="blur", show_default=True,
              help="Last resort for a face still above the margin after every escalation step.")
@click.option("--variants", type=click.IntRange(min=0), default=None,
              help="0: one surrogate per cluster. n: each face gets one of n surrogates of its cluster (each made "
                   "from one random photo of every member), chosen per photo, never by person. "
                   "[default: 8 for ksame with the morph synthesizer, 0 otherwise]")
@click.option("--variant-photos", type=click.IntRange(min=1), default=1, show_default=True,
              help="Photos of every member in each surrogate variant (1: the most variation; more: smoother faces).")
@click.option("--reroll/--no-reroll", default=True, show_default=True,
              help="With --variants and the privacy check: a face that fails first tries its cluster's other "
                   "variants (a natural face) before the softened steps and --on-leak.")
@click.option("--reroll-steps", type=click.Choice(REROLL_STEPS), default=REROLL_STEPS_DEFAULT, show_default=True,
              help="Where a failing face tries its cluster's other variants: with the settings asked for only "
                   "(given), or at every escalation step before the next (every).")
@click.option("--soften", default=",".join(map(str, SOFTEN)), show_default=True,
              help="The privacy check's softened steps: blurs of the replaced region, as shares of the face size.")
@click.option("--check-found/--no-check-found", default=False, show_default=True,
              help="The privacy check also asks whether the detector that found a face still finds it, and keeps "
                   "the first try that passes and is found (a usable face; privacy is checked the same).")
@click.option("--output", type=click.Choice(OUTPUTS), default="photos", show_default=True,
              help="photos: every photo with its faces replaced; surrogates: only the surrogate crops (the 1/k bound "
                   "holds exactly), mapping.csv and run.json.")
@click.option("--size", type=click.IntRange(min=64), default=None,
              help="Side of the surrogate crops. Default: from the dataset's face size (128 to 512).")
@click.option("--detector", type=click.Choice(DETECTORS.names()), default="hog", show_default=True)
@click.option("--upsample", type=click.IntRange(0, 4), default=1, show_default=True)
@click.option("--quality", type=click.IntRange(1, 100), default=95, show_default=True, help="JPEG quality of the outputs.")
@jobs_option()
@backend_options()
@click.option("--seed", "random_state", type=int, default=0, show_default=True)
@click.option("--overwrite", is_flag=True, help="Write into a non-empty OUT.")
@click.option("--contact-sheet", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write a before/after grid here (shows original faces: keep it out of OUT).")
@progress_option()
@user_errors
def command(dataset, fps, detect_scale, detect_every, smooth, out, k, method, algo, synth, encoder, encodings_path, save_encodings, clusters_path, unit, outliers,
            allow_small_clusters, cluster_params, synth_params, method_params, blend, color, shape, region, pose, place, detail, ring, privacy_check,
            privacy_margin, own_photos, on_leak, variants, variant_photos, reroll, reroll_steps, soften, check_found, output, size, detector, upsample, quality, jobs, backend, address, random_state,
            overwrite, contact_sheet,
            progress, private, names, key_file, keep_folders, no_face, second_pass, safety_net, sensitive_upsample,
            net_scan, surrogates):
    """Replace every face under DATASET by its cluster's surrogate (or obfuscate it) into OUT.

    Encodes the dataset unless --encodings is given, clusters it unless --clusters is
    given, then writes OUT: the photos at the same relative paths, surrogates/,
    mapping.csv (which face became which cluster: sensitive), privacy.csv (the
    per-face privacy check) and run.json (the options).
    `anonfaces evaluate --run OUT` scores it.
    """
    from anonfaces.pipeline import anonymize_dataset

    with open_pool(jobs, progress, backend, address) as pool:
        report = anonymize_dataset(
            dataset, out, k=k, algo=algo, synth=synth, method=method, encoder=encoder, encodings=encodings_path,
            clusters=clusters_path, unit=unit, outliers=outliers, allow_small_clusters=allow_small_clusters,
            cluster_params=parse_params(cluster_params), synth_params=parse_params(synth_params),
            method_params=parse_params(method_params), blend=blend, color=color, shape=shape, region=region, pose=pose,
            place=place, detail=detail, ring=ring,
            privacy_check=privacy_check, privacy_margin=privacy_margin, own_photos=own_photos, on_leak=on_leak, variants=variants, variant_photos=variant_photos, reroll=reroll,
            reroll_steps=reroll_steps, soften=soften, check_found=check_found,
            output=output, size=size, detector=detector, upsample=upsample, save_encodings=save_encodings,
            overwrite=overwrite, quality=quality, jobs=jobs, random_state=random_state, progress=progress,
            command=command_line(), private=private, names=names, key_file=key_file, keep_folders=keep_folders,
            no_face=no_face, second_pass=second_pass, safety_net=safety_net, sensitive_upsample=sensitive_upsample,
            net_scan=net_scan, surrogates=surrogates, fps=fps or None, detect_scale=detect_scale,
            detect_every=detect_every, smooth=smooth, pool=pool)
    click.echo(f"anonymize: {report.summary()}")
    click.echo(f"shareable: {out}   private (never share; mapping, privacy check, run record, key): {report.private}")
    if report.held_back:
        click.echo(f"{len(report.held_back)} photos held back, not written (no face found, or a face left "
                   f"unprotected; listed in {report.run_path}; --no-face copy|blur to write them)")
    if report.unprotected and no_face == "copy":
        click.echo(f"WARNING: {len(report.unprotected)} faces in the outputs still match an original face or were not "
                   f"anonymized (written because of --no-face copy; listed in {report.run_path})")
    if report.unreadable:
        click.echo(f"{len(report.unreadable)} unreadable photos were not written (listed in {report.run_path})")
    if contact_sheet is not None:
        from anonfaces.pipeline.contact_sheet import write_contact_sheet

        write_contact_sheet(contact_sheet, report.dataset, out, private=report.private)
        click.echo(f"contact sheet: {contact_sheet}")
