"""Scoring: the privacy and utility rows of one anonymization, from the measurements of its photos.

`privacy_rows` (re-identification by every recognizer, with 95% intervals over people), `utility_rows` (cluster SSD, SSIM/PSNR,
detection, attributes); `_Context` holds what every scored run shares (the originals' embeddings,
the fitted recognizers, the identities).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from anonfaces.evaluate import attributes as attr
from anonfaces.evaluate import protocols, quality
from anonfaces.evaluate.intervals import bootstrap_people
from anonfaces.evaluate.measure import Measurements
from anonfaces.evaluate.table import make_row

log = logging.getLogger(__name__)


@dataclass
class _Context:
    dataset_name: str
    enc: object
    recognizers: dict
    originals: dict  # recognizer name -> embeddings of the original faces
    identities: np.ndarray
    reid_probe: np.ndarray  # faces whose person has >= reid_min_photos photos
    attribute_labels: object = None
    attribute_test: np.ndarray | None = None
    random_state: int = 0  # seeds the bootstrap intervals and the method-aware attacker's split


def _embeddings(ctx: _Context, meas: Measurements) -> dict[str, np.ndarray]:
    out = {}
    for name, rec in ctx.recognizers.items():
        feats = meas.features[name]
        out[name] = rec.embed(feats) if rec.needs_fit else np.asarray(feats, np.float32)
    return out


def privacy_rows(ctx: _Context, method: str, k, anonymized: dict[str, np.ndarray], readable: np.ndarray) -> list[dict]:
    """Every privacy figure for every recognizer, each with its 95% interval over people.

    RI, closed-set, identity-level, parrot and residual-parrot re-identification (beside 1/k), TPR at
    0.1% false accepts, the method-aware attacker (beside 1/k and its chance level),
    and with dlib the unprotected-face rates; IL and the threshold without interval.
    """
    rows = []
    bound = protocols.k_bound(k) if k is not None else None
    ids = ctx.identities
    keys = np.arange(len(ids))
    ok = readable
    probe = ok & ctx.reid_probe
    n_probe = int(probe.sum())
    photos = np.asarray(ctx.enc.paths)

    def interval(values, people, weights=None):
        return bootstrap_people(values, people, weights=weights, random_state=ctx.random_state)

    for name, rec in ctx.recognizers.items():
        G, A = ctx.originals[name], anonymized[name]
        n = int(ok.sum())

        def row(metric, value, b=bound, nn=n, ci=None, rec_name=name):
            return make_row(ctx.dataset_name, method, k, metric, value, recognizer=rec_name, bound=b, n=nn, ci=ci)

        if rec.threshold is not None:
            rows.append(row("threshold", rec.threshold, None))
            within = protocols.surrogate_distances(G[ok], A[ok]) <= rec.threshold
            rows.append(row("ri", protocols.reidentification_rate(G[ok], A[ok], rec.threshold), ci=interval(within, ids[ok])))
        rows.append(row("il", protocols.information_loss(G[ok], A[ok]), None))
        hits = protocols.closed_set_hits(A[ok], G, np.flatnonzero(ok))
        rows.append(row("closed_set", float(hits.mean()) if hits.size else np.nan, ci=interval(hits, ids[ok])))
        if name == "dlib":
            own = protocols.unprotected_faces(G[ok], A[ok])
            rows.append(row("unprotected", float(own.mean()) if own.size else np.nan, None, ci=interval(own, ids[ok])))
            anyone = protocols.matches_any_original(A[ok], G)
            rows.append(row("unprotected_any", float(anyone.mean()) if anyone.size else np.nan, None,
                            ci=interval(anyone, ids[ok])))
            person = protocols.matches_any_original(A[ok], G, identities=ids[ok], gallery_identities=ids)
            rows.append(row("unprotected_person", float(person.mean()) if person.size else np.nan, None,
                            ci=interval(person, ids[ok])))
        if not probe.any():
            continue
        for metric, gallery, g_rows in (("identity_reid", G, slice(None)), ("parrot_reid", A[ok], ok)):
            hits = protocols.identity_reid_hits(A[probe], ids[probe], gallery, ids[g_rows], probe_keys=keys[probe],
                                                gallery_keys=keys[g_rows])
            value = float(np.nanmean(hits)) if np.isfinite(hits).any() else np.nan
            rows.append(row(metric, value, nn=n_probe, ci=interval(hits, ids[probe])))
        # the residual parrot: the anonymized faces minus their nearest anonymized neighbours' mean
        R = np.zeros_like(A, dtype=np.float64)
        R[ok] = protocols.residual_embeddings(A[ok], keys[ok])
        hits = protocols.identity_reid_hits(R[probe], ids[probe], R[ok], ids[ok], probe_keys=keys[probe],
                                            gallery_keys=keys[ok])
        rows.append(row("residual_parrot", float(np.nanmean(hits)) if np.isfinite(hits).any() else np.nan, nn=n_probe,
                        ci=interval(hits, ids[probe])))
        ver = protocols.tpr_at_far(A[probe], ids[probe], G, ids, probe_keys=keys[probe], gallery_keys=keys)
        rows.append(row("tpr_at_far", ver.tpr, None, n_probe, ci=interval(ver.accepted / np.maximum(ver.genuine, 1),
                                                                          ids[probe], ver.genuine)))
        aware = protocols.method_aware_identification(A[probe], ids[probe], groups=photos[probe],
                                                      random_state=ctx.random_state)
        tested = int(np.isfinite(aware.hits).sum())
        rows.append(row("method_aware", aware.accuracy, nn=tested, ci=interval(aware.hits, ids[probe])))
        rows.append(row("method_aware_chance", aware.chance, None, tested))
    return rows


def utility_rows(ctx: _Context, method: str, k, meas: Measurements, anonymized: dict, clustering=None) -> list[dict]:
    rows = []
    name = ctx.dataset_name
    if clustering is not None:
        from anonfaces.cluster import metrics as cm

        labels = np.asarray(clustering.aligned_to(ctx.enc.paths, ctx.enc.face_index).labels, np.int64)
        rows.append(make_row(name, method, k, "ssd", cm.ssd(ctx.enc.embeddings, labels), n=len(labels)))
        rows.append(make_row(name, method, k, "clusters", int(np.unique(labels).size), n=len(labels)))
    if np.isfinite(meas.ssim).any():
        good = np.isfinite(meas.face_share) & ~np.isnan(meas.ssim)
        for metric, values in (("ssim", meas.ssim), ("psnr", meas.psnr)):
            for bucket, (mean, count) in quality.bucket_means(values[good], meas.face_share[good]).items():
                rows.append(make_row(name, method, k, metric, mean, subset=bucket, n=count))
    if meas.settings.get("detector"):
        ok = meas.readable
        rows.append(make_row(name, method, k, "detection_rate", meas.detected[ok].mean() if ok.any() else np.nan, n=int(ok.sum())))
        found = meas.detected & ok
        disp = meas.displacement[found]
        rows.append(make_row(name, method, k, "landmark_displacement", disp.mean() if disp.size else np.nan, n=int(disp.size)))
    if ctx.attribute_labels is not None and "dlib" in anonymized:
        rows.extend(_attribute_rows(ctx, method, k, anonymized["dlib"], meas.readable))
    return rows


def _attribute_rows(ctx: _Context, method, k, A: np.ndarray, readable: np.ndarray) -> list[dict]:
    rows = []
    G = ctx.originals["dlib"]
    test = ctx.attribute_test & readable
    train = ~ctx.attribute_test & readable
    for attribute in ctx.attribute_labels.columns:
        y = ctx.attribute_labels[attribute].to_numpy()
        if np.unique(y[train]).size < 2 or not test.any():
            log.warning("attribute %s: one class only in the training faces; skipped", attribute)
            continue
        agree = attr.attribute_agreement(G[train], y[train], G[test], A[test], y[test])
        base = {"subset": attribute, "recognizer": "dlib", "n": int(test.sum())}
        rows.append(make_row(ctx.dataset_name, method, k, "attribute_agreement", agree["agreement"], **base))
        rows.append(make_row(ctx.dataset_name, method, k, "attribute_accuracy", agree["accuracy_anonymized"], **base))
        down = attr.downstream_utility(A[train], G[train], y[train], G[test], y[test])
        rows.append(make_row(ctx.dataset_name, method, k, "downstream_accuracy", down["accuracy_anonymized_train"], **base))
        rows.append(make_row(ctx.dataset_name, method, k, "downstream_ratio", down["ratio"], **base))
    return rows
