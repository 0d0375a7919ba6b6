"""The encode stage over a folder of photos and videos (or one video file).

`encode_dataset` is what ``anonfaces encode`` runs: the photos go through
`anonfaces.encode.encode_photos` and the videos through
`anonfaces.video.encode_videos`, in the same worker pool, into one `Encodings`
(video rows keep their video, frame, timestamp and track). It lives here, above
both stages, because the encode stage must not import the video package built on it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from anonfaces.encode import Encoder, EncodeReport, encode_photos
from anonfaces.encode.pipeline import CHUNK_SIZE, MoreFaces, default_dataset
from anonfaces.errors import BadInputError
from anonfaces.utils.images import (
    DEFAULT_MAX_PIXELS,
    is_video,
    list_images,
    list_videos,
)
from anonfaces.utils.parallel import WorkerPool

log = logging.getLogger(__name__)


def encode_dataset(
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
    fps: float | None = 1.0,
    detect_scale: float = 1.0,
    videos: bool = True,
    store: bool = False,
) -> EncodeReport:
    """Encode every face in every photo and video under ``dataset`` into the file ``encodings``.

    The parameters are `anonfaces.encode.encode_photos`'s, and for videos:

    fps, detect_scale, videos
        ``dataset`` may be a video file or hold videos (`anonfaces.video`): their frames are
        sampled at about ``fps`` a second (None: every frame), the detector runs on frames
        scaled by ``detect_scale``, faces are linked into tracks, and each row keeps its
        video, frame, timestamp and track (`Encodings.frames`, ``timestamps``, ``tracks``).
        An unreadable video is listed in the skip report. ``videos=False``: photos only.
        A store (``store=True``) holds photos only: its videos are left out, with a warning.
    """
    root = Path(dataset) if dataset is not None else default_dataset()
    if root.is_file():  # one video
        if not is_video(root):
            raise BadInputError(f"--dataset {root} is a file but not a video (or give a folder)")
        if store:
            raise BadInputError("--store holds photos only for now; encode a video into an .npz file")
        root, photos, clips = root.parent, [], [root.name]
    elif not root.is_dir():
        raise BadInputError(f"dataset folder not found: {root}")
    else:
        photos, clips = list_images(root), (list_videos(root) if videos else [])
        if store and clips:
            log.warning("encode --store: the videos under %s are left out (the store holds photos only for now)", root)
            clips = []
        if not photos and not clips:
            found = "image files (jpg, png, ...) or videos (mp4, mov, ...)" if videos else "image files (jpg, png, ...)"
            raise BadInputError(f"no {found} found under {root}")
    more = None
    if clips:
        def more(workers: WorkerPool, enc: Encoder) -> MoreFaces:
            from anonfaces.video.encode import encode_videos

            settings = {k: v for k, v in enc.settings().items() if k != "name"}
            found, skipped, _ = encode_videos(workers, root, clips, detector=detector, upsample=upsample,
                                              encoder=enc.registry_name, encoder_settings=settings, fps=fps,
                                              scale=detect_scale, max_pixels=max_pixels, progress=progress)
            meta = {k: v for k, v in found.meta.items() if k.startswith("video") or k == "detect_scale"}
            return MoreFaces(found, skipped, {**meta, "n_videos": len(clips)}, len(clips))

    return encode_photos(root, encodings, encoder=encoder, encoder_settings=encoder_settings, detector=detector,
                         upsample=upsample, jobs=jobs, resume=resume, progress=progress, max_pixels=max_pixels,
                         chunk_size=chunk_size, pool=pool, store=store, photos=photos, more=more)
