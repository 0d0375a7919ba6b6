#!/usr/bin/env python
"""Fit the shape-mode model shipped in anonfaces/synthesize/data/shape_modes.npz (`anonfaces.synthesize.shape_modes`).

    python bench/fit_shape_modes.py --encodings runs/lfw/encodings.npz [--out anonfaces/synthesize/data/shape_modes.npz]

The encodings of all of LFW (13,893 faces: ``anonfaces encode --dataset ../shared/data/lfw``) gave the shipped
model. Prints each mode's share of the variance and the share of it that varies between photos of one person.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv=None) -> int:
    import numpy as np

    from anonfaces.encode import Encodings
    from anonfaces.synthesize.shape_modes import MODEL_PATH, N_MODES, fit_shape_modes
    from anonfaces.utils.atomic import atomic_write_bytes

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--encodings", required=True)
    ap.add_argument("--out", default=str(MODEL_PATH))
    ap.add_argument("--modes", type=int, default=N_MODES)
    args = ap.parse_args(argv)
    enc = Encodings.load(args.encodings)
    model = fit_shape_modes(enc.landmarks68, n_modes=args.modes,
                            identities=enc.identities if enc.has_identities else None)
    for j, share in enumerate(model["explained"]):
        within = model.get("within")
        print(f"mode {j}: {share:.3f} of the variance" + (f", {within[j]:.2f} of it within a person" if within is not None else ""))
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v, np.float32 if k in ("mean", "components") else None) for k, v in model.items()})
    atomic_write_bytes(args.out, buf.getvalue())
    print(f"{model['faces']} faces -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
