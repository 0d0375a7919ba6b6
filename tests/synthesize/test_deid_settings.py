"""Settings of the learned de-identifiers: where the face goes (region), contrast, sharpening, the structure
term of training, and method settings in one sweep (``--methods d2gan:detail=true:region=inner``)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from anonfaces.errors import BadInputError
from anonfaces.evaluate import DatasetSubset, read_table
from anonfaces.pipeline.options import AnonymizeOptions, parse_methods
from anonfaces.synthesize.baselines import apply_baseline
from anonfaces.synthesize.blend import face_mask
from anonfaces.synthesize.deid import (
    INFERENCE_DEFAULTS,
    inference_settings,
    inner_face_mask,
    load_weights,
    shipped_weights,
    with_inference_settings,
)
from anonfaces.utils.images import read_image


def _face(sample_dir, sample_encodings, i=0):
    rel = sample_encodings.paths[i]
    rows = [j for j in range(len(sample_encodings)) if sample_encodings.paths[j] == rel]
    return read_image(sample_dir / rel), [sample_encodings.landmarks68[j] for j in rows]


def test_inner_region_keeps_the_outline_and_changes_the_inner_face(sample_dir, sample_encodings):
    image, lms = _face(sample_dir, sample_encodings)
    whole = apply_baseline(image, "d2gan", lms)
    inner = apply_baseline(image, "d2gan", lms, region="inner")
    hull = np.zeros(image.shape[:2], np.float32)
    region = np.zeros(image.shape[:2], bool)
    for lm in lms:
        hull = np.maximum(hull, inner_face_mask(image.shape[:2], lm))
        region |= face_mask(image.shape[:2], lm, feather=0) > 0
    np.testing.assert_array_equal(inner[hull == 0], image[hull == 0])  # cheeks, jaw line and the rest: the original's
    core = hull > 0.995
    assert core.sum() > 500
    np.testing.assert_allclose(inner[core], whole[core], atol=1)  # well inside the hull: the network's face
    assert np.abs(whole[region & (hull == 0)].astype(int) - image[region & (hull == 0)]).mean() > 3  # which "face" changes


def test_contrast_matches_the_face_statistics_and_sharpen_adds_detail(sample_dir, sample_encodings):
    import cv2

    image, lms = _face(sample_dir, sample_encodings, 3)
    mask = face_mask(image.shape[:2], lms[0], feather=0) > 0
    plain = apply_baseline(image, "d2gan", lms[:1], contrast=False, sharpen=0.0)
    matched = apply_baseline(image, "d2gan", lms[:1], contrast=True, sharpen=0.0)
    lab = [cv2.cvtColor(x, cv2.COLOR_RGB2LAB)[mask].astype(float) for x in (image, plain, matched)]
    spread = [x[:, 0].std() for x in lab]
    assert abs(spread[2] - spread[0]) < abs(spread[1] - spread[0]), spread  # the lightness spread moved to the original's
    assert abs(lab[2][:, 0].mean() - lab[0][:, 0].mean()) < 3
    sharp = apply_baseline(image, "d2gan", lms[:1], contrast=False, sharpen=2.0)
    lap = [np.abs(cv2.Laplacian(cv2.cvtColor(x, cv2.COLOR_RGB2GRAY), cv2.CV_64F))[mask].mean() for x in (plain, sharp)]
    assert lap[1] > 1.2 * lap[0], lap


@pytest.mark.parametrize("params, message", [({"region": "outer"}, "region"), ({"contrast": "yes"}, "contrast"),
                                             ({"sharpen": -1}, "sharpen"), ({"sharpen": True}, "sharpen")])
def test_bad_settings_are_refused_before_any_photo(params, message):
    with pytest.raises(BadInputError, match=message):
        AnonymizeOptions.from_flat(method="d2gan", method_params=params)


def test_method_settings_in_the_method_name():
    specs = parse_methods("blur, d2gan:detail=true:region=inner, d2gan, blur:sigma=0.3")
    assert [s.name for s in specs] == ["blur", "d2gan:detail=true:region=inner", "d2gan", "blur:sigma=0.3"]
    assert dict(specs[1].params) == {"detail": True, "region": "inner"} and specs[1].method == "d2gan"
    assert dict(specs[3].params) == {"sigma": 0.3} and specs[2].params == ()
    assert specs[1].folder == "d2gan-detail=true-region=inner"
    apart = parse_methods("d2gan:weights=/a/b/w.npz,d2gan:weights=/a/b-w.npz")  # one folder each, no nesting
    assert all("/" not in m.folder and m.folder.startswith("d2gan-weights=-a-b") for m in apart)
    assert apart[0].folder != apart[1].folder
    for bad, message in (("d2gan:detail", "NAME=VALUE"), ("d2gan:=1", "NAME=VALUE"), ("gan:detail=true", "unknown method")):
        with pytest.raises(BadInputError, match=message):
            parse_methods(bad)


def test_one_sweep_compares_settings_of_a_method(sample_dir, tmp_path):
    from anonfaces.pipeline.sweep import evaluate_dataset

    out = tmp_path / "results"
    report = evaluate_dataset(sample_dir, out, subset=DatasetSubset(people=3, photos_per_person=2, min_photos=2),
                              methods="blur,blur:sigma=0.02", recognizers=["dlib"], detect=False, examples=0, plots=False,
                              anonymize_params={"method_params": {"sigma": 0.4}}, jobs=1, progress=False)
    table = read_table(report.out / "metrics.csv")
    from anonfaces.evaluate.quality import ALL_BUCKET

    ssim = table[(table.metric == "ssim") & (table.subset == ALL_BUCKET)].set_index("method")["value"]
    assert {"blur", "blur:sigma=0.02"} <= set(ssim.index)
    assert ssim["blur:sigma=0.02"] > ssim["blur"] + 0.01, ssim  # the light blur kept more of the photo
    private = out.with_name(out.name + ".private")
    import json

    run = json.loads((private / "runs" / "blur-sigma=0.02" / "all" / "run.json").read_text())
    assert run["options"]["method_params"] == {"sigma": 0.02}  # the method's own setting over --method-param
    run = json.loads((private / "runs" / "blur" / "all" / "run.json").read_text())
    assert run["options"]["method_params"] == {"sigma": 0.4}
    with pytest.raises(BadInputError, match="sigma"):
        evaluate_dataset(sample_dir, tmp_path / "bad", methods="blur:sigma=-1", recognizers=["dlib"], progress=False)


def test_orientation_field_tells_horizontal_from_vertical_edges():
    from anonfaces.pipeline.train_deid import _orientation_field

    y, x = np.mgrid[0:16, 0:16].astype(np.float32)
    horizontal = torch.from_numpy(np.sin(y)[None, None].repeat(3, 1))  # bands across: vertical gradients
    vertical = torch.from_numpy(np.sin(x)[None, None].repeat(3, 1))
    fh, fv = _orientation_field(horizontal, 4), _orientation_field(vertical, 4)
    assert fh.shape == (1, 3, 4, 4)
    assert (fh[:, 1] < -0.5 * fh[:, 0]).all() and (fv[:, 1] > 0.5 * fv[:, 0]).all()  # cos 2t: -1 across, +1 along
    assert fh[:, 2].abs().max() < 1e-3 and fv[:, 2].abs().max() < 1e-3


def test_a_checkpoint_carries_its_inference_defaults_and_the_caller_overrides_them(sample_dir, sample_encodings, tmp_path):
    inversion = inference_settings(shipped_weights("inversion"))  # stage 3 (2026-12-02): the settings measured with
    assert inversion == {**INFERENCE_DEFAULTS, "contrast": True, "sharpen": 2.5, "sharpen_region": "inner"}
    shipped = inference_settings(shipped_weights("d2gan"))
    assert shipped["contrast"] is True and shipped["sharpen"] == 1.25 and shipped["sharpen_region"] == "inner"  # as measured
    copy = tmp_path / "d2gan.npz"
    assert with_inference_settings(shipped_weights("d2gan"), copy, sharpen=0.0) == {"contrast": True, "sharpen": 0.0,
                                                                                       "sharpen_region": "inner"}
    _net, meta = load_weights(copy)
    assert meta["steps"] == load_weights(shipped_weights("d2gan"))[1]["steps"]
    image, lms = _face(sample_dir, sample_encodings, 3)
    by_default = apply_baseline(image, "d2gan", lms, weights=str(copy))
    np.testing.assert_array_equal(by_default, apply_baseline(image, "d2gan", lms, contrast=True, sharpen=0.0))
    assert np.abs(by_default.astype(int) - apply_baseline(image, "d2gan", lms, weights=str(copy), contrast=False)).max() > 10
    with pytest.raises(BadInputError, match="unknown inference setting"):
        with_inference_settings(shipped_weights("d2gan"), tmp_path / "x.npz", blur=1)


def test_outer_detail_seam_and_inner_sharpen_act_only_where_they_say(sample_dir, sample_encodings):
    import cv2

    image, lms = _face(sample_dir, sample_encodings, 3)
    lm = lms[0]
    region = face_mask(image.shape[:2], lm, feather=0) > 0
    hull = inner_face_mask(image.shape[:2], lm)
    base = {"contrast": False, "sharpen": 1.5}
    plain = apply_baseline(image, "d2gan", [lm], **base).astype(int)
    # sharpening only the inner face: outside the hull the unsharpened output
    inner_sharp = apply_baseline(image, "d2gan", [lm], **base, sharpen_region="inner").astype(int)
    unsharp = apply_baseline(image, "d2gan", [lm], contrast=False, sharpen=0.0).astype(int)
    assert np.abs(inner_sharp[region & (hull == 0)] - unsharp[region & (hull == 0)]).max() <= 1
    core = hull > 0.995
    assert np.abs(inner_sharp[core] - plain[core]).max() <= 1 and np.abs(plain[core] - unsharp[core]).mean() > 1
    # the photo's fine detail outside the inner face: the outer face moves towards the original's texture, the core not
    detail = apply_baseline(image, "d2gan", [lm], **base, outer_detail=1.0).astype(int)
    assert np.abs(detail[core] - plain[core]).max() <= 1
    outer = region & (hull == 0)
    lap = [np.abs(cv2.Laplacian(cv2.cvtColor(x.astype(np.uint8), cv2.COLOR_RGB2GRAY), cv2.CV_64F) -
                  cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), cv2.CV_64F))[outer].mean() for x in (plain, detail)]
    assert lap[1] < 0.8 * lap[0], lap  # the fine structure outside the inner face is nearer the photo's own
    # the seam: the face fades into the photo near the region's edge, deep inside it is the network's face
    seam = apply_baseline(image, "d2gan", [lm], **base, seam=0.1).astype(int)
    inside = cv2.distanceTransform(region.astype(np.uint8), cv2.DIST_L2, 5)
    edge, deep = region & (inside <= 2), inside > 0.2 * np.linalg.norm(lm[8] - lm[27])
    assert np.abs(seam[edge] - image[edge]).mean() < 0.5 * np.abs(plain[edge] - image[edge]).mean()
    np.testing.assert_array_equal(seam[deep], plain[deep])
    np.testing.assert_array_equal(seam[~region], image[~region])
    for bad, message in (({"outer_detail": 2}, "outer_detail"), ({"seam": -0.1}, "seam"),
                         ({"sharpen_region": "jaw"}, "sharpen_region")):
        with pytest.raises(BadInputError, match=message):
            apply_baseline(image, "d2gan", [lm], **bad)
