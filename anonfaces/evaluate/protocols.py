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
"""

from __future__ import annotations

import numpy as np

from anonfaces.errors import BadInputError


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
    P, G = _pair(probes, gallery, "probes", "gallery")
    n = len(P)
    true = np.arange(n) if true_index is None else np.asarray(true_index, np.int64)
    if true.shape != (n,) or (n and (true.min() < 0 or true.max() >= len(G))):
        raise BadInputError(f"true_index must have shape ({n},) with values in 0..{len(G) - 1}")
    if not 1 <= rank <= max(len(G), 1):
        raise BadInputError(f"rank={rank} must be from 1 to the gallery size {len(G)}")
    if n == 0:
        return float("nan")
    D = pairwise_distances(P, G)
    own = D[np.arange(n), true]
    # a tie with the true face is resolved in index order, as argmin would
    closer = (D < own[:, None]).sum(1) + ((D == own[:, None]) & (np.arange(len(G))[None, :] < true[:, None])).sum(1)
    return float(np.mean(closer < rank))


def identity_reidentification(probes, probe_ids, gallery, gallery_ids, *, probe_keys=None, gallery_keys=None) -> float:
    """Fraction of probes whose nearest gallery face shows the same person.

    Gallery faces with the same key as the probe (the same photo) are left out,
    so the attacker only holds *other* photos. Probes with no gallery face of
    their own identity left are skipped (they cannot be recognized by anyone).
    """
    P, G = _pair(probes, gallery, "probes", "gallery")
    pid = np.asarray(probe_ids)
    gid = np.asarray(gallery_ids)
    if pid.shape != (len(P),) or gid.shape != (len(G),):
        raise BadInputError(f"probe_ids {pid.shape} and gallery_ids {gid.shape} must match probes {len(P)} and gallery {len(G)}")
    D = pairwise_distances(P, G)
    if probe_keys is not None or gallery_keys is not None:
        pk = np.asarray(probe_keys if probe_keys is not None else np.arange(len(P)))
        gk = np.asarray(gallery_keys if gallery_keys is not None else np.arange(len(G)))
        D = np.where(pk[:, None] == gk[None, :], np.inf, D)
    same = pid[:, None] == gid[None, :]
    usable = (same & np.isfinite(D)).any(1)
    if not usable.any():
        return float("nan")
    D = D[usable]
    hit = gid[_nearest(D)] == pid[usable]
    return float(np.mean(hit))


def parrot_reidentification(probes, probe_ids, anonymized_gallery, gallery_ids, *, probe_keys=None, gallery_keys=None) -> float:
    """The parrot attacker: `identity_reidentification` against a gallery anonymized the same way."""
    return identity_reidentification(
        probes, probe_ids, anonymized_gallery, gallery_ids, probe_keys=probe_keys, gallery_keys=gallery_keys
    )
