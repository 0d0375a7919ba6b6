"""StyleGAN (v1) TensorFlow pickles -> our `GeneratorV1`, with the settings and every variable's shape checked.

The settings are the build functions' keyword arguments as NVIDIA's
``training/networks_stylegan.py`` (``NVlabs/stylegan``) defines them, with its
defaults; each network's stored ``static_kwargs`` override them. Unknown
settings, and settings whose architecture `networks_v1` does not implement
(labels, ``use_styles=False``, ``const_input_layer=False``, a progressive-growing
snapshot with ``lod != 0``), are refused with `FileFormatError`. Reading and
checking the settings does not import torch.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from anonfaces.errors import FileFormatError
from anonfaces.synthesize.stylegan._settings import (
    check_bool,
    check_choice,
    check_int,
    check_number,
)
from anonfaces.synthesize.stylegan.pickle.tf import TFNetwork

#: ``G_style``'s own settings (``truncation_psi`` is not used: pass it to ``mapping``)
G_STYLE_DEFAULTS = {"truncation_psi": 0.7, "truncation_cutoff": 8, "truncation_psi_val": None,
                    "truncation_cutoff_val": None, "dlatent_avg_beta": 0.995, "style_mixing_prob": 0.9,
                    "is_training": False, "is_validation": False}
MAPPING_DEFAULTS = {"latent_size": 512, "label_size": 0, "dlatent_size": 512, "dlatent_broadcast": None,
                    "mapping_layers": 8, "mapping_fmaps": 512, "mapping_lrmul": 0.01, "mapping_nonlinearity": "lrelu",
                    "use_wscale": True, "normalize_latents": True, "dtype": "float32"}
SYNTHESIS_DEFAULTS = {"dlatent_size": 512, "num_channels": 3, "resolution": 1024, "fmap_base": 8192,
                      "fmap_decay": 1.0, "fmap_max": 512, "use_styles": True, "const_input_layer": True,
                      "use_noise": True, "randomize_noise": True, "nonlinearity": "lrelu", "use_wscale": True,
                      "use_pixel_norm": False, "use_instance_norm": True, "dtype": "float32", "fused_scale": "auto",
                      "blur_filter": [1, 2, 1], "structure": "auto", "force_clean_graph": False}
# G_style passes its other keyword arguments to both sub-networks, so each may hold any of these
KNOWN_SETTINGS = frozenset(G_STYLE_DEFAULTS) | frozenset(MAPPING_DEFAULTS) | frozenset(SYNTHESIS_DEFAULTS)
_NONLINEARITIES = ("relu", "lrelu")
_DTYPES = ("float32", "float16")  # float16 networks are computed in float32 here
_STRUCTURES = ("auto", "fixed", "linear", "recursive")  # all the same at lod = 0
#: (role in components, network name, build function) of G_style's sub-networks
_COMPONENTS = (("mapping", "G_mapping", "G_mapping"), ("synthesis", "G_synthesis", "G_synthesis"))


def _require(value: Any, name: str, want: Any, what: str) -> None:
    if value != want or isinstance(value, (bool, np.bool_)) != isinstance(want, bool):
        raise FileFormatError(f"generator setting {name}={value!r}: {what} is not supported (only {name}={want!r})")


def _settings(net: TFNetwork, defaults: dict) -> dict:
    unknown = set(net.static_kwargs) - KNOWN_SETTINGS
    if unknown:
        raise FileFormatError(f"network {net.name!r} has unknown settings {sorted(unknown)}; this is not NVIDIA's "
                              "StyleGAN (networks_stylegan.py) generator")
    return {**defaults, **net.static_kwargs}


def g_style_settings(Gs: TFNetwork) -> dict:
    """Checked keyword arguments for `GeneratorV1` (``mapping_kwargs``, ``synthesis_kwargs``) from ``G_style``."""
    if Gs.build_func_name != "G_style":
        hint = " (a StyleGAN2 TensorFlow generator; those are not supported)" if Gs.build_func_name == "G_main" else ""
        raise FileFormatError(f"network {Gs.name!r} is built by {Gs.build_func_name!r}{hint}; only StyleGAN (v1) "
                              "G_style generators are read from TensorFlow pickles")
    if set(Gs.components) != {role for role, _, _ in _COMPONENTS}:
        raise FileFormatError(f"G_style network {Gs.name!r} has components {sorted(Gs.components)}; "
                              "expected mapping and synthesis")
    for role, name, func in _COMPONENTS:
        comp = Gs.components[role]
        if (comp.name, comp.build_func_name) != (name, func) or comp.components:
            raise FileFormatError(f"the {role} component is {comp.name!r} built by {comp.build_func_name!r} with "
                                  f"{len(comp.components)} components; expected {name!r} built by {func!r}, none")
    g = _settings(Gs, G_STYLE_DEFAULTS)
    m = _settings(Gs.components["mapping"], MAPPING_DEFAULTS)
    s = _settings(Gs.components["synthesis"], SYNTHESIS_DEFAULTS)

    resolution = check_int(s["resolution"], "resolution", 4, 4096)
    if resolution & (resolution - 1):
        raise FileFormatError(f"resolution={resolution} must be a power of two")
    log2 = int(math.log2(resolution))
    num_layers = 2 * log2 - 2
    synthesis = {
        "dlatent_size": check_int(s["dlatent_size"], "synthesis.dlatent_size", 1, 4096),
        "num_channels": check_int(s["num_channels"], "num_channels", 1, 4),
        "resolution": resolution,
        "fmap_base": check_int(s["fmap_base"], "fmap_base", 1, 1 << 22),
        "fmap_decay": check_number(s["fmap_decay"], "fmap_decay", positive=False),
        "fmap_max": check_int(s["fmap_max"], "fmap_max", 1, 8192),
        "use_noise": check_bool(s["use_noise"], "use_noise"),
        "nonlinearity": check_choice(s["nonlinearity"], "nonlinearity", _NONLINEARITIES),
        "use_wscale": check_bool(s["use_wscale"], "synthesis.use_wscale"),
        "use_pixel_norm": check_bool(s["use_pixel_norm"], "use_pixel_norm"),
        "use_instance_norm": check_bool(s["use_instance_norm"], "use_instance_norm"),
        "fused_scale": check_choice(s["fused_scale"], "fused_scale", (True, False, "auto")),
    }
    _require(s["use_styles"], "use_styles", True, "a generator without style inputs")
    _require(s["const_input_layer"], "const_input_layer", True, "a generator without the learned constant input")
    check_choice(s["dtype"], "synthesis.dtype", _DTYPES)
    check_choice(s["structure"], "structure", _STRUCTURES)
    check_bool(s["randomize_noise"], "randomize_noise")  # replaced by noise_mode at run time
    check_bool(s["force_clean_graph"], "force_clean_graph")
    taps = s["blur_filter"]
    if taps is not None and taps != []:
        if not isinstance(taps, (list, tuple)) or not 1 <= len(taps) <= 16:
            raise FileFormatError(f"blur_filter={taps!r} must be None or a list of 1 to 16 numbers")
        taps = [check_number(t, "blur_filter tap", positive=False) for t in taps]
        if sum(taps) == 0:
            raise FileFormatError(f"blur_filter={taps!r} sums to 0 and cannot be normalised")
    synthesis["blur_filter"] = taps or None
    for stage in range(1, log2):
        nf = min(int(synthesis["fmap_base"] / (2.0 ** (stage * synthesis["fmap_decay"]))), synthesis["fmap_max"])
        if nf < 1:
            raise FileFormatError(f"fmap_base={synthesis['fmap_base']}, fmap_decay={synthesis['fmap_decay']} give "
                                  f"{nf} feature maps at {2 ** (stage + 1)} px")

    mapping = {
        "latent_size": check_int(m["latent_size"], "latent_size", 1, 4096),
        "dlatent_size": check_int(m["dlatent_size"], "mapping.dlatent_size", 1, 4096),
        "dlatent_broadcast": m["dlatent_broadcast"],
        "mapping_layers": check_int(m["mapping_layers"], "mapping_layers", 0, 32),
        "mapping_fmaps": check_int(m["mapping_fmaps"], "mapping_fmaps", 1, 8192),
        "mapping_lrmul": check_number(m["mapping_lrmul"], "mapping_lrmul"),
        "mapping_nonlinearity": check_choice(m["mapping_nonlinearity"], "mapping_nonlinearity", _NONLINEARITIES),
        "use_wscale": check_bool(m["use_wscale"], "mapping.use_wscale"),
        "normalize_latents": check_bool(m["normalize_latents"], "normalize_latents"),
    }
    _require(m["label_size"], "label_size", 0, "a conditional (labelled) generator")
    check_choice(m["dtype"], "mapping.dtype", _DTYPES)
    if mapping["dlatent_broadcast"] != num_layers or isinstance(mapping["dlatent_broadcast"], bool):
        raise FileFormatError(f"dlatent_broadcast={mapping['dlatent_broadcast']!r} must equal the {num_layers} "
                              f"synthesis layers of a {resolution} px generator")
    mapping["dlatent_broadcast"] = num_layers
    if mapping["dlatent_size"] != synthesis["dlatent_size"]:
        raise FileFormatError(f"the mapping's dlatent_size={mapping['dlatent_size']} differs from the synthesis' "
                              f"{synthesis['dlatent_size']}")
    if mapping["mapping_layers"] == 0 and mapping["latent_size"] != mapping["dlatent_size"]:
        raise FileFormatError(f"without mapping layers latent_size={mapping['latent_size']} must equal "
                              f"dlatent_size={mapping['dlatent_size']}")

    for key in ("truncation_psi", "truncation_psi_val", "dlatent_avg_beta", "style_mixing_prob"):
        if g[key] is not None:
            check_number(g[key], key, positive=False)
    for key in ("is_training", "is_validation"):
        check_bool(g[key], key)
    cutoff = g["truncation_cutoff"]
    if cutoff is not None:
        cutoff = check_int(cutoff, "truncation_cutoff", -1 << 20, 1 << 20)
        cutoff = None if cutoff <= 0 else cutoff  # G_style: a cutoff <= 0 disables truncation
    if g["truncation_cutoff_val"] is not None:
        check_int(g["truncation_cutoff_val"], "truncation_cutoff_val", -1 << 20, 1 << 20)
    mapping["truncation_cutoff"] = cutoff
    return {"mapping_kwargs": mapping, "synthesis_kwargs": synthesis}


def _num_features(stage: int, synthesis: dict) -> int:
    return min(int(synthesis["fmap_base"] / (2.0 ** (stage * synthesis["fmap_decay"]))), synthesis["fmap_max"])


def _unused_variables(settings: dict) -> tuple[dict, dict]:
    """(required, optional) variables of ``G_style`` that the lod = 0 generator does not use, by shape.

    Required: the progressive-growing level ``lod`` of ``G_style`` and of
    ``G_synthesis`` (must be 0). Optional: ``ToRGB_lod<k>`` for ``k >= 1``, which
    only the blends of progressive growing use.
    """
    s = settings["synthesis_kwargs"]
    log2 = int(math.log2(s["resolution"]))
    required = {"lod": (), "G_synthesis/lod": ()}
    optional = {}
    for lod in range(1, log2 - 1):
        nf = _num_features(log2 - lod - 1, s)
        optional[f"G_synthesis/ToRGB_lod{lod}/weight"] = (1, 1, nf, s["num_channels"])
        optional[f"G_synthesis/ToRGB_lod{lod}/bias"] = (s["num_channels"],)
    return required, optional


def generator_v1_from_record(Gs: TFNetwork):
    """Build our `GeneratorV1` from a stored ``G_style`` network and load its variables (shapes checked)."""
    import torch

    from anonfaces.synthesize.stylegan.networks_v1 import (
        GeneratorV1,
        state_key,
        tf_name,
    )

    settings = g_style_settings(Gs)
    required, optional = _unused_variables(settings)
    G = GeneratorV1(**settings)
    expected = G.state_dict()
    stored = Gs.all_variables()
    missing = sorted({tf_name(k) for k in expected} - set(stored)) + sorted(set(required) - set(stored))
    extra = sorted(n for n in stored if n not in required and n not in optional
                   and (tf_name(state_key(n)) != n or state_key(n) not in expected))
    if missing or extra:
        raise FileFormatError(f"the stored {Gs.name!r} does not match its settings: missing {missing[:5]}, "
                              f"unexpected {extra[:5]}")
    for name, arr in stored.items():
        if name in required:
            want = required[name]
        elif name in optional:
            want = optional[name]
        else:
            want = tuple(expected[state_key(name)].shape)
        if tuple(arr.shape) != tuple(want):
            raise FileFormatError(f"{name} has shape {list(arr.shape)} in the file, expected {list(want)}")
        if arr.dtype.kind != "f":
            raise FileFormatError(f"{name} has dtype {arr.dtype}, expected floating point")
        if not np.isfinite(arr).all():
            raise FileFormatError(f"{name} holds values that are not finite")
    for name in required:
        if float(stored[name]) != 0:
            raise FileFormatError(f"{name}={float(stored[name])} in the file: a progressive-growing snapshot; "
                                  "only finished networks (lod = 0) are supported")
    state = {key: torch.from_numpy(np.ascontiguousarray(stored[tf_name(key)], dtype=np.float32)) for key in expected}
    G.load_state_dict(state, strict=True)
    return G.eval().requires_grad_(False)
