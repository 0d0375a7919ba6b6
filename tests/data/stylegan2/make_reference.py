"""Make the reference outputs that ``tests/synthesize/test_stylegan_reference.py`` compares against.

NVIDIA's code is not part of this project; this script needs a checkout of
``stylegan2-ada-pytorch`` (its ``training``, ``torch_utils`` and ``dnnlib``
packages, which need ``requests`` importable) and is run by hand:

    .venv/bin/python tests/data/stylegan2/make_reference.py \\
        --nvidia-repo /path/to/stylegan2-ada-pytorch --nvidia-commit <commit id>

For each config in `CONFIGS` it builds a small random generator with anonfaces'
own modules, builds NVIDIA's ``training.networks.Generator`` from the same init
kwargs, copies every parameter and buffer into it by name (strictly: the two
module trees must have the same names and shapes), and renders fixed inputs
through NVIDIA's ``mapping`` and ``synthesis`` on the CPU in float32. One
``<config>.npz`` per config holds:

``init_kwargs``            the Generator's init kwargs, a JSON string
``param/<name>``           every parameter and buffer (``mapping.fc0.weight``, ...)
``z``, ``c``               the inputs, ``[N, z_dim]`` and ``[N, c_dim]`` (one-hot; ``c_dim`` may be 0)
``psi``, ``cutoff``        truncation_psi < 1, and a truncation_cutoff
``ws``                     NVIDIA's ``mapping(z, c)``, ``[N, num_ws, w_dim]``
``ws_psi``, ``ws_cutoff``  ``mapping(z, c, truncation_psi=psi)``, and with ``truncation_cutoff=cutoff``
``img_const``              ``synthesis(ws, noise_mode='const')``, ``[N, C, H, W]``
``img_psi``                ``synthesis(ws_psi, noise_mode='const')``
``img_none``               ``synthesis(ws, noise_mode='none')``
``ws_plus``, ``img_plus``  a W+ input whose layers differ (layer l of sample i from sample (i + l) % N of ``ws``),
                           and ``synthesis(ws_plus, noise_mode='const')``
``nvidia_commit``, ``torch_version``  provenance
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
N_SAMPLES = 3
PSI = 0.7
CUTOFF = 2

#: config name -> Generator init kwargs. One per synthesis architecture; small enough for ~100 kB each.
CONFIGS = {
    "skip": {
        "z_dim": 32, "c_dim": 0, "w_dim": 32, "img_resolution": 32, "img_channels": 3,
        "mapping_kwargs": {"num_layers": 2},
        "synthesis_kwargs": {"channel_base": 512, "channel_max": 16},
    },
    "orig": {  # conditional, with a clamp small enough to bite and an unequal hidden mapping width
        "z_dim": 16, "c_dim": 4, "w_dim": 24, "img_resolution": 32, "img_channels": 3,
        "mapping_kwargs": {"num_layers": 3, "layer_features": 20, "embed_features": 8},
        "synthesis_kwargs": {"architecture": "orig", "channel_base": 512, "channel_max": 16, "conv_clamp": 1.0},
    },
    "resnet": {  # FP16 settings as in NVIDIA's configs (rendered in float32, force_fp32, on NVIDIA's side)
        "z_dim": 32, "c_dim": 0, "w_dim": 32, "img_resolution": 32, "img_channels": 3,
        "mapping_kwargs": {"num_layers": 2},
        "synthesis_kwargs": {"architecture": "resnet", "channel_base": 512, "channel_max": 16,
                             "conv_clamp": 256, "num_fp16_res": 2},
    },
}


def random_generator(init_kwargs: dict, seed: int):
    """anonfaces' Generator with random weights: non-zero biases and noise strengths, a tracked w_avg."""
    import torch

    from anonfaces.synthesize.stylegan.networks import Generator

    torch.manual_seed(seed)
    G = Generator(**init_kwargs)
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith(("noise_strength", ".bias")):
                p.add_(torch.randn_like(p) * 0.1)
            if ".torgb.weight" in name:
                p.mul_(0.2)  # keeps the images in about -1..1
        z = torch.randn(500, G.z_dim)
        c = torch.eye(G.c_dim)[torch.randint(G.c_dim, (500,))] if G.c_dim else None
        G.mapping.w_avg.copy_(G.mapping(z, c)[:, 0].mean(0))
    return G.eval().requires_grad_(False)


def nvidia_reference(nvidia_generator, init_kwargs: dict, state: dict, seed: int) -> dict[str, np.ndarray]:
    """Copy ``state`` into NVIDIA's Generator and render the fixed inputs with it."""
    import torch

    G = nvidia_generator(**init_kwargs).eval().requires_grad_(False)
    theirs = G.state_dict()
    if set(theirs) != set(state):
        raise RuntimeError(f"module trees differ: only NVIDIA's {sorted(set(theirs) - set(state))[:5]}, "
                           f"only ours {sorted(set(state) - set(theirs))[:5]}")
    G.load_state_dict(state, strict=True)
    rng = np.random.RandomState(seed)
    z = rng.standard_normal((N_SAMPLES, G.z_dim)).astype(np.float32)
    c = np.eye(G.c_dim, dtype=np.float32)[rng.randint(0, max(G.c_dim, 1), N_SAMPLES)] if G.c_dim else \
        np.zeros((N_SAMPLES, 0), np.float32)
    zt, ct = torch.from_numpy(z), torch.from_numpy(c)
    with torch.no_grad():
        ws = G.mapping(zt, ct)
        ws_psi = G.mapping(zt, ct, truncation_psi=PSI)
        ws_cutoff = G.mapping(zt, ct, truncation_psi=PSI, truncation_cutoff=CUTOFF)
        mix = (torch.arange(N_SAMPLES)[:, None] + torch.arange(G.num_ws)[None, :]) % N_SAMPLES  # [N, L]
        ws_plus = ws[mix, torch.arange(G.num_ws)[None, :]]  # style mixing: every layer from another sample
        out = {"z": z, "c": c, "psi": np.float32(PSI), "cutoff": np.int64(CUTOFF), "ws": ws, "ws_psi": ws_psi,
               "ws_cutoff": ws_cutoff, "ws_plus": ws_plus,
               "img_const": G.synthesis(ws, noise_mode="const", force_fp32=True),
               "img_psi": G.synthesis(ws_psi, noise_mode="const", force_fp32=True),
               "img_none": G.synthesis(ws, noise_mode="none", force_fp32=True),
               "img_plus": G.synthesis(ws_plus, noise_mode="const", force_fp32=True)}
    return {k: (v.numpy() if isinstance(v, torch.Tensor) else v) for k, v in out.items()}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nvidia-repo", type=Path, required=True, help="checkout of NVlabs/stylegan2-ada-pytorch")
    parser.add_argument("--nvidia-commit", default="unknown", help="its commit id, recorded in the files")
    parser.add_argument("--out", type=Path, default=HERE, help="output folder (default: next to this script)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import torch

    sys.path.insert(0, str(args.nvidia_repo.resolve()))
    from training.networks import Generator as NvidiaGenerator

    for i, (name, init_kwargs) in enumerate(CONFIGS.items()):
        ours = random_generator(init_kwargs, seed=args.seed + i)
        state = {k: v.detach().clone() for k, v in ours.state_dict().items()}
        ref = nvidia_reference(NvidiaGenerator, init_kwargs, state, seed=args.seed + 100 + i)
        arrays = {f"param/{k}": v.numpy().astype(np.float32) for k, v in state.items()}
        arrays.update(ref, init_kwargs=np.array(json.dumps(init_kwargs, sort_keys=True)),
                      nvidia_commit=np.array(args.nvidia_commit), torch_version=np.array(torch.__version__))
        path = args.out / f"{name}.npz"
        np.savez_compressed(path, **arrays)
        print(f"{path}: {len(state)} tensors, {path.stat().st_size / 1e3:.0f} kB, "
              f"img_const range {ref['img_const'].min():.2f}..{ref['img_const'].max():.2f}")


if __name__ == "__main__":
    main()
