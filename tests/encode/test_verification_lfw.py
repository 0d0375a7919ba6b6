"""dlib embeddings verify LFW pairs as well as dlib says they do.

500 balanced pairs (250 same person, 250 different people) drawn with a fixed
seed from all of LFW; threshold 0.6. dlib reports 99.38% on the official
protocol; the issue asks for at least 97% here.
"""

import numpy as np
import pytest

import anonfaces
from anonfaces.encode import encode_photos

N_PAIRS = 250


@pytest.mark.lfw
def test_verification_accuracy_on_lfw_pairs(lfw_dir, tmp_path):
    rng = np.random.default_rng(2026)
    people = sorted(p.name for p in lfw_dir.iterdir() if p.is_dir())
    many = [p for p in people if len(list((lfw_dir / p).iterdir())) >= 2]
    chosen = rng.choice(many, size=N_PAIRS, replace=False)
    same_pairs = []
    ds = tmp_path / "pairs"
    for person in chosen:
        files = sorted((lfw_dir / person).iterdir())
        a, b = rng.choice(len(files), size=2, replace=False)
        (ds / person).mkdir(parents=True)
        for i in (a, b):
            (ds / person / files[i].name).symlink_to(files[i])
        same_pairs.append((f"{person}/{files[a].name}", f"{person}/{files[b].name}"))
    report = encode_photos(ds, tmp_path / "enc.npz", jobs=2, progress=False)
    enc = anonfaces.load_encodings(report.encodings_path)

    # one face per photo: the one nearest the centre (LFW photos are centred on the named person)
    vec = {enc.paths[i]: enc.embeddings[i] for i in enc.central_faces()}

    all_photos = [p for pair in same_pairs for p in pair]
    diff_pairs = []
    while len(diff_pairs) < N_PAIRS:
        a, b = rng.choice(len(all_photos), size=2, replace=False)
        if all_photos[a].split("/")[0] != all_photos[b].split("/")[0]:
            diff_pairs.append((all_photos[a], all_photos[b]))

    def correct(pairs, same):
        # a photo in which no face was found counts as a wrong answer
        return sum(
            (a in vec and b in vec) and ((np.linalg.norm(vec[a] - vec[b]) <= 0.6) == same) for a, b in pairs
        )

    accuracy = (correct(same_pairs, True) + correct(diff_pairs, False)) / (2 * N_PAIRS)
    print(f"LFW verification accuracy on {2 * N_PAIRS} pairs at 0.6: {accuracy:.4f} ({len(report.skipped)} photos without a face)")
    assert accuracy >= 0.97
