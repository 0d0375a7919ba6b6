"""Scoring: the privacy and utility rows of one anonymization, from the measurements of its photos.

`privacy_rows` (re-identification by every recognizer), `utility_rows` (cluster SSD, SSIM/PSNR,
detection, attributes); `_Context` holds what every scored run shares (the originals' embeddings,
the fitted recognizers, the identities).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from anonfaces.evaluate import attributes as attr
from anonfaces.evaluate import protocols, quality
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


def _embeddings(ctx: _Context, meas: Measurements) -> dict[str, np.ndarray]:
    out = {}
    for name, rec in ctx.recognizers.items():
        feats = meas.features[name]
        out[name] = rec.embed(feats) if rec.needs_fit else np.asarray(feats, np.float32)
    return out


def privacy_rows(ctx: _Context, method: str, k, anonymized: dict[str, np.ndarray], readable: np.ndarray) -> list[dict]:
    """RI, IL, closed-set, identity-level and parrot re-identification for every recognizer."""
    rows = []
    bound = protocols.k_bound(k) if k is not None else None
    keys = np.arange(len(ctx.identities))
    ok = readable
    for name, rec in ctx.recognizers.items():
        G, A = ctx.originals[name], anonymized[name]
        n = int(ok.sum())

        def row(metric, value, b=bound, nn=n, rec_name=name):
            return make_row(ctx.dataset_name, method, k, metric, value, recognizer=rec_name, bound=b, n=nn)

        if rec.threshold is not None:
            rows.append(row("threshold", rec.threshold, None))
            rows.append(row("ri", protocols.reidentification_rate(G[ok], A[ok], rec.threshold)))
        rows.append(row("il", protocols.information_loss(G[ok], A[ok]), None))
        rows.append(row("closed_set", protocols.closed_set_identification(A[ok], G, np.flatnonzero(ok))))
        probe = ok & ctx.reid_probe
        if probe.any():
            ids = ctx.identities
            n_probe = int(probe.sum())
            rows.append(row("identity_reid", protocols.identity_reidentification(
                A[probe], ids[probe], G, ids, probe_keys=keys[probe], gallery_keys=keys), bound, n_probe))
            rows.append(row("parrot_reid", protocols.parrot_reidentification(
                A[probe], ids[probe], A[ok], ids[ok], probe_keys=keys[probe], gallery_keys=keys[ok]), bound, n_probe))
    return rows


def utility_rows(ctx: _Context, method: str, k, meas: Measurements, anonymized: dict, clustering=None) -> list[dict]:
    rows = []
    name = ctx.dataset_name
    if clustering is not None:
        from anonfaces.cluster import metrics as cm

        labels = _labels_for(ctx.enc, clustering)
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


def _labels_for(enc, clustering) -> np.ndarray:
    index = {(p, int(f)): int(c) for p, f, c in zip(clustering.paths.tolist(), clustering.face_index.tolist(), clustering.labels.tolist())}
    return np.array([index[(p, int(f))] for p, f in zip(enc.paths.tolist(), enc.face_index.tolist())], np.int64)
