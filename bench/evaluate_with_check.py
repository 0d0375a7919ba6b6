#!/usr/bin/env python
"""``anonfaces evaluate`` with the privacy check's own-photo settings changed (issue 16 / 13 probes).

The check's context is built in the main process and shipped to the workers, so
wrapping `anonfaces.pipeline.anonymize.privacy_context` here changes every
anonymization of the sweep:

    python bench/evaluate_with_check.py --own-photos this [--own-distance 0.5] -- <anonfaces evaluate options>
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    split = argv.index("--") if "--" in argv else len(argv)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--own-photos", choices=("person", "this"), default="person")
    ap.add_argument("--own-distance", default="0.5", help="a distance, or 'none' (no own-photo term)")
    args = ap.parse_args(argv[:split])
    own_distance = None if args.own_distance.lower() == "none" else float(args.own_distance)
    module = importlib.import_module("anonfaces.pipeline.anonymize")
    make = module.privacy_context

    def privacy_context(*a, **kw):
        return {**make(*a, **kw), "own_distance": own_distance, "own_photos": args.own_photos}

    module.privacy_context = privacy_context
    from anonfaces.cli import main as cli

    return cli(["evaluate", *argv[split + 1:]], standalone_mode=False) or 0


if __name__ == "__main__":
    raise SystemExit(main())
