"""Privacy protocols: how often an attacker recognizes the person behind an anonymized face.

Every function takes embeddings (rows of one recognizer) and returns a fraction
in [0, 1]; higher means less privacy. `k_bound` is the k-Same guarantee they are
printed beside.

* `reidentification_rate` (RI, as the original research defined it): the
  fraction of original faces whose distance to their own surrogate is within
  the recognizer's threshold. It is a verification test, not an identification
  one, so the k-Same theorem does not bound it.
* `closed_set_identification`: each anonymized face is matched against the
  gallery of original faces; a hit when the nearest is the face it replaced.
  k-Same: at most 1/k (every surrogate stands for at least k originals and its
  nearest original is only one of them).
* `identity_reidentification`: the realistic attacker holds *other* photos of
  the people; a hit when the nearest other photo shows the same person.
  With the probe's own photo left out of the gallery.
* the "parrot" attacker (Newton, Sweeney and Malin, 2005) anonymizes its
  gallery the same way before matching: `identity_reidentification` with an
  anonymized gallery (`parrot_reidentification`).
* `tpr_at_far`: verification of anonymized faces against the person's other
  original photos, the share of genuine pairs accepted where only 0.1% of
  impostor pairs are (the operating point face recognition is judged at).
* `method_aware_identification` (Newton, Sweeney and Malin 2005; McPherson et
  al. 2016): a classifier trained on labelled anonymized photos of the people
  names them in their other anonymized photos; beside chance (1/people) and 1/k.
* `unprotected_faces` / `matches_any_original`: output faces still within
  dlib distance 0.5 of their own original / of any original face of the dataset.

The ``*_hits`` functions and the per-probe counts of `Verification` and
`MethodAware` give each face's outcome, for intervals over people
(`anonfaces.evaluate.intervals`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from anonfaces.errors import BadInputError
from anonfaces.utils.distances import UNPROTECTED


def _pair(a, b, name_a="originals", name_b="surrogates") -> tuple[np.ndarray, np.ndarray]:
    A = np.asarray(a, np.float64)
    B = np.asarray(b, np.float64)
    if A.ndim != 2 or B.ndim != 2 or A.shape[1] != B.shape[1]:
        raise BadInputError(f"{name_a} {A.shape} and {name_b} {B.shape} must be 2-D with the same width")
    return A, B


def pairwise_distances(A, B) -> np.ndarray:
    """Euclidean distances, shape (len(A), len(B))."""
    A, B = _pair(A, B, "A", "B")
    sq = np.einsum("ij,ij->i", A, A)[:, None] + np.einsum("ij,ij->i", B, B)[None, :] - 2.0 * A @ B.T
    return np.sqrt(np.maximum(sq, 0.0))


def k_bound(k) -> float:
    """The k-Same bound on identification: 1/k (NaN when k is not a positive number)."""
    try:
        k = float(k)
    except (TypeError, ValueError):
        return float("nan")
    return 1.0 / k if k > 0 else float("nan")


def surrogate_distances(originals, surrogates) -> np.ndarray:
    """Distance from each original face to its own surrogate (row i to row i); shape (n,)."""
    A, B = _pair(originals, surrogates)
    if A.shape != B.shape:
        raise BadInputError(f"originals {A.shape} and surrogates {B.shape} must pair row by row")
    return np.linalg.norm(A - B, axis=1)


def reidentification_rate(originals, surrogates, threshold: float) -> float:
    """RI: fraction of faces whose distance to their own surrogate is at most ``threshold``."""
    if threshold is None or not np.isfinite(threshold):
        raise BadInputError(f"threshold={threshold!r} must be a finite distance")
    d = surrogate_distances(originals, surrogates)
    return float(np.mean(d <= threshold)) if d.size else float("nan")


def information_loss(originals, surrogates) -> float:
    """IL as the original research defined it: mean distance from each original to its surrogate."""
    d = surrogate_distances(originals, surrogates)
    return float(d.mean()) if d.size else float("nan")


def _nearest(D: np.ndarray) -> np.ndarray:
    """Column of the smallest entry in each row; ties go to the lowest index."""
    return np.argmin(D, axis=1)


def closed_set_identification(probes, gallery, true_index=None, *, rank: int = 1) -> float:
    """Fraction of probes whose own original is among the ``rank`` nearest gallery faces.

    Parameters
    ----------
    probes : array of shape (n_probes, dim)
        Anonymized faces.
    gallery : array of shape (n_gallery, dim)
        Original faces.
    true_index : array of shape (n_probes,), optional
        Row of ``gallery`` each probe replaced; default ``arange(n_probes)``.
    rank : int, default 1
        A hit when the true face is among the ``rank`` nearest (ties counted against the attacker
        only when strictly nearer faces fill the ranks).
    """
    hits = closed_set_hits(probes, gallery, true_index, rank=rank)
    return float(hits.mean()) if hits.size else float("nan")


def closed_set_hits(probes, gallery, true_index=None, *, rank: int = 1) -> np.ndarray:
    """Per probe, whether `closed_set_identification` counts it as a hit; bool array of shape (n_probes,)."""
    P, G = _pair(probes, gallery, "probes", "gallery")
    n = len(P)
    true = np.arange(n) if true_index is None else np.asarray(true_index, np.int64)
    if true.shape != (n,) or (n and (true.min() < 0 or true.max() >= len(G))):
        raise BadInputError(f"true_index must have shape ({n},) with values in 0..{len(G) - 1}")
    if not 1 <= rank <= max(len(G), 1):
        raise BadInputError(f"rank={rank} must be from 1 to the gallery size {len(G)}")
    if n == 0:
        return np.zeros(0, bool)
    D = pairwise_distances(P, G)
    own = D[np.arange(n), true]
    # a tie with the true face is resolved in index order, as argmin would
    closer = (D < own[:, None]).sum(1) + ((D == own[:, None]) & (np.arange(len(G))[None, :] < true[:, None])).sum(1)
    return closer < rank


def identity_reidentification(probes, probe_ids, gallery, gallery_ids, *, probe_keys=None, gallery_keys=None) -> float:
    """Fraction of probes whose nearest gallery face shows the same person.

    Gallery faces with the same key as the probe (the same photo) are left out,
    so the attacker only holds *other* photos. Probes with no gallery face of
    their own identity left are skipped (they cannot be recognized by anyone).
    """
    hits = identity_reid_hits(probes, probe_ids, gallery, gallery_ids, probe_keys=probe_keys, gallery_keys=gallery_keys)
    return float(np.nanmean(hits)) if np.isfinite(hits).any() else float("nan")


def identity_reid_hits(probes, probe_ids, gallery, gallery_ids, *, probe_keys=None, gallery_keys=None) -> np.ndarray:
    """Per probe, 1.0 when `identity_reidentification` counts a hit, 0.0 a miss, NaN when skipped; shape (n_probes,)."""
    P, G = _pair(probes, gallery, "probes", "gallery")
    pid = np.asarray(probe_ids)
    gid = np.asarray(gallery_ids)
    if pid.shape != (len(P),) or gid.shape != (len(G),):
        raise BadInputError(f"probe_ids {pid.shape} and gallery_ids {gid.shape} must match probes {len(P)} and gallery {len(G)}")
    D = _masked_distances(P, G, probe_keys, gallery_keys)
    same = pid[:, None] == gid[None, :]
    usable = (same & np.isfinite(D)).any(1)
    out = np.full(len(P), np.nan)
    if usable.any():
        out[usable] = gid[_nearest(D[usable])] == pid[usable]
    return out


def _masked_distances(P, G, probe_keys, gallery_keys) -> np.ndarray:
    """`pairwise_distances` with pairs of the same key (the same photo) set to inf."""
    D = pairwise_distances(P, G)
    if probe_keys is not None or gallery_keys is not None:
        pk = np.asarray(probe_keys if probe_keys is not None else np.arange(len(P)))
        gk = np.asarray(gallery_keys if gallery_keys is not None else np.arange(len(G)))
        if pk.shape != (len(P),) or gk.shape != (len(G),):
            raise BadInputError(f"probe_keys {pk.shape} and gallery_keys {gk.shape} must match probes {len(P)} and gallery {len(G)}")
        D = np.where(pk[:, None] == gk[None, :], np.inf, D)
    return D


def parrot_reidentification(probes, probe_ids, anonymized_gallery, gallery_ids, *, probe_keys=None, gallery_keys=None) -> float:
    """The parrot attacker: `identity_reidentification` against a gallery anonymized the same way."""
    return identity_reidentification(
        probes, probe_ids, anonymized_gallery, gallery_ids, probe_keys=probe_keys, gallery_keys=gallery_keys
    )


def residual_parrot_reidentification(probes, probe_ids, anonymized_gallery, gallery_ids, *, neighbours: int = 5,
                                     probe_keys=None, gallery_keys=None) -> float:
    """A parrot that first removes what the anonymized faces share: `parrot_reidentification` on residuals.

    Every anonymized face (probes and gallery pooled) has the mean of its
    ``neighbours`` nearest other anonymized faces subtracted (the surrogate, or the
    surrogate variant, it carries, as far as the neighbourhood shows it), and the
    parrot matches what is left. An attacker who knows the method can do this
    without knowing the clusters; it targets per-photo variation (surrogate
    variants) that a plain nearest-neighbour parrot is misled by.
    """
    P, G = _pair(probes, anonymized_gallery, "probes", "gallery")
    pk = np.asarray(probe_keys if probe_keys is not None else np.arange(len(P)))
    gk = np.asarray(gallery_keys if gallery_keys is not None else len(P) + np.arange(len(G)))
    R = residual_embeddings(np.concatenate([P, G]), np.concatenate([pk, gk]), neighbours=neighbours)
    return identity_reidentification(R[:len(P)], probe_ids, R[len(P):], gallery_ids, probe_keys=pk, gallery_keys=gk)


def residual_embeddings(embeddings, keys=None, *, neighbours: int = 5) -> np.ndarray:
    """Each row minus the mean of its ``neighbours`` nearest other rows (`residual_parrot_reidentification`).

    Rows with the same key (the same face given twice) count once and get the same residual.
    """
    X = np.asarray(embeddings, np.float64)
    if X.ndim != 2:
        raise BadInputError(f"embeddings must be (n, dim); got {X.shape}")
    if isinstance(neighbours, bool) or not isinstance(neighbours, (int, np.integer)) or neighbours < 1:
        raise BadInputError(f"neighbours={neighbours!r} must be an integer >= 1")
    keys = np.arange(len(X)) if keys is None else np.asarray(keys)
    if keys.shape != (len(X),):
        raise BadInputError(f"keys {keys.shape} must match the embeddings ({len(X)})")
    if len(X) < 2:
        return X.copy()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    U = X[first]
    if len(U) < 2:
        return np.zeros_like(X)
    D = pairwise_distances(U, U)
    np.fill_diagonal(D, np.inf)
    m = min(int(neighbours), len(U) - 1)
    near = np.argpartition(D, m - 1, axis=1)[:, :m]
    return (U - U[near].mean(1))[inverse.reshape(-1)]


# --- verification at a low false-accept rate --------------------------------------------------
#: The operating point of `tpr_at_far`: 1 stranger in 1,000 accepted.
DEFAULT_FAR = 0.001


@dataclass(frozen=True)
class Verification:
    """What `tpr_at_far` found.

    Attributes
    ----------
    tpr : float
        Share of genuine pairs accepted (NaN without genuine pairs).
    threshold : float
        Pairs at a distance strictly below it are accepted (inf when there is no impostor pair).
    far : float
        The false-accept rate asked for; `impostors_accepted` / `n_impostor` is at most this.
    accepted, genuine : ndarray of shape (n_probes,), int
        Per probe: genuine pairs accepted, genuine pairs (for intervals over people).
    n_impostor, impostors_accepted : int
    """

    tpr: float
    threshold: float
    far: float
    accepted: np.ndarray
    genuine: np.ndarray
    n_impostor: int
    impostors_accepted: int


def tpr_at_far(probes, probe_ids, gallery, gallery_ids, *, far: float = DEFAULT_FAR, probe_keys=None, gallery_keys=None,
               chunk: int = 1024) -> Verification:
    """Verification of anonymized probes against the original gallery: true-accept rate at a false-accept rate.

    Every (probe, gallery face) pair of a different photo is a trial: *genuine*
    when both show the same person, *impostor* otherwise. With ``m = floor(far *
    n_impostor)`` false accepts allowed, the threshold is the (m+1)-th smallest
    impostor distance and a pair is accepted when strictly nearer: at most
    ``m`` impostors pass (fewer on ties). The true-accept rate is the share of
    genuine pairs accepted. With fewer than ``1 / far`` impostor pairs, m = 0:
    a genuine pair counts only when it is nearer than every impostor pair.

    Parameters
    ----------
    probes : array of shape (n_probes, dim)
        Anonymized faces.
    probe_ids, gallery_ids : arrays of shape (n_probes,), (n_gallery,)
        Identities.
    gallery : array of shape (n_gallery, dim)
        Original faces.
    far : float, default 0.001
    probe_keys, gallery_keys : arrays, optional
        Photo keys; pairs with the same key (a probe and its own original) are no trial.
    chunk : int
        Probes per block of distances (memory stays at chunk x n_gallery).
    """
    if not 0 < far < 1:
        raise BadInputError(f"far={far!r} must be in (0, 1)")
    P, G = _pair(probes, gallery, "probes", "gallery")
    pid, gid = np.asarray(probe_ids), np.asarray(gallery_ids)
    if pid.shape != (len(P),) or gid.shape != (len(G),):
        raise BadInputError(f"probe_ids {pid.shape} and gallery_ids {gid.shape} must match probes {len(P)} and gallery {len(G)}")
    keyed = probe_keys is not None or gallery_keys is not None
    pk = np.asarray(probe_keys) if probe_keys is not None else np.arange(len(P))

    def blocks():  # (rows, distances with same-photo pairs at inf, same-person mask), chunk x n_gallery at a time
        for lo in range(0, len(P), chunk):
            rows = slice(lo, lo + chunk)
            D = _masked_distances(P[rows], G, pk[rows] if keyed else None, gallery_keys)
            yield rows, D, pid[rows, None] == gid[None, :]

    # first pass counts the impostor pairs; the second keeps only the m + 1 nearest of them
    n_impostor = sum(int((np.isfinite(D) & ~same).sum()) for _, D, same in blocks())
    m = int(np.floor(far * n_impostor))
    nearest = np.empty(0)
    genuine_d = np.full(len(P), None, object)
    for rows, D, same in blocks():
        imp = D[np.isfinite(D) & ~same]
        both = np.concatenate([nearest, imp])
        nearest = np.partition(both, m)[: m + 1] if both.size > m + 1 else both
        for r, (d_row, s_row) in enumerate(zip(D, same), start=rows.start):
            genuine_d[r] = d_row[s_row & np.isfinite(d_row)]
    threshold = float(np.sort(nearest)[m]) if n_impostor else float("inf")
    genuine = np.array([g.size for g in genuine_d], np.int64)
    accepted = np.array([int((g < threshold).sum()) for g in genuine_d], np.int64)
    n_genuine = int(genuine.sum())
    tpr = float(accepted.sum() / n_genuine) if n_genuine else float("nan")
    return Verification(tpr, threshold, float(far), accepted, genuine, n_impostor, int((nearest < threshold).sum()))


# --- faces left unprotected -------------------------------------------------------------------
#: dlib distance under which an output face still counts as its original (stricter than dlib's 0.6).
UNPROTECTED_DISTANCE = UNPROTECTED


def unprotected_faces(originals, anonymized, *, threshold: float = UNPROTECTED_DISTANCE) -> np.ndarray:
    """Per face, whether the anonymized face is still its original: distance to it under ``threshold``; bool (n,)."""
    if threshold is None or not np.isfinite(threshold) or threshold <= 0:
        raise BadInputError(f"threshold={threshold!r} must be a positive distance")
    return surrogate_distances(originals, anonymized) < threshold


def matches_any_original(anonymized, gallery, *, threshold: float = UNPROTECTED_DISTANCE, identities=None,
                         gallery_identities=None, chunk: int = 1024) -> np.ndarray:
    """Per anonymized face, whether an original face of the dataset lies under ``threshold``; bool (n,).

    Without identities: *any* original face (the detector-agnostic check of a
    published folder; a face that matches a real face of the dataset, its own
    or another person's, is flagged). With ``identities`` (of the anonymized
    faces) and ``gallery_identities``: only the same person's original faces,
    any photo of them (the face is still recognisable as its person).

    Caution: blurred faces gather near a few low-detail originals; on LFW
    (60 people x 10 photos) 61% of blurred faces lie within 0.5 of some original,
    of which 98% are another person's. The same-person form does not raise
    these false alarms.
    """
    if threshold is None or not np.isfinite(threshold) or threshold <= 0:
        raise BadInputError(f"threshold={threshold!r} must be a positive distance")
    A, G = _pair(anonymized, gallery, "anonymized", "gallery")
    if (identities is None) != (gallery_identities is None):
        raise BadInputError("give both identities and gallery_identities, or neither")
    if identities is not None:
        ids, gids = np.asarray(identities), np.asarray(gallery_identities)
        if ids.shape != (len(A),) or gids.shape != (len(G),):
            raise BadInputError(f"identities {ids.shape} and gallery_identities {gids.shape} must match {len(A)} and {len(G)} faces")
    out = np.zeros(len(A), bool)
    if len(G) == 0:
        return out
    for lo in range(0, len(A), chunk):
        D = pairwise_distances(A[lo : lo + chunk], G)
        if identities is not None:
            D = np.where(ids[lo : lo + chunk, None] == gids[None, :], D, np.inf)
        out[lo : lo + chunk] = D.min(1) < threshold
    return out


# --- the method-aware attacker ----------------------------------------------------------------
CLASSIFIERS = ("logistic", "centroid")


@dataclass(frozen=True)
class MethodAware:
    """What `method_aware_identification` found.

    Attributes
    ----------
    accuracy : float
        Share of test faces the classifier names correctly (NaN when no person has a test face).
    chance : float
        1 / the number of people it chooses among.
    hits : ndarray of shape (n_faces,), float
        1.0 right, 0.0 wrong, NaN for training faces and people left out.
    train : ndarray of shape (n_faces,), bool
        The faces it was trained on.
    n_people : int
    """

    accuracy: float
    chance: float
    hits: np.ndarray
    train: np.ndarray
    n_people: int


def method_aware_split(identities, groups=None, *, train_fraction: float = 0.5, random_state=0) -> np.ndarray:
    """Training faces of the method-aware attacker: per person, a seeded share of their photos; bool (n,).

    Photos (``groups``; default each face its own) are kept whole. A person needs
    two photos: at least one is trained on and at least one tested; people with
    one photo are in neither part (False here and left out by the caller).
    """
    from sklearn.utils import check_random_state

    if not 0 < train_fraction < 1:
        raise BadInputError(f"train_fraction={train_fraction!r} must be in (0, 1)")
    ids = np.asarray(identities)
    grp = np.arange(len(ids)) if groups is None else np.asarray(groups)
    if grp.shape != ids.shape or ids.ndim != 1:
        raise BadInputError(f"identities {ids.shape} and groups {grp.shape} must be 1-D of the same length")
    rng = check_random_state(random_state)
    train = np.zeros(len(ids), bool)
    for person in np.unique(ids):
        rows = np.flatnonzero(ids == person)
        photos = np.unique(grp[rows])
        if photos.size < 2:
            continue
        n_train = int(np.clip(round(train_fraction * photos.size), 1, photos.size - 1))
        chosen = rng.choice(photos, n_train, replace=False)
        train[rows[np.isin(grp[rows], chosen)]] = True
    return train


def method_aware_identification(embeddings, identities, *, groups=None, train_fraction: float = 0.5,
                                classifier: str = "logistic", random_state=0) -> MethodAware:
    """The method-aware attacker (Newton, Sweeney and Malin 2005; McPherson et al. 2016).

    The attacker holds anonymized photos of the people, labelled (anonymized by
    the same method), trains a classifier on them and names the people in other
    anonymized photos: each person's photos are split by `method_aware_split`,
    the classifier is trained on the anonymized faces of one part and tested on
    the anonymized faces of the other. Chance is 1 / people; the k-Same bound 1/k
    holds only when the k members' outputs carry nothing member-specific.

    Parameters
    ----------
    embeddings : array of shape (n_faces, dim)
        The anonymized faces, as one recognizer embeds them.
    identities : array of shape (n_faces,)
    groups : array of shape (n_faces,), optional
        Photo of each face (photos are kept whole); default each face its own.
    train_fraction : float, default 0.5
    classifier : {"logistic", "centroid"}
        ``logistic``: multinomial logistic regression on standardised rows;
        ``centroid``: nearest mean of each person's training faces (Euclidean).
    random_state : int
        Seeds the split.
    """
    X = np.asarray(embeddings, np.float64)
    ids = np.asarray(identities)
    if X.ndim != 2 or ids.shape != (len(X),):
        raise BadInputError(f"embeddings {X.shape} and identities {ids.shape} must be (n, dim) and (n,)")
    if classifier not in CLASSIFIERS:
        raise BadInputError(f"unknown classifier {classifier!r}; valid: {', '.join(CLASSIFIERS)}")
    train = method_aware_split(ids, groups, train_fraction=train_fraction, random_state=random_state)
    people = np.unique(ids[train])
    test = ~train & np.isin(ids, people)
    hits = np.full(len(X), np.nan)
    if people.size < 2 or not test.any():
        return MethodAware(float("nan"), 1.0 / people.size if people.size else float("nan"), hits, train, int(people.size))
    if classifier == "centroid":
        means = np.stack([X[train & (ids == p)].mean(0) for p in people])
        predicted = people[_nearest(pairwise_distances(X[test], means))]
    else:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
        predicted = model.fit(X[train], ids[train]).predict(X[test])
    hits[test] = predicted == ids[test]
    return MethodAware(float(np.mean(hits[test])), 1.0 / people.size, hits, train, int(people.size))
