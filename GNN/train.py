"""Train the GNN (k-Same-Net style identity-conditioned generator) on a ``<identity>/<file>`` dataset.

    python GNN/train.py --dataset datasets/sample --out GNN/runs/sample [--config GNN/config.toml]
    python GNN/train.py --dataset ../shared/data/lfw --out GNN/runs/lfw --max-identities 100 --steps 20000
    python GNN/train.py --dataset ... --out GNN/runs/lfw --resume     # continue from OUT/checkpoint.pt
    python GNN/train.py --dataset DIR --out OUT --encodings DIR.npz   # + identity embeddings (from `anonfaces encode`)
    python GNN/train.py --dataset DIR --out OUT --encode              # + identity embeddings (dlib, computed here)
    python GNN/train.py --dataset DIR --out OUT --attributes attrs.csv  # + an attribute code (CSV path,<attr>,... or CelebA's list_attr file)

Writes OUT/faces.npz (the aligned training faces, reused by --resume), OUT/config.json,
OUT/metrics.jsonl, OUT/checkpoint.pt and OUT/gnn.pt (the weights the ``gnn`` synthesizer loads).
Only parses options; the work is `anonfaces.synthesize.gnn.train_gnn`.
"""

from __future__ import annotations

import logging
import sys
import tomllib
from pathlib import Path

import click

HERE = Path(__file__).resolve().parent


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--dataset", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True,
              help="Folder of <identity>/<image> photos.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Run folder.")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=HERE / "config.toml", show_default=True, help="TOML settings ([data] and [train]).")
@click.option("--steps", type=int, help="Override [train] steps.")
@click.option("--image-size", type=int, help="Override [train] image_size.")
@click.option("--min-images", type=int, help="Override [data] min_images.")
@click.option("--max-identities", type=int, help="Override [data] max_identities.")
@click.option("--max-per-identity", type=int, help="Override [data] max_per_identity.")
@click.option("--align", type=click.Choice(["detect", "center"]), help="Override [data] align.")
@click.option("--attributes", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Override [data] attributes: CSV 'path,<attribute>,...' (values 0/1, -1/1 or in [0, 1]) or CelebA's list_attr_celeba.txt.")
@click.option("--encodings", "encodings_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Encodings of DATASET (`anonfaces encode`): store each identity's mean embedding, so that "
                   "the gnn synthesizer can match unlabelled people by embedding.")
@click.option("--encode", is_flag=True, help="Like --encodings, but embed the training faces here (dlib encoder).")
@click.option("--resume", is_flag=True, help="Continue from OUT/checkpoint.pt (same faces and settings).")
@click.option("--threads", type=int, default=1, show_default=True, help="torch CPU threads.")
@click.option("--no-progress", is_flag=True, help="No progress bars.")
@click.option("--dry-run", is_flag=True, help="Print the settings and stop.")
def main(dataset, out, config_path, steps, image_size, min_images, max_identities, max_per_identity, align,
         attributes, encodings_path, encode, resume, threads, no_progress, dry_run):
    """Train the GNN; see GNN/README.md."""
    from anonfaces.cli._common import user_errors

    user_errors(_run)(dataset, out, config_path, steps, image_size, min_images, max_identities, max_per_identity,
                      align, attributes, encodings_path, encode, resume, threads, no_progress, dry_run)


def _run(dataset, out, config_path, steps, image_size, min_images, max_identities, max_per_identity, align,
         attributes, encodings_path, encode, resume, threads, no_progress, dry_run):
    import torch

    from anonfaces.errors import BadInputError
    from anonfaces.synthesize.gnn import (
        FaceSet,
        GNNConfig,
        add_embeddings,
        load_face_set,
        train_gnn,
    )

    if encode and encodings_path is not None:
        raise BadInputError("give --encodings or --encode, not both")

    settings = tomllib.loads(config_path.read_text(encoding="utf-8"))
    data = dict(settings.get("data", {}))
    train = dict(settings.get("train", {}))
    for key, value in (("min_images", min_images), ("max_identities", max_identities),
                       ("max_per_identity", max_per_identity), ("align", align), ("attributes", attributes)):
        if value is not None:
            data[key] = value
    for key, value in (("steps", steps), ("image_size", image_size)):
        if value is not None:
            train[key] = value
    config = GNNConfig.from_dict(train)
    if encode:
        data["encoder"] = "dlib"
    click.echo(f"data: {data}\ntrain: {config}")
    if dry_run:
        return
    torch.set_num_threads(threads)
    faces_path = out / "faces.npz"
    reuse = resume and faces_path.is_file()
    if reuse:
        faces = FaceSet.load(faces_path)
    else:
        faces = load_face_set(dataset, size=config.image_size, progress=not no_progress, **data)
    if encodings_path is not None:
        faces = add_embeddings(faces, encodings_path)
    if not reuse or encodings_path is not None:
        faces.save(faces_path)
    with_emb = "" if faces.embeddings is None else ", with identity embeddings"
    click.echo(f"{len(faces)} faces of {len(faces.identities)} identities{with_emb}")
    result = train_gnn(faces, out, config=config, resume=resume, progress=not no_progress)
    losses = result["losses"]
    head, tail = losses[: max(1, len(losses) // 20)], losses[-max(1, len(losses) // 20):]
    click.echo(f"loss {sum(head) / len(head):.4f} -> {sum(tail) / len(tail):.4f}; weights: {result['weights']}")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(main())
