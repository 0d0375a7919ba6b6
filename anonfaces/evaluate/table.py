"""The tidy metrics table: one row per method x k x metric (x subset x recognizer).

Columns (`COLUMNS`):

========== ===================================================================
dataset    name of the dataset folder
method     ``none`` (the original photos), ``ksame:<synth>``, or a baseline
k          the k asked for (empty for methods without k)
metric     see `METRICS`
subset     face-area bucket for ssim/psnr, attribute for attribute metrics, else ''
recognizer the recognizer of a privacy metric (or the embedding of an attribute metric), else ''
value      the measurement
bound      1/k beside every privacy metric of a k-anonymous method (else empty)
n          how many faces or photos the value is over
ci_low     95% interval of a privacy figure, bootstrap over people
ci_high    (`anonfaces.evaluate.intervals`; empty for other metrics)
========== ===================================================================

Tables written before the interval columns existed read with them empty.
"""

from __future__ import annotations

import math
import os

import pandas as pd

from anonfaces.errors import FileFormatError
from anonfaces.utils.atomic import atomic_open

COLUMNS = ("dataset", "method", "k", "metric", "subset", "recognizer", "value", "bound", "n", "ci_low", "ci_high")
#: Columns a table may lack (written by an older version): read as empty.
OPTIONAL_COLUMNS = ("ci_low", "ci_high")

#: metric name -> (kind, higher is, one-line meaning)
METRICS: dict[str, tuple[str, str, str]] = {
    "ri": ("privacy", "worse", "fraction of originals within the recognizer's threshold of their own surrogate (RI)"),
    "closed_set": ("privacy", "worse", "anonymized face's nearest original is the face it replaced"),
    "identity_reid": ("privacy", "worse", "nearest *other* original photo shows the same person"),
    "parrot_reid": ("privacy", "worse", "as identity_reid, against a gallery anonymized the same way"),
    "residual_parrot": ("privacy", "worse", ("parrot_reid after each anonymized face has its 5 nearest anonymized "
                                             "neighbours' mean subtracted (what the surrogate or its variant shares)")),
    "tpr_at_far": ("privacy", "worse", "anonymized face verified against other original photos: genuine pairs accepted at 0.1% FAR"),
    "method_aware": ("privacy", "worse", "classifier trained on anonymized photos of the people names them in others (accuracy)"),
    "method_aware_chance": ("privacy", "", "chance level of method_aware: 1 / the people it chooses among"),
    "unprotected": ("privacy", "worse", "share of output faces still their original: dlib distance to it under 0.5"),
    "unprotected_any": ("privacy", "worse", "share of output faces within dlib distance 0.5 of any original face of the dataset"),
    "unprotected_person": ("privacy", "worse", "share of output faces within dlib distance 0.5 of any original photo of their person"),
    "threshold": ("privacy", "", "the recognizer's same-person distance (fixed or calibrated on originals)"),
    "il": ("utility", "worse", "mean recognizer distance from each original to its surrogate (IL with dlib)"),
    "ssd": ("utility", "worse", "the clustering's SSD over the original embeddings"),
    "clusters": ("utility", "", "number of clusters (surrogates)"),
    "ssim": ("utility", "better", "SSIM of the whole photo against the original, by face area share"),
    "psnr": ("utility", "better", "PSNR (dB) of the whole photo against the original, by face area share"),
    "detection_rate": ("utility", "better", "the detector finds the face again (IoU >= 0.5)"),
    "landmark_displacement": ("utility", "", "mean 68-point displacement / inter-ocular distance, found faces"),
    "attribute_agreement": ("utility", "better", "attribute classifier agrees on original and anonymized face"),
    "attribute_accuracy": ("utility", "better", "attribute classifier right on the anonymized face"),
    "downstream_accuracy": ("utility", "better", "trained on anonymized faces, accuracy on original faces of others"),
    "downstream_ratio": ("utility", "better", "downstream_accuracy / the same trained on originals"),
}


def make_row(dataset, method, k, metric, value, *, subset="", recognizer="", bound=None, n=None, ci=None) -> dict:
    """One row of the table; ``ci`` is the (low, high) interval of a privacy figure."""
    low, high = (math.nan, math.nan) if ci is None else (float(ci[0]), float(ci[1]))
    return {
        "dataset": dataset,
        "method": method,
        "k": None if k is None else int(k),
        "metric": metric,
        "subset": subset,
        "recognizer": recognizer,
        "value": float(value) if value is not None else math.nan,
        "bound": float(bound) if bound is not None else math.nan,
        "n": None if n is None else int(n),
        "ci_low": low,
        "ci_high": high,
    }


def to_frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    frame["k"] = frame["k"].astype("Int64")
    frame["n"] = frame["n"].astype("Int64")
    for col in ("dataset", "method", "metric", "subset", "recognizer"):
        frame[col] = frame[col].fillna("").astype(str)
    return frame


def write_table(frame: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write ``frame`` as CSV (or Parquet when ``path`` ends with .parquet), atomically."""
    path = str(path)
    if path.endswith(".parquet"):
        with atomic_open(path, "wb") as fh:
            frame.to_parquet(fh, index=False)
    else:
        with atomic_open(path, "w", encoding="utf-8", newline="") as fh:
            frame.to_csv(fh, index=False, float_format="%.6g")


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a metrics table written by `write_table` and check its columns."""
    path = str(path)
    numeric = {c: [""] for c in ("value", "bound", "k", "n", *OPTIONAL_COLUMNS)}
    frame = pd.read_parquet(path) if path.endswith(".parquet") else pd.read_csv(path, keep_default_na=False, na_values=numeric)
    for col in OPTIONAL_COLUMNS:
        if col not in frame.columns:
            frame[col] = math.nan
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise FileFormatError(f"{path} is not a metrics table (missing columns {missing})")
    frame["k"] = pd.to_numeric(frame["k"], errors="coerce").astype("Int64")
    frame["n"] = pd.to_numeric(frame["n"], errors="coerce").astype("Int64")
    for col in ("value", "bound", *OPTIONAL_COLUMNS):
        frame[col] = pd.to_numeric(frame[col], errors="coerce")
    for col in ("dataset", "method", "metric", "subset", "recognizer"):
        frame[col] = frame[col].astype(str)
    return frame
