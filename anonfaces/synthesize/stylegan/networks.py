"""The StyleGAN2 (ADA) generator as plain PyTorch modules.

The module tree and the names of parameters and buffers follow the layout of
NVIDIA's ``stylegan2-ada-pytorch`` network pickles (``mapping.fc0.weight``,
``synthesis.b64.conv0.affine.bias``, ...), so that the state stored in those
pickles loads with ``load_state_dict`` (see `stylegan.pickle`). The code is
this project's own; every layer computes in float32 (the pickles' FP16 settings
are accepted and only affect speed on GPUs in NVIDIA's code).

Shapes: ``z`` ``[N, z_dim]``; ``ws`` ``[N, num_ws, w_dim]`` (W+); images
``[N, img_channels, img_resolution, img_resolution]`` with values about -1..1.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from anonfaces.errors import BadInputError
from anonfaces.synthesize.stylegan import _ops

ARCHITECTURES = ("orig", "skip", "resnet")
NOISE_MODES = ("const", "random", "none")


class _Recorded(nn.Module):
    """Remembers the keyword arguments it was built with (`init_kwargs`), as the pickles do."""

    #: class name the layer has in NVIDIA's pickles
    pickle_class_name: str = ""

    def _record(self, **kwargs) -> None:
        self.init_kwargs = dict(kwargs)


class FullyConnectedLayer(_Recorded):
    """Dense layer with equalised learning rate: weights are stored unscaled and multiplied by
    ``lr_multiplier / sqrt(in_features)`` at run time."""

    pickle_class_name = "FullyConnectedLayer"

    def __init__(self, in_features: int, out_features: int, *, bias: bool = True, activation: str = "linear",
                 lr_multiplier: float = 1.0, bias_init: float = 0.0):
        super().__init__()
        self._record(in_features=in_features, out_features=out_features, bias=bias, activation=activation,
                     lr_multiplier=lr_multiplier, bias_init=bias_init)
        self.activation = activation
        self.weight = nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight * self.weight_gain
        b = self.bias
        if b is not None and self.bias_gain != 1:
            b = b * self.bias_gain
        if self.activation == "linear" and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return _ops.bias_act(x.matmul(w.t()), b, act=self.activation)


class Conv2dLayer(_Recorded):
    """Plain convolution with equalised learning rate and optional 2x upsampling (the resnet skip path)."""

    pickle_class_name = "Conv2dLayer"

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, bias: bool = True,
                 activation: str = "linear", up: int = 1, resample_filter=(1, 3, 3, 1), conv_clamp=None):
        super().__init__()
        self._record(in_channels=in_channels, out_channels=out_channels, kernel_size=kernel_size, bias=bias,
                     activation=activation, up=up, resample_filter=list(resample_filter), conv_clamp=conv_clamp)
        self.activation = activation
        self.up = up
        self.conv_clamp = conv_clamp
        self.register_buffer("resample_filter", _ops.make_filter(resample_filter))
        self.padding = kernel_size // 2
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size ** 2)
        self.act_gain = _ops.ACTIVATIONS[activation][1]
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels])) if bias else None

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        w = self.weight * self.weight_gain
        if self.up > 1:
            x = _ops.conv2d_up(x, w, self.resample_filter, up=self.up, padding=self.padding)
        else:
            x = torch.nn.functional.conv2d(x, w, padding=self.padding)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return _ops.bias_act(x, self.bias, act=self.activation, gain=self.act_gain * gain, clamp=clamp)


class MappingNetwork(_Recorded):
    """z (and an optional class label c) -> w, broadcast to ``num_ws`` copies, with truncation."""

    pickle_class_name = "MappingNetwork"

    def __init__(self, *, z_dim: int, c_dim: int, w_dim: int, num_ws: int | None, num_layers: int = 8,
                 embed_features: int | None = None, layer_features: int | None = None,
                 activation: str = "lrelu", lr_multiplier: float = 0.01, w_avg_beta: float | None = 0.995):
        super().__init__()
        self._record(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=num_ws, num_layers=num_layers,
                     embed_features=embed_features, layer_features=layer_features, activation=activation,
                     lr_multiplier=lr_multiplier, w_avg_beta=w_avg_beta)
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.num_ws = num_ws
        self.num_layers = num_layers
        self.w_avg_beta = w_avg_beta
        embed = (w_dim if embed_features is None else embed_features) if c_dim > 0 else 0
        hidden = w_dim if layer_features is None else layer_features
        features = [z_dim + embed] + [hidden] * (num_layers - 1) + [w_dim]
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed)
        for i in range(num_layers):
            setattr(self, f"fc{i}", FullyConnectedLayer(features[i], features[i + 1], activation=activation,
                                                        lr_multiplier=lr_multiplier))
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None) -> torch.Tensor:
        parts = []
        if self.z_dim > 0:
            _check_shape(z, [None, self.z_dim], "z")
            parts.append(_ops.normalize_2nd_moment(z.to(torch.float32)))
        if self.c_dim > 0:
            if c is None:
                raise BadInputError(f"this generator is conditional: pass c of shape [N, {self.c_dim}]")
            _check_shape(c, [None, self.c_dim], "c")
            parts.append(_ops.normalize_2nd_moment(self.embed(c.to(torch.float32))))
        x = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        if self.num_ws is not None:
            x = x.unsqueeze(1).repeat([1, self.num_ws, 1])  # [N, L, C]
        if truncation_psi != 1:
            if not hasattr(self, "w_avg"):
                raise BadInputError("truncation needs the average latent w_avg, which this generator lacks")
            if self.num_ws is None or truncation_cutoff is None:
                x = self.w_avg.lerp(x, truncation_psi)
            else:
                x = x.clone()
                x[:, :truncation_cutoff] = self.w_avg.lerp(x[:, :truncation_cutoff], truncation_psi)
        return x


class SynthesisLayer(_Recorded):
    """Modulated 3x3 convolution (optionally 2x upsampling), per-pixel noise, bias and activation."""

    pickle_class_name = "SynthesisLayer"

    def __init__(self, in_channels: int, out_channels: int, *, w_dim: int, resolution: int, kernel_size: int = 3,
                 up: int = 1, use_noise: bool = True, activation: str = "lrelu", resample_filter=(1, 3, 3, 1),
                 conv_clamp=None):
        super().__init__()
        self._record(in_channels=in_channels, out_channels=out_channels, w_dim=w_dim, resolution=resolution,
                     kernel_size=kernel_size, up=up, use_noise=use_noise, activation=activation,
                     resample_filter=list(resample_filter), conv_clamp=conv_clamp)
        self.resolution = resolution
        self.up = up
        self.use_noise = use_noise
        self.activation = activation
        self.conv_clamp = conv_clamp
        self.register_buffer("resample_filter", _ops.make_filter(resample_filter))
        self.padding = kernel_size // 2
        self.act_gain = _ops.ACTIVATIONS[activation][1]
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        if use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "const", gain: float = 1.0) -> torch.Tensor:
        styles = self.affine(w)
        noise = None
        if self.use_noise and noise_mode == "random":
            noise = torch.randn([x.shape[0], 1, self.resolution, self.resolution], device=x.device) * self.noise_strength
        elif self.use_noise and noise_mode == "const":
            noise = self.noise_const * self.noise_strength
        x = _ops.modulated_conv2d(x, self.weight, styles, noise=noise, up=self.up, padding=self.padding,
                                  resample_filter=self.resample_filter)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return _ops.bias_act(x, self.bias, act=self.activation, gain=self.act_gain * gain, clamp=clamp)


class ToRGBLayer(_Recorded):
    """Modulated 1x1 convolution to colour, without demodulation."""

    pickle_class_name = "ToRGBLayer"

    def __init__(self, in_channels: int, out_channels: int, *, w_dim: int, kernel_size: int = 1, conv_clamp=None):
        super().__init__()
        self._record(in_channels=in_channels, out_channels=out_channels, w_dim=w_dim, kernel_size=kernel_size,
                     conv_clamp=conv_clamp)
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size ** 2)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        x = _ops.modulated_conv2d(x, self.weight, styles, demodulate=False)
        return _ops.bias_act(x, self.bias, clamp=self.conv_clamp)


class SynthesisBlock(_Recorded):
    """One resolution of the synthesis network: (upsampling) conv0, conv1, and ToRGB per architecture."""

    pickle_class_name = "SynthesisBlock"

    def __init__(self, in_channels: int, out_channels: int, *, w_dim: int, resolution: int, img_channels: int,
                 is_last: bool, architecture: str = "skip", resample_filter=(1, 3, 3, 1), conv_clamp=None,
                 **layer_kwargs):
        super().__init__()
        self._record(in_channels=in_channels, out_channels=out_channels, w_dim=w_dim, resolution=resolution,
                     img_channels=img_channels, is_last=is_last, architecture=architecture,
                     resample_filter=list(resample_filter), conv_clamp=conv_clamp, **layer_kwargs)
        self.in_channels = in_channels
        self.w_dim = w_dim
        self.resolution = resolution
        self.img_channels = img_channels
        self.is_last = is_last
        self.architecture = architecture
        self.register_buffer("resample_filter", _ops.make_filter(resample_filter))
        self.num_conv = 0
        self.num_torgb = 0
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim=w_dim, resolution=resolution, up=2,
                                        resample_filter=resample_filter, conv_clamp=conv_clamp, **layer_kwargs)
            self.num_conv += 1
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim=w_dim, resolution=resolution,
                                    resample_filter=resample_filter, conv_clamp=conv_clamp, **layer_kwargs)
        self.num_conv += 1
        if is_last or architecture == "skip":
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim=w_dim, conv_clamp=conv_clamp)
            self.num_torgb += 1
        if in_channels != 0 and architecture == "resnet":
            self.skip = Conv2dLayer(in_channels, out_channels, kernel_size=1, bias=False, up=2,
                                    resample_filter=resample_filter)

    def forward(self, x, img, ws: torch.Tensor, noise_mode: str = "const"):
        # ws: [N, num_conv + num_torgb, w_dim]
        w_iter = iter(ws.unbind(dim=1))
        if self.in_channels == 0:
            x = self.const.unsqueeze(0).repeat([ws.shape[0], 1, 1, 1])
            x = self.conv1(x, next(w_iter), noise_mode=noise_mode)
        elif self.architecture == "resnet":
            y = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv0(x, next(w_iter), noise_mode=noise_mode)
            x = self.conv1(x, next(w_iter), noise_mode=noise_mode, gain=math.sqrt(0.5))
            x = y + x
        else:
            x = self.conv0(x, next(w_iter), noise_mode=noise_mode)
            x = self.conv1(x, next(w_iter), noise_mode=noise_mode)
        if img is not None:
            img = _ops.upsample2d(img, self.resample_filter)
        if self.is_last or self.architecture == "skip":
            y = self.torgb(x, next(w_iter))
            img = img + y if img is not None else y
        return x, img


class SynthesisNetwork(_Recorded):
    """W+ latents -> image, one `SynthesisBlock` per resolution from 4 up to ``img_resolution``."""

    pickle_class_name = "SynthesisNetwork"

    def __init__(self, *, w_dim: int, img_resolution: int, img_channels: int, channel_base: int = 32768,
                 channel_max: int = 512, num_fp16_res: int = 0, **block_kwargs):
        super().__init__()
        self._record(w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels,
                     channel_base=channel_base, channel_max=channel_max, num_fp16_res=num_fp16_res, **block_kwargs)
        block_kwargs.pop("fp16_channels_last", None)  # only changes memory layout in NVIDIA's FP16 code
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_resolution_log2 = int(math.log2(img_resolution))
        self.img_channels = img_channels
        self.block_resolutions = [2 ** i for i in range(2, self.img_resolution_log2 + 1)]
        channels = {res: min(channel_base // res, channel_max) for res in self.block_resolutions}
        self.num_ws = 0
        for res in self.block_resolutions:
            in_channels = channels[res // 2] if res > 4 else 0
            is_last = res == img_resolution
            block = SynthesisBlock(in_channels, channels[res], w_dim=w_dim, resolution=res,
                                   img_channels=img_channels, is_last=is_last, **block_kwargs)
            self.num_ws += block.num_conv + (block.num_torgb if is_last else 0)
            setattr(self, f"b{res}", block)

    def forward(self, ws: torch.Tensor, noise_mode: str = "const") -> torch.Tensor:
        if noise_mode not in NOISE_MODES:
            raise BadInputError(f"noise_mode={noise_mode!r} must be one of {', '.join(NOISE_MODES)}")
        _check_shape(ws, [None, self.num_ws, self.w_dim], "ws")
        ws = ws.to(torch.float32)
        x = img = None
        w_idx = 0
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            block_ws = ws.narrow(1, w_idx, block.num_conv + block.num_torgb)
            w_idx += block.num_conv
            x, img = block(x, img, block_ws, noise_mode=noise_mode)
        return img  # [N, C, H, W]


class Generator(_Recorded):
    """The StyleGAN2 generator: ``mapping(z) -> ws``, ``synthesis(ws) -> images``.

    Build it from the settings stored in a network pickle (``Generator(**init_kwargs)``)
    or load one with `anonfaces.load_generator`.
    """

    pickle_class_name = "Generator"

    def __init__(self, *, z_dim: int, c_dim: int, w_dim: int, img_resolution: int, img_channels: int,
                 mapping_kwargs: dict | None = None, synthesis_kwargs: dict | None = None):
        super().__init__()
        mapping_kwargs = dict(mapping_kwargs or {})
        synthesis_kwargs = dict(synthesis_kwargs or {})
        self._record(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=img_resolution,
                     img_channels=img_channels, mapping_kwargs=dict(mapping_kwargs),
                     synthesis_kwargs=dict(synthesis_kwargs))
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.synthesis = SynthesisNetwork(w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels,
                                          **synthesis_kwargs)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws, **mapping_kwargs)

    @property
    def w_avg(self) -> torch.Tensor:
        """The tracked average latent (``[w_dim]``), the centre that truncation pulls toward."""
        return self.mapping.w_avg

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, noise_mode: str = "const") -> torch.Tensor:
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, noise_mode=noise_mode)


def _check_shape(t: torch.Tensor, shape: list, name: str) -> None:
    if t.ndim != len(shape) or any(s is not None and int(d) != s for d, s in zip(t.shape, shape)):
        want = "[" + ", ".join("N" if s is None else str(s) for s in shape) + "]"
        raise BadInputError(f"{name} must have shape {want}; got {list(t.shape)}")
