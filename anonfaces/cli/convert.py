"""`anonfaces convert`: between encodings.npz, a sharded encodings store and the original encodings.pickle."""

from __future__ import annotations

from pathlib import Path

import click

from anonfaces.cli._common import UserError, user_errors
from anonfaces.encode import Encodings
from anonfaces.encode.store import DEFAULT_SHARD_ROWS, is_store, load_store, save_store

_PICKLE = (".pickle", ".pkl")


def _kind(path: Path) -> str:
    if path.suffix in _PICKLE:
        return "pickle"
    if path.suffix == ".npz":
        return "npz"
    return "store"


@click.command("convert")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.argument("target", type=click.Path(path_type=Path))
@click.option("--dataset", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Dataset root, to make a pickle's image paths relative (and read identities from them).")
@click.option("--shard-rows", type=click.IntRange(min=1), default=DEFAULT_SHARD_ROWS, show_default=True,
              help="Faces per shard when writing a store.")
@user_errors
def command(source, target, dataset, shard_rows):
    """Convert encodings between formats; the kind follows each path.

    \b
    *.npz            an encodings file
    *.pickle, *.pkl  the original research's encodings.pickle (read through a
                     restricted unpickler that refuses anything but data)
    anything else    a sharded encodings store folder (Parquet shards; needs
                     pyarrow: pip install 'anonfaces[scale]')

    A store's unreadable shards are skipped, and named, when it is converted.
    """
    src, dst = _kind(source), _kind(target)
    if src == dst:
        raise UserError(f"SOURCE and TARGET are both {'a store' if src == 'store' else '.' + src}; nothing to convert")
    if src == "store" and not is_store(source):
        raise UserError(f"{source} is neither .npz, .pickle/.pkl nor an encodings store folder")
    if dst == "store" and target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UserError(f"{target} exists and is not an empty folder (a store is written into a new folder)")
    if src == "pickle":
        enc = Encodings.from_legacy_pickle(source, dataset_root=dataset)
    elif src == "store":
        enc = load_store(source, verify=True)
        for name, reason in enc.meta.get("store_problems", {}).items():
            click.echo(f"warning: skipped {name}: {reason}", err=True)
    else:
        enc = Encodings.load(source)
    if dst == "pickle":
        enc.to_legacy_pickle(target)
        out = target
    elif dst == "npz":
        if src == "store":
            enc = enc.materialize()
        out = enc.save(target)
    else:
        store = save_store(enc, target, shard_rows=shard_rows)
        out = store.path
        click.echo(f"{len(store.shards())} shard(s)")
    click.echo(f"converted {len(enc)} faces: {source} -> {out}")
