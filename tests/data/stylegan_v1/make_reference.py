"""Make the StyleGAN (v1) reference outputs with NVIDIA's own TensorFlow code.

Run with a Python that has TensorFlow 2 (CPU is enough) and numpy, not with the
project's venv::

    python tests/data/stylegan_v1/make_reference.py --nvidia-repo /path/to/NVlabs/stylegan

For each config below this builds ``G_style`` (``G_mapping`` + ``G_synthesis``)
through ``dnnlib.tflib.Network`` from an unmodified checkout of NVlabs/stylegan,
sets every variable (weights, biases, noise inputs, ``dlatent_avg``) to seeded
random values, runs the graph on fixed latents with ``randomize_noise=False``
and writes ``<config>.npz`` next to this file:

- ``var/<name>``: every variable of Gs under its official name
  (``dlatent_avg``, ``G_mapping/Dense0/weight``, ``G_synthesis/noise0``, ...);
- ``static_kwargs``: Gs's static kwargs as a JSON string;
- ``latents``: the inputs, float32 of shape (n, latent_size);
- ``psi``, ``cutoff``: the truncation settings, one per run;
- ``dlatents``: float32 of shape (len(psi), n, num_layers, dlatent_size), the
  input of ``G_synthesis`` after truncation;
- ``images``: float32 of shape (len(psi), n, num_channels, resolution, resolution),
  NCHW as TF returns them, before any conversion to uint8.
- ``made_with``: TensorFlow and numpy versions and the NVlabs/stylegan commit (JSON).

The code is TF1; it runs under ``tensorflow.compat.v1`` with v2 behaviour off.
Two shims, both here, so NVIDIA's files stay untouched: ``import tensorflow``
inside NVIDIA's modules is given ``tensorflow.compat.v1`` (through ``sys.modules``),
and ``tf.get_variable`` turns boolean dimensions into ints (the noise variables'
shape is ``[1, use_noise, h, w]`` with ``use_noise=True``, which TF2 refuses).
dnnlib also needs ``requests`` and ``tensorboard`` importable, and ``distutils``
(Python <= 3.11).
This script does not import anonfaces.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

# Gs's static kwargs per config; small channel counts keep the files small.
CONFIGS = {
    # 8 layers: truncation cutoff 8 covers all of them; upscaling by Upscale2D + Conv.
    "res32": {"resolution": 32, "num_channels": 3, "label_size": 0, "latent_size": 16, "dlatent_size": 16,
              "mapping_layers": 8, "mapping_fmaps": 24, "fmap_base": 64, "fmap_max": 16},
    # 12 layers: cutoff 8 leaves the last four untouched; 128x128 uses the fused upscale conv.
    "res128": {"resolution": 128, "num_channels": 3, "label_size": 0, "latent_size": 12, "dlatent_size": 12,
               "mapping_layers": 4, "mapping_fmaps": 12, "fmap_base": 256, "fmap_max": 8},
}
SEEDS = {"res32": 32, "res128": 128}
PSI = (1.0, 0.7)
CUTOFF = 8
NUM_LATENTS = 2


def random_value(name: str, shape: tuple, rng: np.random.RandomState) -> np.ndarray:
    """A seeded value of the scale the variable has in a trained network (weights are stored unscaled)."""
    if name == "lod" or name.endswith("/lod"):
        return np.zeros(shape, np.float32)
    if name.startswith("G_mapping/"):
        scale = 100.0 if name.endswith("/weight") else 10.0  # runtime multiplier lrmul = 0.01
    elif name == "dlatent_avg":
        scale = 0.5
    elif "/noise" in name:
        scale = 1.0
    elif name.endswith(("/bias", "Noise/weight")) or "/ToRGB" in name:
        scale = 0.3
    else:
        scale = 1.0
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def tf_v1():
    """``tensorflow.compat.v1`` with v2 behaviour off, installed as ``tensorflow`` for NVIDIA's imports."""
    import tensorflow.compat.v1 as tf

    tf.disable_v2_behavior()
    get_variable = tf.get_variable

    def get_variable_int_shape(name, shape=None, *args, **kwargs):
        # G_synthesis makes noise variables of shape [1, use_noise, h, w] with use_noise=True; TF2 wants ints
        if shape is not None:
            shape = [int(d) if isinstance(d, bool) else d for d in shape]
        return get_variable(name, shape, *args, **kwargs)

    tf.get_variable = get_variable_int_shape
    sys.modules["tensorflow"] = tf
    return tf


def make(name: str, static_kwargs: dict, tf, tflib) -> dict[str, np.ndarray]:
    rng = np.random.RandomState(SEEDS[name])
    latents = rng.standard_normal((NUM_LATENTS, static_kwargs["latent_size"])).astype(np.float32)
    with tf.Graph().as_default(), tflib.create_session(None).as_default() as sess:
        Gs = tflib.Network("Gs", func_name="training.networks_stylegan.G_style", **static_kwargs)
        values = {var_name: random_value(var_name, tuple(var.shape.as_list()), rng)
                  for var_name, var in Gs.vars.items()}
        tflib.set_vars({Gs.vars[k]: v for k, v in values.items()})

        latents_in = tf.placeholder(tf.float32, [None, static_kwargs["latent_size"]], name="latents_in")
        dlatents_out, images_out = [], []
        for i, psi in enumerate(PSI):
            scope = f"reference{i}"
            with tf.name_scope(scope):
                images_out.append(Gs.get_output_for(latents_in, None, truncation_psi=psi, truncation_cutoff=CUTOFF,
                                                    randomize_noise=False))
            # G_synthesis's input after truncation, as Network.get_output_for names it.
            found = [op for op in sess.graph.get_operations()
                     if op.name.startswith(scope + "/") and op.name.endswith("/G_synthesis/dlatents_in")]
            assert len(found) == 1, [op.name for op in found]
            dlatents_out.append(found[0].outputs[0])
        dlatents, images = sess.run([dlatents_out, images_out], {latents_in: latents})
        # the graph only reads variables: check nothing was changed by running it
        after = dict(zip(Gs.vars.keys(), sess.run(list(Gs.vars.values()))))
        assert all(np.array_equal(after[k], v) for k, v in values.items())
        static = dict(Gs.static_kwargs)

    out = {f"var/{k}": v for k, v in values.items()}
    out.update(static_kwargs=np.array(json.dumps(static, sort_keys=True)), latents=latents,
               psi=np.array(PSI, np.float32), cutoff=np.array([CUTOFF] * len(PSI), np.int64),
               dlatents=np.stack(dlatents).astype(np.float32), images=np.stack(images).astype(np.float32))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nvidia-repo", type=Path, required=True, help="checkout of NVlabs/stylegan")
    parser.add_argument("--out-dir", type=Path, default=HERE)
    parser.add_argument("--nvidia-commit", help="commit of that checkout, if it is not a git work tree")
    parser.add_argument("--configs", nargs="*", default=list(CONFIGS), choices=list(CONFIGS))
    args = parser.parse_args(argv)

    tf = tf_v1()
    sys.path.insert(0, str(args.nvidia_repo.resolve()))
    from dnnlib import tflib

    commit = args.nvidia_commit
    try:
        commit = commit or subprocess.run(["git", "-C", str(args.nvidia_repo), "rev-parse", "HEAD"],
                                           capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    for name in args.configs:
        arrays = make(name, CONFIGS[name], tf, tflib)
        arrays["made_with"] = np.array(json.dumps({"tensorflow": tf.__version__, "numpy": np.__version__,
                                                   "nvlabs_stylegan_commit": commit}))
        path = args.out_dir / f"{name}.npz"
        np.savez_compressed(path, **arrays)
        print(f"{path}: {len(arrays)} arrays, images {arrays['images'].shape}, "
              f"|images| max {np.abs(arrays['images']).max():.3g}, {path.stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
