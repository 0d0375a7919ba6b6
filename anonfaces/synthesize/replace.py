"""Put the surrogates into the photos (or obfuscate each face in place): one photo per worker task.

`replace_faces` writes every photo of the dataset under OUT at the same relative
path: faces replaced by their cluster's surrogate (`blend_surrogate`, settings in
``blend``) or by a baseline (`apply_baseline`), photos without a face re-encoded
unchanged (so without metadata).
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


def _surrogate(run: dict, cluster: int, landmarks: np.ndarray) -> Surrogate:
    cache = worker_local("synthesize.surrogates", run["token"])
    if cluster not in cache:
        image = read_image(Path(run["surrogates"]) / f"{cluster}.png")
        cache[cluster] = Surrogate(image, landmarks)
    return cache[cluster]


def _replace_task(run: dict, task):
    """Write one photo under OUT with its faces replaced. Returns (rel, n_faces, error or None)."""
    rel, name, faces = task
    try:
        image = read_image(Path(run["root"]) / rel, max_pixels=run["max_pixels"])
    except ImageReadError as exc:
        return rel, 0, str(exc)
    if faces:
        result = image.copy()
        if run["method"] == KSAME:
            from anonfaces.synthesize.blend import blend_surrogate

            for lm, cluster, sur_lm in faces:
                blend_surrogate(image, _surrogate(run, cluster, sur_lm), lm, out=result, **run["blend"])
        else:
            from anonfaces.synthesize.baselines import apply_baseline

            seed = (zlib.crc32(rel.encode()) ^ int(run["seed"])) & 0x7FFFFFFF
            result = apply_baseline(image, run["method"], [lm for lm, _, _ in faces], random_state=seed,
                                    forehead=run["forehead"], **run["method_params"])
        image = result
    write_image(Path(run["out"]) / name, image, quality=run["quality"])
    return rel, len(faces), None


def replace_faces(pool: WorkerPool, root, out, photos: list[tuple[str, list]], *, method: str, blend: dict,
                  method_params: dict, seed: int, quality: int, max_pixels: int, surrogates=None):
    """Write every photo of ``photos`` under ``out``; yields (rel, n_faces, error or None) in order.

    ``photos``: (relative path in the dataset, name under ``out``, faces) with one
    ``(landmarks68, cluster, surrogate landmarks)`` per face (an empty list: copied unchanged). ``method`` is ``ksame`` (surrogates read from
    ``surrogates/<cluster>.png``, put in with ``blend_surrogate(**blend)``) or a baseline
    (``apply_baseline(**method_params)``, seeded per photo from ``seed``; ``blend["forehead"]``
    sets how much forehead the region covers).
    """
    run = {"root": str(root), "out": str(out), "method": method, "blend": dict(blend), "method_params": dict(method_params),
           "seed": int(seed), "quality": int(quality), "max_pixels": int(max_pixels),
           "forehead": float(blend.get("forehead", 0.15)), "surrogates": str(surrogates) if surrogates else None,
           "token": uuid.uuid4().hex}
    yield from pool.map(_replace_task, photos, context=run, desc="anonymize")
