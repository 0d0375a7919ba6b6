"""`load_generator`: a network pickle -> our `Generator` (or `GeneratorV1`), with its settings and shapes checked."""

from __future__ import annotations

import logging
import math
import os
from typing import Any

import numpy as np

from anonfaces.errors import BadInputError, FileFormatError
from anonfaces.synthesize.stylegan._settings import (
    check_bool,
    check_choice,
    check_int,
    check_number,
)
from anonfaces.synthesize.stylegan.pickle import (
    PersistentObject,
    read_network_pickle,
)
from anonfaces.synthesize.stylegan.pickle.tf import is_tf_pickle

log = logging.getLogger(__name__)

_GENERATOR_ARGS = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs", "synthesis_kwargs")
# the activations `_ACTIVATIONS` implements (listed here so that reading a file does not import torch)
_ACTIVATIONS = ("linear", "relu", "lrelu", "tanh", "sigmoid", "elu", "selu", "softplus", "swish")
_ARCHITECTURES = ("orig", "skip", "resnet")
_MAPPING_KEYS = {"num_layers", "embed_features", "layer_features", "activation", "lr_multiplier", "w_avg_beta"}
_SYNTHESIS_KEYS = {"channel_base", "channel_max", "num_fp16_res", "fp16_channels_last", "architecture",
                   "resample_filter", "conv_clamp", "use_noise", "activation", "kernel_size"}

# settings stored in each network's __dict__ that must agree with the module we build
_CHECKED_ATTRS = ("z_dim", "c_dim", "w_dim", "num_ws", "img_resolution", "img_channels", "resolution", "up",
                  "use_noise", "activation", "conv_clamp", "architecture", "is_last", "in_channels", "num_layers",
                  "padding", "weight_gain", "bias_gain", "act_gain", "num_conv", "num_torgb", "block_resolutions")


def generator_kwargs(record: PersistentObject) -> dict:
    """The checked keyword arguments for `Generator` from a stored generator's ``init_kwargs``."""
    if record.class_name != "Generator":
        raise FileFormatError(f"expected a Generator network, found {record.class_name!r}")
    args, kwargs = record.init_args, record.init_kwargs
    if len(args) > 5:
        raise FileFormatError(f"the generator was built with {len(args)} positional arguments; expected at most 5")
    kwargs.update(zip(_GENERATOR_ARGS, args))
    unknown = set(kwargs) - set(_GENERATOR_ARGS)
    if unknown:
        raise FileFormatError(f"unknown generator settings {sorted(unknown)}; this is not a stylegan2-ada generator")
    missing = [k for k in _GENERATOR_ARGS[:5] if k not in kwargs]
    if missing:
        raise FileFormatError(f"the generator's settings lack {missing}")
    out = {
        "z_dim": check_int(kwargs["z_dim"], "z_dim", 0, 4096),
        "c_dim": check_int(kwargs["c_dim"], "c_dim", 0, 100_000),
        "w_dim": check_int(kwargs["w_dim"], "w_dim", 1, 4096),
        "img_resolution": check_int(kwargs["img_resolution"], "img_resolution", 4, 4096),
        "img_channels": check_int(kwargs["img_channels"], "img_channels", 1, 4),
    }
    if out["img_resolution"] & (out["img_resolution"] - 1):
        raise FileFormatError(f"img_resolution={out['img_resolution']} must be a power of two")
    if out["z_dim"] == 0 and out["c_dim"] == 0:
        raise FileFormatError("the generator has neither a latent (z_dim) nor a label (c_dim) input")

    mapping = dict(kwargs.get("mapping_kwargs") or {})
    unknown = set(mapping) - _MAPPING_KEYS
    if unknown:
        raise FileFormatError(f"unknown mapping settings {sorted(unknown)}")
    if "num_layers" in mapping:
        check_int(mapping["num_layers"], "mapping.num_layers", 1, 32)
    for key in ("embed_features", "layer_features"):
        if mapping.get(key) is not None:
            check_int(mapping[key], f"mapping.{key}", 1, 8192)
    if "activation" in mapping:
        check_choice(mapping["activation"], "mapping.activation", _ACTIVATIONS)
    if "lr_multiplier" in mapping:
        check_number(mapping["lr_multiplier"], "mapping.lr_multiplier")
    if mapping.get("w_avg_beta") is not None:
        check_number(mapping["w_avg_beta"], "mapping.w_avg_beta", positive=False)

    synthesis = dict(kwargs.get("synthesis_kwargs") or {})
    unknown = set(synthesis) - _SYNTHESIS_KEYS
    if unknown:
        raise FileFormatError(f"unknown synthesis settings {sorted(unknown)}")
    for key, lo, hi in (("channel_base", 1, 1 << 22), ("channel_max", 1, 8192), ("num_fp16_res", 0, 16)):
        if key in synthesis:
            check_int(synthesis[key], f"synthesis.{key}", lo, hi)
    if "kernel_size" in synthesis and check_int(synthesis["kernel_size"], "synthesis.kernel_size", 1, 7) % 2 == 0:
        raise FileFormatError("synthesis.kernel_size must be odd")
    if "architecture" in synthesis:
        check_choice(synthesis["architecture"], "synthesis.architecture", _ARCHITECTURES)
    if "activation" in synthesis:
        check_choice(synthesis["activation"], "synthesis.activation", _ACTIVATIONS)
    if synthesis.get("conv_clamp") is not None:
        check_number(synthesis["conv_clamp"], "synthesis.conv_clamp")
    for key in ("use_noise", "fp16_channels_last"):
        if key in synthesis:
            check_bool(synthesis[key], f"synthesis.{key}")
    if "resample_filter" in synthesis:
        taps = synthesis["resample_filter"]
        if not isinstance(taps, (list, tuple)) or not 1 <= len(taps) <= 16:
            raise FileFormatError(f"synthesis.resample_filter={taps!r} must be a list of 1 to 16 numbers")
        synthesis["resample_filter"] = [check_number(t, "resample_filter tap", positive=False) for t in taps]
    out["mapping_kwargs"] = mapping
    out["synthesis_kwargs"] = synthesis
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, (float, np.floating)) or isinstance(b, (float, np.floating)):
        try:
            return math.isclose(float(a), float(b), rel_tol=1e-6, abs_tol=1e-12)
        except (TypeError, ValueError):
            return False
    return a == b


def generator_from_record(record: PersistentObject):
    """Build our `Generator` from a stored one and load its parameters and buffers (shapes checked)."""
    import torch

    from anonfaces.synthesize.stylegan.networks import Generator

    G = Generator(**generator_kwargs(record))
    modules = dict(G.named_modules())
    for name, rec in record.named_modules():
        mine = modules.get(name)
        if mine is None:
            raise FileFormatError(f"the stored generator has a submodule {name!r} that its settings do not produce")
        want = getattr(mine, "pickle_class_name", "")
        if rec.class_name != want:
            raise FileFormatError(f"submodule {name or 'G'!r} is a {rec.class_name}, expected {want}")
        for attr in _CHECKED_ATTRS:
            if attr in rec.state and hasattr(mine, attr) and not _same(rec.state[attr], getattr(mine, attr)):
                raise FileFormatError(f"setting {(name + '.') if name else ''}{attr}={rec.state[attr]!r} in the file "
                                      f"disagrees with {getattr(mine, attr)!r} derived from its init_kwargs")
    stored = record.arrays()
    expected = G.state_dict()
    missing = sorted(set(expected) - set(stored))
    extra = sorted(set(stored) - set(expected))
    if missing or extra:
        raise FileFormatError(f"the stored generator does not match its settings: missing {missing[:5]}, "
                              f"unexpected {extra[:5]}")
    state = {}
    for key, target in expected.items():
        arr = stored[key]
        if tuple(arr.shape) != tuple(target.shape):
            raise FileFormatError(f"{key} has shape {list(arr.shape)} in the file, expected {list(target.shape)}")
        if arr.dtype.kind != "f":
            raise FileFormatError(f"{key} has dtype {arr.dtype}, expected floating point")
        state[key] = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
    G.load_state_dict(state, strict=True)
    return G.eval().requires_grad_(False)


def load_generator(path: str | os.PathLike, *, key: str = "G_ema", device: str = "cpu"):
    """Load the generator from a network pickle, safely; the format is detected from the content.

    Reads NVIDIA's stylegan2-ada-pytorch pickles (``ffhq.pkl``; our StyleGAN2
    `Generator`) and StyleGAN (v1) TensorFlow pickles
    (``karras2019stylegan-ffhq-1024x1024.pkl``; our `GeneratorV1`, converted from
    the stored arrays without TensorFlow). StyleGAN2 TensorFlow pickles are refused.

    Parameters
    ----------
    path : path of the ``.pkl`` (see ``stylegan/README.md``).
    key : which network of the pickle: ``"G_ema"`` (the one to render with, default; ``Gs`` of
        a TensorFlow pickle) or ``"G"`` (the instantaneous snapshot).
    device : torch device for the returned module.

    Returns
    -------
    A ``torch.nn.Module`` in eval mode, gradients off, with ``z_dim``, ``w_dim``,
    ``num_ws``, ``img_resolution``, ``w_avg``, ``mapping(z, truncation_psi=1.0) ->
    [N, num_ws, w_dim]`` and ``synthesis(ws, noise_mode='const') -> [N, 3, H, W]``
    (values about -1..1).

    Raises `UnsafeFileError` if the file asks for anything outside the formats
    (no code from it is run), `FileFormatError` if its settings or shapes do not
    form a generator these modules implement.
    """
    if key not in ("G_ema", "G"):
        raise BadInputError(f"key={key!r} must be 'G_ema' or 'G'")
    data = read_network_pickle(path)
    if is_tf_pickle(data):
        from anonfaces.synthesize.stylegan.loader_v1 import generator_v1_from_record

        G = generator_v1_from_record(data[2] if key == "G_ema" else data[0])
        log.info("loaded StyleGAN v1 %s from %s: %dx%d, z_dim=%d, w_dim=%d, num_ws=%d",
                 "Gs" if key == "G_ema" else "G", os.fspath(path), G.img_resolution, G.img_resolution, G.z_dim,
                 G.w_dim, G.num_ws)
        return G.to(device)
    record = data.get(key)
    if not isinstance(record, PersistentObject):
        raise FileFormatError(f"{os.fspath(path)} has no network {key!r} (keys: {sorted(map(str, data))})")
    G = generator_from_record(record)
    log.info("loaded %s from %s: %dx%d, z_dim=%d, w_dim=%d, num_ws=%d", key, os.fspath(path), G.img_resolution,
             G.img_resolution, G.z_dim, G.w_dim, G.num_ws)
    return G.to(device)
