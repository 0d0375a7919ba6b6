"""Face tracks: scene cuts, linking, merging; the clip's tracks against its ground truth."""

from __future__ import annotations

import numpy as np

from anonfaces.video.track import (
    box_iou,
    frame_histogram,
    link_tracks,
    merge_tracks,
    scene_cuts,
)


def test_scene_cuts_from_histograms():
    rng = np.random.default_rng(0)
    dark = rng.integers(0, 60, (48, 64, 3), dtype=np.uint8)
    bright = rng.integers(180, 255, (48, 64, 3), dtype=np.uint8)
    hists = [frame_histogram(f) for f in (dark, dark, np.clip(dark.astype(int) + 3, 0, 255).astype(np.uint8), bright, bright)]
    assert scene_cuts(hists).tolist() == [False, False, False, True, False]


def test_linking_by_overlap_and_embedding_and_breaking_at_cuts():
    e_a, e_b = np.zeros(4), np.full(4, 1.0)  # two people, distance 2
    steps = np.array([0, 0, 1, 1, 2, 4, 5])
    boxes = np.array([[0, 0, 10, 10], [50, 0, 60, 10], [1, 0, 11, 10], [50, 1, 60, 11],
                      [2, 0, 12, 10],        # A again; B missed at step 2
                      [4, 0, 14, 10],        # A after a two-step gap (within max_gap)
                      [5, 0, 15, 10]], float)  # after a cut at step 5: a new track although it overlaps
    emb = np.stack([e_a, e_b, e_a, e_b, e_a, e_a, e_a])
    cuts = np.zeros(6, bool)
    cuts[5] = True
    ids = link_tracks(steps, boxes, emb, cuts)
    assert ids[[0, 2, 4, 5]].tolist() == [ids[0]] * 4
    assert ids[1] == ids[3] != ids[0]
    assert ids[6] not in ids[:6]
    # the same boxes but another person's embedding: not linked
    emb2 = emb.copy()
    emb2[2] = e_b + 5
    assert link_tracks(steps, boxes, emb2, cuts)[2] not in (ids[0], ids[1])


def test_merging_joins_one_person_never_two_on_screen_together():
    tracks = np.array([0, 0, 1, 1, 2, 2])
    frames = np.array([0, 1, 10, 11, 10, 11])
    emb = np.array([[0, 0], [0, 0.1], [0.05, 0], [0.05, 0.05], [0.0, 0.02], [0.0, 0.01]])
    merged = merge_tracks(tracks, frames, emb, merge_distance=0.5)
    assert merged[0] == merged[1]
    assert merged[2] != merged[4]  # tracks 1 and 2 share frames 10 and 11: two people
    assert merged[0] in (merged[2], merged[4])  # track 0 (earlier) joins one of them
    assert box_iou(np.array([[0, 0, 10, 10]]), np.array([[5, 0, 15, 10]]))[0, 0] == 1 / 3


def test_clip_tracks_match_the_ground_truth(anonymized, clip):
    """Every appearance's faces are one track; different people are different tracks (from the run's encodings)."""
    from anonfaces.encode import Encodings

    run, _ = anonymized
    _, video = clip
    enc = Encodings.load(run.private / "videos" / "encodings.npz")
    assert enc.has_video and (enc.tracks >= 0).all() and (enc.frames >= 0).all()
    assert np.allclose(enc.timestamps, enc.frames / 12.0, atol=1e-3)
    found = {}
    for i in range(len(enc)):
        truth = video.truth[enc.frames[i]]
        iou = [box_iou(enc.boxes_ltrb[i][None], box[None])[0, 0] for _, box in truth]
        assert max(iou) > 0.3, f"a detection at frame {enc.frames[i]} matches no generated face"
        found.setdefault(truth[int(np.argmax(iou))][0], []).append(int(enc.tracks[i]))
    gt_faces = sum(len(t) for t in video.truth)
    assert len(enc) >= 0.95 * gt_faces  # the detector finds (nearly) every generated face
    track_of = {}
    for appearance, ids in found.items():
        values, counts = np.unique(ids, return_counts=True)
        assert counts.max() == len(ids), f"appearance {appearance} split over tracks {dict(zip(values, counts))}"
        track_of[appearance] = int(values[0])
    # appearances 0 (Tiger Woods), 1 (Bill Gates) and 3 (Kate Hudson) are three people: three tracks
    assert len({track_of[0], track_of[1], track_of[3]}) == 3
    assert track_of[2] not in (track_of[1], track_of[3])  # Tiger Woods after the cut: never another person's track
