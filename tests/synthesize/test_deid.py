"""The CNN de-identifiers (feature inversion, D2GAN): training loop, safe checkpoints, real faces."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from anonfaces.errors import BadInputError
from anonfaces.synthesize.baselines import apply_baseline
from anonfaces.synthesize.blend import face_mask
from anonfaces.synthesize.deid import (
    MODELS,
    load_weights,
    save_weights,
    shipped_weights,
)
from anonfaces.utils.images import read_image

TINY = {"batch": 4, "decoder_channels": [16, 16, 8, 8], "width": 0.25}


@pytest.fixture(scope="module")
def tiny_faces(celeba_dir, tmp_path_factory):
    """Four CelebA faces, detected, cropped to 64 px and embedded by the torch critic."""
    from anonfaces.pipeline.train_deid import prepare_faces

    path = tmp_path_factory.mktemp("deid") / "faces.npz"
    info = prepare_faces(celeba_dir, path, limit=5, progress=False)
    assert info["faces"] >= 4
    return path


def _history(out):
    return [json.loads(json.dumps(r)) for r in torch.load(out / "checkpoint.pt", weights_only=True)["history"]]


@pytest.mark.parametrize("model", MODELS)
def test_training_loop_lowers_the_loss_and_writes_its_run(tiny_faces, tmp_path, model):
    from anonfaces.pipeline.train_deid import train

    out = tmp_path / model
    summary = train(model, tiny_faces, out, steps=12, seed=0, save_every=6, progress=False, **TINY)
    assert summary["steps"] == 12
    hist = _history(out)
    assert [r["step"] for r in hist] == list(range(12))
    total = [r["total"] for r in hist]
    assert np.mean(total[-3:]) < np.mean(total[:3]), total
    for name in ("settings.json", "losses.csv", "losses.png", f"{model}.npz"):
        assert (out / name).stat().st_size > 0
    settings = json.loads((out / "settings.json").read_text())
    assert settings["seed"] == 0 and settings["model"] == model and settings["batch"] == 4
    _net, meta = load_weights(out / f"{model}.npz")
    assert meta["steps"] == 12 and meta["model"] == model


def test_resume_continues_the_same_run(tiny_faces, tmp_path):
    from anonfaces.pipeline.train_deid import train

    train("d2gan", tiny_faces, tmp_path / "straight", steps=6, seed=3, save_every=3, progress=False, **TINY)
    train("d2gan", tiny_faces, tmp_path / "resumed", steps=3, seed=3, save_every=3, progress=False, **TINY)
    train("d2gan", tiny_faces, tmp_path / "resumed", steps=6, seed=3, save_every=3, progress=False, **TINY)
    a, b = _history(tmp_path / "straight"), _history(tmp_path / "resumed")
    assert [r["step"] for r in b] == list(range(6))
    for ra, rb in zip(a, b):
        assert ra.keys() == rb.keys()
        np.testing.assert_allclose([ra[k] for k in ra], [rb[k] for k in ra], rtol=1e-4, atol=1e-6)
    wa = np.load(tmp_path / "straight" / "d2gan.npz", allow_pickle=False)
    wb = np.load(tmp_path / "resumed" / "d2gan.npz", allow_pickle=False)
    for k in wa.files:
        if k.startswith("t/"):
            np.testing.assert_allclose(wa[k], wb[k], rtol=1e-4, atol=1e-5, err_msg=k)
    # other settings in the same folder are refused, not mixed into the run
    with pytest.raises(BadInputError, match="other settings"):
        train("d2gan", tiny_faces, tmp_path / "resumed", steps=8, seed=4, progress=False, **TINY)


def test_a_failed_checkpoint_write_leaves_the_last_one(tiny_faces, tmp_path, monkeypatch):
    from anonfaces.pipeline import train_deid

    out = tmp_path / "run"
    train_deid.train("inversion", tiny_faces, out, steps=2, seed=0, save_every=2, progress=False, **TINY)
    before = (out / "checkpoint.pt").read_bytes()

    def broken_save(obj, fh):
        fh.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        train_deid.train("inversion", tiny_faces, out, steps=4, seed=0, save_every=2, progress=False, **TINY)
    assert (out / "checkpoint.pt").read_bytes() == before
    assert torch.load(out / "checkpoint.pt", weights_only=True)["step"] == 2
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_training_refuses_bad_settings(tiny_faces, tmp_path):
    from anonfaces.pipeline.train_deid import train

    with pytest.raises(BadInputError, match="unknown setting"):
        train("inversion", tiny_faces, tmp_path, steps=1, learning_rate=1.0)
    with pytest.raises(BadInputError, match="unknown model"):
        train("vae", tiny_faces, tmp_path, steps=1)
    with pytest.raises(BadInputError, match="not found"):
        train("inversion", tmp_path / "missing.npz", tmp_path, steps=1)
    with pytest.raises(BadInputError, match="holds a 'd2gan' model"):
        train("inversion", tiny_faces, tmp_path / "ft", steps=1, init=shipped_weights("d2gan"))


@pytest.mark.parametrize("model", MODELS)
def test_shipped_checkpoints_are_small_and_load_without_pickle(model):
    path = shipped_weights(model)
    assert path.stat().st_size <= 10 * 2 ** 20
    with zipfile.ZipFile(path) as zf:  # an .npz: plain .npy arrays, none of them of dtype object
        for name in zf.namelist():
            header = zf.open(name).read(128)
            assert b"'descr': '|O'" not in header, name
    net, settings = load_weights(path)
    assert settings["model"] == model and settings["size"] == 64
    steps, init = settings["steps"], settings.get("init")
    while init:  # fine-tuned from an earlier run's checkpoint: count its steps too
        steps, init = steps + init["steps"], init.get("init")
    assert steps >= 500, f"{model}: {steps} training steps"
    assert not net.training


def test_loader_refuses_what_is_not_a_checkpoint(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.array([object()], dtype=object))
    with pytest.raises(BadInputError, match="not a de-identification checkpoint"):
        load_weights(bad)
    with pytest.raises(BadInputError, match="not found"):
        load_weights(tmp_path / "none.npz")
    net, settings = load_weights(shipped_weights("inversion"))
    other = {**settings, "model": "d2gan"}
    save_weights(tmp_path / "mixed.npz", net, other)
    with pytest.raises(BadInputError, match="do not fit"):
        load_weights(tmp_path / "mixed.npz")


def _photo(sample_dir, sample_encodings, i):
    rel = sample_encodings.paths[i]
    image = read_image(sample_dir / rel)
    rows = [j for j in range(len(sample_encodings)) if sample_encodings.paths[j] == rel]
    return image, [sample_encodings.landmarks68[j] for j in rows]


@pytest.mark.parametrize("model", MODELS)
def test_real_faces_change_inside_the_face_only_and_move_past_dlibs_threshold(sample_dir, sample_encodings, model):
    from anonfaces.detect import detect_faces
    from anonfaces.detect.align import face_chip
    from anonfaces.encode import DlibEncoder

    enc = DlibEncoder()
    moved, found = [], 0
    for i in range(0, len(sample_encodings), max(1, len(sample_encodings) // 12))[:12]:
        image, lms = _photo(sample_dir, sample_encodings, i)
        out = apply_baseline(image, model, lms, random_state=0)
        region = np.zeros(image.shape[:2], bool)
        for lm in lms:
            region |= face_mask(image.shape[:2], lm, feather=0) > 0
        np.testing.assert_array_equal(out[~region], image[~region])
        faces = detect_faces(out)
        found += bool(faces)
        if faces:
            before = enc.embed(face_chip(image, sample_encodings.landmarks5[i])[None])[0]
            after = enc.embed(face_chip(out, faces[0].landmarks5)[None])[0]
            moved.append(float(np.linalg.norm(before - after)))
    assert found >= 10, f"{model}: a face is found in only {found} of 12 de-identified photos"
    assert np.median(moved) > 0.5, f"{model}: dlib distances to the original {np.round(moved, 2)}"


def test_init_from_a_runs_checkpoint_takes_the_generator_and_the_discriminators(tiny_faces, tmp_path):
    from anonfaces.pipeline.train_deid import train

    train("d2gan", tiny_faces, tmp_path / "first", steps=2, seed=0, save_every=2, progress=False, **TINY)
    # learning rates 0: the fine-tuning run's weights stay the ones it started from; w_orient exercises the structure term
    train("d2gan", tiny_faces, tmp_path / "ft", steps=1, seed=1, progress=False, init=tmp_path / "first" / "checkpoint.pt",
          lr=0.0, lr_d=0.0, w_orient=10.0, **TINY)
    a = torch.load(tmp_path / "first" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "ft" / "checkpoint.pt", weights_only=True)
    for part in ("net", "d1", "d2"):
        for k, v in a["state"][part].items():
            if v.is_floating_point() and "running" not in k and not k.endswith(("_u", "_v")):  # statistics, power iteration
                torch.testing.assert_close(b["state"][part][k], v, msg=f"{part}.{k}")
    assert b["history"][0]["orient"] > 0
    _net, meta = load_weights(tmp_path / "ft" / "d2gan.npz")
    assert meta["init"] == {"file": "checkpoint.pt", "steps": 2, "init": None}  # "first" started from nothing
    with pytest.raises(BadInputError, match="holds a 'd2gan' run"):
        train("inversion", tiny_faces, tmp_path / "inv", steps=1, init=tmp_path / "first" / "checkpoint.pt", **TINY)
