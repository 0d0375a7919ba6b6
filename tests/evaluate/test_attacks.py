"""The stronger evaluation: TPR at a false-accept rate, the method-aware and context attackers,
intervals over people, and the unprotected-face rate (hand-made cases and real dlib faces)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from anonfaces.errors import BadInputError
from anonfaces.evaluate import protocols
from anonfaces.evaluate.intervals import bootstrap_people
from anonfaces.evaluate.protocols import (
    matches_any_original,
    method_aware_identification,
    method_aware_split,
    tpr_at_far,
    unprotected_faces,
)

# --- TPR at a false-accept rate ---------------------------------------------------------------
# gallery (1-D): person a at 0 (photo 0) and 3 (photo 1); person b at 5 (photo 2) and 6 (photo 3).
# probes: a's photo 0 anonymized to 0.0, b's photo 2 anonymized to 4.6.
# genuine pairs (own photo left out): a-probe vs a@3 -> 3.0; b-probe vs b@6 -> 1.4.
# impostor pairs: a-probe vs 5, 6 -> 5.0, 6.0; b-probe vs 0, 3 -> 4.6, 1.6. Sorted: 1.6, 4.6, 5.0, 6.0.
GALLERY = np.array([[0.0], [3.0], [5.0], [6.0]])
GALLERY_IDS = np.array(["a", "a", "b", "b"])
PROBES = np.array([[0.0], [4.6]])
PROBE_IDS = np.array(["a", "b"])


def _verify(far):
    return tpr_at_far(PROBES, PROBE_IDS, GALLERY, GALLERY_IDS, far=far, probe_keys=[0, 2], gallery_keys=[0, 1, 2, 3])


def test_tpr_at_far_by_hand():
    # 4 impostor pairs: at 0.1% none may pass -> threshold 1.6 (strictly below accepted) -> 1.4 passes, 3.0 does not
    v = _verify(0.001)
    assert (v.n_impostor, v.impostors_accepted) == (4, 0) and v.threshold == pytest.approx(1.6)
    assert v.tpr == pytest.approx(0.5)
    assert v.genuine.tolist() == [1, 1] and v.accepted.tolist() == [0, 1]
    # one false accept in four allowed -> threshold 4.6 -> both genuine pairs pass, one impostor (1.6) too
    v = _verify(0.25)
    assert (v.tpr, v.impostors_accepted) == (1.0, 1) and v.threshold == pytest.approx(4.6)
    # two allowed -> threshold 5.0
    assert _verify(0.5).threshold == pytest.approx(5.0)


def test_tpr_at_far_chunks_agree_and_stay_at_the_rate():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 16))
    ids = np.repeat(np.arange(30), 10)
    whole = tpr_at_far(X, ids, X, ids, far=0.01, probe_keys=np.arange(300), gallery_keys=np.arange(300))
    parts = tpr_at_far(X, ids, X, ids, far=0.01, probe_keys=np.arange(300), gallery_keys=np.arange(300), chunk=7)
    assert (whole.tpr, whole.threshold, whole.impostors_accepted) == (parts.tpr, parts.threshold, parts.impostors_accepted)
    assert whole.n_impostor == 300 * 290 and whole.genuine.sum() == 300 * 9
    assert whole.impostors_accepted <= 0.01 * whole.n_impostor
    # embeddings that carry no identity: genuine pairs pass about as often as impostors
    assert whole.tpr < 0.05
    with pytest.raises(BadInputError):
        tpr_at_far(X, ids, X, ids, far=0)


# --- the method-aware attacker ----------------------------------------------------------------
def test_method_aware_split_keeps_photos_whole_and_is_seeded():
    ids = np.repeat(["a", "b", "c"], [4, 4, 1])
    photos = np.array([0, 0, 1, 2, 3, 4, 5, 6, 7])  # a's first photo has two faces
    train = method_aware_split(ids, photos, random_state=3)
    assert train[0] == train[1]  # one photo, one side
    for person in ("a", "b"):
        rows = ids == person
        assert train[rows].any() and not train[rows].all()
    assert not train[ids == "c"].any()  # one photo: neither trained on nor tested
    assert np.array_equal(train, method_aware_split(ids, photos, random_state=3))
    splits = {tuple(method_aware_split(ids, photos, random_state=s)) for s in range(10)}
    assert len(splits) > 1


def test_method_aware_by_hand():
    # people far apart: the nearest training mean is always the person's own, whatever the split
    X = np.array([[0.0], [0.1], [0.2], [10.0], [10.1], [10.2]])
    ids = np.repeat(["a", "b"], 3)
    r = method_aware_identification(X, ids, classifier="centroid")
    assert (r.accuracy, r.chance, r.n_people) == (1.0, 0.5, 2)
    assert np.isnan(r.hits[r.train]).all() and np.isfinite(r.hits[~r.train]).all()
    # perfect k-Same with k = 2: every output is the same face; every test face is named 'a' (ties: first)
    same = np.zeros((8, 3))
    ids = np.repeat(["a", "b"], 4)
    r = method_aware_identification(same, ids, classifier="centroid")
    assert r.accuracy == 0.5 == r.chance
    # the trained classifier on separable people, and with a person who has one photo only
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(5, 8)) * 5
    ids = np.repeat(np.arange(5), 6)
    X = centres[ids] + rng.normal(size=(30, 8)) * 0.3
    r = method_aware_identification(np.vstack([X, [[0] * 8]]), np.append(ids, 99))
    assert r.accuracy == 1.0 and r.chance == pytest.approx(0.2) and np.isnan(r.hits[-1])
    with pytest.raises(BadInputError):
        method_aware_identification(X, ids, classifier="svm")


# --- intervals over people --------------------------------------------------------------------
def _hits(n_people, rate=0.3, per_person=10, seed=0):
    rng = np.random.default_rng(seed)
    p = rng.beta(2, 2 * (1 - rate) / rate, n_people)  # people differ in how recognisable they are
    hits = (rng.random((n_people, per_person)) < p[:, None]).astype(float).ravel()
    return hits, np.repeat(np.arange(n_people), per_person)


def test_bootstrap_contains_the_estimate_is_seeded_and_narrows_with_people():
    hits, people = _hits(60)
    low, high = bootstrap_people(hits, people, random_state=0)
    assert low < hits.mean() < high
    assert (low, high) == bootstrap_people(hits, people, random_state=0)
    assert (low, high) != bootstrap_people(hits, people, random_state=1)
    many, many_people = _hits(600)
    low_m, high_m = bootstrap_people(many, many_people, random_state=0)
    assert low_m < many.mean() < high_m
    assert high_m - low_m < 0.6 * (high - low)  # ~ 1/sqrt(10) as wide


def test_bootstrap_edge_cases():
    people = np.repeat([0, 1, 2], 2)
    assert bootstrap_people(np.ones(6), people) == (1.0, 1.0)  # every face a hit: no spread
    # NaN faces are no part of the figure; a person with only NaN faces is never drawn
    assert bootstrap_people([1, 1, 0, 0, np.nan, np.nan], people) != (np.nan, np.nan)
    assert np.isnan(bootstrap_people([np.nan] * 6, people)).all()
    # weights: a per-probe rate weighted by its pairs equals the pooled ratio within the interval
    rate, pairs = np.array([0.5, 1.0, 0.0]), np.array([2, 1, 1])
    low, high = bootstrap_people(rate, [0, 1, 2], weights=pairs)
    assert low <= (rate * pairs).sum() / pairs.sum() <= high
    with pytest.raises(BadInputError):
        bootstrap_people([1, 0], [0])


# --- real faces: the context attacker and the unprotected-face rate -----------------------------
@pytest.fixture(scope="module")
def sample_faces(sample_dir):
    """Twelve sample photos (two per person, six people) with their dlib faces."""
    from anonfaces.detect import detect_faces
    from anonfaces.utils.images import read_image

    out = []
    for person in sorted(p for p in sample_dir.iterdir() if p.is_dir())[:6]:
        for path in sorted(person.glob("*.jpg"))[:2]:
            image = read_image(path)
            faces = detect_faces(image)[:1]
            if faces:
                out.append((person.name, image, faces))
    assert len(out) >= 10
    return out


def test_context_attacker_greys_the_face_and_sees_something_else(sample_faces):
    from anonfaces.evaluate.recognizers import (
        CONTEXT_FILL,
        face_region_polygon,
        make_recognizer,
    )

    context, dlib = make_recognizer("context"), make_recognizer("dlib")
    assert context.needs_fit is False and context.threshold is None
    _, image, faces = sample_faces[0]
    lm = faces[0].landmarks68
    poly = face_region_polygon(lm)
    import cv2

    # the region holds every landmark and reaches above the brows (the forehead)
    assert all(cv2.pointPolygonTest(poly.reshape(-1, 1, 2), (float(x), float(y)), False) >= 0 for x, y in lm)
    assert poly[:, 1].min() < lm[17:27, 1].min() - 0.2 * (lm[8, 1] - lm[17:27, 1].mean())
    chips = context.prepare(image, faces)
    plain = dlib.prepare(image, faces)
    assert chips.shape == plain.shape == (1, 150, 150, 3)
    centre = chips[0, 35:115, 35:115]
    assert (centre == CONTEXT_FILL).all()  # eyes, nose, mouth, cheeks: all grey
    assert not (plain[0, 35:115, 35:115] == CONTEXT_FILL).all()
    assert not (chips[0] == CONTEXT_FILL).all()  # something of the surroundings is left
    for _, image, faces in sample_faces[:4]:
        d = np.linalg.norm(context.embed(context.prepare(image, faces)) - dlib.embed(dlib.prepare(image, faces)))
        assert d > 0.4  # far beyond one person's spread (0.6 is dlib's same-person distance)
    with pytest.raises(BadInputError):
        make_recognizer("context", base="context")


def test_unprotected_rate_is_one_for_originals_and_near_zero_for_blur(sample_faces):
    from anonfaces.evaluate.recognizers import make_recognizer
    from anonfaces.synthesize.baselines import apply_baseline

    dlib = make_recognizer("dlib")
    originals, blurred = [], []
    for _, image, faces in sample_faces:
        originals.append(dlib.embed(dlib.prepare(image, faces)))
        out = apply_baseline(image, "blur", [f.landmarks68 for f in faces])
        blurred.append(dlib.embed(dlib.prepare(out, faces)))
    G, B = np.vstack(originals), np.vstack(blurred)
    assert unprotected_faces(G, G).mean() == 1.0
    assert matches_any_original(G, G).mean() == 1.0
    assert unprotected_faces(G, B).mean() <= 0.1
    assert matches_any_original(B, G).mean() <= 0.1
    with pytest.raises(BadInputError):
        unprotected_faces(G, B, threshold=0)


def test_matches_any_original_by_hand():
    gallery = np.array([[0.0], [1.0], [5.0]])
    gallery_ids = np.array(["a", "a", "b"])
    out = np.array([[0.9], [4.7], [2.5]])  # near a's 2nd photo; near b's photo; near nothing
    assert matches_any_original(out, gallery).tolist() == [True, True, False]
    # as their own person: the second face is a's, and b's photo is not a's
    ids = np.array(["a", "a", "a"])
    assert matches_any_original(out, gallery, identities=ids, gallery_identities=gallery_ids).tolist() == [True, False, False]
    assert matches_any_original(out, gallery, threshold=0.05).tolist() == [False, False, False]
    with pytest.raises(BadInputError):
        matches_any_original(out, gallery, identities=ids)


# --- wired into scoring ------------------------------------------------------------------------
class _Fixed:
    threshold = 0.6
    needs_fit = False


def test_privacy_rows_carry_the_new_figures_and_intervals():
    from anonfaces.evaluate.scoring import _Context, privacy_rows
    from anonfaces.evaluate.table import METRICS, to_frame

    rng = np.random.default_rng(2)
    ids = np.repeat([f"p{i}" for i in range(12)], 4)
    centres = rng.normal(size=(12, 16))
    G = centres[np.repeat(np.arange(12), 4)] * 0.5 + rng.normal(size=(48, 16)) * 0.05
    A = G + rng.normal(size=G.shape) * 0.2  # a weak anonymization: people stay apart
    enc = SimpleNamespace(paths=np.array([f"{p}/{j}.jpg" for p, j in zip(ids, np.tile(np.arange(4), 12))]))
    ctx = _Context("toy", enc, {"dlib": _Fixed()}, {"dlib": G}, ids, np.ones(48, bool))
    frame = to_frame(privacy_rows(ctx, "weak", 2, {"dlib": A}, np.ones(48, bool)))
    assert set(frame["metric"]) <= set(METRICS)
    assert {"tpr_at_far", "method_aware", "method_aware_chance", "unprotected", "unprotected_any",
            "unprotected_person"} <= set(frame["metric"])
    assert "residual_parrot" in set(frame["metric"])
    figures = frame[frame["metric"].isin(["ri", "closed_set", "identity_reid", "parrot_reid", "residual_parrot", "tpr_at_far", "method_aware",
                                          "unprotected", "unprotected_any", "unprotected_person"])]
    assert (figures["ci_low"] <= figures["value"] + 1e-12).all() and (figures["value"] <= figures["ci_high"] + 1e-12).all()
    assert frame.loc[frame["metric"].isin(["il", "threshold", "method_aware_chance"]), "ci_low"].isna().all()
    chance = frame.loc[frame["metric"] == "method_aware_chance", "value"].item()
    assert chance == pytest.approx(1 / 12)
    # the same call gives the same table (seeded intervals and split)
    again = to_frame(privacy_rows(ctx, "weak", 2, {"dlib": A}, np.ones(48, bool)))
    assert frame.equals(again)
    # the originals themselves: every face unprotected
    orig = to_frame(privacy_rows(ctx, "none", None, {"dlib": G}, np.ones(48, bool)))
    assert orig.loc[orig["metric"] == "unprotected", "value"].item() == 1.0


def test_read_table_accepts_a_table_without_intervals(tmp_path):
    from anonfaces.evaluate.table import (
        COLUMNS,
        make_row,
        read_table,
        to_frame,
        write_table,
    )

    frame = to_frame([make_row("toy", "blur", None, "closed_set", 0.1, recognizer="dlib", ci=(0.05, 0.2))])
    write_table(frame, tmp_path / "new.csv")
    assert read_table(tmp_path / "new.csv")[["ci_low", "ci_high"]].iloc[0].tolist() == [0.05, 0.2]
    old = frame.drop(columns=["ci_low", "ci_high"])
    old.to_csv(tmp_path / "old.csv", index=False)
    back = read_table(tmp_path / "old.csv")
    assert list(back.columns) == list(COLUMNS) and back["ci_low"].isna().all()


def test_protocol_means_equal_their_hits():
    rng = np.random.default_rng(4)
    G = rng.normal(size=(20, 4))
    A = G + rng.normal(size=G.shape)
    ids = np.repeat(np.arange(5), 4)
    keys = np.arange(20)
    assert protocols.closed_set_identification(A, G) == protocols.closed_set_hits(A, G).mean()
    hits = protocols.identity_reid_hits(A, ids, G, ids, probe_keys=keys, gallery_keys=keys)
    assert protocols.identity_reidentification(A, ids, G, ids, probe_keys=keys, gallery_keys=keys) == np.nanmean(hits)
