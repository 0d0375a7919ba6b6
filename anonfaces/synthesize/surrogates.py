"""One surrogate per cluster: the members' canonical crops, then the synthesizer.

`align_faces` cuts every face's canonical crop (in the workers, one photo per
task); `make_surrogates` runs the synthesizer once per cluster and writes
``<folder>/<cluster>.png``; `make_variants` adds, per cluster, ``variants`` more
surrogates ``<folder>/<cluster>.v<j>.png``, each made from one random photo of
every person of the cluster (`variant_members`), for the per-photo variation of
`anonfaces.pipeline.anonymize` (``AnonymizeOptions.variants``). All take the
command's `WorkerPool`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from anonfaces.detect.align import CANONICAL_TEMPLATE
from anonfaces.synthesize.base import Surrogate, call_synthesize
from anonfaces.utils.images import ImageReadError, read_image, write_image
from anonfaces.utils.parallel import WorkerPool

log = logging.getLogger(__name__)


def auto_crop_size(landmarks68: np.ndarray, *, low: int = 128, high: int = 512) -> int:
    """Crop side at which the median face keeps its own resolution.

    The canonical crop puts the eye centres 0.3 x size apart; the size is the
    median eye distance / 0.3, rounded up to a multiple of 32 and clipped to
    [``low``, ``high``] (``high`` when there is no face).
    """
    lm = np.asarray(landmarks68, dtype=np.float64).reshape(-1, 68, 2)
    if len(lm) == 0:
        return high
    eyes = np.linalg.norm(lm[:, 36:42].mean(1) - lm[:, 42:48].mean(1), axis=1)
    eyes = eyes[np.isfinite(eyes)]
    if len(eyes) == 0:
        return high
    side = np.median(eyes) / (CANONICAL_TEMPLATE[1, 0] - CANONICAL_TEMPLATE[0, 0])
    return int(np.clip(np.ceil(side / 32.0) * 32, low, high))


# --- worker side --------------------------------------------------------------------------------
def _align_task(context, task):
    """Canonical crops of every face of one photo -> (rel, rows, (crops [m,S,S,3], landmarks [m,68,2])) or an error."""
    from anonfaces.detect import align_face

    root, size, max_pixels = context
    rel, rows, landmarks, size_wh = task
    try:
        image = read_image(Path(root) / rel, max_pixels=max_pixels)
    except ImageReadError as exc:
        return rel, rows, None, f"unreadable: {exc}"
    h, w = image.shape[:2]
    if (w, h) != tuple(size_wh):
        return rel, rows, None, f"image is {w}x{h} but the encodings recorded {size_wh[0]}x{size_wh[1]} (stale encodings?)"
    faces = [align_face(image, lm, size=size) for lm in landmarks]
    crops = np.stack([f.image for f in faces])
    points = np.stack([f.landmarks68 for f in faces]).astype(np.float32)
    return rel, rows, (crops, points), None


def _synthesize_task(folder, task):
    """One cluster's surrogate, written to <folder>/<cluster>.png; returns (cluster, landmarks)."""
    synthesizer, cluster, faces, points, embeddings, identities = task
    return cluster, _make_surrogate(synthesizer, cluster, faces, points, embeddings, identities, Path(folder))


def _make_surrogate(synthesizer, cluster, faces, points, embeddings, identities, folder: Path, *,
                    name: str | None = None) -> np.ndarray:
    sur = call_synthesize(synthesizer, faces, points, embeddings, identities)
    if not isinstance(sur, Surrogate):  # a generator that returns its own record with the same fields
        sur = Surrogate(sur.image, sur.landmarks)
    write_image(folder / f"{cluster if name is None else name}.png", sur.image)
    return sur.landmarks


def _variant_task(folder, task):
    """One variant surrogate, written to <folder>/<cluster>.v<j>.png; returns ((cluster, j), landmarks)."""
    synthesizer, cluster, j, faces, points, embeddings, identities = task
    name = variant_name(cluster, j)
    return (cluster, j), _make_surrogate(synthesizer, cluster, faces, points, embeddings, identities, Path(folder),
                                         name=name)


def variant_name(cluster: int, variant: int) -> str:
    """The file stem of a cluster's surrogate: ``<cluster>`` (variant 0, every member's photos) or ``<cluster>.v<j>``."""
    return str(int(cluster)) if int(variant) == 0 else f"{int(cluster)}.v{int(variant)}"


def variant_members(persons: np.ndarray, rows: np.ndarray, rng: np.random.Generator, *, per_person: int = 1
                    ) -> np.ndarray:
    """``per_person`` random rows of every person among ``rows`` (a cluster's faces; all of a person's
    rows where they have fewer), sorted: a variant's members.

    Every person of the cluster is in every variant with the same number of photos
    (as far as they have them), so a variant stands for the same k people as the
    cluster's surrogate; what differs between variants (which photos of each person:
    pose, light, expression) does not depend on whose photo the variant is put into.
    """
    rows = np.asarray(rows)
    people = np.asarray(persons)[rows]
    chosen = []
    for p in np.unique(people):
        mine = rows[people == p]
        if per_person == 1:
            chosen.append(rng.choice(mine))
        else:
            chosen.extend(rng.choice(mine, size=min(int(per_person), len(mine)), replace=False).tolist())
    return np.sort(np.asarray(chosen, dtype=rows.dtype))


def make_variants(pool: WorkerPool, synthesizer, crops, points, embeddings, identities, labels, persons, folder: Path,
                  *, variants: int, seed: int = 0, per_person: int = 1) -> dict[tuple[int, int], np.ndarray]:
    """``variants`` more surrogates per cluster (``folder/<cluster>.v<j>.png``, j = 1 .. variants).

    Variant j of a cluster is the synthesizer's output on ``per_person`` random photos
    of each of the cluster's people (`variant_members`; ``persons``: one person id per
    row, seeded by ``seed``, the cluster and j). Returns ``{(cluster, j): landmarks}``.
    Call after `make_surrogates` (which clears the folder).
    """
    folder = Path(folder)
    names = np.asarray(identities).astype(str) if getattr(synthesizer, "uses_identities", False) else None
    members = _members(labels)

    def tasks():  # made as the workers take them: each carries its members' crops
        for c, rows in members.items():
            for j in range(1, int(variants) + 1):
                rng = np.random.default_rng([int(seed) & 0x7FFFFFFF, int(c) & 0x7FFFFFFF, j])
                m = variant_members(persons, rows, rng, per_person=per_person)
                yield synthesizer, int(c), j, crops[m], points[m], embeddings[m], _labels(names, m)

    if getattr(synthesizer, "parallel", False) and not pool.in_process:
        return dict(pool.map(_variant_task, tasks(), total=len(members) * int(variants), context=str(folder),
                             desc="variants", unit="surrogate", chunksize=4))
    return dict(_variant_task(str(folder), t) for t in tasks())


# --- main side ----------------------------------------------------------------------------------
def align_faces(pool: WorkerPool, root, by_photo: dict[str, np.ndarray], landmarks68: np.ndarray, image_sizes: np.ndarray,
                *, size: int, max_pixels: int):
    """Canonical crops of every face: ``crops`` (n, S, S, 3) uint8, ``points`` (n, 68, 2), and the photos that failed.

    ``by_photo`` maps each photo to its rows of ``landmarks68`` (n, 68, 2) and
    ``image_sizes`` (n, 2) (width, height as encoded).
    """
    n = len(landmarks68)
    crops = np.empty((n, size, size, 3), np.uint8)
    points = np.empty((n, 68, 2), np.float32)
    tasks = [(rel, rows, landmarks68[rows], tuple(int(v) for v in image_sizes[rows[0]])) for rel, rows in by_photo.items()]
    bad = []
    for rel, rows, result, error in pool.map(_align_task, tasks, context=(str(root), int(size), int(max_pixels)), desc="align"):
        if error is not None:
            bad.append((rel, error))
            continue
        crops[rows], points[rows] = result
    return crops, points, bad


def make_surrogates(pool: WorkerPool, synthesizer, crops, points, embeddings, identities, labels,
                    folder: Path) -> dict[int, np.ndarray]:
    """Every cluster's surrogate (``folder/<cluster>.png``); returns each cluster's surrogate landmarks.

    Built-in synthesizers (``parallel = True``) run in the workers, others (learned
    ones) here. ``identities`` (the members' labels, ``""`` when unknown) reach only
    synthesizers that declare ``uses_identities`` (`anonfaces.synthesize.base.call_synthesize`).
    """
    folder = Path(folder)
    identities = np.asarray(identities).astype(str) if getattr(synthesizer, "uses_identities", False) else None
    if callable(getattr(synthesizer, "fit", None)) and len(crops):
        synthesizer.fit(crops, points)
    if folder.is_dir():  # an earlier run's surrogates (overwrite): remove them so none is left over
        for old in folder.glob("*.png"):
            old.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    members = _members(labels)
    if getattr(synthesizer, "parallel", False) and not pool.in_process:
        tasks = ((synthesizer, c, crops[m], points[m], embeddings[m], _labels(identities, m)) for c, m in members.items())
        return dict(pool.map(_synthesize_task, tasks, total=len(members), context=str(folder), desc="synthesize",
                             unit="cluster", chunksize=1))
    from tqdm.auto import tqdm

    result = {}
    for c, m in tqdm(members.items(), desc="synthesize", unit="cluster", disable=not pool.progress):
        result[int(c)] = _make_surrogate(synthesizer, int(c), crops[m], points[m], embeddings[m], _labels(identities, m), folder)
    return result


def _members(labels) -> dict[int, np.ndarray]:
    """Each cluster's rows, in cluster order (one sort, not one scan of ``labels`` per cluster)."""
    labels = np.asarray(labels)
    if not labels.size:
        return {}
    order = np.argsort(labels, kind="stable")
    clusters, starts = np.unique(labels[order], return_index=True)
    return {int(c): rows for c, rows in zip(clusters.tolist(), np.split(order, starts[1:]), strict=True)}


def _labels(identities, members: np.ndarray) -> list[str] | None:
    return None if identities is None else identities[members].tolist()
