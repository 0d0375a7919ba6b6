"""Reading and writing videos: rate, size, frame count and audio kept; atomic writes; bad files reported."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from anonfaces.errors import BadInputError
from anonfaces.video.io import (
    VideoReadError,
    VideoWriter,
    count_frames,
    is_video,
    list_videos,
    probe,
    read_frames,
    sample_step,
)


def test_the_generated_clip_has_its_rate_size_frames_and_audio(clip):
    folder, video = clip
    info = probe(folder / "clip.mp4")
    assert (info.width, info.height, info.fps) == (320, 240, Fraction(12))
    assert info.has_audio and info.audio_codec == "aac"
    assert count_frames(folder / "clip.mp4") == 36
    frames = list(read_frames(folder / "clip.mp4", step=5))
    assert [f for f, _, _ in frames] == [0, 5, 10, 15, 20, 25, 30, 35]
    assert frames[2][1] == pytest.approx(10 / 12, abs=1e-3)
    assert frames[0][2].shape == (240, 320, 3) and frames[0][2].dtype == np.uint8


def test_writer_is_atomic_and_keeps_audio(clip, tmp_path):
    folder, _ = clip
    target = tmp_path / "copy.mp4"
    with pytest.raises(RuntimeError):
        with VideoWriter(target, fps=Fraction(12), width=320, height=240, audio_from=folder / "clip.mp4") as w:
            w.write(np.zeros((240, 320, 3), np.uint8))
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []  # nothing half-written left behind
    with VideoWriter(target, fps=Fraction(12), width=320, height=240, audio_from=folder / "clip.mp4") as w:
        for _, _, frame in read_frames(folder / "clip.mp4"):
            w.write(frame)
        with pytest.raises(BadInputError):
            w.write(np.zeros((10, 10, 3), np.uint8))
    info = probe(target)
    assert info.has_audio and info.fps == Fraction(12) and count_frames(target) == 36
    assert [p.name for p in tmp_path.iterdir()] == ["copy.mp4"]


def test_unreadable_and_truncated_videos_raise_a_clear_error(clip, tmp_path):
    folder, _ = clip
    data = (folder / "clip.mp4").read_bytes()
    (tmp_path / "truncated.mp4").write_bytes(data[: len(data) // 3])
    (tmp_path / "text.mov").write_text("not a video")
    for name in ("truncated.mp4", "text.mov", "missing.mkv"):
        with pytest.raises(VideoReadError):
            probe(tmp_path / name)
        with pytest.raises(VideoReadError):
            list(read_frames(tmp_path / name))
    assert issubclass(VideoReadError, BadInputError)


def test_listing_and_sampling(tmp_path):
    (tmp_path / "a").mkdir()
    for name in ("a/x.MP4", "b.mkv", "c.jpg", ".hidden.mp4"):
        (tmp_path / name).write_bytes(b"")
    assert list_videos(tmp_path) == ["a/x.MP4", "b.mkv"]
    assert is_video("v.webm") and not is_video("v.png")
    assert sample_step(25, None) == 1 and sample_step(25, 1) == 25 and sample_step(30, 2) == 15 and sample_step(12, 50) == 1


def test_odd_frame_sizes_are_kept(tmp_path):
    frames = [np.full((241, 321, 3), v, np.uint8) for v in (10, 200, 90)]
    with VideoWriter(tmp_path / "odd.mkv", fps=Fraction(30000, 1001), width=321, height=241) as w:
        for f in frames:
            w.write(f)
    info = probe(tmp_path / "odd.mkv")
    assert (info.width, info.height) == (321, 241) and info.fps == Fraction(30000, 1001)
    back = [f for _, _, f in read_frames(tmp_path / "odd.mkv")]
    assert len(back) == 3 and all(np.abs(b.astype(int) - f).mean() < 3 for b, f in zip(back, frames))


def test_prefetch_keeps_order_raises_in_place_and_stops_early():
    import threading

    from anonfaces.video.io import VideoReadError, prefetch

    assert list(prefetch(iter(range(50)), depth=3)) == list(range(50))

    def broken():
        yield 1
        yield 2
        raise VideoReadError("truncated")

    got = []
    with pytest.raises(VideoReadError, match="truncated"):
        got.extend(prefetch(broken()))
    assert got == [1, 2]

    closed = threading.Event()

    def endless():
        try:
            n = 0
            while True:
                yield n
                n += 1
        finally:
            closed.set()

    items = prefetch(endless(), depth=2)
    assert [next(items) for _ in range(5)] == [0, 1, 2, 3, 4]
    items.close()
    assert closed.is_set()
    assert not any(t.name == "anonfaces-prefetch" and t.is_alive() for t in threading.enumerate())
