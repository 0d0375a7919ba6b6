"""StyleGAN (v1) TensorFlow pickles: restricted reading, the PyTorch G_style, checks against numpy from the TF code.

No TensorFlow and no real NVIDIA weights here: the pickles are built by these
tests with the official structure (``(G, D, Gs)`` of ``dnnlib.tflib.network.Network``
states) and random arrays under the official variable names and layouts, read
from NVlabs/stylegan's ``training/networks_stylegan.py``. The numpy reference
below is written separately from ``networks_v1`` straight from that file's ops.
At the end, the outputs of NVIDIA's own TensorFlow ``G_style`` on small random
weights (``tests/data/stylegan_v1/*.npz``, made by ``make_reference.py`` there)
are compared with anonfaces' generator loaded from the same weights.
"""

from __future__ import annotations

import io
import json
import os
import pickle
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is the optional extra anonfaces[stylegan]")

from anonfaces.errors import FileFormatError, UnsafeFileError
from anonfaces.synthesize.stylegan import load_generator, read_network_pickle
from anonfaces.synthesize.stylegan.pickle.tf import TFNetwork
from anonfaces.synthesize.stylegan.pickle.writer import _GlobalRef, _Writer

LATENT = 16
SMALL = {"resolution": 32, "num_channels": 3, "label_size": 0, "latent_size": LATENT, "dlatent_size": LATENT,
         "mapping_layers": 3, "mapping_fmaps": 24, "fmap_base": 64, "fmap_max": 16}


# ----------------------------------------------------------------------------- writing official-shaped pickles


class NetworkOut:
    """Pickles as NVIDIA's Network does: ``Network.__new__(Network)``, then ``__setstate__(state)``."""

    def __init__(self, state: dict):
        self.state = state


def _save_network(pickler, obj: NetworkOut) -> None:
    pickler.save(_GlobalRef("dnnlib.tflib.network", "Network"))
    pickler.save(())
    pickler.write(pickle.NEWOBJ)
    pickler.memoize(obj)
    pickler.save(obj.state)
    pickler.write(pickle.BUILD)


class TFWriter(_Writer):
    dispatch: ClassVar[dict] = dict(_Writer.dispatch)
    dispatch[NetworkOut] = _save_network


def network(name: str, func: str, static_kwargs: dict, variables: list, components: dict | None = None,
            src: str = "# training/networks_stylegan.py would be here\n") -> NetworkOut:
    return NetworkOut({"version": 3, "name": name, "static_kwargs": dict(static_kwargs),
                       "components": dict(components or {}), "build_module_src": src, "build_func_name": func,
                       "variables": list(variables)})


def official_variables(seed: int = 0, **settings) -> dict[str, list]:
    """Random arrays under the names and shapes ``G_style``/``G_mapping``/``G_synthesis`` create (by network)."""
    s = {**SMALL, **settings}
    rng = np.random.RandomState(seed)

    def f32(*shape, scale=1.0):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    log2 = int(np.log2(s["resolution"]))

    def nf(stage):
        return min(int(s["fmap_base"] / (2.0 ** stage)), s["fmap_max"])

    mapping = []
    for i in range(s["mapping_layers"]):
        fin = s["latent_size"] if i == 0 else s["mapping_fmaps"]
        fout = s["dlatent_size"] if i == s["mapping_layers"] - 1 else s["mapping_fmaps"]
        mapping += [(f"Dense{i}/weight", f32(fin, fout, scale=100.0)),  # init std 1 / lrmul, as stored
                    (f"Dense{i}/bias", f32(fout, scale=10.0))]
    synthesis = [("lod", np.float32(0))]
    synthesis += [(f"noise{i}", f32(1, 1, 2 ** (i // 2 + 2), 2 ** (i // 2 + 2))) for i in range(2 * log2 - 2)]

    def epilogue(scope, c):
        return [(f"{scope}/Noise/weight", f32(c, scale=0.3)), (f"{scope}/bias", f32(c, scale=0.3)),
                (f"{scope}/StyleMod/weight", f32(s["dlatent_size"], 2 * c)),
                (f"{scope}/StyleMod/bias", f32(2 * c, scale=0.3))]

    synthesis += [("4x4/Const/const", f32(1, nf(1), 4, 4))] + epilogue("4x4/Const", nf(1))
    synthesis += [("4x4/Conv/weight", f32(3, 3, nf(1), nf(1)))] + epilogue("4x4/Conv", nf(1))
    for res in range(3, log2 + 1):
        scope = f"{2 ** res}x{2 ** res}"
        synthesis += [(f"{scope}/Conv0_up/weight", f32(3, 3, nf(res - 2), nf(res - 1)))]
        synthesis += epilogue(f"{scope}/Conv0_up", nf(res - 1))
        synthesis += [(f"{scope}/Conv1/weight", f32(3, 3, nf(res - 1), nf(res - 1)))]
        synthesis += epilogue(f"{scope}/Conv1", nf(res - 1))
    for res in range(2, log2 + 1):  # the template graph ('linear' structure) makes every ToRGB
        lod = log2 - res
        synthesis += [(f"ToRGB_lod{lod}/weight", f32(1, 1, nf(res - 1), s["num_channels"], scale=0.3)),
                      (f"ToRGB_lod{lod}/bias", f32(s["num_channels"], scale=0.1))]
    g_style = [("lod", np.float32(0)), ("dlatent_avg", f32(s["dlatent_size"], scale=0.5))]
    return {"G_style": g_style, "G_mapping": mapping, "G_synthesis": synthesis}


def g_style(name: str, variables: dict, static_kwargs: dict, *, func: str = "G_style",
            mapping_kwargs: dict | None = None) -> NetworkOut:
    num_layers = 2 * int(np.log2(static_kwargs.get("resolution", 1024))) - 2
    mapping = network("G_mapping", "G_mapping", {**static_kwargs, "dlatent_broadcast": num_layers,
                                                 **(mapping_kwargs or {})}, variables["G_mapping"])
    synthesis = network("G_synthesis", "G_synthesis", static_kwargs, variables["G_synthesis"])
    return network(name, func, static_kwargs, variables["G_style"], {"synthesis": synthesis, "mapping": mapping})


def write_v1_pickle(path, *, seed: int = 0, gs: NetworkOut | None = None, protocol: int = 4, **settings) -> dict:
    """Write ``(G, D, Gs)`` as NVIDIA's ``save_pkl`` does; returns Gs's variables by full name."""
    kwargs = {**SMALL, **settings}
    variables = official_variables(seed, **kwargs)
    G = g_style("G", official_variables(seed + 100, **kwargs), kwargs)
    D = network("D", "D_basic", {"num_channels": 3, "resolution": kwargs["resolution"], "label_size": 0},
                [("4x4/Dense0/weight", np.ones((4, 4), np.float32)), ("lod", np.float32(0))])
    Gs = gs if gs is not None else g_style("Gs", variables, kwargs)
    buf = io.BytesIO()
    TFWriter(buf, protocol=protocol).dump((G, D, Gs))
    path.write_bytes(buf.getvalue())
    full = dict(variables["G_style"])
    full.update((f"G_mapping/{k}", v) for k, v in variables["G_mapping"])
    full.update((f"G_synthesis/{k}", v) for k, v in variables["G_synthesis"])
    return full


@pytest.fixture(scope="module")
def v1_pkl(tmp_path_factory):
    path = tmp_path_factory.mktemp("stylegan_v1") / "karras2019stylegan-small.pkl"
    return path, write_v1_pickle(path)


@pytest.fixture(scope="module")
def G(v1_pkl):
    return load_generator(v1_pkl[0])


# ----------------------------------------------------------------------------- numpy reference from the TF code


def np_lrelu(x):
    return np.maximum(x, x * 0.2)


def np_conv_same(x, w):
    """tf.nn.conv2d(x, w, padding='SAME'), NCHW, HWIO, odd kernel: correlation over zero-padded input."""
    p = w.shape[0] // 2
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    win = np.lib.stride_tricks.sliding_window_view(xp, w.shape[:2], axis=(2, 3))  # [N, C, H, W, k, k]
    return np.einsum("nchwab,abco->nohw", win, w)


def np_conv_transpose_same_s2(x, w):
    """tf.nn.conv2d_transpose(x, w [K, K, out, in], output 2H x 2W, stride 2, 'SAME'), by its definition: the
    adjoint of the stride-2 'SAME' correlation of the 2H x 2W output, whose padding before is (K - 2) // 2;
    input pixel (i, j) adds x[i, j] * w[a, b] at output (2i + a - pad, 2j + b - pad)."""
    n, _, h, wd = x.shape
    k = w.shape[0]
    pad = (k - 2) // 2
    out = np.zeros((n, w.shape[2], 2 * h + k, 2 * wd + k))
    for a in range(k):
        for b in range(k):
            out[:, :, a:a + 2 * h:2, b:b + 2 * wd:2] += np.einsum("nchw,oc->nohw", x, w[a, b])
    return out[:, :, pad:pad + 2 * h, pad:pad + 2 * wd]


def np_fused_kernel(w):
    """upscale2d_conv2d's fused kernel, literally: transpose to [k, k, out, in], pad 1, add the four shifts."""
    w = w.transpose(0, 1, 3, 2)
    w = np.pad(w, ((1, 1), (1, 1), (0, 0), (0, 0)))
    return w[1:, 1:] + w[:-1, 1:] + w[1:, :-1] + w[:-1, :-1]


def np_upscale(x):
    return x.repeat(2, axis=2).repeat(2, axis=3)


def np_blur(x):
    f = np.outer([1.0, 2.0, 1.0], [1.0, 2.0, 1.0])
    f /= f.sum()
    w = np.zeros((3, 3, x.shape[1], x.shape[1]))
    for ch in range(x.shape[1]):
        w[:, :, ch, ch] = f
    return np_conv_same(x, w)


def np_instance_norm(x, eps=1e-8):
    x = x - x.mean(axis=(2, 3), keepdims=True)
    return x / np.sqrt(np.mean(x ** 2, axis=(2, 3), keepdims=True) + eps)


def np_style_mod(x, dlatent, w, b):
    style = dlatent @ (w * (1.0 / np.sqrt(w.shape[0]))) + b  # dense(gain=1, use_wscale) + apply_bias
    style = style.reshape(-1, 2, x.shape[1], 1, 1)
    return x * (style[:, 0] + 1) + style[:, 1]


def np_g_style(v: dict, z, *, psi=1.0, cutoff=8, fused_scale="auto", noise=True, resolution=32,
               mapping_layers=3):
    """NVIDIA's Gs.run(z, None, truncation_psi, truncation_cutoff, randomize_noise=False) at lod 0, in float64."""
    v = {k: np.asarray(a, np.float64) for k, a in v.items()}
    x = np.asarray(z, np.float64)
    x = x / np.sqrt(np.mean(x ** 2, axis=1, keepdims=True) + 1e-8)  # pixel_norm
    for i in range(mapping_layers):
        w = v[f"G_mapping/Dense{i}/weight"]
        x = np_lrelu(x @ (w * (np.sqrt(2) / np.sqrt(w.shape[0]) * 0.01)) + v[f"G_mapping/Dense{i}/bias"] * 0.01)
    log2 = int(np.log2(resolution))
    num_layers = 2 * log2 - 2
    dl = np.repeat(x[:, None], num_layers, axis=1)
    coefs = np.where(np.arange(num_layers)[None, :, None] < cutoff, psi, 1.0)
    dl = v["dlatent_avg"] + (dl - v["dlatent_avg"]) * coefs
    return dl, np_synthesis(v, dl, fused_scale=fused_scale, noise=noise, resolution=resolution)


def np_synthesis(v, dl, *, fused_scale="auto", noise=True, resolution=32):
    v = {k: np.asarray(a, np.float64) for k, a in v.items()}
    log2 = int(np.log2(resolution))
    s = "G_synthesis/"

    def epilogue(x, scope, idx):
        if noise:
            x = x + v[f"{s}noise{idx}"] * v[f"{s}{scope}/Noise/weight"].reshape(1, -1, 1, 1)
        x = np_lrelu(x + v[f"{s}{scope}/bias"].reshape(1, -1, 1, 1))
        x = np_instance_norm(x)
        return np_style_mod(x, dl[:, idx], v[f"{s}{scope}/StyleMod/weight"], v[f"{s}{scope}/StyleMod/bias"])

    def wscaled(name):
        w = v[name]
        return w * (np.sqrt(2) / np.sqrt(np.prod(w.shape[:-1])))

    x = np.tile(v[f"{s}4x4/Const/const"], (dl.shape[0], 1, 1, 1))
    x = epilogue(x, "4x4/Const", 0)
    x = epilogue(np_conv_same(x, wscaled(f"{s}4x4/Conv/weight")), "4x4/Conv", 1)
    for res in range(3, log2 + 1):
        scope = f"{2 ** res}x{2 ** res}"
        w = wscaled(f"{s}{scope}/Conv0_up/weight")
        fused = 2 ** res >= 128 if fused_scale == "auto" else fused_scale
        x = np_conv_transpose_same_s2(x, np_fused_kernel(w)) if fused else np_conv_same(np_upscale(x), w)
        x = epilogue(np_blur(x), f"{scope}/Conv0_up", res * 2 - 4)
        x = epilogue(np_conv_same(x, wscaled(f"{s}{scope}/Conv1/weight")), f"{scope}/Conv1", res * 2 - 3)
    w = v[f"{s}ToRGB_lod0/weight"]
    return np_conv_same(x, w / np.sqrt(w.shape[2])) + v[f"{s}ToRGB_lod0/bias"].reshape(1, -1, 1, 1)


# ----------------------------------------------------------------------------- reading


def test_v1_pickle_is_read_as_data_with_the_official_names(v1_pkl, pickle_globals):
    path, variables = v1_pkl
    names = pickle_globals(path)
    assert ("dnnlib.tflib.network", "Network") in names
    assert {m for m, _ in names} <= {"dnnlib.tflib.network", "numpy", "numpy.core.multiarray",
                                     "numpy._core.multiarray", "numpy.core.numeric", "numpy._core.numeric", "_codecs"}
    G, D, Gs = read_network_pickle(path)
    assert all(isinstance(n, TFNetwork) for n in (G, D, Gs))
    assert (Gs.name, Gs.build_func_name, D.build_func_name) == ("Gs", "G_style", "D_basic")
    assert set(Gs.components) == {"mapping", "synthesis"} and Gs.static_kwargs["resolution"] == 32
    stored = Gs.all_variables()
    assert set(stored) == set(variables)
    for name in ("G_mapping/Dense0/weight", "G_synthesis/4x4/Const/const", "G_synthesis/noise0",
                 "G_synthesis/4x4/Conv/Noise/weight", "G_synthesis/8x8/Conv0_up/StyleMod/weight",
                 "G_synthesis/ToRGB_lod0/weight", "dlatent_avg"):
        assert np.array_equal(stored[name], variables[name]), name
    assert stored["lod"].shape == () and len(Gs.build_module_src_sha1) == 40


def test_state_dict_holds_the_variables_under_their_tf_names(G, v1_pkl):
    from anonfaces.synthesize.stylegan.networks_v1 import state_key, tf_name

    _, variables = v1_pkl
    state = G.state_dict()
    unused = {"lod", "G_synthesis/lod"} | {n for n in variables if "ToRGB_lod" in n and "lod0" not in n}
    assert {tf_name(k) for k in state} == set(variables) - unused
    for name in set(variables) - unused:
        assert state_key(name) in state and np.array_equal(state[state_key(name)].numpy(), variables[name]), name


# ----------------------------------------------------------------------------- rendering


def test_load_and_render(G):
    assert (G.z_dim, G.w_dim, G.num_ws, G.img_resolution, G.img_channels) == (LATENT, LATENT, 8, 32, 3)
    assert not any(p.requires_grad for p in G.parameters()) and not G.training
    z = torch.from_numpy(np.random.RandomState(1).standard_normal((3, LATENT)).astype(np.float32))
    ws = G.mapping(z, truncation_psi=1.0)
    assert ws.shape == (3, G.num_ws, G.w_dim) and torch.equal(ws[:, 0], ws[:, -1])
    img = G.synthesis(ws, noise_mode="const")
    assert img.shape == (3, 3, 32, 32) and torch.isfinite(img).all()
    assert 0.05 < float(img.std()) and float(img.abs().max()) < 4, (float(img.std()), float(img.abs().max()))
    assert torch.equal(img, G.synthesis(ws, noise_mode="const"))  # deterministic
    assert torch.equal(G(z), img)
    assert not torch.allclose(G.synthesis(ws, noise_mode="random"), img, atol=1e-3)
    assert not torch.allclose(G.synthesis(ws, noise_mode="none"), img, atol=1e-3)
    assert not torch.allclose(img[0], img[1], atol=1e-3)


def test_truncation_toward_dlatent_avg(G, v1_pkl):
    _, variables = v1_pkl
    avg = torch.from_numpy(variables["dlatent_avg"])
    assert torch.equal(G.w_avg, avg) and torch.equal(G.mapping.w_avg, avg)
    z = torch.randn(2, LATENT)
    w0 = G.mapping(z, truncation_psi=0.0)  # NVIDIA's default cutoff 8 covers all 8 layers at 32 px
    assert torch.allclose(w0, avg.expand_as(w0), atol=1e-6)
    img0 = G.synthesis(w0)
    assert torch.allclose(img0, G.synthesis(avg.expand(1, G.num_ws, -1)).expand_as(img0), atol=1e-5)
    w1 = G.mapping(z)
    half = G.mapping(z, truncation_psi=0.5, truncation_cutoff=2)  # only the first two layers
    assert torch.allclose(half[:, :2], (w1[:, :2] + avg) / 2, atol=1e-5)
    assert torch.allclose(half[:, 2:], w1[:, 2:], atol=1e-6)  # avg + (w - avg) * 1, as G_style computes it
    assert torch.allclose(G.mapping(z, truncation_psi=0.5, truncation_cutoff=None), (w1 + avg) / 2, atol=1e-5)


@pytest.mark.parametrize("fused_scale", ["auto", True, False])
def test_generator_matches_numpy_written_from_the_tf_code(tmp_path, fused_scale):
    variables = write_v1_pickle(tmp_path / "g.pkl", seed=3, fused_scale=fused_scale)
    G = load_generator(tmp_path / "g.pkl")
    z = np.random.RandomState(2).standard_normal((2, LATENT))
    for psi in (1.0, 0.7):
        ws_ref, img_ref = np_g_style(variables, z, psi=psi, fused_scale=fused_scale)
        ws = G.mapping(torch.from_numpy(z.astype(np.float32)), truncation_psi=psi)
        assert np.allclose(ws.numpy(), ws_ref, atol=1e-4, rtol=1e-4)
        img = G.synthesis(ws, noise_mode="const").numpy()
        assert np.abs(img - img_ref).max() < 1e-3 * max(1.0, np.abs(img_ref).max()), np.abs(img - img_ref).max()
    img = G.synthesis(torch.from_numpy(ws_ref.astype(np.float32)), noise_mode="none").numpy()
    assert np.abs(img - np_synthesis(variables, ws_ref, fused_scale=fused_scale, noise=False)).max() < 1e-3
    # the pickle's G is another network
    other = load_generator(tmp_path / "g.pkl", key="G")
    assert not torch.allclose(other.synthesis(ws), G.synthesis(ws), atol=1e-3)


@pytest.mark.slow
def test_128px_uses_the_fused_upscale_where_nvidia_does(tmp_path):
    settings = {"resolution": 128, "fmap_base": 256, "fmap_max": 8}
    variables = write_v1_pickle(tmp_path / "g128.pkl", seed=5, **settings)
    G = load_generator(tmp_path / "g128.pkl")
    assert G.num_ws == 12 and getattr(G.synthesis, "128x128").Conv0_up.fused
    assert not getattr(G.synthesis, "64x64").Conv0_up.fused
    z = np.random.RandomState(0).standard_normal((1, LATENT))
    _, ref = np_g_style(variables, z, resolution=128)
    img = G(torch.from_numpy(z.astype(np.float32))).numpy()
    assert img.shape == (1, 3, 128, 128) and np.abs(img - ref).max() < 1e-3 * max(1.0, np.abs(ref).max())


def test_projection_and_synthesizer_interface(G):
    from anonfaces.synthesize.stylegan.projector import project

    target = (np.random.RandomState(0).rand(32, 32, 3) * 255).astype(np.uint8)
    res = project(G, target, num_steps=3, space="w+", random_state=0, progress=False, w_avg_samples=50)
    assert res.latent.shape == (G.num_ws, G.w_dim) and res.image.shape == (32, 32, 3)
    assert hasattr(G.mapping, "w_avg") and next(G.parameters()).device.type == "cpu"


def test_top_level_load_generator(v1_pkl):
    import anonfaces

    assert anonfaces.load_generator(v1_pkl[0]).num_ws == 8


# ----------------------------------------------------------------------------- single ops, by hand and numpy


def test_epilogue_ops_by_hand():
    from anonfaces.synthesize.stylegan.networks_v1 import instance_norm, style_mod

    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, 0.0], [0.0, 2.0]]]])  # [1, 2, 2, 2]
    y = instance_norm(x)
    a = np.array([-1.5, -0.5, 0.5, 1.5]) / np.sqrt(1.25 + 1e-8)  # mean 2.5, mean square of the rest 1.25
    b = np.array([-0.5, -0.5, -0.5, 1.5]) / np.sqrt(0.75 + 1e-8)
    assert np.allclose(y.numpy().reshape(2, 4), [a, b], atol=1e-6)
    style = torch.tensor([[1.0, -0.5, 0.25, 2.0]])  # [scale - 1 for 2 channels, bias for 2 channels]
    out = style_mod(y, style).numpy().reshape(2, 4)
    assert np.allclose(out, [a * 2.0 + 0.25, b * 0.5 + 2.0], atol=1e-6)


def test_layer_epilogue_matches_numpy():
    from anonfaces.synthesize.stylegan.networks_v1 import SynthesisLayerV1

    rng = np.random.RandomState(0)
    layer = SynthesisLayerV1(3, 4, kind="conv", dlatent_size=5, use_wscale=True, use_noise=True,
                             nonlinearity="lrelu", use_pixel_norm=False, use_instance_norm=True)
    params = {n: rng.standard_normal(tuple(p.shape)).astype(np.float32) for n, p in layer.named_parameters()}
    layer.load_state_dict({k: torch.from_numpy(v) for k, v in params.items()})
    x, w, noise = rng.standard_normal((2, 3, 5, 5)), rng.standard_normal((2, 5)), rng.standard_normal((1, 1, 5, 5))
    y = np_conv_same(x, params["weight"] * np.sqrt(2) / np.sqrt(9 * 3))
    y = np_lrelu(y + noise * params["Noise.weight"].reshape(1, -1, 1, 1) + params["bias"].reshape(1, -1, 1, 1))
    y = np_style_mod(np_instance_norm(y), w, params["StyleMod.weight"], params["StyleMod.bias"])
    got = layer(torch.from_numpy(x.astype(np.float32)), torch.from_numpy(w.astype(np.float32)),
                torch.from_numpy(noise.astype(np.float32)))
    assert np.allclose(got.detach().numpy(), y, atol=1e-4)


def test_fused_upscale_conv_matches_tf_conv2d_transpose():
    from anonfaces.synthesize.stylegan.networks_v1 import (
        conv2d_same,
        fused_upscale_kernel,
        upscale2d,
        upscale2d_conv2d_fused,
    )

    rng = np.random.RandomState(1)
    x, w = rng.standard_normal((2, 3, 5, 4)), rng.standard_normal((3, 3, 3, 6))
    xt, wt = torch.from_numpy(x.astype(np.float32)), torch.from_numpy(w.astype(np.float32))
    ref = np_conv_transpose_same_s2(x, np_fused_kernel(w))
    got = upscale2d_conv2d_fused(xt, wt).numpy()
    assert got.shape == (2, 6, 10, 8) and np.allclose(got, ref, atol=1e-4)
    assert np.allclose(fused_upscale_kernel(wt).numpy(), np_fused_kernel(w).transpose(0, 1, 3, 2), atol=1e-5)
    # the fused path is the nearest-neighbour upscale followed by a true convolution with the 3x3 kernel
    # (its spatial flip correlated); NVIDIA's non-fused path correlates with the kernel itself
    assert np.allclose(got, np_conv_same(np_upscale(x), w[::-1, ::-1]), atol=1e-4)
    assert np.allclose(conv2d_same(upscale2d(xt), wt).numpy(), np_conv_same(np_upscale(x), w), atol=1e-4)


# ----------------------------------------------------------------------------- refusals


class _System:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def _variables_with(seed=0, **replace):
    v = official_variables(seed)
    for net, items in replace.items():
        v[net] = items(v[net])
    return v


def test_malicious_v1_pickle_is_refused_without_running(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    v = _variables_with(G_mapping=lambda items: [*items, ("Dense9/weight", _System())])
    write_v1_pickle(tmp_path / "evil.pkl", gs=g_style("Gs", v, SMALL))
    with pytest.raises(UnsafeFileError, match="os.system|posix.system"):
        load_generator(tmp_path / "evil.pkl")
    assert not (tmp_path / "PWNED").exists()


def test_network_state_with_unexpected_keys_is_refused(tmp_path):
    gs = g_style("Gs", official_variables(), SMALL)
    gs.state["run_on_load"] = "import os"
    write_v1_pickle(tmp_path / "keys.pkl", gs=gs)
    with pytest.raises(UnsafeFileError, match="unexpected keys"):
        load_generator(tmp_path / "keys.pkl")
    gs = g_style("Gs", official_variables(), SMALL)
    gs.state["variables"] = {"lod": np.float32(0)}  # not a list of pairs
    write_v1_pickle(tmp_path / "vars.pkl", gs=gs)
    with pytest.raises(UnsafeFileError, match="variables"):
        load_generator(tmp_path / "vars.pkl")


def test_other_dnnlib_globals_are_refused(tmp_path):
    class Run:
        def __reduce__(self):
            return _GlobalRef("dnnlib.tflib.tfutil", "run"), ([],)

    buf = io.BytesIO()
    TFWriter(buf, protocol=4).dump((Run(), Run(), Run()))
    with pytest.raises(UnsafeFileError, match="dnnlib.tflib.tfutil.run"):
        read_network_pickle(buf.getvalue())


def test_build_module_src_is_never_executed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    kwargs = dict(SMALL)
    v = official_variables()
    src = "open('PWNED', 'w').write('x')\n"
    mapping = network("G_mapping", "G_mapping", {**kwargs, "dlatent_broadcast": 8}, v["G_mapping"], src=src)
    synthesis = network("G_synthesis", "G_synthesis", kwargs, v["G_synthesis"], src=src)
    gs = network("Gs", "G_style", kwargs, v["G_style"], {"mapping": mapping, "synthesis": synthesis}, src=src)
    write_v1_pickle(tmp_path / "g.pkl", gs=gs)
    assert b"PWNED" in (tmp_path / "g.pkl").read_bytes()
    assert load_generator(tmp_path / "g.pkl").num_ws == 8
    assert not (tmp_path / "PWNED").exists()


def _replace(name, value):
    return lambda items: [(n, value if n == name else a) for n, a in items]


@pytest.mark.parametrize("case, match", [
    ("shape", "G_synthesis/8x8/Conv1/weight has shape"),
    ("missing", "missing .*G_mapping/Dense2/bias"),
    ("unexpected", "unexpected .*G_synthesis/64x64/Conv1/weight"),
    ("lod", "progressive-growing"),
    ("labels", "label_size"),
    ("stylegan2", "StyleGAN2"),
    ("setting", "unknown settings"),
    ("resolution", "does not match"),
    ("broadcast", "dlatent_broadcast"),
])
def test_wrong_v1_files_are_refused(tmp_path, case, match):
    v = official_variables()
    kwargs, func, mapping_kwargs = dict(SMALL), "G_style", None
    if case == "shape":
        v = _variables_with(G_synthesis=_replace("8x8/Conv1/weight", np.zeros((3, 3, 16, 15), np.float32)))
    elif case == "missing":
        v["G_mapping"] = [(n, a) for n, a in v["G_mapping"] if n != "Dense2/bias"]
    elif case == "unexpected":
        v["G_synthesis"].append(("64x64/Conv1/weight", np.zeros((3, 3, 2, 2), np.float32)))
    elif case == "lod":
        v = _variables_with(G_style=_replace("lod", np.float32(1.0)))
    elif case == "labels":
        kwargs["label_size"] = 10
    elif case == "stylegan2":  # NVIDIA's StyleGAN2 TF code writes version-4 states of G_main
        func = "G_main"
    elif case == "setting":
        kwargs["use_magic"] = True
    elif case == "resolution":
        kwargs["resolution"] = 64  # the stored variables are for 32 px
        mapping_kwargs = {"dlatent_broadcast": 10}
    elif case == "broadcast":
        mapping_kwargs = {"dlatent_broadcast": 18}
    gs = g_style("Gs", v, kwargs, func=func, mapping_kwargs=mapping_kwargs)
    if case == "stylegan2":
        for net in (gs, *gs.state["components"].values()):
            net.state["version"] = 4
    write_v1_pickle(tmp_path / f"{case}.pkl", gs=gs)
    with pytest.raises(FileFormatError, match=match):
        load_generator(tmp_path / f"{case}.pkl")


def test_tuple_of_other_things_is_not_a_tf_pickle(tmp_path):
    (tmp_path / "t.pkl").write_bytes(pickle.dumps((1, 2, 3)))
    with pytest.raises(FileFormatError, match="not of dnnlib.tflib.network.Network"):
        load_generator(tmp_path / "t.pkl")


# ----------------------------------------------------------------------------- NVIDIA's TensorFlow code

NVIDIA_REFERENCES = sorted((Path(__file__).parent.parent / "data" / "stylegan_v1").glob("*.npz"))


def _split_by_network(arrays) -> dict[str, list]:
    """``var/G_mapping/Dense0/weight`` etc. back into each network's own variables, in the stored order."""
    by_network: dict[str, list] = {"G_style": [], "G_mapping": [], "G_synthesis": []}
    for key in arrays.files:
        if key.startswith("var/"):
            name = key[len("var/"):]
            net, _, local = name.partition("/")
            if net in ("G_mapping", "G_synthesis"):
                by_network[net].append((local, arrays[key]))
            else:
                by_network["G_style"].append((name, arrays[key]))
    return by_network


def test_nvidia_references_are_present():
    assert {p.stem for p in NVIDIA_REFERENCES} >= {"res32", "res128"}


@pytest.mark.parametrize("ref", NVIDIA_REFERENCES, ids=lambda p: p.stem)
def test_generator_matches_nvidia_tensorflow(tmp_path, ref):
    """Images and dlatents from NVlabs/stylegan's G_style run in TensorFlow (made by make_reference.py)."""
    arrays = np.load(ref)
    static_kwargs = json.loads(str(arrays["static_kwargs"]))
    by_network = _split_by_network(arrays)
    write_v1_pickle(tmp_path / "g.pkl", gs=g_style("Gs", by_network, static_kwargs), **static_kwargs)
    import anonfaces

    G = anonfaces.load_generator(tmp_path / "g.pkl")
    res = static_kwargs["resolution"]
    assert (G.img_resolution, G.num_ws) == (res, 2 * int(np.log2(res)) - 2)
    assert getattr(G.synthesis, f"{res}x{res}").Conv0_up.fused == (res >= 128)  # NVIDIA's fused_scale='auto'
    z = torch.from_numpy(arrays["latents"])
    for psi, cutoff, dlatents_tf, images_tf in zip(arrays["psi"], arrays["cutoff"], arrays["dlatents"],
                                                    arrays["images"], strict=True):
        ws = G.mapping(z, truncation_psi=float(psi), truncation_cutoff=int(cutoff))
        img = G.synthesis(ws, noise_mode="const")
        assert ws.shape == dlatents_tf.shape and img.shape == images_tf.shape
        ws_diff = np.abs(ws.numpy() - dlatents_tf).max()
        img_diff = np.abs(img.numpy() - images_tf).max()
        assert ws_diff < 1e-5 * max(1.0, np.abs(dlatents_tf).max()), (psi, ws_diff)
        assert img_diff < 1e-4 * max(1.0, np.abs(images_tf).max()), (psi, img_diff)
        # from NVIDIA's dlatents too, so that a mapping difference cannot hide one in synthesis
        img_from_tf_ws = G.synthesis(torch.from_numpy(dlatents_tf), noise_mode="const").numpy()
        assert np.abs(img_from_tf_ws - images_tf).max() < 1e-4 * max(1.0, np.abs(images_tf).max())
