"""Read and write videos with PyAV (FFmpeg's libraries in the ``av`` wheel: no system ffmpeg needed).

`probe` reads a video's header (size, rate, frame count, audio); `read_frames`
decodes its frames as RGB ``uint8`` arrays, every ``step``-th one; `VideoWriter`
writes frames at the input's rate and size, copies the input's audio packets
unchanged, and moves the file into place only when it is complete (a temporary
file beside it, fsync, `os.replace`: the same rule as `anonfaces.utils.atomic`).

A file that cannot be opened or decoded raises `VideoReadError` (a
`BadInputError`), which the stages turn into a skip-report entry.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from anonfaces.errors import BadInputError
from anonfaces.utils.images import VIDEO_EXTENSIONS, is_video, list_videos  # noqa: F401  (re-exported)

log = logging.getLogger(__name__)

class VideoReadError(BadInputError):
    """A video that cannot be opened or decoded (truncated, damaged, not a video)."""


def _av():
    try:
        import av
    except ImportError:  # pragma: no cover - depends on the environment
        raise BadInputError("videos need PyAV: pip install 'anonfaces[video]'") from None
    return av


@dataclass(frozen=True)
class VideoInfo:
    """What a video's header says: ``fps`` is the average frame rate (a `Fraction`); ``frames`` is the
    container's count (0 when it does not say; `count_frames` decodes to count)."""

    width: int
    height: int
    fps: Fraction
    frames: int
    duration: float
    codec: str
    has_audio: bool
    audio_codec: str | None = None

    def as_dict(self) -> dict:
        return {"width": self.width, "height": self.height, "fps": float(self.fps), "fps_fraction": str(self.fps),
                "frames": self.frames, "duration": self.duration, "codec": self.codec, "has_audio": self.has_audio,
                "audio_codec": self.audio_codec}


@contextlib.contextmanager
def _open(path):
    av = _av()
    try:
        container = av.open(str(path), mode="r")
    except (av.error.FFmpegError, OSError, ValueError, UnicodeDecodeError) as exc:
        raise VideoReadError(f"cannot open video {path}: {exc}") from None
    try:
        if not container.streams.video:
            raise VideoReadError(f"{path} holds no video stream")
        yield container
    finally:
        container.close()


def probe(path: str | os.PathLike) -> VideoInfo:
    """The header of the video at ``path``; raises `VideoReadError` when it cannot be opened."""
    with _open(path) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not rate or float(rate) <= 0:
            raise VideoReadError(f"{path}: the video stream has no frame rate")
        duration = float(stream.duration * stream.time_base) if stream.duration else (
            container.duration / 1e6 if container.duration else 0.0)
        audio = container.streams.audio[0] if container.streams.audio else None
        return VideoInfo(int(stream.codec_context.width), int(stream.codec_context.height), Fraction(rate),
                         int(stream.frames or 0), duration, stream.codec_context.name, audio is not None,
                         audio.codec_context.name if audio is not None else None)


def sample_step(video_fps: float, fps: float | None) -> int:
    """Every how many frames a video of ``video_fps`` is sampled to give about ``fps`` frames a second
    (None or 0: every frame)."""
    if fps is None or fps <= 0 or fps >= video_fps:
        return 1
    return max(1, int(round(float(video_fps) / float(fps))))


def read_frames(path: str | os.PathLike, *, step: int = 1, max_pixels: int | None = None,
                start: int = 0, stop: int | None = None) -> Iterator[tuple[int, float, np.ndarray]]:
    """Decode ``(frame number, seconds, RGB uint8 (H, W, 3))`` for every ``step``-th frame (numbers from 0).

    Frames are numbered in decoding (presentation) order; ``start``/``stop`` bound the numbers yielded.
    Raises `VideoReadError` when the file cannot be opened, or when decoding fails part-way
    (a truncated file): a caller that has consumed frames must treat the video as unreadable.
    """
    av = _av()
    step = max(1, int(step))
    with _open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        w, h = stream.codec_context.width, stream.codec_context.height
        if max_pixels is not None and w * h > max_pixels:
            raise VideoReadError(f"{path}: {w}x{h} frames exceed max_pixels={max_pixels}")
        rate = Fraction(stream.average_rate or stream.guessed_rate or 25)
        index = -1
        try:
            for frame in container.decode(stream):
                index += 1
                if index < start or (index - start) % step:
                    continue
                if stop is not None and index >= stop:
                    break
                seconds = float(frame.pts * stream.time_base) if frame.pts is not None else index / float(rate)
                yield index, seconds, frame.to_ndarray(format="rgb24")
        except (av.error.FFmpegError, ValueError) as exc:
            raise VideoReadError(f"{path}: decoding failed after frame {index}: {exc}") from None


def prefetch(items: Iterator, depth: int = 8) -> Iterator:
    """``items`` produced in a background thread, up to ``depth`` ahead of the consumer (PyAV decodes without
    holding the GIL, so the next frames are decoded while this process waits for the workers or encodes).
    An exception in the producer is raised here at its place in the sequence; leaving the loop early stops
    the producer and closes ``items``."""
    import queue
    import threading

    q: queue.Queue = queue.Queue(maxsize=max(1, int(depth)))
    stop = threading.Event()

    def put(entry) -> bool:
        while not stop.is_set():
            try:
                q.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(("item", item)):
                    break
            else:
                put(("done", None))
        except Exception as exc:  # noqa: BLE001 - handed to the consumer, raised there in its place
            put(("error", exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="anonfaces-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = q.get()
            if kind == "item":
                yield value
            elif kind == "error":
                raise value
            else:
                return
    finally:
        stop.set()
        thread.join()


def count_frames(path: str | os.PathLike) -> int:
    """Frames in the video, by demuxing its packets (no decoding)."""
    av = _av()
    with _open(path) as container:
        stream = container.streams.video[0]
        try:
            return sum(1 for packet in container.demux(stream) if packet.size)
        except av.error.FFmpegError as exc:
            raise VideoReadError(f"{path}: cannot read its packets: {exc}") from None


class VideoWriter:
    """Write RGB frames into a video file atomically, at a given rate, with the audio of another file.

    Parameters
    ----------
    path : path
        The finished file (its suffix chooses the container: ``.mp4``, ``.mkv``, ...).
    fps : Fraction
        Frame rate (frame ``i`` is shown at ``i / fps`` seconds).
    width, height : int
        Frame size (kept: yuv420p for even sides, yuv444p for odd ones).
    audio_from : path, optional
        A video whose audio stream is copied packet for packet (not re-encoded).
    codec : str
        ``libx264`` (default), or any encoder PyAV has.
    crf : int
        libx264's constant rate factor (18: visually lossless).
    preset : str
        libx264's speed preset.

    Use as a context manager: on a clean exit the file is complete and in place; on an
    exception nothing is left at ``path`` (an earlier file there is untouched).
    """

    def __init__(self, path, *, fps: Fraction, width: int, height: int, audio_from=None, codec: str = "libx264",
                 crf: int = 18, preset: str = "veryfast", threads: int = 0):
        self.path = Path(path)
        self.fps = Fraction(fps).limit_denominator(1_000_000)
        self.width, self.height = int(width), int(height)
        self.audio_from = Path(audio_from) if audio_from is not None else None
        self.codec, self.crf, self.preset, self.threads = codec, int(crf), preset, int(threads)
        self.frames = 0
        self._container = None
        self._tmp = None

    def __enter__(self) -> VideoWriter:
        av = _av()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, self._tmp = tempfile.mkstemp(prefix=f".{self.path.stem}.", suffix=self.path.suffix or ".mp4",
                                         dir=self.path.parent)
        os.close(fd)
        self._container = av.open(self._tmp, mode="w")
        stream = self._container.add_stream(self.codec, rate=self.fps)
        stream.width, stream.height = self.width, self.height
        # 4:2:0 needs even sides; odd ones keep their size in 4:4:4 (fewer players read it)
        stream.pix_fmt = "yuv420p" if not (self.width % 2 or self.height % 2) else "yuv444p"
        stream.codec_context.time_base = 1 / self.fps
        if self.codec == "libx264":
            stream.options = {"crf": str(self.crf), "preset": self.preset}
        if self.threads:
            stream.codec_context.thread_count = self.threads
        self._stream = stream
        self._audio_in = self._audio_out = None
        if self.audio_from is not None:
            source = av.open(str(self.audio_from), mode="r")
            if source.streams.audio:
                self._audio_in = source
                self._audio_out = self._container.add_stream_from_template(source.streams.audio[0])
            else:
                source.close()
        return self

    def write(self, frame: np.ndarray) -> None:
        """Append one RGB uint8 frame of the writer's size."""
        av = _av()
        frame = np.asarray(frame)
        if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
            raise BadInputError(f"expected an RGB uint8 frame of shape ({self.height}, {self.width}, 3); got "
                                f"{frame.dtype} {frame.shape}")
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        vf.pts = self.frames
        vf.time_base = 1 / self.fps
        for packet in self._stream.encode(vf):
            self._container.mux(packet)
        self.frames += 1

    def _copy_audio(self) -> None:
        stream = self._audio_in.streams.audio[0]
        for packet in self._audio_in.demux(stream):
            if packet.dts is None:
                continue
            packet.stream = self._audio_out
            self._container.mux(packet)

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                for packet in self._stream.encode():
                    self._container.mux(packet)
                if self._audio_in is not None:
                    self._copy_audio()
            self._container.close()
            if self._audio_in is not None:
                self._audio_in.close()
            if exc_type is None:
                with open(self._tmp, "rb") as fh:
                    os.fsync(fh.fileno())
                os.replace(self._tmp, self.path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._tmp)
