"""The commands with videos: encode a video file at --fps; --detect-every; evaluate --run on a video run."""

from __future__ import annotations

import numpy as np
from click.testing import CliRunner


def test_encode_a_video_file_at_a_chosen_rate(clip, tmp_path):
    from anonfaces.cli import main
    from anonfaces.encode import Encodings

    folder, video = clip
    r = CliRunner().invoke(main, ["encode", "--dataset", str(folder / "clip.mp4"), "--encodings", str(tmp_path / "e.npz"),
                                  "--fps", "2", "--jobs", "1", "--no-progress"])
    assert r.exit_code == 0, r.output
    enc = Encodings.load(tmp_path / "e.npz")
    assert sorted(set(enc.frames.tolist())) == [0, 6, 12, 18, 24, 30]  # 12 fps sampled at 2 fps
    assert len(enc) == sum(len(video.truth[f]) for f in (0, 6, 12, 18, 24, 30))
    assert enc.paths.tolist() == ["clip.mp4"] * len(enc) and len(set(enc.face_index.tolist())) == len(enc)
    assert enc.meta["video_scene_cuts"] == {"clip.mp4": [18]}


def test_detect_every_finds_faces_near_the_tracks_and_the_ones_entering_between_full_frame_passes(clip, anonymized):
    from anonfaces.encode import Encodings
    from anonfaces.utils.parallel import WorkerPool
    from anonfaces.video.encode import encode_videos
    from anonfaces.video.track import box_iou

    folder, video = clip
    with WorkerPool(1, progress=False) as pool:
        enc, skipped, info = encode_videos(pool, folder, ["clip.mp4"], fps=None, detect_every=4, progress=False)
    run, _ = anonymized
    full = Encodings.load(run.private / "videos" / "encodings.npz")  # the whole frame searched on every frame
    assert not skipped and info["clip.mp4"]["sampled_frames"] == 36
    found = set()
    for i in range(len(enc)):
        f = int(enc.frames[i])
        for a, box in video.truth[f]:
            if box_iou(enc.boxes_ltrb[i][None], box[None])[0, 0] > 0.3:
                found.add((f, a))
    # the whole frame is searched at frames 0, 4, 8, ... and at the cut (18); in between only near the tracked faces.
    # Bill Gates enters at frame 6, between the passes at 4 and 8: found at 8 and followed back to 6 and 7; nothing is
    # missed and no row is on no face (he leaves after frame 14: not found at 15, where the window is empty)
    assert found == {(f, a) for f in range(36) for a, _ in video.truth[f]}
    assert len(enc) == len(found) == len(full)
    assert np.unique(enc.tracks).size == np.unique(full.tracks).size == 3
    # the faces found near the tracks are the full-frame detector's faces (same place, same person)
    order = np.lexsort((enc.boxes_ltrb[:, 0], enc.frames))
    ref = np.lexsort((full.boxes_ltrb[:, 0], full.frames))
    assert np.array_equal(enc.frames[order], full.frames[ref])
    iou = np.diag(box_iou(enc.boxes_ltrb[order], full.boxes_ltrb[ref]))
    assert iou.min() > 0.5 and np.median(iou) > 0.75
    assert np.linalg.norm(enc.embeddings[order] - full.embeddings[ref], axis=1).max() < 0.3


def test_evaluate_run_scores_the_videos(anonymized, tmp_path):
    from anonfaces.cli import main

    _, out = anonymized
    r = CliRunner().invoke(main, ["evaluate", "--run", str(out), "--out", str(tmp_path / "s"), "--fps", "2"])
    assert r.exit_code == 0, r.output
    assert "unreplaced_frame_share=0.000" in r.output and (tmp_path / "s" / "video_summary.json").is_file()
    r = CliRunner().invoke(main, ["evaluate", "--dataset", str(out), "--out", str(tmp_path / "t")])
    assert r.exit_code == 2 and "holds videos" in r.output
