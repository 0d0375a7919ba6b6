#!/usr/bin/env python
"""Where an attacker's signal sits: swap the inner face between two anonymizations of the same photos (issue 16).

Given a `bench/probe_kanon.py` output and two of its configurations A and B, writes two hybrid
folders beside them: A's photos with B's pixels inside each face's inner outline (the jaw line and
the brows raised by 15% of the face size, at the *original* landmarks), and the reverse; then
measures all four with SSIM, Fisherfaces (fitted on the subset's originals: closed-set and
identity-level) and dlib (identity-level), as `anonfaces evaluate` does (``--expand`` swaps a larger
outline: the face's outline and a band around it). If the pixel attacker's
figure follows the outer part, its signal is in the head's outline and surroundings; if it follows
the inner face, in the face itself.

    python bench/hybrid_attribution.py PROBE_OUT default photo-first
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def write_hybrid(enc, out: Path, outer: str, inner: str, expand: float = 1.0) -> str:
    """``out/H-<outer>-outer-<inner>-inner``: ``outer``'s photos with ``inner``'s pixels inside each inner face
    (its outline scaled by ``expand`` about the nose tip)."""
    import numpy as np

    from anonfaces.synthesize._warp import face_outline
    from anonfaces.synthesize.blend import REGIONS
    from anonfaces.synthesize.blend import _fill as fill
    from anonfaces.utils.images import read_image, write_image

    name = f"H-{outer}-outer-{inner}-inner" + (f"-x{expand:g}" if expand != 1.0 else "")
    paths = np.asarray(enc.paths)
    for rel in sorted(set(paths.tolist())):
        a, b = read_image(out / outer / rel), read_image(out / inner / rel)
        mask = np.zeros(a.shape[:2], bool)
        for lm in enc.landmarks68[paths == rel]:
            mask |= fill(face_outline(np.asarray(lm, np.float64), forehead=REGIONS["inner"][0],
                                             expand=expand), a.shape[:2]) > 127
        (out / name / rel).parent.mkdir(parents=True, exist_ok=True)
        write_image(out / name / rel, np.where(mask[..., None], b, a))
    return name


def attack_runs(out: Path, runs, *, jobs: int = 2) -> list[dict]:
    """SSIM, detection and closed-set and identity-level re-identification by Fisherfaces (fitted on the subset's
    originals) and dlib, of each run folder under a `bench/probe_kanon.py` output ``out``; prints a line per run and
    returns the figures."""
    import numpy as np
    from probe_kanon import fit_fisherfaces, load_probe_output

    from anonfaces.evaluate import protocols
    from anonfaces.evaluate.measure import measure_photos
    from anonfaces.evaluate.recognizers import make_recognizer

    enc, root = load_probe_output(out)
    ids = np.asarray(enc.identities)
    keys = np.arange(len(ids))
    dlib = make_recognizer("dlib")
    fisher, G_f = fit_fisherfaces(root, enc, jobs=jobs)
    G = np.asarray(enc.embeddings, np.float32)
    rows = []
    for run in runs:
        meas = measure_photos(out / run, enc, {"fisherfaces": fisher, "dlib": dlib}, original_root=root, detect=True,
                              jobs=jobs, progress=False)
        ok = meas.readable
        F, A = fisher.embed(meas.features["fisherfaces"]), np.asarray(meas.features["dlib"], np.float32)
        row = {"run": run, "ssim": float(np.nanmean(meas.ssim)), "detected": float(meas.detected[ok].mean()),
               "fisher_closed_set": protocols.closed_set_identification(F[ok], G_f, np.flatnonzero(ok)),
               "fisher_identity_reid": protocols.identity_reidentification(
                   F[ok], ids[ok], G_f, ids, probe_keys=keys[ok], gallery_keys=keys),
               "dlib_closed_set": protocols.closed_set_identification(A[ok], G, np.flatnonzero(ok)),
               "dlib_identity_reid": protocols.identity_reidentification(
                   A[ok], ids[ok], G, ids, probe_keys=keys[ok], gallery_keys=keys)}
        rows.append(row)
        print(f"{run:45s} SSIM {row['ssim']:.3f} detected {row['detected']:.3f} | Fisherfaces closed-set "
              f"{row['fisher_closed_set']:.3f} identity-level {row['fisher_identity_reid']:.3f} | dlib closed-set "
              f"{row['dlib_closed_set']:.3f} identity-level {row['dlib_identity_reid']:.3f}", flush=True)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("probe_out")
    ap.add_argument("a", help="a configuration (folder under PROBE_OUT)")
    ap.add_argument("b", help="another configuration of the same photos")
    ap.add_argument("--expand", type=float, default=1.0,
                    help="scale the swapped inner outline about the nose tip (1.2: the outline and a band around it)")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args(argv)

    from probe_kanon import load_probe_output


    out = Path(args.probe_out)
    enc, _ = load_probe_output(out, ap)
    attack_runs(out, [args.a, args.b, write_hybrid(enc, out, args.a, args.b, args.expand),
                      write_hybrid(enc, out, args.b, args.a, args.expand)], jobs=args.jobs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
