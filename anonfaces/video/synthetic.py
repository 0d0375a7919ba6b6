"""Videos made from photos, with known ground truth (for the tests and the benchmark).

`make_video` pastes face crops of photos onto a plain background, moves them along
straight paths, lets them enter and leave, cuts to another background part-way,
and adds a sine tone as the audio track. It returns, for every frame, where each
person's face crop is (`SyntheticVideo.truth`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from anonfaces.utils.images import read_image
from anonfaces.video.io import VideoWriter, _av


@dataclass(frozen=True)
class Appearance:
    """One person on screen: ``photo`` pasted as a ``size``-pixel square from frame ``first`` to ``last``
    (inclusive), its top-left corner moving linearly from ``start`` to ``end`` (x, y)."""

    person: str
    photo: str
    first: int
    last: int
    start: tuple[float, float]
    end: tuple[float, float]
    size: int


@dataclass
class SyntheticVideo:
    path: Path
    fps: Fraction
    frames: int
    width: int
    height: int
    appearances: list[Appearance]
    cuts: list[int]  # frames that start a new shot
    truth: list[list[tuple[int, np.ndarray]]] = field(default_factory=list)  # per frame: (appearance, box ltrb)

    def boxes(self, frame: int) -> list[tuple[int, np.ndarray]]:
        return self.truth[frame]


def face_crop(photo: str | Path, size: int, *, crop: float = 0.56) -> np.ndarray:
    """The central ``crop`` share of a (LFW-style, centred) photo, resized to ``size`` x ``size``."""
    image = read_image(photo)
    h, w = image.shape[:2]
    side = int(min(h, w) * crop)
    y0, x0 = (h - side) // 2, (w - side) // 2
    return cv2.resize(image[y0:y0 + side, x0:x0 + side], (size, size), interpolation=cv2.INTER_AREA)


def _background(width: int, height: int, shot: int) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    tones = [(70, 110, 150), (150, 120, 60), (60, 130, 80), (120, 60, 120)][shot % 4]
    base = np.stack([t + 40 * np.sin(xx / (37 + 11 * shot) + c) * np.cos(yy / 53) for c, t in enumerate(tones)], -1)
    return np.clip(base, 0, 255).astype(np.uint8)


def position(a: Appearance, frame: int) -> tuple[int, int]:
    t = 0.0 if a.last == a.first else (frame - a.first) / (a.last - a.first)
    return (int(round(a.start[0] + t * (a.end[0] - a.start[0]))), int(round(a.start[1] + t * (a.end[1] - a.start[1]))))


def render(appearances, crops, frame: int, width: int, height: int, shot: int) -> tuple[np.ndarray, list]:
    image = _background(width, height, shot)
    truth = []
    for i, a in enumerate(appearances):
        if not a.first <= frame <= a.last:
            continue
        x, y = position(a, frame)
        crop = crops[i]
        x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + a.size, width), min(y + a.size, height)
        if x1 <= x0 or y1 <= y0:
            continue
        image[y0:y1, x0:x1] = crop[y0 - y:y1 - y, x0 - x:x1 - x]
        truth.append((i, np.array([x0, y0, x1, y1], np.float32)))
    return image, truth


def write_tone(seconds: float, rate: int = 16000, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def make_video(path, appearances: list[Appearance], *, frames: int, fps: int = 12, width: int = 320, height: int = 240,
               cuts: tuple[int, ...] = (), audio: bool = True, crf: int = 18) -> SyntheticVideo:
    """Write the video (H.264, with an AAC sine tone when ``audio``) and return its ground truth."""
    path = Path(path)
    crops = [face_crop(a.photo, a.size) for a in appearances]
    video = SyntheticVideo(path, Fraction(fps), frames, width, height, list(appearances), sorted(cuts))
    tmp = path.with_name(path.stem + ".silent" + path.suffix) if audio else path
    with VideoWriter(tmp, fps=Fraction(fps), width=width, height=height, crf=crf) as writer:
        for f in range(frames):
            shot = sum(1 for c in cuts if f >= c)
            image, truth = render(appearances, crops, f, width, height, shot)
            video.truth.append(truth)
            writer.write(image)
    if audio:
        _add_tone(tmp, path, frames / fps)
        tmp.unlink()
    return video


def _add_tone(silent: Path, path: Path, seconds: float) -> None:
    """Remux ``silent``'s video packets into ``path`` with an AAC tone of ``seconds``."""
    av = _av()
    rate = 16000
    samples = write_tone(seconds, rate)
    with av.open(str(silent)) as src, av.open(str(path), mode="w") as dst:
        vin = src.streams.video[0]
        vout = dst.add_stream_from_template(vin)
        aout = dst.add_stream("aac", rate=rate)
        aout.layout = "mono"
        for packet in src.demux(vin):
            if packet.dts is None:
                continue
            packet.stream = vout
            dst.mux(packet)
        size = 1024
        for i in range(0, len(samples), size):
            chunk = samples[i:i + size]
            frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="flt", layout="mono")
            frame.sample_rate = rate
            frame.pts = i
            for packet in aout.encode(frame):
                dst.mux(packet)
        for packet in aout.encode():
            dst.mux(packet)
