"""Attack protocols and metrics on hand-made cases whose answers are known."""

import numpy as np
import pandas as pd
import pytest

from anonfaces.errors import BadInputError
from anonfaces.evaluate import (
    bucket_means,
    calibrate_threshold,
    closed_set_identification,
    face_area_share,
    identity_reidentification,
    information_loss,
    k_bound,
    landmark_displacement,
    match_faces,
    parrot_reidentification,
    psnr,
    reidentification_rate,
    ssim,
)
from anonfaces.evaluate.attributes import (
    attribute_agreement,
    downstream_utility,
    identity_split,
    read_attributes,
)
from anonfaces.evaluate.quality import area_bucket

# four originals on a line, 1 apart
G = np.array([[0.0, 0], [1, 0], [2, 0], [3, 0]])


def test_ri_counts_faces_within_threshold_of_own_surrogate():
    S = G + np.array([[0.5, 0], [0, 0.59], [0, 0.61], [0, 2.0]])
    assert reidentification_rate(G, S, 0.6) == pytest.approx(0.5)
    assert reidentification_rate(G, S, 0.61) == pytest.approx(0.75)  # "within" includes the boundary
    assert information_loss(G, S) == pytest.approx((0.5 + 0.59 + 0.61 + 2.0) / 4)


def test_ri_refuses_mismatched_rows_and_bad_threshold():
    with pytest.raises(BadInputError):
        reidentification_rate(G, G[:3], 0.6)
    with pytest.raises(BadInputError):
        reidentification_rate(G, G, float("nan"))


def test_ksame_surrogates_meet_the_closed_set_bound():
    # two clusters of two: both members get the cluster mean -> exactly one of each pair is nearest
    S = np.array([[0.5, 0], [0.5, 0], [2.5, 0], [2.5, 0]])
    assert closed_set_identification(S, G) == pytest.approx(0.5) == k_bound(2)
    # unanonymized probes are all found
    assert closed_set_identification(G, G) == 1.0
    # a probe that moved next to another face is a miss
    assert closed_set_identification(np.array([[2.9, 0]]), G, [0]) == 0.0


def test_closed_set_rank():
    probes = np.array([[1.4, 0]])  # nearest: face 1, then 2, then 0
    assert closed_set_identification(probes, G, [2], rank=1) == 0.0
    assert closed_set_identification(probes, G, [2], rank=2) == 1.0
    with pytest.raises(BadInputError):
        closed_set_identification(probes, G, [2], rank=5)


def test_identity_reid_leaves_the_probe_photo_out():
    # person a at x=0 and x=0.2; person b at x=5 and x=5.3
    X = np.array([[0.0], [0.2], [5.0], [5.3]])
    ids = np.array(["a", "a", "b", "b"])
    keys = np.arange(4)
    # without excluding its own photo every probe would trivially match itself
    assert identity_reidentification(X, ids, X, ids, probe_keys=keys, gallery_keys=keys) == 1.0
    # probes moved halfway to the other person: a's photos become nearer b's
    P = np.array([[4.0], [4.1], [1.0], [1.1]])
    assert identity_reidentification(P, ids, X, ids, probe_keys=keys, gallery_keys=keys) == 0.0


def test_identity_reid_skips_people_with_no_other_photo():
    X = np.array([[0.0], [0.1], [9.0]])
    ids = np.array(["a", "a", "c"])
    keys = np.arange(3)
    # c has a single photo: nobody can recognize it from other photos, so it is not counted
    assert identity_reidentification(X, ids, X, ids, probe_keys=keys, gallery_keys=keys) == 1.0


def test_parrot_matches_surrogates_against_an_anonymized_gallery():
    # two people (a, a, b, b) whose faces all became near-identical surrogates
    A = np.array([[2.50], [2.51], [2.60], [2.70]])
    ids = np.array(["a", "a", "b", "b"])
    keys = np.arange(4)
    # nearest *other* anonymized photo: 0->1 (a, hit), 1->0 (a, hit), 2->1 (a, miss: .09 < .10), 3->2 (b, hit)
    assert parrot_reidentification(A, ids, A, ids, probe_keys=keys, gallery_keys=keys) == pytest.approx(0.75)
    # an obfuscation that keeps people apart (a blur-like scaling): the parrot wins every time
    X = np.array([[0.0], [0.1], [5.0], [5.1]])
    B = X * 0.5
    assert parrot_reidentification(B, ids, B, ids, probe_keys=keys, gallery_keys=keys) == 1.0


def test_the_residual_parrot_sees_through_per_photo_variation_and_not_through_none():
    from anonfaces.evaluate.protocols import (
        residual_embeddings,
        residual_parrot_reidentification,
    )

    rng = np.random.default_rng(0)
    ids = np.repeat(np.arange(20), 5)  # 20 people x 5 photos, clusters of 5 people
    keys = np.arange(len(ids))
    variant = rng.normal(size=(4, 4, 16))[ids // 5, rng.integers(0, 4, len(ids))]  # 4 variants per cluster, per photo
    person = rng.normal(size=(20, 16))[ids] * 0.25
    A = variant + person + rng.normal(size=(len(ids), 16)) * 0.02
    plain = parrot_reidentification(A, ids, A, ids, probe_keys=keys, gallery_keys=keys)
    residual = residual_parrot_reidentification(A, ids, A, ids, probe_keys=keys, gallery_keys=keys, neighbours=3)
    assert residual > plain + 0.2  # the variants mislead the plain parrot, not the residual one
    # nothing member-specific (variant and noise only): near chance either way
    N = variant + rng.normal(size=(len(ids), 16)) * 0.02
    assert residual_parrot_reidentification(N, ids, N, ids, probe_keys=keys, gallery_keys=keys, neighbours=3) < 0.4
    # one residual per face, the same for a face given twice
    R = residual_embeddings(np.concatenate([A[:3], A[:3]]), np.array([0, 1, 2, 0, 1, 2]), neighbours=1)
    assert np.allclose(R[:3], R[3:])
    with pytest.raises(BadInputError):
        residual_embeddings(A, neighbours=0)


def test_k_bound():
    assert k_bound(5) == 0.2
    assert np.isnan(k_bound(None)) and np.isnan(k_bound(0))


def test_calibrated_threshold_has_the_asked_false_accept_rate():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(30, 8)) * 10
    X = np.repeat(centres, 4, axis=0) + rng.normal(size=(120, 8)) * 0.1
    ids = np.repeat(np.arange(30), 4)
    t = calibrate_threshold(X, ids, far=0.01)
    i, j = np.triu_indices(120, 1)
    diff = ids[i] != ids[j]
    d = np.linalg.norm(X[i] - X[j], axis=1)
    assert np.mean(d[diff] <= t) == pytest.approx(0.01, abs=0.002)
    assert np.mean(d[~diff] <= t) == 1.0  # tight clusters: every same-person pair is accepted
    assert calibrate_threshold(X[:4], ids[:4]) is None  # one person: no impostor pair


def test_psnr_and_ssim_known_values():
    a = np.zeros((16, 16, 3), np.uint8)
    b = a.copy()
    b[:] = 10  # MSE 100 -> PSNR = 10 log10(255^2 / 100)
    assert psnr(a, b) == pytest.approx(10 * np.log10(255**2 / 100))
    assert psnr(a, a) == float("inf")
    rng = np.random.default_rng(1)
    c = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    assert ssim(c, c) == pytest.approx(1.0)
    assert ssim(c, 255 - c) < 0


def test_area_share_and_buckets():
    assert face_area_share([[0, 0, 10, 10]], (20, 20)) == pytest.approx(0.25)
    assert face_area_share([[0, 0, 10, 10], [5, 5, 15, 15]], (20, 20)) == pytest.approx(175 / 400)  # union, not sum
    assert face_area_share([[-5, -5, 30, 30]], (20, 20)) == 1.0
    assert [area_bucket(s) for s in (0.05, 0.1, 0.2, 0.3, 0.6, 0.9)] == ["<=10%", "<=10%", "10-30%", "10-30%", "50-70%", ">70%"]
    means = bucket_means([1.0, 3.0, 5.0], [0.2, 0.25, 0.8])
    assert means["10-30%"] == (2.0, 2) and means[">70%"] == (5.0, 1) and means["average"] == (3.0, 3)
    assert np.isnan(means["30-50%"][0]) and means["30-50%"][1] == 0


def test_detection_matching_and_landmark_displacement():
    orig = [[0, 0, 10, 10], [20, 0, 30, 10]]
    dets = [[21, 0, 31, 10], [50, 50, 60, 60]]
    assert match_faces(orig, dets).tolist() == [-1, 0]
    assert match_faces(orig, np.empty((0, 4))).tolist() == [-1, -1]
    lm = np.zeros((68, 2))
    lm[36:42] = [0, 0]
    lm[42:48] = [10, 0]  # inter-ocular distance 10
    assert landmark_displacement(lm, lm) == 0.0
    assert landmark_displacement(lm, lm + [3, 4]) == pytest.approx(0.5)


def test_attribute_agreement_and_downstream():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5))
    y = X[:, 0] > 0
    same = attribute_agreement(X[:100], y[:100], X[100:], X[100:], y[100:])
    assert same["agreement"] == 1.0 and same["accuracy_original"] > 0.9
    flipped = attribute_agreement(X[:100], y[:100], X[100:], -X[100:], y[100:])
    assert flipped["agreement"] < 0.1 and flipped["accuracy_anonymized"] < 0.1
    erased = X[:100].copy()
    erased[:, 0] = 0.0  # anonymization that wiped the attribute out of the training faces
    down = downstream_utility(erased, X[:100], y[:100], X[100:], y[100:])
    assert down["accuracy_original_train"] > 0.9 and down["accuracy_anonymized_train"] < 0.7 and down["ratio"] < 0.75
    kept = downstream_utility(X[:100] + 0.01, X[:100], y[:100], X[100:], y[100:])
    assert kept["ratio"] == pytest.approx(1.0, abs=0.03)
    with pytest.raises(BadInputError):
        attribute_agreement(X[:10], np.ones(10, bool), X[:5], X[:5])


def test_identity_split_keeps_people_whole():
    ids = np.repeat(np.arange(10), 3).astype(str)
    test = identity_split(ids, random_state=0)
    for person in np.unique(ids):
        assert np.unique(test[ids == person]).size == 1
    assert 0 < test.mean() < 1


def test_read_attributes(tmp_path):
    f = tmp_path / "attr.txt"
    f.write_text("2\nMale Smiling\n000001.jpg  1 -1\n000002.jpg -1  1\n")
    table = read_attributes(f)
    assert table.loc["000001.jpg", "Male"] and not table.loc["000001.jpg", "Smiling"]
    assert isinstance(table, pd.DataFrame) and table.shape == (2, 2)
    f.write_text("2\nMale Smiling\n000001.jpg  1\n")
    with pytest.raises(Exception, match="1 values for 2"):
        read_attributes(f)
