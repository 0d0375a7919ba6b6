"""The per-track privacy check on video: every track of the run checked and recorded; a track whose surrogate is its
own person's face (a real leak) is escalated, falls back for the whole track, and the written video follows."""

from __future__ import annotations

import csv
import functools
import json

import numpy as np
import pytest

from anonfaces.video.io import read_frames


def _tracks_csv(run):
    with open(run.private / "videos" / "privacy.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_every_track_is_checked_and_none_is_left_within_0_5_of_its_person(anonymized):
    from anonfaces.encode import Encodings

    run, _ = anonymized
    rows = _tracks_csv(run)
    enc = Encodings.load(run.private / "videos" / "encodings.npz")
    assert sorted(int(r["track"]) for r in rows) == sorted(np.unique(enc.tracks).tolist())
    for r in rows:
        assert r["outcome"] in ("passed", "escalated", "blurred") and int(r["sampled"]) >= 1
        assert float(r["nearest_own_after"]) >= 0.5, r  # the photos' unprotected distance (utils/distances.py)
    assert "video privacy check: " in run.summary() and f"{len(rows)} tracks" in run.summary()


def _leaking_setup(anonymized, clip, tmp_path):
    """The clip's plan with every cluster's surrogate replaced by an aligned crop of track 0's own face."""
    from anonfaces.detect import align_face
    from anonfaces.encode import Encodings
    from anonfaces.utils.images import write_image
    from anonfaces.video.anonymize import frame_plan

    run, _ = anonymized
    folder, _ = clip
    enc = Encodings.load(run.private / "videos" / "encodings.npz")
    with open(run.private / "videos" / "mapping.csv", newline="") as fh:
        labels = np.array([int(r["cluster"]) for r in csv.DictReader(fh)])
    row = int(np.flatnonzero(enc.tracks == 0)[0])
    frame = next(img for f, _, img in read_frames(folder / "clip.mp4") if f == enc.frames[row])
    own = align_face(frame, enc.landmarks68[row], size=128)
    (tmp_path / "sur").mkdir()
    for c in np.unique(labels).tolist():
        write_image(tmp_path / "sur" / f"{c}.png", own.image)
    plan = frame_plan(enc.frames, enc.tracks, enc.landmarks68, labels, cuts=[18])
    persons = enc.tracks.astype(np.int64)  # no identities: each track is its person
    rows = {"frames": enc.frames, "tracks": enc.tracks, "embeddings": enc.embeddings, "persons": persons}
    everyone = {"embeddings": enc.embeddings, "persons": persons, "labels": labels}
    return enc, plan, rows, everyone, {c: own.landmarks68 for c in np.unique(labels).tolist()}


@pytest.mark.parametrize("on_leak", ["blur", "keep"])
def test_a_track_made_to_leak_is_escalated_then_falls_back_and_is_written_so(anonymized, clip, tmp_path, on_leak):
    from anonfaces.pipeline.anonymize import dlib_embedder
    from anonfaces.synthesize.baselines import apply_baseline
    from anonfaces.synthesize.blend import REGIONS
    from anonfaces.utils.parallel import WorkerPool
    from anonfaces.video.anonymize import write_video
    from anonfaces.video.privacy import check_tracks, write_track_privacy

    folder, _ = clip
    _, plan, rows, everyone, sur_lm = _leaking_setup(anonymized, clip, tmp_path)
    check = {"make_embed": functools.partial(dlib_embedder, 1), "margin": 0.05, "on_leak": on_leak,
             "own_distance": 0.5, "own_photos": "person"}
    with WorkerPool(1, progress=False) as pool:
        records = check_tracks(pool, folder / "clip.mp4", "clip.mp4", plan, rows, everyone=everyone, check=check,
                               surrogates=tmp_path / "sur", sur_landmarks=sur_lm, blend={})
        by_track = {r.track: r for r in records}
        leak = by_track[0]
        # the surrogate is the person's own face: within 0.5 of it with the settings asked for, and still after
        # every escalation step (the last, softened-2, was tried) -- then the whole track falls back
        assert leak.nearest_own_before < 0.5 and leak.sampled == 4
        if on_leak == "blur":
            assert leak.outcome == "blurred" and leak.step.startswith("on_leak=blur")
            assert plan.treatment[0]["mode"] == "blur" and leak.nearest_own_after >= 0.5
        else:
            assert (leak.outcome, leak.step) == ("kept-above-margin", "softened-2") and leak.nearest_own_after < 0.55
            assert plan.treatment[0]["blend"]["soften"] == 0.06  # written with the last step, recorded as kept
        # another person's track with that face as surrogate: no leak
        assert any(r.outcome == "passed" for t, r in by_track.items() if t != 0)
        assert all(t not in plan.treatment for t, r in by_track.items() if r.outcome == "passed")
        write_track_privacy(tmp_path / "privacy.csv", records)
        with open(tmp_path / "privacy.csv", newline="") as fh:
            assert [r["outcome"] for r in csv.DictReader(fh)] == [by_track[t].outcome for t in sorted(by_track)]
        if on_leak != "blur":
            return
        result = write_video(pool, folder / "clip.mp4", tmp_path / "out.mp4", plan, surrogates=tmp_path / "sur",
                             sur_landmarks=sur_lm, blend={}, progress=False)
    assert result.error is None and result.frames == 36
    # track 0's faces are blurred on every frame of the track (the blur of the face's largest region)
    for (f, _, a), (_, _, b) in zip(read_frames(folder / "clip.mp4"), read_frames(tmp_path / "out.mp4")):
        for lm, _, t, _ in plan.faces.get(f, []):
            if t == 0 and f % 5 == 0:
                x0, y0 = np.maximum(lm.min(0).astype(int), 0)
                x1, y1 = lm.max(0).astype(int)
                expected = apply_baseline(a, "blur", [lm.astype(float)], forehead=max(REGIONS.values())[0],
                                          sigma=plan.treatment[0]["sigma"])[y0:y1, x0:x1].astype(int)
                assert np.abs(expected - b[y0:y1, x0:x1]).mean() < 4  # H.264 noise only
                assert np.abs(a[y0:y1, x0:x1].astype(int) - b[y0:y1, x0:x1]).mean() > 4  # and changed


def test_the_safety_net_finds_a_face_still_its_persons_and_a_face_never_replaced(anonymized, clip, tmp_path):
    from anonfaces.pipeline.anonymize import dlib_embedder
    from anonfaces.utils.parallel import WorkerPool
    from anonfaces.video.anonymize import write_video
    from anonfaces.video.privacy import safety_net

    run, _ = anonymized
    folder, _ = clip
    net = json.loads((run.private / "videos" / "run.json").read_text())["safety_net"]
    assert net["on"] and net["videos"]["clip.mp4"] == {"findings": [], "action": None}  # the session's run: nothing left
    _, plan, rows, everyone, sur_lm = _leaking_setup(anonymized, clip, tmp_path)
    # track 0 gets its own face as surrogate (no check); track 2 (Kate Hudson, after the cut) is not replaced at all
    for f in list(plan.faces):
        plan.faces[f] = [face for face in plan.faces[f] if face[2] != 2]
    with WorkerPool(1, progress=False) as pool:
        result = write_video(pool, folder / "clip.mp4", tmp_path / "out.mp4", plan, surrogates=tmp_path / "sur",
                             sur_landmarks=sur_lm, blend={}, progress=False)
        assert result.error is None
        findings = safety_net(pool, tmp_path / "out.mp4", "clip.mp4", plan, rows, everyone=everyone,
                              make_embed=functools.partial(dlib_embedder, 1), fps=4)
    kinds = {(f["kind"], f["track"]) for f in findings}
    assert ("match", 0) in kinds and ("unanonymized", -1) in kinds
    assert all(f["distance"] < 0.5 for f in findings if f["kind"] == "match")
    assert {f["frame"] for f in findings if f["kind"] == "unanonymized"} <= set(range(18, 36))  # only after the cut
    assert not any(f["track"] == 1 for f in findings)  # Bill Gates, replaced by another person's face: protected


def test_a_video_with_a_face_left_is_held_back_by_the_safety_net(anonymized, clip, tmp_path):
    """A blur too weak to hide anyone (sigma 0.001 of the face: half a pixel): every face is still its person's, the
    safety net finds them, and with --no-face skip (the default) the video is held back, not written."""
    from anonfaces.pipeline import anonymize_dataset

    run, _ = anonymized
    folder, _ = clip
    weak = anonymize_dataset(folder / "clip.mp4", tmp_path / "out", method="blur", method_params={"sigma": 0.001},
                             encodings=run.private / "videos" / "encodings.npz", jobs=1, progress=False)
    assert ("clip.mp4", "a face left unprotected") in weak.held_back
    assert not list((tmp_path / "out").glob("*.mp4"))
    net = json.loads((weak.private / "videos" / "run.json").read_text())["safety_net"]["videos"]["clip.mp4"]
    assert net["action"] == "held back" and {f["kind"] for f in net["findings"]} == {"match"}
