"""The StyleGAN (v1) generator, NVIDIA's ``G_style``, as plain PyTorch modules.

Followed: ``training/networks_stylegan.py`` of NVIDIA's ``NVlabs/stylegan``
repository (functions ``G_style``, ``G_mapping``, ``G_synthesis`` and the ops
they call: ``get_weight``, ``dense``, ``conv2d``, ``upscale2d_conv2d``,
``apply_bias``, ``leaky_relu``, ``pixel_norm``, ``instance_norm``,
``style_mod``, ``apply_noise``, ``blur2d``, ``upscale2d``), for inference at
``lod = 0`` (the finished network; progressive-growing blends are not
implemented). The code is this project's own, written from reading that file.

The module tree mirrors the TensorFlow variable scopes, and parameters keep
TensorFlow's layouts, so ``state_dict()`` holds the pickle's variables under
their own names with ``/`` -> ``.`` (`state_key`), for example

* ``G_mapping/Dense0/weight`` ``[in, out]`` -> ``mapping.Dense0.weight`` (also ``.bias``);
* ``dlatent_avg`` ``[dlatent_size]`` (a variable of ``G_style`` itself) -> ``mapping.dlatent_avg``;
* ``G_synthesis/noise0`` ``[1, 1, 4, 4]`` -> ``synthesis.noise0`` (one per layer);
* ``G_synthesis/4x4/Const/const`` ``[1, C, 4, 4]`` -> ``synthesis.4x4.Const.const``;
* ``G_synthesis/8x8/Conv0_up/weight`` ``[3, 3, in, out]`` (HWIO) -> ``synthesis.8x8.Conv0_up.weight``,
  with ``.../Noise/weight`` ``[out]``, ``.../bias`` ``[out]`` and ``.../StyleMod/weight``
  ``[dlatent_size, 2 * out]`` / ``.../StyleMod/bias`` ``[2 * out]`` beside it;
* ``G_synthesis/ToRGB_lod0/weight`` ``[1, 1, C, channels]`` -> ``synthesis.ToRGB_lod0.weight``.

Weights are stored unscaled and multiplied at run time by ``get_weight``'s
coefficient (``gain / sqrt(fan_in) * lrmul`` with ``use_wscale``, else ``lrmul``).
Each synthesis layer ends with the "epilogue": noise (per-pixel, scaled by a
learned per-channel strength), bias, leaky ReLU (slope 0.2, no gain), optional
pixel norm, instance norm, then style modulation ``x * (s[:C] + 1) + s[C:]``
with ``s = dense(w) + bias``. Upsampling is nearest-neighbour followed by the
3x3 convolution, or, where ``fused_scale`` says so ('auto': outputs of 128 px
and more), one stride-2 transposed convolution with the 4x4 kernel made by
summing the four 1-pixel shifts of the 3x3 one; then the [1, 2, 1] blur.

Shapes: ``z`` ``[N, z_dim]``; ``ws`` ``[N, num_ws, w_dim]`` (``num_ws = 2 *
log2(resolution) - 2``, e.g. 18 at 1024 px); images ``[N, channels, H, W]``,
about -1..1 (NVIDIA's ``drange [-1, 1]``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from anonfaces.errors import BadInputError
from anonfaces.synthesize.stylegan.networks import NOISE_MODES, _check_shape

SQRT2 = math.sqrt(2.0)

#: prefix of each sub-network's TensorFlow variables -> prefix of our state_dict keys
_PREFIXES = {"G_mapping/": "mapping.", "G_synthesis/": "synthesis."}


def state_key(tf_name: str) -> str:
    """Our ``state_dict`` key for a TensorFlow variable name (``G_synthesis/4x4/Const/const`` -> ...)."""
    for tf_prefix, prefix in _PREFIXES.items():
        if tf_name.startswith(tf_prefix):
            return prefix + tf_name[len(tf_prefix):].replace("/", ".")
    return "mapping." + tf_name.replace("/", ".")  # G_style's own variables (dlatent_avg)


def tf_name(key: str) -> str:
    """The TensorFlow variable name of one of our ``state_dict`` keys (the inverse of `state_key`)."""
    if key == "mapping.dlatent_avg":
        return "dlatent_avg"
    prefix, rest = key.split(".", 1)
    tf_prefix = {prefix: tf_prefix for tf_prefix, prefix in _PREFIXES.items()}[prefix + "."]
    return tf_prefix + rest.replace(".", "/")


# --------------------------------------------------------------------------- ops


def runtime_coef(fan_in: int, gain: float, use_wscale: bool, lrmul: float = 1.0) -> float:
    """``get_weight``'s run-time multiplier of the stored weights (equalised learning rate)."""
    return gain / math.sqrt(fan_in) * lrmul if use_wscale else lrmul


def activation(x: torch.Tensor, name: str) -> torch.Tensor:
    if name == "lrelu":
        return torch.maximum(x, x * 0.2)
    if name == "relu":
        return F.relu(x)
    return x


def pixel_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Scale each feature vector (axis 1) to unit root-mean-square."""
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


def instance_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Zero mean and unit root-mean-square over each feature map of ``[N, C, H, W]``."""
    x = x - x.mean(dim=[2, 3], keepdim=True)
    return x * (x.square().mean(dim=[2, 3], keepdim=True) + eps).rsqrt()


def style_mod(x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """``x`` ``[N, C, H, W]`` times ``style[:, :C] + 1`` plus ``style[:, C:]`` (style ``[N, 2C]``)."""
    n, c = x.shape[:2]
    style = style.reshape(n, 2, c, 1, 1)
    return x * (style[:, 0] + 1) + style[:, 1]


def blur2d(x: torch.Tensor, taps, normalize: bool = True) -> torch.Tensor:
    """Depthwise correlation with the outer product of ``taps``, zero padding as TensorFlow's 'SAME'."""
    f = torch.as_tensor(taps, dtype=torch.float32, device=x.device)
    if f.ndim == 1:
        f = torch.outer(f, f)
    if normalize:
        f = f / f.sum()
    kh, kw = f.shape
    if (kh, kw) == (1, 1) and float(f[0, 0]) == 1:
        return x
    c = x.shape[1]
    x = F.pad(x, [(kw - 1) // 2, kw // 2, (kh - 1) // 2, kh // 2])
    return F.conv2d(x, f.to(x.dtype)[None, None].repeat(c, 1, 1, 1), groups=c)


def upscale2d(x: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """Nearest-neighbour upsampling (each pixel repeated ``factor`` x ``factor`` times)."""
    return x.repeat_interleave(factor, dim=2).repeat_interleave(factor, dim=3)


def conv2d_same(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """TensorFlow's ``conv2d(x, w, padding='SAME')`` for NCHW ``x`` and an HWIO ``w`` of odd size."""
    kh, kw = w.shape[:2]
    return F.conv2d(x, w.permute(3, 2, 0, 1), padding=[kh // 2, kw // 2])


def fused_upscale_kernel(w: torch.Tensor) -> torch.Tensor:
    """The (k+1)x(k+1) kernel of the fused path: the sum of the four 1-pixel shifts of HWIO ``w``."""
    w = F.pad(w.permute(2, 3, 0, 1), [1, 1, 1, 1])  # [I, O, k+2, k+2]
    w = w[:, :, 1:, 1:] + w[:, :, :-1, 1:] + w[:, :, 1:, :-1] + w[:, :, :-1, :-1]
    return w.permute(2, 3, 0, 1)  # HWIO, [k+1, k+1, I, O]


def upscale2d_conv2d_fused(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``upscale2d_conv2d`` with ``fused_scale=True``: TensorFlow's stride-2 'SAME' ``conv2d_transpose``
    of ``x`` with `fused_upscale_kernel` (HWIO ``w`` of odd size k; output 2H x 2W)."""
    k = w.shape[0]
    wf = fused_upscale_kernel(w).permute(2, 3, 0, 1)  # [I, O, k+1, k+1], what conv_transpose2d wants
    return F.conv_transpose2d(x, wf, stride=2, padding=k // 2)


# --------------------------------------------------------------------------- layers


class Dense(nn.Module):
    """``dense`` + ``apply_bias`` (+ activation): ``act(x @ (W * coef) + b * lrmul)``, ``W`` ``[in, out]``."""

    def __init__(self, in_features: int, out_features: int, *, gain: float, use_wscale: bool, lrmul: float = 1.0,
                 act: str = "linear"):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros([in_features, out_features]))
        self.bias = nn.Parameter(torch.zeros([out_features]))
        self.weight_coef = runtime_coef(in_features, gain, use_wscale, lrmul)
        self.bias_coef = lrmul
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return activation(x.matmul(self.weight * self.weight_coef) + self.bias * self.bias_coef, self.act)


class StyleMod(Dense):
    """The ``StyleMod`` scope: an affine map of the layer's latent to ``[scale - 1, bias]`` per channel."""

    def __init__(self, dlatent_size: int, channels: int, *, use_wscale: bool):
        super().__init__(dlatent_size, 2 * channels, gain=1.0, use_wscale=use_wscale)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return style_mod(x, super().forward(w))


class Noise(nn.Module):
    """The ``Noise`` scope: add ``noise`` ``[N or 1, 1, H, W]`` times a learned per-channel strength."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros([channels]))

    def forward(self, x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return x + noise * self.weight.reshape(1, -1, 1, 1)


class SynthesisLayerV1(nn.Module):
    """One scope of ``G_synthesis`` (``4x4/Const``, ``4x4/Conv``, ``RxR/Conv0_up``, ``RxR/Conv1``) and its epilogue.

    ``kind`` is ``"const"`` (learned 4x4 input), ``"conv"`` (3x3) or ``"up"``
    (2x upsampling 3x3, fused or not, then the blur).
    """

    def __init__(self, in_channels: int, out_channels: int, *, kind: str, dlatent_size: int, use_wscale: bool,
                 use_noise: bool, nonlinearity: str, use_pixel_norm: bool, use_instance_norm: bool,
                 fused: bool = False, blur_filter=None, kernel: int = 3):
        super().__init__()
        self.kind = kind
        self.fused = fused
        self.blur_filter = list(blur_filter) if blur_filter else None
        self.nonlinearity = nonlinearity
        self.use_pixel_norm = use_pixel_norm
        self.use_instance_norm = use_instance_norm
        if kind == "const":
            self.const = nn.Parameter(torch.ones([1, out_channels, 4, 4]))
        else:
            self.weight = nn.Parameter(torch.zeros([kernel, kernel, in_channels, out_channels]))  # HWIO
            self.weight_coef = runtime_coef(kernel * kernel * in_channels, SQRT2, use_wscale)
        if use_noise:
            self.Noise = Noise(out_channels)
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.StyleMod = StyleMod(dlatent_size, out_channels, use_wscale=use_wscale)

    def forward(self, x: torch.Tensor | None, w: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        if self.kind == "const":
            x = self.const.expand(w.shape[0], -1, -1, -1)
        else:
            weight = self.weight * self.weight_coef
            if self.kind == "up":
                x = upscale2d_conv2d_fused(x, weight) if self.fused else conv2d_same(upscale2d(x), weight)
                if self.blur_filter:
                    x = blur2d(x, self.blur_filter)
            else:
                x = conv2d_same(x, weight)
        # the epilogue
        if noise is not None and hasattr(self, "Noise"):
            x = self.Noise(x, noise)
        x = x + self.bias.reshape(1, -1, 1, 1)
        x = activation(x, self.nonlinearity)
        if self.use_pixel_norm:
            x = pixel_norm(x)
        if self.use_instance_norm:
            x = instance_norm(x)
        return self.StyleMod(x, w)


class ToRGBV1(nn.Module):
    """``ToRGB_lod0``: 1x1 convolution (gain 1) plus bias, no activation."""

    def __init__(self, in_channels: int, num_channels: int, *, use_wscale: bool):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros([1, 1, in_channels, num_channels]))
        self.bias = nn.Parameter(torch.zeros([num_channels]))
        self.weight_coef = runtime_coef(in_channels, 1.0, use_wscale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return conv2d_same(x, self.weight * self.weight_coef) + self.bias.reshape(1, -1, 1, 1)


# --------------------------------------------------------------------------- networks


def num_features(stage: int, fmap_base: int, fmap_decay: float, fmap_max: int) -> int:
    """``G_synthesis``'s ``nf(stage)``: feature maps at resolution ``2 ** (stage + 1)``."""
    return min(int(fmap_base / (2.0 ** (stage * fmap_decay))), fmap_max)


def uses_fused_scale(fused_scale, out_resolution: int) -> bool:
    """Whether ``upscale2d_conv2d`` fuses at this output resolution ('auto': from 128 px)."""
    return out_resolution >= 128 if fused_scale == "auto" else bool(fused_scale)


class MappingNetworkV1(nn.Module):
    """``G_mapping`` (pixel-normalised z through dense layers, broadcast to ``num_ws``) and ``G_style``'s
    truncation toward ``dlatent_avg``."""

    def __init__(self, *, latent_size: int, dlatent_size: int, dlatent_broadcast: int, mapping_layers: int,
                 mapping_fmaps: int, mapping_lrmul: float, mapping_nonlinearity: str, use_wscale: bool,
                 normalize_latents: bool, truncation_cutoff: int | None):
        super().__init__()
        self.z_dim = latent_size
        self.w_dim = dlatent_size
        self.num_ws = dlatent_broadcast
        self.num_layers = mapping_layers
        self.normalize_latents = normalize_latents
        self.truncation_cutoff = truncation_cutoff
        for i in range(mapping_layers):
            fmaps = dlatent_size if i == mapping_layers - 1 else mapping_fmaps
            self.add_module(f"Dense{i}", Dense(latent_size if i == 0 else mapping_fmaps, fmaps, gain=SQRT2,
                                               use_wscale=use_wscale, lrmul=mapping_lrmul, act=mapping_nonlinearity))
        self.register_buffer("dlatent_avg", torch.zeros([dlatent_size]))

    @property
    def w_avg(self) -> torch.Tensor:
        """``dlatent_avg`` under the name our StyleGAN2 generator uses."""
        return self.dlatent_avg

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None | str = "default") -> torch.Tensor:
        """``[N, z_dim]`` -> W+ ``[N, num_ws, w_dim]``.

        ``truncation_cutoff``: ``"default"`` = the file's ``G_style`` setting (NVIDIA's
        default 8; none stored as None or <= 0 means no truncation, as in ``G_style``),
        an int = truncate the first that many layers, None = all layers.
        """
        if c is not None:
            raise BadInputError("this StyleGAN v1 generator is unconditional; pass c=None")
        _check_shape(z, [None, self.z_dim], "z")
        x = z.to(torch.float32)
        if self.normalize_latents:
            x = pixel_norm(x)
        for i in range(self.num_layers):
            x = getattr(self, f"Dense{i}")(x)
        x = x.unsqueeze(1).repeat([1, self.num_ws, 1])  # [N, L, C]
        cutoff = self.truncation_cutoff if truncation_cutoff == "default" else truncation_cutoff
        if cutoff is None:
            cutoff = self.num_ws if truncation_cutoff is None else 0
        if truncation_psi != 1 and cutoff > 0:
            coefs = torch.ones([1, self.num_ws, 1], device=x.device)
            coefs[:, :cutoff] = truncation_psi
            x = self.dlatent_avg + (x - self.dlatent_avg) * coefs
        return x


class SynthesisNetworkV1(nn.Module):
    """``G_synthesis`` at ``lod = 0``: W+ ``[N, num_ws, w_dim]`` -> images ``[N, channels, H, W]``."""

    def __init__(self, *, dlatent_size: int, num_channels: int, resolution: int, fmap_base: int, fmap_decay: float,
                 fmap_max: int, use_noise: bool, nonlinearity: str, use_wscale: bool, use_pixel_norm: bool,
                 use_instance_norm: bool, fused_scale, blur_filter):
        super().__init__()
        log2 = int(math.log2(resolution))
        self.w_dim = dlatent_size
        self.img_resolution = resolution
        self.img_channels = num_channels
        self.num_ws = 2 * log2 - 2
        self.use_noise = use_noise

        def nf(stage):
            return num_features(stage, fmap_base, fmap_decay, fmap_max)

        layer = {"dlatent_size": dlatent_size, "use_wscale": use_wscale, "use_noise": use_noise,
                 "nonlinearity": nonlinearity, "use_pixel_norm": use_pixel_norm,
                 "use_instance_norm": use_instance_norm}
        if use_noise:
            for i in range(self.num_ws):
                r = 2 ** (i // 2 + 2)
                self.register_buffer(f"noise{i}", torch.zeros([1, 1, r, r]))
        self.layer_names = ["4x4.Const", "4x4.Conv"]
        block = nn.Module()
        block.add_module("Const", SynthesisLayerV1(0, nf(1), kind="const", **layer))
        block.add_module("Conv", SynthesisLayerV1(nf(1), nf(1), kind="conv", **layer))
        self.add_module("4x4", block)
        for res in range(3, log2 + 1):
            name = f"{2 ** res}x{2 ** res}"
            block = nn.Module()
            block.add_module("Conv0_up", SynthesisLayerV1(nf(res - 2), nf(res - 1), kind="up", **layer,
                                                          fused=uses_fused_scale(fused_scale, 2 ** res),
                                                          blur_filter=blur_filter))
            block.add_module("Conv1", SynthesisLayerV1(nf(res - 1), nf(res - 1), kind="conv", **layer))
            self.add_module(name, block)
            self.layer_names += [f"{name}.Conv0_up", f"{name}.Conv1"]
        self.add_module("ToRGB_lod0", ToRGBV1(nf(log2 - 1), num_channels, use_wscale=use_wscale))

    def forward(self, ws: torch.Tensor, noise_mode: str = "const") -> torch.Tensor:
        """``noise_mode``: ``"const"`` = the stored noise inputs (NVIDIA's ``randomize_noise=False``),
        ``"random"`` = fresh Gaussian noise (``randomize_noise=True``), ``"none"`` = no noise."""
        if noise_mode not in NOISE_MODES:
            raise BadInputError(f"noise_mode={noise_mode!r} must be one of {', '.join(NOISE_MODES)}")
        _check_shape(ws, [None, self.num_ws, self.w_dim], "ws")
        ws = ws.to(torch.float32)
        x = None
        for i, name in enumerate(self.layer_names):
            noise = None
            if self.use_noise and noise_mode == "const":
                noise = getattr(self, f"noise{i}")
            elif self.use_noise and noise_mode == "random":
                r = 2 ** (i // 2 + 2)
                noise = torch.randn([ws.shape[0], 1, r, r], device=ws.device)
            x = self.get_submodule(name)(x, ws[:, i], noise)
        return self.ToRGB_lod0(x)  # [N, C, H, W]


class GeneratorV1(nn.Module):
    """NVIDIA's StyleGAN (v1) ``G_style`` at ``lod = 0``: ``mapping(z) -> ws``, ``synthesis(ws) -> images``.

    The same interface as our StyleGAN2 `Generator` (``z_dim``, ``w_dim``,
    ``num_ws``, ``img_resolution``, ``w_avg``). Build it from checked settings
    (`loader_v1.g_style_settings`) or load one with `anonfaces.load_generator`.
    """

    def __init__(self, *, mapping_kwargs: dict, synthesis_kwargs: dict):
        super().__init__()
        self.settings = {"mapping": dict(mapping_kwargs), "synthesis": dict(synthesis_kwargs)}
        self.synthesis = SynthesisNetworkV1(**synthesis_kwargs)
        self.mapping = MappingNetworkV1(**mapping_kwargs)
        if self.mapping.num_ws != self.synthesis.num_ws or self.mapping.w_dim != self.synthesis.w_dim:
            raise BadInputError(f"mapping output [{self.mapping.num_ws}, {self.mapping.w_dim}] does not fit the "
                                f"synthesis input [{self.synthesis.num_ws}, {self.synthesis.w_dim}]")
        self.z_dim = self.mapping.z_dim
        self.c_dim = 0
        self.w_dim = self.synthesis.w_dim
        self.num_ws = self.synthesis.num_ws
        self.img_resolution = self.synthesis.img_resolution
        self.img_channels = self.synthesis.img_channels

    @property
    def w_avg(self) -> torch.Tensor:
        """``dlatent_avg`` (``[w_dim]``), the centre that truncation pulls toward."""
        return self.mapping.dlatent_avg

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None | str = "default", noise_mode: str = "const") -> torch.Tensor:
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, noise_mode=noise_mode)
