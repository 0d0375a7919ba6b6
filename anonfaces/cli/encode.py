"""`anonfaces encode`: photos -> encodings file."""

from __future__ import annotations

from pathlib import Path

import click

from anonfaces.cli._common import (
    UserError,
    backend_options,
    jobs_option,
    open_pool,
    parse_params,
    progress_option,
    user_errors,
)
from anonfaces.detect import DETECTORS
from anonfaces.encode import ENCODERS, Encodings
from anonfaces.pipeline.encode import encode_dataset


def _floats(value: str | None):
    if value is None:
        return None
    parts = [float(v) for v in value.split(",")]
    return parts[0] if len(parts) == 1 else parts


@click.command("encode")
@click.option("--dataset", type=click.Path(path_type=Path), default=None,
              help="Folder of photos and/or videos (one sub-folder per person if known), or one video file. "
                   "Default: the bundled sample.")
@click.option("--fps", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Videos: frames encoded per second (0: every frame).")
@click.option("--detect-scale", type=click.FloatRange(0.1, 1.0), default=1.0, show_default=True,
              help="Videos: look for faces on frames scaled by this (faster on large frames; landmarks at full size).")
@click.option("--encodings", "encodings_path", type=click.Path(path_type=Path), default=Path("encodings.npz"),
              show_default=True, help="Output file (.npz), or with --store a folder; the skip report is written beside it.")
@click.option("--encoder", type=click.Choice(ENCODERS.names()), default="dlib", show_default=True)
@click.option("--detector", type=click.Choice(DETECTORS.names()), default="hog", show_default=True)
@click.option("--upsample", type=click.IntRange(0, 4), default=1, show_default=True, help="Detector upsampling (finds smaller faces).")
@jobs_option()
@backend_options()
@click.option("--store", is_flag=True,
              help="Write a sharded encodings store (a folder of Parquet shards, one per chunk of photos, written by the "
                   "workers themselves) instead of one .npz: for large runs and --backend ray.")
@click.option("--resume", is_flag=True, help="Continue an interrupted run of the same settings.")
@click.option("--num-jitters", type=click.IntRange(min=1), default=None, help="dlib: re-sampling per face.")
@click.option("--n-components", type=click.IntRange(min=1), default=None, help="pca: dimensions kept (default 128).")
@click.option("--pca-basis", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="pca: reuse the basis saved in this encodings file instead of fitting a new one.")
@click.option("--onnx-model", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None, help="onnx: the model file.")
@click.option("--onnx-input-size", type=click.IntRange(min=8), default=None, help="onnx: input side (default: from the model).")
@click.option("--onnx-color", type=click.Choice(["rgb", "bgr"]), default=None, help="onnx: channel order (default rgb).")
@click.option("--onnx-mean", default=None, help="onnx: subtracted from 0..255 pixels, one value or r,g,b (default 127.5).")
@click.option("--onnx-std", default=None, help="onnx: divisor after the mean, one value or r,g,b (default 128).")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE", help="Any other encoder setting (repeatable).")
@click.option("--max-pixels", type=click.IntRange(min=1), default=50_000_000, show_default=True,
              help="Refuse larger images (decompression bombs).")
@click.option("--export-pickle", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the original research's encodings.pickle.")
@progress_option()
@click.option("--chunk-size", type=click.IntRange(min=1), default=32, hidden=True, help="Photos per unit of work and of --resume.")
@user_errors
def command(dataset, fps, detect_scale, encodings_path, encoder, detector, upsample, jobs, backend, address, store, resume, num_jitters, n_components, pca_basis,
            onnx_model, onnx_input_size, onnx_color, onnx_mean, onnx_std, params, max_pixels, export_pickle, progress, chunk_size):
    """Detect, align and embed every face under DATASET (photos and videos) into an encodings file."""
    settings = parse_params(params)
    given = {
        "num_jitters": num_jitters,
        "n_components": n_components,
        "model": str(onnx_model) if onnx_model else None,
        "input_size": onnx_input_size,
        "color": onnx_color,
        "mean": _floats(onnx_mean),
        "std": _floats(onnx_std),
    }
    settings.update({k: v for k, v in given.items() if v is not None})
    allowed = {"dlib": {"num_jitters", "backend", "threads"}, "pca": {"n_components", "size", "whiten"}}.get(encoder)
    if allowed is not None and set(settings) - allowed:
        raise UserError(f"--encoder {encoder} does not take: {', '.join(sorted(set(settings) - allowed))}")
    if encoder == "onnx" and "model" not in settings:
        raise UserError("--encoder onnx needs --onnx-model PATH (see the README: no weights are downloaded)")
    enc = encoder
    if pca_basis is not None:
        if encoder != "pca":
            raise UserError("--pca-basis goes with --encoder pca")
        enc = Encodings.load(pca_basis).make_encoder()
        if not enc.is_fitted:
            raise UserError(f"{pca_basis} holds no fitted PCA basis")
        settings = {}
    with open_pool(jobs, progress, backend, address) as pool:
        report = encode_dataset(dataset, encodings_path, encoder=enc, encoder_settings=settings, detector=detector,
                                upsample=upsample, jobs=jobs, resume=resume, progress=progress, max_pixels=max_pixels,
                                chunk_size=chunk_size, pool=pool, store=store, fps=fps or None, detect_scale=detect_scale)
    click.echo(f"encode: {report.summary()}")
    if report.skipped:
        click.echo(f"skip report: {report.skipped_path}")
    if export_pickle:
        from anonfaces import load_encodings

        load_encodings(report.encodings_path).to_legacy_pickle(export_pickle)
        click.echo(f"exported {export_pickle}")
