"""StyleGAN2-ADA generator against NVIDIA's own outputs on the same weights.

The references in ``tests/data/stylegan2/`` were rendered by NVIDIA's
``stylegan2-ada-pytorch`` (CPU, float32) with ``make_reference.py``; NVIDIA's
code itself is not needed here. Each file's weights go through our pickle
writer and `load_generator`, as a downloaded network pickle would.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is the optional extra anonfaces[stylegan]")

from anonfaces.synthesize.stylegan import load_generator, write_network_pickle
from anonfaces.synthesize.stylegan.networks import Generator

DATA = Path(__file__).resolve().parents[1] / "data" / "stylegan2"
CONFIGS = ["skip", "orig", "resnet"]  # one per synthesis architecture, see make_reference.py
ATOL = 1e-5  # float32; the difference observed on torch 2.13 CPU is exactly 0


def _reference(name: str) -> dict:
    with np.load(DATA / f"{name}.npz", allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


@pytest.fixture(scope="module", params=CONFIGS)
def case(request, tmp_path_factory):
    """(reference arrays, our generator loaded from a network pickle holding the reference weights)."""
    ref = _reference(request.param)
    G = Generator(**json.loads(str(ref["init_kwargs"])))
    state = {k.removeprefix("param/"): torch.from_numpy(v) for k, v in ref.items() if k.startswith("param/")}
    G.load_state_dict(state, strict=True)
    path = tmp_path_factory.mktemp("reference") / f"{request.param}.pkl"
    write_network_pickle(path, G_ema=G)
    return ref, load_generator(path)


def _max_diff(ours: torch.Tensor, theirs: np.ndarray) -> float:
    assert tuple(ours.shape) == theirs.shape
    return float(np.abs(ours.numpy().astype(np.float64) - theirs).max())


def test_mapping_matches_nvidia(case):
    ref, G = case
    z = torch.from_numpy(ref["z"])
    c = torch.from_numpy(ref["c"]) if G.c_dim else None
    psi, cutoff = float(ref["psi"]), int(ref["cutoff"])
    assert psi < 1
    assert _max_diff(G.mapping(z, c), ref["ws"]) < ATOL
    assert _max_diff(G.mapping(z, c, truncation_psi=psi), ref["ws_psi"]) < ATOL
    assert _max_diff(G.mapping(z, c, truncation_psi=psi, truncation_cutoff=cutoff), ref["ws_cutoff"]) < ATOL


@pytest.mark.parametrize(("ws_key", "noise_mode", "img_key"),
                         [("ws", "const", "img_const"), ("ws_psi", "const", "img_psi"), ("ws", "none", "img_none"),
                          ("ws_plus", "const", "img_plus")])
def test_synthesis_matches_nvidia(case, ws_key, noise_mode, img_key):
    ref, G = case
    theirs = ref[img_key]
    assert theirs.std() > 0.05  # a real image, not a constant that anything would match
    assert _max_diff(G.synthesis(torch.from_numpy(ref[ws_key]), noise_mode=noise_mode), theirs) < ATOL


def test_the_references_are_distinct():
    # truncation, noise and each config change the output by far more than the tolerance
    for name in CONFIGS:
        ref = _reference(name)
        assert np.abs(ref["ws_psi"] - ref["ws"]).max() > 100 * ATOL
        assert np.abs(ref["img_psi"] - ref["img_const"]).max() > 100 * ATOL
        assert np.abs(ref["img_none"] - ref["img_const"]).max() > 100 * ATOL
        assert np.abs(ref["img_plus"] - ref["img_const"]).max() > 100 * ATOL
        assert np.abs(np.diff(ref["ws_plus"], axis=1)).max(axis=(1, 2)).min() > 100 * ATOL  # layers differ
