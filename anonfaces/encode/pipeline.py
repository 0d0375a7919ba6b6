"""Encode a folder of photos: detect, align and embed every face, in parallel.

`encode_photos` streams the photos through worker processes (one per core by
default) in fixed chunks. Each finished chunk is written atomically into
``<encodings>.partial/``; an interrupted run continues from there with
``resume=True`` and ends with exactly the output an uninterrupted run gives.
The final encodings file and its skip report (``<stem>.skipped.csv``: path and
reason for every photo that gave no face) are written atomically, then the
partial folder is removed.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from anonfaces.detect import make_detector
from anonfaces.encode.base import ENCODERS, Encoder
from anonfaces.encode.encodings import Encodings
from anonfaces.errors import BadInputError
from anonfaces.utils.atomic import atomic_open, atomic_write_text
from anonfaces.utils.images import (
    DEFAULT_MAX_PIXELS,
    ImageReadError,
    identity_of,
    list_images,
    read_image,
)
from anonfaces.utils.parallel import WorkerPool, check_jobs, pool_for, worker_local

log = logging.getLogger(__name__)

#: Photos per chunk: the unit of work for a worker and of resumption.
CHUNK_SIZE = 32

SAMPLE_DATASET = Path(__file__).resolve().parents[2] / "datasets" / "sample"


@dataclass
class EncodeReport:
    """What an encoding run did; `summary()` is the one-line account the CLI prints."""

    encodings_path: Path
    skipped_path: Path
    n_images: int
    n_faces: int
    skipped: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    resumed_images: int = 0
    encodings: Encodings | None = None  # what was written to encodings_path

    def summary(self) -> str:
        rate = self.n_faces / self.seconds if self.seconds > 0 else float("nan")
        resumed = f" ({self.resumed_images} from an earlier run)" if self.resumed_images else ""
        return (
            f"{self.n_images} images{resumed}, {self.n_faces} faces, {len(self.skipped)} skipped, "
            f"{self.seconds:.1f} s, {rate:.1f} faces/s -> {self.encodings_path}"
        )


def default_dataset() -> Path:
    if not SAMPLE_DATASET.is_dir():
        raise BadInputError(f"no --dataset given and the bundled sample is missing ({SAMPLE_DATASET})")
    return SAMPLE_DATASET


def skipped_path_for(encodings_path: str | os.PathLike) -> Path:
    p = Path(encodings_path)
    stem = p.name.removesuffix(".npz")
    return p.with_name(stem + ".skipped.csv")


def make_encoder(encoder: str | Encoder = "dlib", **settings) -> Encoder:
    if isinstance(encoder, Encoder):
        if settings:
            raise BadInputError("pass settings to the encoder's constructor, not with an encoder instance")
        return encoder
    return ENCODERS.get(encoder)(**settings)


# --- worker side --------------------------------------------------------------------------
def _worker_models(context) -> tuple:
    """This worker's detector and encoder for ``context``, built once per context."""
    _, detector, encoder_cls, encoder_settings, encoder_state, _ = context
    token = (json.dumps([detector, encoder_cls, encoder_settings], sort_keys=True, default=str), _state_digest(encoder_state))
    held = worker_local("encode.models", token)
    if not held:
        held["detector"] = make_detector(detector["name"], upsample=detector["upsample"])
        held["encoder"] = ENCODERS.get(encoder_cls).from_saved(encoder_settings, encoder_state)
    return held["detector"], held["encoder"]


def _encode_chunk(context, task: tuple[int, list[str]]) -> tuple[int, bytes]:
    """Encode one chunk of photos; returns the chunk as npz bytes (see `_pack`)."""
    chunk_id, relpaths = task
    detector, encoder = _worker_models(context)
    root, max_pixels = Path(context[0]), context[5]
    rows: dict[str, list] = {k: [] for k in ("paths", "face_index", "boxes_ltrb", "scores", "landmarks68", "landmarks5", "image_sizes")}
    prepared, skipped = [], []
    for rel in relpaths:
        try:
            image = read_image(root / rel, max_pixels=max_pixels)
        except ImageReadError as exc:
            skipped.append((rel, str(exc)))
            continue
        try:
            faces = detector.detect(image)
            prep = encoder.prepare(image, faces) if faces else None
        except (RuntimeError, ValueError, MemoryError) as exc:  # dlib raises RuntimeError on odd inputs
            skipped.append((rel, f"detection failed: {type(exc).__name__}: {exc}"))
            continue
        if not faces:
            skipped.append((rel, "no face found"))
            continue
        h, w = image.shape[:2]
        for f in faces:
            rows["paths"].append(rel)
            rows["face_index"].append(f.index)
            rows["boxes_ltrb"].append(f.box_ltrb)
            rows["scores"].append(f.score)
            rows["landmarks68"].append(f.landmarks68)
            rows["landmarks5"].append(f.landmarks5)
            rows["image_sizes"].append((w, h))
        prepared.append(prep)
    prepared_arr = np.concatenate(prepared) if prepared else None
    embeddings = encoder.embed(prepared_arr) if prepared_arr is not None and encoder.is_fitted else None
    return chunk_id, _pack(rows, embeddings, None if encoder.is_fitted else prepared_arr, skipped, len(relpaths))


def _pack(rows, embeddings, prepared, skipped, n_images) -> bytes:
    n = len(rows["paths"])
    arrays = {
        "paths": np.array(rows["paths"], dtype=str),
        "face_index": np.array(rows["face_index"], np.int32),
        "boxes_ltrb": np.array(rows["boxes_ltrb"], np.float32).reshape(n, 4),
        "scores": np.array(rows["scores"], np.float32),
        "landmarks68": np.array(rows["landmarks68"], np.float32).reshape(n, 68, 2),
        "landmarks5": np.array(rows["landmarks5"], np.float32).reshape(n, 5, 2),
        "image_sizes": np.array(rows["image_sizes"], np.int32).reshape(n, 2),
        "skip_paths": np.array([s[0] for s in skipped], dtype=str),
        "skip_reasons": np.array([s[1] for s in skipped], dtype=str),
        "n_images": np.array(n_images),
    }
    if embeddings is not None:
        arrays["embeddings"] = embeddings
    if prepared is not None:
        arrays["prepared"] = prepared
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


# --- main side ------------------------------------------------------------------------------
class MoreFaces(NamedTuple):
    """Faces encoded beside the photos (the pipeline's videos): appended to the photos' encodings."""

    encodings: Encodings
    skipped: list[tuple[str, str]]
    meta: dict  # added to the encodings' meta
    n_items: int  # inputs read (videos)


def encode_photos(
    dataset: str | os.PathLike | None,
    encodings: str | os.PathLike,
    *,
    encoder: str | Encoder = "dlib",
    encoder_settings: dict | None = None,
    detector: str = "hog",
    upsample: int = 1,
    jobs: int | None = None,
    resume: bool = False,
    progress: bool = True,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    chunk_size: int = CHUNK_SIZE,
    pool: WorkerPool | None = None,
    store: bool = False,
    photos: list[str] | None = None,
    more: Callable[[WorkerPool, Encoder], MoreFaces] | None = None,
) -> EncodeReport:
    """Encode every face in every photo under ``dataset`` into the file ``encodings``.

    The encode stage over photos; `anonfaces.pipeline.encode_dataset` runs it over a
    folder of photos and videos (the videos through ``more``).

    Parameters
    ----------
    dataset : path or None
        Folder of photos (searched recursively). Identity labels are the first
        folder level below it. None: the bundled sample.
    encodings : path
        Output ``.npz`` file (see `Encodings`); the skip report goes beside it.
    encoder : name or Encoder
        ``dlib`` (default), ``pca`` or ``onnx``; or a ready encoder, e.g. a fitted
        PCA basis loaded with `Encodings.make_encoder`.
    encoder_settings : dict
        Keyword settings for the encoder class.
    detector : {"hog", "cnn"}
    upsample : int
        Times the detector upsamples the image (finds smaller faces, slower).
    jobs : int or None
        Worker processes; None uses every core. 1 runs in this process.
    resume : bool
        Continue an interrupted run from ``<encodings>.partial/``.
    pool : WorkerPool, optional
        The command's worker pool (else one is started for this call, with ``jobs``);
        a `anonfaces.utils.ray_pool.RayPool` runs the chunks as Ray tasks.
    store : bool
        Write a sharded encodings store (folder ``encodings``, see
        `anonfaces.encode.store`) instead of one ``.npz``: each worker writes its
        chunk's shard (``shard-<chunk>.parquet``) and skip list itself, so a
        dead worker or driver loses no finished chunk; ``resume`` encodes only
        the chunks whose shard is missing. Needs an encoder that is already fitted.
    photos : list of str, optional
        The photos to encode, relative to ``dataset`` (None: every image under it).
    more : callable, optional
        ``more(workers, encoder) -> MoreFaces``, called in the same pool after the
        photos; its faces and skips are appended before the file is written (``.npz`` only).

    Returns
    -------
    EncodeReport
        With the `Encodings` written (``report.encodings``).
    """
    t0 = time.perf_counter()
    root = Path(dataset) if dataset is not None else default_dataset()
    if not root.is_dir():
        raise BadInputError(f"dataset folder not found: {root}")
    out = Path(encodings)
    if store:
        if more is not None:
            raise BadInputError("--store holds photos only for now")
        return _encode_to_store(root, out, encoder=encoder, encoder_settings=encoder_settings, detector=detector,
                                upsample=upsample, jobs=jobs, resume=resume, progress=progress, max_pixels=max_pixels,
                                chunk_size=chunk_size, pool=pool, t0=t0, photos=photos)
    if out.suffix != ".npz":
        out = out.with_name(out.name + ".npz")
    if out.is_dir():
        raise BadInputError(f"--encodings {out} is a folder; give a file name such as encodings.npz")
    if pool is None:
        check_jobs(jobs)
    enc = make_encoder(encoder, **(encoder_settings or {}))
    det = make_detector(detector, upsample=upsample)  # validates the settings early

    images = list_images(root) if photos is None else list(photos)
    if not images and more is None:
        raise BadInputError(f"no image files (jpg, png, ...) found under {root}")
    chunks, run = _plan(root, images, enc, det, max_pixels=max_pixels, chunk_size=chunk_size)
    run["encoder_state_sha256"] = _state_digest(enc.state())
    partial = out.with_name(out.name + ".partial")
    done = _prepare_partial(partial, run, resume, len(chunks))
    resumed_images = sum(len(chunks[i]) for i in done)
    todo = [(i, chunks[i]) for i in range(len(chunks)) if i not in done]

    context = (str(root), det.settings(), enc.registry_name, enc.settings(), enc.state(), max_pixels)
    if resumed_images:
        log.info("encode: %d of %d photos done by an earlier run", resumed_images, len(images))
    if todo and hasattr(enc, "warm_up"):
        enc.warm_up()  # build and check the ONNX model once, in the parent, before the workers start
    extra = None
    with pool_for(pool, jobs, progress) as workers:
        for chunk_id, payload in workers.map(_encode_chunk, todo, context=context, desc="encode", unit="chunk", chunksize=1):
            with atomic_open(partial / f"chunk-{chunk_id:06d}.npz", "wb") as fh:
                fh.write(payload)
        if more is not None:
            extra = more(workers, enc)

    result, skipped = _assemble(partial, len(chunks), enc, run, root) if images else (None, [])
    n_items = len(images)
    if extra is not None:
        meta = {**(result.meta if result is not None else {"dataset": run["dataset"], "encoder": enc.settings(),
                                                             "detector": run["detector"], "n_images": 0,
                                                             "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}),
                **extra.meta}
        result = Encodings.concatenate([r for r in (result, extra.encodings) if r is not None], meta=meta,
                                       dim=extra.encodings.dim)
        result.encoder_state = enc.state()
        skipped = skipped + list(extra.skipped)
        result.meta["n_skipped"] = len(skipped)
        n_items += extra.n_items
    result.save(out)
    _write_skips(skipped_path_for(out), skipped)
    shutil.rmtree(partial, ignore_errors=True)
    report = EncodeReport(out, skipped_path_for(out), n_items, len(result), skipped, time.perf_counter() - t0, resumed_images,
                          result)
    log.info("encode: %s", report.summary())
    return report


# --- the sharded store: workers write the shards --------------------------------------------
def _chunk_key(chunk_id: int) -> str:
    return f"{chunk_id:06d}"


def _skips_file(store_path: Path, key: str) -> Path:
    return store_path / f"skipped-{key}.csv"


def _encode_chunk_to_store(context, task: tuple[int, list[str]]) -> tuple[int, int, int]:
    """Encode one chunk and write it as the store's shard ``<chunk>`` (and its skip list), from the worker.

    The skip list is written first and the shard last, both atomically: a shard on
    disk means its chunk is complete. A retried chunk writes the same key again
    (it replaces, never duplicates). Returns (chunk, faces, photos skipped).
    """
    from anonfaces.encode.store import EncodingsStore

    encode_context, store_path, meta = context
    chunk_id, _ = task
    _, payload = _encode_chunk(encode_context, task)
    with np.load(io.BytesIO(payload), allow_pickle=False) as data:
        arrays = {k: data[k] for k in ("paths", "face_index", "boxes_ltrb", "scores", "landmarks68", "landmarks5", "image_sizes")}
        embeddings = data["embeddings"]
        skipped = list(zip(data["skip_paths"].tolist(), data["skip_reasons"].tolist()))
    n = len(arrays["paths"])
    held = worker_local("encode.store", store_path)
    if "store" not in held:
        held["store"] = EncodingsStore.open(store_path)
    target = held["store"]
    identities = np.array([identity_of(p) for p in arrays["paths"].tolist()], dtype=str)
    part = Encodings(embeddings=embeddings.reshape(n, target.dim), identities=identities, meta=dict(meta), **arrays)
    key = _chunk_key(chunk_id)
    _write_skips(_skips_file(Path(store_path), key), skipped)
    target.write_shard(part, key=key)
    return chunk_id, n, len(skipped)


def _encode_to_store(root: Path, out: Path, *, encoder, encoder_settings, detector, upsample, jobs, resume, progress,
                     max_pixels, chunk_size, pool, t0, photos=None) -> EncodeReport:
    from anonfaces.encode.store import EncodingsStore, load_store

    if out.suffix == ".npz":
        raise BadInputError(f"--store writes a folder; give a folder name, not {out.name}")
    if pool is None:
        check_jobs(jobs)
    enc = make_encoder(encoder, **(encoder_settings or {}))
    dim = getattr(enc, "dim", None)
    if not enc.is_fitted or not isinstance(dim, int):
        raise BadInputError(f"--store needs an encoder whose embeddings are final per photo (dlib, or pca with "
                            f"--pca-basis); {enc.registry_name} is not")
    det = make_detector(detector, upsample=upsample)
    images = list_images(root) if photos is None else list(photos)
    if not images:
        raise BadInputError(f"no image files (jpg, png, ...) found under {root}")
    chunks, meta = _plan(root, images, enc, det, max_pixels=max_pixels, chunk_size=chunk_size)
    try:
        target = EncodingsStore.create(out, dim=dim, meta=meta, encoder_state=enc.state(),
                                       planned=[_chunk_key(i) for i in range(len(chunks))], exist_ok=resume)
    except BadInputError as exc:
        if not resume and "already holds" in str(exc):
            raise BadInputError(f"{out} holds an earlier run; pass --resume to continue it, or delete it to start over") from None
        raise
    missing = set(target.missing())
    todo = [(i, chunks[i]) for i in range(len(chunks)) if _chunk_key(i) in missing]
    resumed_images = sum(len(chunks[i]) for i in range(len(chunks)) if _chunk_key(i) not in missing)
    if resumed_images:
        log.info("encode: %d of %d photos done by an earlier run", resumed_images, len(images))
    encode_context = (str(root), det.settings(), enc.registry_name, enc.settings(), enc.state(), max_pixels)
    context = (encode_context, str(out), target.meta)
    with pool_for(pool, jobs, progress) as workers:
        for _ in workers.map(_encode_chunk_to_store, todo, context=context, desc="encode", unit="chunk", chunksize=1):
            pass
    target.shards(refresh=True)
    still = target.missing()
    if still:  # pragma: no cover - a worker returned without its shard on disk
        raise BadInputError(f"{out}: {len(still)} chunks have no shard after the run ({', '.join(still[:5])}...); "
                            f"run again with --resume")
    skipped: list[tuple[str, str]] = []
    for i in range(len(chunks)):
        skipped.extend(read_skips(_skips_file(out, _chunk_key(i))))
    _write_skips(skipped_path_for(out), skipped)
    result = load_store(out)
    report = EncodeReport(out, skipped_path_for(out), len(images), len(result), skipped, time.perf_counter() - t0,
                          resumed_images, result)
    log.info("encode: %s", report.summary())
    return report


def _plan(root: Path, images: list[str], enc, det, *, max_pixels: int, chunk_size: int) -> tuple[list, dict]:
    """The photos in chunks of ``chunk_size`` and the run's record (what a resumed run must match)."""
    chunks = [images[i : i + chunk_size] for i in range(0, len(images), chunk_size)]
    run = {
        "dataset": str(root.resolve()),
        "encoder": enc.settings(),
        "detector": det.settings(),
        "max_pixels": max_pixels,
        "chunk_size": chunk_size,
        "images_sha256": hashlib.sha256("\n".join(images).encode()).hexdigest(),
        "n_images": len(images),
    }
    return chunks, run


def _state_digest(state: dict) -> str:
    h = hashlib.sha256()
    for key in sorted(state):
        h.update(key.encode())
        h.update(np.ascontiguousarray(state[key]).tobytes())
    return h.hexdigest()


def _prepare_partial(partial: Path, run: dict, resume: bool, n_chunks: int) -> set[int]:
    """Set up ``partial`` for this run; return the chunk ids already done."""
    run_file = partial / "run.json"
    if partial.exists() and not resume:
        n_done = len(list(partial.glob("chunk-*.npz")))
        raise BadInputError(
            f"{partial} holds an interrupted run ({n_done} of {n_chunks} chunks done); "
            f"pass --resume to continue it, or delete that folder to start over"
        )
    if resume and run_file.is_file():
        previous = json.loads(run_file.read_text())
        changed = sorted(k for k in run if previous.get(k) != run[k])
        if changed:
            raise BadInputError(
                f"cannot resume: the interrupted run in {partial} used other settings or images "
                f"({', '.join(changed)} differ); delete that folder to start over"
            )
        done = set()
        for f in partial.glob("chunk-*.npz"):
            try:
                done.add(int(f.stem.split("-")[1]))
            except (IndexError, ValueError):
                continue
        return {i for i in done if i < n_chunks}
    partial.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_file, json.dumps(run, indent=1, sort_keys=True))
    return set()


def _assemble(partial: Path, n_chunks: int, enc: Encoder, run: dict, root: Path):
    fields = ("paths", "face_index", "boxes_ltrb", "scores", "landmarks68", "landmarks5", "image_sizes")
    parts: dict[str, list] = {k: [] for k in (*fields, "embeddings", "prepared")}
    skipped: list[tuple[str, str]] = []
    for i in range(n_chunks):
        with np.load(partial / f"chunk-{i:06d}.npz", allow_pickle=False) as data:
            for k in fields:
                parts[k].append(data[k])
            for k in ("embeddings", "prepared"):
                if k in data.files:
                    parts[k].append(data[k])
            skipped.extend(zip(data["skip_paths"].tolist(), data["skip_reasons"].tolist()))
    arrays = {k: np.concatenate(parts[k]) for k in fields}
    n = len(arrays["paths"])
    if enc.is_fitted:
        embeddings = np.concatenate(parts["embeddings"]) if parts["embeddings"] else np.empty((0, 0), np.float32)
    else:
        prepared = np.concatenate(parts["prepared"]) if parts["prepared"] else np.empty((0,))
        if n < 2:
            raise BadInputError(f"the {enc.registry_name} encoder must be fitted on at least 2 faces; found {n}")
        embeddings = enc.fit(prepared).embed(prepared)
    meta = {
        "dataset": run["dataset"],
        "encoder": enc.settings(),
        "detector": run["detector"],
        "n_images": run["n_images"],
        "n_skipped": len(skipped),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    identities = np.array([identity_of(p) for p in arrays["paths"].tolist()], dtype=str)
    result = Encodings(embeddings=embeddings.reshape(n, -1), identities=identities, meta=meta, encoder_state=enc.state(), **arrays)
    return result, skipped


def _write_skips(path: Path, skipped: list[tuple[str, str]]) -> None:
    with atomic_open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "reason"])
        writer.writerows(skipped)


def read_skips(path: str | os.PathLike) -> list[tuple[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return [(r["path"], r["reason"]) for r in csv.DictReader(fh)]
