"""Anonymizing a video: every generated face frame replaced, one surrogate per track, rate/size/frames/audio kept,
gaps between detections filled, bad videos skipped; the video evaluation."""

from __future__ import annotations

import csv
import json
from fractions import Fraction

import numpy as np
import pytest

from anonfaces.video.io import count_frames, probe, read_frames


def _inner(box):
    """The central half of a ground-truth box (the face itself, not the photo's border)."""
    l, t, r, b = box
    w, h = r - l, b - t
    return int(l + w / 4), int(t + h / 4), int(r - w / 4), int(b - h / 4)


def _unreplaced(original, output, video, *, threshold=12.0):
    """(frame, appearance) pairs whose face region barely changed between the original and the output."""
    left = []
    for (f, _, a), (_, _, b) in zip(read_frames(original), read_frames(output)):
        for appearance, box in video.truth[f]:
            x0, y0, x1, y1 = _inner(box)
            if np.abs(a[y0:y1, x0:x1].astype(int) - b[y0:y1, x0:x1]).mean() < threshold:
                left.append((f, appearance))
    return left


def test_every_face_frame_replaced_and_the_format_kept(anonymized, clip):
    run, out = anonymized
    folder, video = clip
    [written] = run.videos
    assert written.error is None and written.frames == 36
    output = out / written.output
    assert output.suffix == ".mp4" and "clip" not in output.name  # a neutral name
    info, original = probe(output), probe(folder / "clip.mp4")
    assert (info.width, info.height, info.fps) == (original.width, original.height, original.fps) == (320, 240, Fraction(12))
    assert count_frames(output) == count_frames(folder / "clip.mp4") == 36
    assert info.has_audio and info.audio_codec == "aac" and abs(info.duration - original.duration) < 0.15
    assert _unreplaced(folder / "clip.mp4", output, video) == []
    assert not list(out.parent.glob("out/.*"))  # no temporary file left in OUT


def test_one_surrogate_per_track_and_k_people_per_cluster(anonymized):
    from anonfaces.encode import Encodings

    run, _ = anonymized
    private = run.private / "videos"
    enc = Encodings.load(private / "encodings.npz")
    with open(private / "mapping.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(enc)
    cluster = np.array([int(r["cluster"]) for r in rows])
    for t in np.unique(enc.tracks):
        assert len(set(cluster[enc.tracks == t])) == 1
    record = json.loads((private / "run.json").read_text())
    assert record["clustering"]["n_small_clusters"] == 0
    for c in np.unique(cluster):  # >= 2 tracks (people) per cluster: k = 2
        assert len(set(enc.tracks[cluster == c])) >= 2
    assert sorted(p.name for p in (private / "surrogates").iterdir()) == [f"{c}.png" for c in np.unique(cluster)]
    assert record["counts"]["face_frames_replaced"] == len(enc)


def test_a_detector_blink_is_filled_by_interpolation(anonymized, clip, tmp_path):
    """Drop the encoded faces of frames 8-10 of one track: the anonymizer still replaces the face there."""
    from anonfaces.encode import Encodings
    from anonfaces.pipeline import anonymize_dataset

    run, _ = anonymized
    folder, video = clip
    enc = Encodings.load(run.private / "videos" / "encodings.npz")
    first = enc.tracks[enc.frames == 8][0]
    drop = (enc.tracks == first) & np.isin(enc.frames, [8, 9, 10])
    assert drop.sum() == 3
    blinked = enc.subset(~drop)
    blinked.meta = dict(enc.meta)
    path = blinked.save(tmp_path / "blinked.npz")
    again = anonymize_dataset(folder / "clip.mp4", tmp_path / "out", k=2, jobs=1, progress=False, encodings=path)
    [written] = again.videos
    assert written.filled == 3 and written.faces == len(enc)
    assert _unreplaced(folder / "clip.mp4", tmp_path / "out" / written.output, video) == []


def test_frame_plan_interpolates_and_smooths_within_a_shot():
    from anonfaces.video.anonymize import frame_plan

    base = np.zeros((68, 2))
    frames = np.array([0, 1, 4, 5, 6, 20])
    lm = np.stack([base + f for f in frames.tolist()])
    plan = frame_plan(frames, np.zeros(6, int), lm, np.zeros(6, int), cuts=[6], smooth=0, max_fill=5)
    assert sorted(plan.faces) == [0, 1, 2, 3, 4, 5, 6, 20]  # 2, 3 filled; 6 (after the cut) and 20 (far) stand alone
    assert plan.filled == 2 and plan.faces[2][0][3] and np.allclose(plan.faces[3][0][0], 3)
    noisy = np.stack([base + (5 if f % 2 else -5) for f in range(10)])
    smooth = frame_plan(np.arange(10), np.zeros(10, int), noisy, np.zeros(10, int), smooth=2.0)
    path = np.abs(np.stack([smooth.faces[f][0][0] for f in range(10)]))
    assert path.max() < 3 and path[3:7].max() < 1  # jitter of +-5 px damped (least at the ends)


def test_unreadable_videos_are_skipped_and_reported(clip, tmp_path):
    from anonfaces.pipeline import anonymize_dataset

    folder, _ = clip
    data = (folder / "clip.mp4").read_bytes()
    dataset = tmp_path / "videos"
    dataset.mkdir()
    (dataset / "good.mp4").write_bytes(data)
    (dataset / "truncated.mp4").write_bytes(data[: len(data) // 2])
    (dataset / "noise.mkv").write_bytes(b"\x1a\x45\xdf\xa3" + bytes(300))
    run = anonymize_dataset(dataset, tmp_path / "out", k=2, jobs=1, progress=False, fps=3)
    errors = {v.rel: v.error for v in run.videos}
    assert errors["good.mp4"] is None and errors["truncated.mp4"] and errors["noise.mkv"]
    assert {p for p, _ in run.unreadable} == {"truncated.mp4", "noise.mkv"}
    assert len(list((tmp_path / "out").iterdir())) == 1
    record = json.loads((run.private / "videos" / "run.json").read_text())
    assert {s["path"] for s in record["skipped"]} == {"truncated.mp4", "noise.mkv"}
    assert "1 of 3 videos written" in run.summary()


def test_video_evaluation_finds_no_face_left_and_flags_an_untouched_copy(anonymized, clip, tmp_path):
    from anonfaces.pipeline.video import evaluate_video_run

    run, out = anonymized
    summary = evaluate_video_run(out, tmp_path / "scores", fps=4)
    assert summary["frames_with_faces"] == 12 and summary["unreplaced_frame_share"] == 0.0
    assert summary["track_tracks"] >= 3 and summary["track_reidentified"] == 0.0
    assert 0.5 < summary["flicker_ratio"] < 2.0
    assert (tmp_path / "scores" / "video_metrics.csv").is_file()
    # the original itself as the "anonymized" video: every face is left, every track re-identified
    from anonfaces.encode import Encodings
    from anonfaces.video.evaluate import reidentify_tracks, score_video

    folder, _ = clip
    enc = Encodings.load(run.private / "videos" / "encodings.npz")
    rows = {"frames": enc.frames, "tracks": enc.tracks, "landmarks68": enc.landmarks68, "landmarks5": enc.landmarks5,
            "embeddings": enc.embeddings}
    same = score_video(folder / "clip.mp4", folder / "clip.mp4", rows, step=6)
    assert same.unreplaced_frame_share == 1.0 and same.flicker_ratio == pytest.approx(1.0)
    assert reidentify_tracks([same])["reidentified"] == 1.0


def test_a_folder_mixing_photos_and_videos(clip, sample_dir, tmp_path):
    """Photos go through the photo run, the video through the video run, into one OUT (here with the blur baseline)."""
    import shutil

    from anonfaces.pipeline import anonymize_dataset

    folder, video = clip
    dataset = tmp_path / "mixed"
    for person in ("Angelina_Jolie", "Bill_Gates"):
        (dataset / person).mkdir(parents=True)
        shutil.copy(sorted((sample_dir / person).iterdir())[0], dataset / person)
    shutil.copy(folder / "clip.mp4", dataset / "clip.mp4")
    run = anonymize_dataset(dataset, tmp_path / "out", method="blur", jobs=1, progress=False, second_pass=False,
                            safety_net=False)
    names = sorted(p.suffix for p in (tmp_path / "out").iterdir())
    assert names == [".jpg", ".jpg", ".mp4"] and run.n_images == 2 and len(run.videos) == 1
    assert (run.private / "run.json").is_file() and (run.private / "videos" / "run.json").is_file()
    [written] = run.videos
    assert _unreplaced(folder / "clip.mp4", tmp_path / "out" / written.output, video, threshold=4.0) == []


def test_a_video_without_faces_follows_no_face(tmp_path):
    from anonfaces.pipeline import anonymize_dataset
    from anonfaces.utils.images import write_image
    from anonfaces.video.synthetic import Appearance, make_video

    checks = (np.indices((100, 100)).sum(0) // 10 % 2 * 255).astype(np.uint8)  # a checkerboard: no face, sharp edges
    write_image(tmp_path / "checks.png", np.repeat(checks[..., None], 3, axis=2))
    make_video(tmp_path / "empty.mp4", [Appearance("-", str(tmp_path / "checks.png"), 0, 5, (20, 10), (40, 10), 90)],
               frames=6, width=160, height=120, audio=False)
    run = anonymize_dataset(tmp_path / "empty.mp4", tmp_path / "held", k=2, jobs=1, progress=False)
    assert run.held_back == [("empty.mp4", "no face found")] and not list((tmp_path / "held").glob("*.mp4"))
    run = anonymize_dataset(tmp_path / "empty.mp4", tmp_path / "blurred", k=2, jobs=1, progress=False, no_face="blur")
    [written] = run.videos
    assert written.frames == 6 and written.faces == 0
    original = next(read_frames(tmp_path / "empty.mp4"))[2].astype(int)
    blurred = next(read_frames(tmp_path / "blurred" / written.output))[2]
    assert np.abs(original - blurred).mean() > 10
