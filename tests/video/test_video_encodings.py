"""The video columns of `Encodings`: optional on disk, old files still read, the Parquet store too; tracks as people."""

from __future__ import annotations

import numpy as np
import pytest

from anonfaces.encode import Encodings


def _rows(n=4, video=True):
    rng = np.random.default_rng(1)
    extra = {"frames": np.arange(n) * 3, "timestamps": np.arange(n) * 0.25, "tracks": np.array([0, 0, 1, 1][:n])} if video else {}
    return Encodings(embeddings=rng.normal(size=(n, 128)), paths=["v/clip.mp4"] * n, face_index=np.arange(n),
                     boxes_ltrb=np.ones((n, 4)), scores=np.ones(n), landmarks68=np.ones((n, 68, 2)),
                     landmarks5=np.ones((n, 5, 2)), identities=[""] * n, image_sizes=np.ones((n, 2)), **extra)


def test_npz_round_trip_and_old_files(tmp_path):
    enc = _rows()
    back = Encodings.load(enc.save(tmp_path / "v.npz"))
    assert back.frames.tolist() == [0, 3, 6, 9] and back.tracks.tolist() == [0, 0, 1, 1]
    assert np.allclose(back.timestamps, [0, 0.25, 0.5, 0.75])
    assert back.track_units().tolist() == ["v/clip.mp4#t0", "v/clip.mp4#t0", "v/clip.mp4#t1", "v/clip.mp4#t1"]
    photos = _rows(video=False)
    path = photos.save(tmp_path / "p.npz")
    with np.load(path) as data:
        assert not {"frames", "timestamps", "tracks"} & set(data.files)  # a photo file is as before
    back = Encodings.load(path)
    assert (back.frames == -1).all() and np.isnan(back.timestamps).all() and not back.has_video
    assert back.track_units().tolist() == [""] * 4
    both = Encodings.concatenate([photos, enc])
    assert both.frames.tolist() == [-1] * 4 + [0, 3, 6, 9] and both.subset([5]).tracks.tolist() == [0]


def test_parquet_store_keeps_the_video_columns(tmp_path):
    pytest.importorskip("pyarrow")
    from anonfaces.encode.store import EncodingsStore, save_store

    enc = _rows()
    save_store(enc, tmp_path / "store", shard_rows=2)
    back = Encodings.load(tmp_path / "store")
    assert back.frames.tolist() == [0, 3, 6, 9] and back.tracks.tolist() == [0, 0, 1, 1]
    assert back.materialize().tracks.tolist() == [0, 0, 1, 1]
    store = EncodingsStore.open(tmp_path / "store")
    store.write_shard(_rows(2, video=False).subset([0, 1]), key="photos")  # a shard without the columns
    mixed = Encodings.load(tmp_path / "store")
    assert len(mixed) == 6 and sorted(mixed.frames.tolist()) == [-1, -1, 0, 3, 6, 9]


def test_a_track_is_one_person_and_tracks_of_one_person_join():
    from anonfaces.cluster import fill_identities

    rng = np.random.default_rng(0)
    people = rng.normal(size=(3, 128))
    people *= 0.8 / np.linalg.norm(people, axis=1, keepdims=True)  # dlib-like: people about 1.1 apart
    X = np.concatenate([people[0] + rng.normal(size=(4, 128)) * 0.005, people[1] + rng.normal(size=(3, 128)) * 0.005,
                        people[0] + rng.normal(size=(2, 128)) * 0.005, people[2][None]])
    groups = ["a#t0"] * 2 + ["a#t1"] * 2 + ["b#t0"] * 3 + ["c#t0"] * 2 + [""]
    # a track whose faces differ (a turned head): it stays one unit even where its faces alone would split
    turn = rng.normal(size=128)
    X[1] = people[0] + 0.7 * turn / np.linalg.norm(turn)  # 0.7 from the person's other faces: alone, another pseudo-identity
    alone, _ = fill_identities(X, None)
    assert alone[1] != alone[0]
    ids, _ = fill_identities(X, None, groups=groups)
    assert ids[0] == ids[1]  # one track, one person
    assert ids[0] == ids[2] == ids[7]  # tracks of person 0 in two videos join
    assert ids[4] != ids[0] and ids[9] != ids[4]
    known = np.array(["Tiger"] * 2 + [""] * 8)
    ids2, _ = fill_identities(X, known, groups=groups)
    assert ids2[:2].tolist() == ["Tiger", "Tiger"]  # a known identity wins
    no_groups, _ = fill_identities(X[2:], None)
    assert no_groups[0] == no_groups[1]


def test_encode_dataset_takes_photos_and_videos_and_encode_photos_only_photos(clip, sample_dir, tmp_path):
    """`anonfaces.pipeline.encode_dataset` = the photos (encode stage) + the videos (video package) in one file."""
    import shutil

    from anonfaces.encode import encode_photos
    from anonfaces.pipeline import encode_dataset

    folder, _ = clip
    dataset = tmp_path / "mixed"
    (dataset / "Bill_Gates").mkdir(parents=True)
    shutil.copy(sorted((sample_dir / "Bill_Gates").iterdir())[0], dataset / "Bill_Gates")
    shutil.copy(folder / "clip.mp4", dataset / "clip.mp4")
    both = encode_dataset(dataset, tmp_path / "both.npz", jobs=1, progress=False, fps=4)
    photos = encode_photos(dataset, tmp_path / "photos.npz", jobs=1, progress=False)
    enc = Encodings.load(tmp_path / "both.npz")
    assert both.n_images == 2 and photos.n_images == 1 and len(photos.encodings) == 1
    assert enc.frames.tolist()[0] == -1 and (enc.frames[1:] >= 0).all() and len(enc) > 2
    assert enc.meta["n_videos"] == 1 and set(enc.paths.tolist()) == {photos.encodings.paths[0], "clip.mp4"}
    np.testing.assert_allclose(enc.embeddings[0], photos.encodings.embeddings[0], atol=1e-6)
