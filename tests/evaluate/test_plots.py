"""The figures are written when their metrics are in the table, and embedded in the report."""

from __future__ import annotations

from pathlib import Path

import pytest

from anonfaces.evaluate.plots import plot_all
from anonfaces.evaluate.report import summary_table, write_report
from anonfaces.evaluate.table import make_row, to_frame

ATTRIBUTES = ("Male", "Smiling")
BASE = {"privacy_dlib.png", "il.png", "frontier.png", "quality_buckets.png"}
NEW = {"detection.png", "attribute_agreement.png", "downstream_ratio.png"}


def _table(*, detection: bool, attributes: bool):
    rows = []
    runs = [("none", None), ("ksame:pixel", 2), ("ksame:pixel", 5), ("blur", None)]
    for method, k in runs:
        bound = None if k is None else 1 / k
        for metric, value in (("closed_set", 0.5), ("identity_reid", 0.4), ("il", 0.6)):
            rows.append(make_row("toy", method, k, metric, 1.0 if method == "none" else value, recognizer="dlib", bound=bound))
        if method != "none":
            rows.append(make_row("toy", method, k, "ssim", 0.9, subset="average", n=4))
            rows.append(make_row("toy", method, k, "psnr", 30.0, subset="average", n=4))
            if detection:
                rows.append(make_row("toy", method, k, "detection_rate", 0.9 if k else 0.1, n=4))
                rows.append(make_row("toy", method, k, "landmark_displacement", 0.05, n=3))
        if attributes:
            for a in ATTRIBUTES:
                for metric in ("attribute_agreement", "downstream_ratio"):
                    value = 1.0 if method == "none" else 0.8 - 0.01 * (k or 0)
                    rows.append(make_row("toy", method, k, metric, value, subset=a, recognizer="dlib", n=4))
    return to_frame(rows)


@pytest.mark.parametrize("detection, attributes", [(True, True), (False, False), (True, False)])
def test_new_plots_exactly_when_their_metrics_exist(tmp_path, detection, attributes):
    written = {p.name for p in plot_all(_table(detection=detection, attributes=attributes), tmp_path)}
    expected = BASE | ({"detection.png"} if detection else set())
    expected |= {"attribute_agreement.png", "downstream_ratio.png"} if attributes else set()
    assert written == expected
    for name in written:
        assert (tmp_path / name).stat().st_size > 1000


def test_report_embeds_the_new_plots_and_columns(tmp_path):
    table = _table(detection=True, attributes=True)
    plots = plot_all(table, tmp_path / "plots")
    record = {"dataset": "/data/toy", "dataset_name": "toy[people=4]", "settings": {"recognizers": {"dlib": {}}},
              "encodings": {}, "seconds": {"total": 1.0}}
    text = Path(write_report(tmp_path, table, record, plots)).read_text()
    assert text.startswith("# Privacy and utility: toy[people=4]")
    for name in NEW:
        assert f"](plots/{name})" in text
    summary = summary_table(table)
    assert {"detected", "landmark displ.", "attr. agreement", "downstream ratio"} <= set(summary.columns)
    row = summary[(summary["method"] == "ksame:pixel") & (summary["k"] == 5)].iloc[0]
    assert row["downstream ratio"] == pytest.approx(0.75) and row["detected"] == pytest.approx(0.9)
