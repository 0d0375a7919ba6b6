"""Put the surrogates into the photos (or obfuscate each face in place): one photo per worker task.

`replace_faces` writes every photo of the dataset under OUT at the name it is
given: faces replaced by their cluster's surrogate (`anonfaces.synthesize.privacy`'s
per-photo `replace_faces` with the `BlendSettings` in ``blend``, and, with a
``check``, the per-face privacy check and its escalation) or by a baseline
(`apply_baseline`), photos without a face re-encoded unchanged (so without metadata).
"""

from __future__ import annotations

import uuid
import zlib
from pathlib import Path

import numpy as np

from anonfaces.synthesize.base import Surrogate
from anonfaces.utils.images import ImageReadError, read_image, write_image
from anonfaces.utils.parallel import WorkerPool, worker_local

KSAME = "ksame"


def _surrogate(run: dict, cluster: int, landmarks: np.ndarray, variant: int = 0) -> Surrogate:
    from anonfaces.synthesize.surrogates import variant_name

    cache = worker_local("synthesize.surrogates", run["token"])
    key = (cluster, int(variant))
    if key not in cache:
        image = read_image(Path(run["surrogates"]) / f"{variant_name(cluster, variant)}.png")
        cache[key] = Surrogate(image, landmarks, {"variant": int(variant)})
    return cache[key]


def _variants_of(run: dict) -> dict[int, list[int]]:
    """Each cluster's variant numbers, sorted; indexed once per worker and call (not one scan of every variant per face)."""
    held = worker_local("synthesize.variants", run["token"])
    if "index" not in held:
        index: dict[int, list[int]] = {}
        for c, j in sorted(run["variants"]):
            index.setdefault(c, []).append(j)
        held["index"] = index
    return held["index"]


def _privacy_check(run: dict):
    """This worker's `PrivacyCheck` for the call (None when the check is off); its embedder is made once per worker
    by ``check["make_embed"]`` (the model itself is cached per process by its loader)."""
    check = run["check"]
    if check is None:
        return None
    held = worker_local("synthesize.privacy", run["token"])
    if "check" not in held:
        from anonfaces.synthesize.privacy import PrivacyCheck

        detector = None
        if check.get("found"):  # the found test: the detector that found the faces in the originals
            from anonfaces.detect import make_detector

            detector = make_detector(**check["found"])
        given = {key: check[key] for key in ("own_distance", "own_photos", "soften", "reroll_steps") if key in check}
        held["check"] = PrivacyCheck(check["make_embed"](), margin=check["margin"], on_leak=check["on_leak"],
                                     detector=detector, **given)  # what the context leaves out: PrivacyCheck's defaults
    return held["check"]


def _face_job(run: dict, face):
    """The `FaceJob` of one face: ``(landmarks68, cluster, surrogate landmarks, face index, row)``; with the check,
    the person's mean embedding (``member``), their faces' embeddings (``own``), this face's own (``original``) and
    those of the cluster's other people (``others``), from the rows of ``check["embeddings"]``."""
    from anonfaces.synthesize.privacy import FaceJob

    lm, cluster, sur_lm, face_index, row, *rest = face
    variant = int(rest[0]) if rest else 0
    context = {}
    check = run["check"]
    if check is not None and row is not None:
        emb, persons, labels = check["embeddings"], check["persons"], check["labels"]
        own = persons == persons[row]
        context = {"member": emb[own].mean(0), "own": emb[own], "others": emb[(labels == labels[row]) & ~own],
                   "original": emb[row]}
        if check.get("boxes") is not None:
            context["box_ltrb"] = check["boxes"][row]
    if check is not None and variant and check.get("reroll", True):
        others = [j for j in _variants_of(run).get(cluster, ()) if j != variant]
        context["alternatives"] = tuple(_surrogate(run, cluster, run["variants"][(cluster, j)], j) for j in others)
    return FaceJob(lm, _surrogate(run, cluster, sur_lm, variant), cluster=cluster, face=face_index, **context)


def _replace_task(run: dict, task):
    """Write one photo under OUT with its faces replaced.

    Returns (rel, n_faces, error or None, privacy records of its faces).
    """
    rel, name, faces = task
    try:
        image = read_image(Path(run["root"]) / rel, max_pixels=run["max_pixels"])
    except ImageReadError as exc:
        return rel, 0, str(exc), [], False
    records = []
    if not faces and run["no_face"] != "copy":  # a photo where no face was found: held back, or blurred whole
        if run["no_face"] == "skip":
            return rel, 0, None, [], False
        from anonfaces.synthesize.baselines import blur_all

        image = blur_all(image)
    if faces:
        if run["method"] == KSAME:
            from anonfaces.synthesize.blend import BlendSettings
            from anonfaces.synthesize.privacy import (
                replace_faces as replace_photo_faces,
            )

            jobs = [_face_job(run, face) for face in faces]
            image, records = replace_photo_faces(image, jobs, settings=BlendSettings(**run["blend"]),
                                                 check=_privacy_check(run), path=rel)
        else:
            from anonfaces.synthesize.baselines import apply_baseline

            seed = (zlib.crc32(rel.encode()) ^ int(run["seed"])) & 0x7FFFFFFF
            image = apply_baseline(image, run["method"], [face[0] for face in faces], random_state=seed,
                                   forehead=run["forehead"], **run["method_params"])
    write_image(Path(run["out"]) / name, image, quality=run["quality"])
    return rel, len(faces), None, records, True


def replace_faces(pool: WorkerPool, root, out, photos: list[tuple[str, str, list]], *, method: str, blend: dict,
                  method_params: dict, seed: int, quality: int, max_pixels: int, surrogates=None, forehead: float = 0.15,
                  check: dict | None = None, no_face: str = "copy", variants: dict | None = None):
    """Write every photo of ``photos`` under ``out``; yields (rel, n_faces, error or None, privacy records, written).

    ``no_face``: photos without a face are ``skip``-ped (not written), ``copy``-ed
    unchanged (re-encoded, no metadata) or ``blur``-red whole.

    ``photos``: (relative path in the dataset, name under ``out``, faces) with one
    ``(landmarks68, cluster, surrogate landmarks, face index, row[, variant])`` per face (an empty
    list: copied unchanged; ``variant`` j > 0 reads ``surrogates/<cluster>.v<j>.png``). ``method`` is ``ksame`` (surrogates read from
    ``surrogates/<cluster>.png``, put in with the `BlendSettings` fields in ``blend``) or a
    baseline (``apply_baseline(**method_params)``, seeded per photo from ``seed``, its
    region lifted by ``forehead``).

    ``check`` (ksame only; None: no check, every record ``unchecked``): the per-face
    privacy check, ``{"make_embed": a picklable module-level callable returning
    embed(chips) -> (n, dim), "margin", "on_leak", "embeddings" (n_rows, dim),
    "persons" (n_rows,) int, "labels" (n_rows,) int, optionally "own_distance" (the own-photo term's distance,
    None: off; default `anonfaces.synthesize.privacy.OWN_DISTANCE`), "own_photos" (``person`` or ``this``),
    "reroll" (default true: a failing face tries its cluster's other variants first), "reroll_steps" (``given`` or
    ``every``, `PrivacyCheck.reroll_steps`), "soften" (the softened steps), "found" (None, or the
    ``make_detector`` settings of the check's found test) and "boxes" (n_rows, 4) (the faces' boxes, for the found
    test)}``; ``row`` of each face indexes those arrays.

    ``variants``: ``{(cluster, j): landmarks}`` of the surrogate variants
    (`anonfaces.synthesize.surrogates.make_variants`); with the check, a face of variant
    j > 0 gets its cluster's other variants as `FaceJob.alternatives` (``on_leak="surrogate"`` then pastes the
    variant that came closest to passing: on the LFW sweep at k = 5 it left fewer faces unprotected than the
    cluster's own surrogate, 0.017 against 0.036).
    """
    run = {"root": str(root), "out": str(out), "method": method, "blend": dict(blend), "method_params": dict(method_params),
           "seed": int(seed), "quality": int(quality), "max_pixels": int(max_pixels), "forehead": float(forehead),
           "surrogates": str(surrogates) if surrogates else None, "check": check, "no_face": no_face, "token": uuid.uuid4().hex,
           "variants": dict(variants or {})}
    yield from pool.map(_replace_task, photos, context=run, desc="anonymize")
