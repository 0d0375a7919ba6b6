"""The Markdown report of a sweep: summary tables beside their 1/k bound, and the plots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from anonfaces.evaluate.quality import ALL_BUCKET
from anonfaces.evaluate.table import METRICS
from anonfaces.utils.atomic import atomic_write_text

PRIVACY_COLUMNS = ("ri", "closed_set", "identity_reid", "parrot_reid", "tpr_at_far", "method_aware", "unprotected",
                   "residual_parrot")


def _fmt(v, digits=3) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
        return ""
    if isinstance(v, float) and np.isinf(v):
        return "inf"
    return f"{v:.{digits}f}"


def _k(v) -> str:
    return "" if pd.isna(v) else str(int(v))


def summary_table(table: pd.DataFrame, recognizer: str = "dlib") -> pd.DataFrame:
    """One row per method x k: privacy rates (with the 1/k bound), IL, SSIM, detection, attributes."""
    t = table
    keys = ["method", "k"]
    base = t[keys].drop_duplicates().copy()

    def pick(metric, *, rec="", subset="", col=None):
        rows = t[(t["metric"] == metric) & (t["recognizer"] == rec) & (t["subset"] == subset)][keys + ["value"]]
        return rows.rename(columns={"value": col or metric})

    out = base
    for m in PRIVACY_COLUMNS:
        if m in PRIVACY_COLUMNS[:4] or (t["metric"] == m).any():  # the newer attacks only where a table has them
            out = out.merge(pick(m, rec="dlib" if m == "unprotected" else recognizer), on=keys, how="left")
    out = out.merge(pick("il", rec="dlib", col="IL"), on=keys, how="left")
    out = out.merge(pick("ssim", subset=ALL_BUCKET, col="SSIM"), on=keys, how="left")
    out = out.merge(pick("psnr", subset=ALL_BUCKET, col="PSNR"), on=keys, how="left")
    out = out.merge(pick("detection_rate", col="detected"), on=keys, how="left")
    if (t["metric"] == "landmark_displacement").any():
        out = out.merge(pick("landmark_displacement", col="landmark displ."), on=keys, how="left")
    for metric, col in (("attribute_agreement", "attr. agreement"), ("downstream_ratio", "downstream ratio")):
        mean = t[t["metric"] == metric].groupby(keys, dropna=False)["value"].mean().reset_index()
        if len(mean):
            out = out.merge(mean.rename(columns={"value": col}), on=keys, how="left")
    out["1/k"] = [1.0 / k if pd.notna(k) else np.nan for k in out["k"]]
    order = {m: i for i, m in enumerate(dict.fromkeys(t["method"]))}
    out = out.sort_values(by=["method", "k"], key=lambda s: s.map(order) if s.name == "method" else s)
    return out.reset_index(drop=True)


def markdown_table(frame: pd.DataFrame) -> str:
    cols = list(frame.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in frame.iterrows():
        cells = []
        for c in cols:
            v = r[c]
            cells.append(_k(v) if c == "k" else (_fmt(float(v), 2 if c == "PSNR" else 3) if isinstance(v, (float, int, np.number)) and c != "method" else str(v)))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_report(out, table: pd.DataFrame, record: dict, plots: list) -> Path:
    out = Path(out)
    enc = record.get("encodings", {})
    s = record.get("settings", {})
    lines = [
        f"# Privacy and utility: {record.get('dataset_name') or Path(record.get('dataset', '')).name}",
        "",
        (
            f"{enc.get('n_photos')} photos, {enc.get('n_faces')} faces, {enc.get('n_people')} people; "
            f"identity-level attacks probe {enc.get('faces_probed')} faces of {enc.get('people_probed')} people with at least "
            f"{s.get('reid_min_photos')} photos. Clustering: `{s.get('algo')}` (unit: {s.get('unit')}). "
            f"anonfaces {record.get('anonfaces_version')}, {record.get('created')}, {record['seconds']['total']:.0f} s."
        ),
        "",
    ]
    if record.get("command"):
        lines += ["Command:", "", f"    {record['command']}", ""]
    recs = [r for r in s.get("recognizers", {})]
    for rec in recs:
        lines += [f"## Summary ({rec} attacker)", "", markdown_table(summary_table(table, rec)), ""]
    lines += [
        "Privacy rates: higher means the attacker wins more often. The k-Same bound 1/k applies to closed-set",
        "identification and the parrot attacker; RI is a threshold test and is not bounded by it. `none` is the",
        "original photos (closed-set identification is 1 by construction there). `tpr_at_far`: genuine pairs accepted",
        "at 0.1% false accepts; `method_aware`: a classifier trained on anonymized photos of the people (chance",
        "1/people in `metrics.csv`); `unprotected`: output faces within dlib distance 0.5 of their original. The 95%",
        "intervals (bootstrap over people) are the `ci_low`/`ci_high` columns of `metrics.csv` and the bands of the plots.",
        "",
        "## Plots",
        "",
    ]
    for p in plots:
        rel = Path(p).relative_to(out) if Path(p).is_relative_to(out) else Path(p)
        lines += [f"![{rel.stem}]({rel.as_posix()})", ""]
    lines += ["## Metrics", ""]
    lines += [f"- `{m}`: {meaning}" for m, (_, _, meaning) in METRICS.items()]
    lines += ["", "The full table is `metrics.csv`; every setting is in `run.json`."]
    if record.get("skipped"):
        lines += ["", "## Skipped", ""] + [f"- {x}" for x in record["skipped"]]
    path = out / "report.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path
