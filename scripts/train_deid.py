"""Train a CNN de-identifier (feature inversion or D2GAN) on aligned face crops; resumable.

    python scripts/train_deid.py --model inversion --data ../shared/data/celeba-aligned \
        --faces runs/celeba64.npz --out runs/deid-inversion --steps 4000

``--faces`` is made from ``--data`` first when it does not exist (detect, crop, embed).
The inference checkpoint is OUT/<model>.npz; copy it to anonfaces/synthesize/deid/weights/
to ship it. See docs/deid.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from anonfaces.errors import BadInputError
from anonfaces.pipeline.train_deid import DEFAULTS, prepare_faces, train


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, choices=["inversion", "d2gan"])
    shared = Path(os.environ.get("ANONFACES_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    ap.add_argument("--data", default=str(shared / "celeba-aligned"),
                    help="folder of aligned face photos (default: CelebA in $ANONFACES_SHARED_DATA or ../shared/data)")
    ap.add_argument("--faces", required=True, help="prepared faces (.npz); made from --data when missing")
    ap.add_argument("--limit", type=int, default=None, help="use only the first N photos of --data when preparing")
    ap.add_argument("--out", required=True, help="run folder (resumed when it holds a checkpoint)")
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--minutes", type=float, default=None, help="stop (checkpointed) after this much wall time")
    ap.add_argument("--save-every", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: share the machine)")
    ap.add_argument("--init", default=None,
                    help="start from this inference checkpoint (<model>.npz of an earlier run) or an earlier run's "
                         "checkpoint.pt (generator and discriminators)")
    ap.add_argument("--encoder", choices=["mobilenetv2", "resnet"], default=None)
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help=f"another training setting (JSON value); names: {', '.join(sorted(DEFAULTS))}")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = {"encoder": args.encoder, "batch": args.batch}
        for item in args.set:
            name, sep, value = item.partition("=")
            if not sep:
                raise BadInputError(f"--set {item!r}: expected NAME=VALUE")
            try:
                settings[name] = json.loads(value)
            except json.JSONDecodeError:
                settings[name] = value
        if not Path(args.faces).is_file():
            prepare_faces(args.data, args.faces, limit=args.limit, progress=not args.quiet)
        summary = train(args.model, args.faces, args.out, steps=args.steps, seed=args.seed, minutes=args.minutes,
                        save_every=args.save_every, threads=args.threads, progress=not args.quiet, init=args.init,
                        **settings)
    except BadInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
