"""Figures from the tidy metrics table (matplotlib, Agg backend, PNG files).

* ``privacy_<recognizer>.png``: RI, closed-set, identity-level and parrot
  re-identification, TPR at 0.1% false accepts and the method-aware attacker
  against k (the panels the table has), with the 1/k bound; methods without k
  as horizontal lines; the 95% intervals (``ci_low``/``ci_high``) as bands.
* ``unprotected.png``: share of output faces still recognisable (dlib under 0.5).
* ``il.png``: IL (dlib) against k.
* ``frontier.png``: privacy (identity-level re-identification, dlib) against
  utility (SSIM of the photo), one point per method x k.
* ``quality_buckets.png``: SSIM and PSNR by face area share.
* ``detection.png``: detection rate and landmark displacement against k (re-detection).
* ``attribute_agreement.png``, ``downstream_ratio.png``: one panel per attribute
  against k (with ``--attributes``).
* ``examples-k<k>.png``: the same photos under every method (`example_grids`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from anonfaces.evaluate.quality import ALL_BUCKET, AREA_BUCKETS
from anonfaces.utils.atomic import atomic_open

log = logging.getLogger(__name__)

PRIVACY_PANELS = (
    ("ri", "RI (within threshold of own surrogate)"),
    ("closed_set", "closed-set identification"),
    ("identity_reid", "identity-level re-identification"),
    ("parrot_reid", "parrot attacker"),
    ("tpr_at_far", "TPR at 0.1% false accepts"),
    ("method_aware", "method-aware attacker (trained on anonymized)"),
)


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=110, bbox_inches="tight")
    _plt().close(fig)
    return path


def _method_order(table: pd.DataFrame) -> list[str]:
    methods = list(dict.fromkeys(table["method"]))
    return sorted(methods, key=lambda m: (m != "none", not m.startswith("ksame"), methods.index(m)))


def _interval(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray] | None:
    """The rows' 95% interval (ci_low, ci_high) when the table has one for each of them."""
    if "ci_low" not in rows or "ci_high" not in rows:
        return None
    low, high = rows["ci_low"].to_numpy(float), rows["ci_high"].to_numpy(float)
    return (low, high) if len(rows) and np.isfinite(low).all() and np.isfinite(high).all() else None


def _lines(ax, sub: pd.DataFrame, colors: dict, ks: list[int]):
    """ksame methods as lines over k, methods without k as horizontal lines; 95% intervals as bands."""
    for method in _method_order(sub):
        rows = sub[sub["method"] == method]
        if rows["k"].notna().any():
            rows = rows.sort_values("k")
            x = rows["k"].astype(float).to_numpy()
            ax.plot(x, rows["value"], marker="o", color=colors[method], label=method)
            band = _interval(rows)
            if band is not None:
                ax.fill_between(x, band[0], band[1], color=colors[method], alpha=0.15, lw=0)
                if len(x) == 1:
                    ax.errorbar(x, rows["value"], yerr=[rows["value"] - band[0], band[1] - rows["value"]], color=colors[method],
                                capsize=3, ls="none")
        elif len(rows):
            ax.axhline(float(rows["value"].iloc[0]), color=colors[method], ls="--" if method != "none" else ":", lw=1.2, label=method)
            band = _interval(rows.iloc[:1])
            if band is not None:
                ax.axhspan(band[0][0], band[1][0], color=colors[method], alpha=0.08, lw=0)


def _colors(table: pd.DataFrame) -> dict:
    plt = _plt()
    cmap = plt.get_cmap("tab10")
    return {m: ("black" if m == "none" else cmap(i % 10)) for i, m in enumerate(_method_order(table))}


def plot_privacy(table: pd.DataFrame, recognizer: str, path: Path) -> Path | None:
    plt = _plt()
    sub = table[(table["recognizer"] == recognizer) & table["metric"].isin([m for m, _ in PRIVACY_PANELS])]
    if sub.empty:
        return None
    ks = sorted(int(k) for k in table["k"].dropna().unique())
    colors = _colors(table)
    present = set(sub["metric"])
    # the four original panels always (an empty one says the attack did not apply), the newer ones when measured
    panels = [(m, t) for i, (m, t) in enumerate(PRIVACY_PANELS) if i < 4 or m in present]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), sharey=True)
    for ax, (metric, title) in zip(axes, panels):
        _lines(ax, sub[sub["metric"] == metric], colors, ks)
        chance = table.loc[(table["recognizer"] == recognizer) & (table["metric"] == "method_aware_chance"), "value"]
        if metric == "method_aware" and chance.notna().any():
            ax.axhline(float(chance.median()), color="grey", ls=":", lw=1, label="chance (1/people)")
        if ks:
            if metric != "tpr_at_far":  # a verification rate has no 1/k bound
                grid = np.linspace(min(ks), max(ks), 100)
                ax.plot(grid, 1.0 / grid, color="grey", lw=1, label="1/k bound")
            ax.set_xticks(ks)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("k")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"rate ({recognizer}); bands: 95% over people")
    handles: dict = {}
    for ax in axes:  # the chance line is in the last panel only
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    fig.legend(list(handles.values()), list(handles), loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    return _save(fig, path)


def plot_metric_vs_k(table: pd.DataFrame, metric: str, path: Path, *, recognizer: str = "", subset: str = "", ylabel: str = "") -> Path | None:
    plt = _plt()
    sub = table[(table["metric"] == metric) & (table["recognizer"] == recognizer) & (table["subset"] == subset)]
    if sub.empty:
        return None
    ks = sorted(int(k) for k in table["k"].dropna().unique())
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    _lines(ax, sub, _colors(table), ks)
    if ks:
        ax.set_xticks(ks)
    ax.set_xlabel("k")
    ax.set_ylabel(ylabel or metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return _save(fig, path)


def plot_frontier(table: pd.DataFrame, path: Path, *, privacy: str = "identity_reid", recognizer: str = "dlib") -> Path | None:
    """Privacy risk (y, lower is better) against SSIM (x, higher is better); the best corner is bottom right."""
    plt = _plt()
    if not (table["metric"] == privacy).any():
        privacy = "closed_set"
    p = table[(table["metric"] == privacy) & (table["recognizer"] == recognizer)][["method", "k", "value"]]
    u = table[(table["metric"] == "ssim") & (table["subset"] == ALL_BUCKET)][["method", "k", "value"]]
    both = p.merge(u, on=["method", "k"], how="left", suffixes=("_privacy", "_ssim"))
    both.loc[both["method"] == "none", "value_ssim"] = 1.0  # the original photo, by definition
    both = both.dropna(subset=["value_privacy", "value_ssim"])
    if both.empty:
        return None
    colors = _colors(table)
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for method in _method_order(both):
        rows = both[both["method"] == method].sort_values("k")
        ax.plot(rows["value_ssim"], rows["value_privacy"], marker="o", color=colors[method], label=method,
                ls="-" if rows["k"].notna().any() else "none")
        for _, r in rows.iterrows():
            if pd.notna(r["k"]):
                ax.annotate(f"k={int(r['k'])}", (r["value_ssim"], r["value_privacy"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("SSIM of the photo (utility, higher is better)")
    ax.set_ylabel(f"{privacy} with {recognizer} (risk, lower is better)")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return _save(fig, path)


def plot_quality_buckets(table: pd.DataFrame, path: Path, *, k: int | None = None) -> Path | None:
    plt = _plt()
    sub = table[table["metric"].isin(["ssim", "psnr"])]
    if sub.empty:
        return None
    ks = sorted(int(v) for v in sub["k"].dropna().unique())
    if k is None and ks:
        k = ks[len(ks) // 2]
    sub = sub[sub["k"].isna() | (sub["k"] == k)]
    buckets = [b for b, _, _ in AREA_BUCKETS] + [ALL_BUCKET]
    methods = [m for m in _method_order(sub) if m != "none"]
    colors = _colors(table)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    width = 0.8 / max(len(methods), 1)
    for ax, metric in zip(axes, ("ssim", "psnr")):
        for i, method in enumerate(methods):
            rows = sub[(sub["metric"] == metric) & (sub["method"] == method)].set_index("subset")
            vals = [float(rows.loc[b, "value"]) if b in rows.index else np.nan for b in buckets]
            ax.bar(np.arange(len(buckets)) + i * width, vals, width, color=colors[method], label=method)
        ax.set_xticks(np.arange(len(buckets)) + width * (len(methods) - 1) / 2)
        ax.set_xticklabels(buckets, fontsize=8)
        ax.set_xlabel("face share of the image")
        ax.set_ylabel(metric.upper() + (" (dB)" if metric == "psnr" else ""))
        ax.grid(alpha=0.3, axis="y")
    axes[0].set_title(f"ksame methods at k={k}; empty buckets have no photos", fontsize=9)
    axes[1].legend(fontsize=8, loc="best")
    return _save(fig, path)


def plot_panels(table: pd.DataFrame, panels: list[tuple[str, str, str]], path: Path, *, ylabel: str = "",
                ylim: tuple[float, float] | None = None) -> Path | None:
    """One panel per ``(metric, subset, title)`` against k: ksame methods as lines, the others as horizontal lines.

    Panels without rows are left out; None when no panel has any.
    """
    plt = _plt()
    panels = [(m, s, title, table[(table["metric"] == m) & (table["subset"] == s)]) for m, s, title in panels]
    panels = [p for p in panels if not p[3].empty]
    if not panels:
        return None
    ks = sorted(int(k) for k in table["k"].dropna().unique())
    colors = _colors(table)
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False)
    for ax, (_, _, title, sub) in zip(axes[0], panels):
        _lines(ax, sub, colors, ks)
        if ks:
            ax.set_xticks(ks)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("k")
        if ylim is not None:
            ax.set_ylim(*ylim)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(ylabel)
    handles: dict = {}
    for ax in axes[0]:  # a method may be missing from the first panel
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    labels = list(handles)
    fig.legend([handles[lab] for lab in labels], labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    return _save(fig, path)


def plot_detection(table: pd.DataFrame, path: Path) -> Path | None:
    """Detection rate and landmark displacement of the re-detected faces against k."""
    return plot_panels(table, [("detection_rate", "", "detection rate (IoU >= 0.5)"),
                               ("landmark_displacement", "", "landmark displacement / inter-ocular")], path, ylabel="value")


def plot_attributes(table: pd.DataFrame, metric: str, path: Path) -> Path | None:
    """``attribute_agreement`` or ``downstream_ratio`` against k, one panel per attribute."""
    attributes = list(dict.fromkeys(table.loc[table["metric"] == metric, "subset"]))
    titles = {"attribute_agreement": "agreement", "downstream_ratio": "downstream ratio"}
    return plot_panels(table, [(metric, a, f"{a}: {titles.get(metric, metric)}") for a in attributes], path,
                       ylabel=metric.replace("_", " "))


def plot_all(table: pd.DataFrame, folder) -> list[Path]:
    """Every figure the table allows, into ``folder``; returns the files written."""
    folder = Path(folder)
    paths = []
    for rec in sorted(r for r in table["recognizer"].unique() if r):
        paths.append(plot_privacy(table, rec, folder / f"privacy_{rec}.png"))
    paths.append(plot_metric_vs_k(table, "il", folder / "il.png", recognizer="dlib", ylabel="IL: mean dlib distance to surrogate"))
    paths.append(plot_frontier(table, folder / "frontier.png"))
    paths.append(plot_quality_buckets(table, folder / "quality_buckets.png"))
    paths.append(plot_detection(table, folder / "detection.png"))
    paths.append(plot_panels(table, [("unprotected", "", "output face within 0.5 of its original (dlib)"),
                                     ("unprotected_person", "", "within 0.5 of any photo of its person (dlib)"),
                                     ("unprotected_any", "", "within 0.5 of any original face (dlib)")],
                             folder / "unprotected.png", ylabel="share of faces", ylim=(-0.02, 1.02)))
    for metric in ("attribute_agreement", "downstream_ratio"):
        paths.append(plot_attributes(table, metric, folder / f"{metric}.png"))
    return [p for p in paths if p is not None]


def example_grids(enc, run_dirs: dict, folder, *, n_photos: int = 4, ks=(), cell: int = 128,
                  names: dict | None = None) -> list[Path]:
    """One grid per k: rows are photos, columns the original and every method (face region, enlarged)."""
    from PIL import Image, ImageDraw

    from anonfaces.utils.images import ImageReadError, read_image

    folder = Path(folder)
    people = {}
    for i, (p, ident) in enumerate(zip(enc.paths.tolist(), enc.identities.tolist())):
        people.setdefault(ident or p, i)
    picks = list(people.values())
    if len(picks) > n_photos:
        picks = [picks[int(j)] for j in np.linspace(0, len(picks) - 1, n_photos).round()]
    ks = list(ks) or [None]
    out = []
    for k in ks:
        columns = [(m, kk) for (m, kk) in run_dirs if kk is None or kk == k]
        columns.sort(key=lambda c: (c[0] != "none", not c[0].startswith("ksame")))
        if len(columns) < 2:
            continue
        label_h = 16
        grid = Image.new("RGB", (cell * len(columns), label_h + cell * len(picks)), "white")
        draw = ImageDraw.Draw(grid)
        for c, (method, kk) in enumerate(columns):
            draw.text((c * cell + 3, 2), method if method != "none" else "original", fill="black")
            for r, i in enumerate(picks):
                try:
                    rel = str(enc.paths[i])
                    image = read_image(Path(run_dirs[(method, kk)]) / (names or {}).get((method, kk), {}).get(rel, rel))
                except (OSError, ValueError, ImageReadError) as exc:  # a missing (held-back) photo leaves a blank cell
                    log.warning("example grid: %s", exc)
                    continue
                left, top, right, bottom = enc.boxes_ltrb[i]
                cx, cy, half = (left + right) / 2, (top + bottom) / 2, 0.8 * max(right - left, bottom - top)
                crop = Image.fromarray(image).crop((int(cx - half), int(cy - half), int(cx + half), int(cy + half)))
                grid.paste(crop.resize((cell, cell)), (c * cell, label_h + r * cell))
        path = folder / (f"examples-k{k}.png" if k is not None else "examples.png")
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(path, "wb") as fh:
            grid.save(fh, format="PNG")
        out.append(path)
    return out
