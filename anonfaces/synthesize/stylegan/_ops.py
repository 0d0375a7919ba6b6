"""The tensor operations of the StyleGAN2 generator, in plain PyTorch (CPU or GPU).

Written from the published maths (Karras et al., "Analyzing and Improving the
Image Quality of StyleGAN", 2020; the ADA paper, 2020) so that results agree
with NVIDIA's reference implementation on the same weights. Padding lists are
``[x_before, x_after, y_before, y_after]`` throughout, as in the papers' code.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

SQRT2 = math.sqrt(2.0)

#: activation name -> (function, default gain). The gain keeps the signal's
#: second moment roughly unchanged through the layer ("equalized" activations).
ACTIVATIONS = {
    "linear": (lambda x: x, 1.0),
    "relu": (F.relu, SQRT2),
    "lrelu": (lambda x: F.leaky_relu(x, 0.2), SQRT2),
    "tanh": (torch.tanh, 1.0),
    "sigmoid": (torch.sigmoid, 1.0),
    "elu": (F.elu, 1.0),
    "selu": (F.selu, 1.0),
    "softplus": (F.softplus, 1.0),
    "swish": (lambda x: torch.sigmoid(x) * x, SQRT2),
}


def bias_act(x: torch.Tensor, b: torch.Tensor | None = None, *, act: str = "linear",
             gain: float | None = None, clamp: float | None = None) -> torch.Tensor:
    """Add a per-channel bias (channel axis 1), apply ``act``, scale by ``gain``, clamp to ``±clamp``."""
    func, default_gain = ACTIVATIONS[act]
    if b is not None:
        x = x + b.reshape([1, -1] + [1] * (x.ndim - 2))
    x = func(x)
    gain = default_gain if gain is None else float(gain)
    if gain != 1:
        x = x * gain
    if clamp is not None and clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """Scale each row to unit root-mean-square (the input normalisation of the mapping network)."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


def make_filter(taps, *, normalize: bool = True) -> torch.Tensor:
    """The 2-D low-pass filter for a list of 1-D taps such as ``[1, 3, 3, 1]`` (outer product, sum 1)."""
    f = torch.as_tensor(taps, dtype=torch.float32)
    if f.ndim == 0:
        f = f[None]
    if f.ndim == 1:
        f = torch.outer(f, f)
    if normalize:
        f = f / f.sum()
    return f


def upfirdn2d(x: torch.Tensor, f: torch.Tensor | None, *, up: int = 1, down: int = 1,
              padding=(0, 0, 0, 0), flip_filter: bool = False, gain: float = 1.0) -> torch.Tensor:
    """Upsample by zero insertion, pad (negative = crop), FIR-filter, downsample.

    ``x`` is ``[N, C, H, W]``; ``f`` a 2-D ``[fh, fw]`` (or separable 1-D) filter,
    applied as a true convolution unless ``flip_filter``; the filter is scaled so
    that the signal's magnitude is multiplied by ``gain``.
    """
    n, c, h, w = x.shape
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    px0, px1, py0, py1 = padding
    if up > 1:
        y = x.new_zeros([n, c, h * up, w * up])
        y[:, :, ::up, ::up] = x
        x = y
    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    x = x[:, :, max(-py0, 0): x.shape[2] - max(-py1, 0), max(-px0, 0): x.shape[3] - max(-px1, 0)]
    f = (f * (gain ** (f.ndim / 2))).to(dtype=x.dtype, device=x.device)
    if not flip_filter:
        f = f.flip(list(range(f.ndim)))
    if f.ndim == 2:
        x = F.conv2d(x, f[None, None].repeat(c, 1, 1, 1), groups=c)
    else:
        x = F.conv2d(x, f[None, None, :, None].repeat(c, 1, 1, 1), groups=c)
        x = F.conv2d(x, f[None, None, None, :].repeat(c, 1, 1, 1), groups=c)
    if down > 1:
        x = x[:, :, ::down, ::down]
    return x


def upsample2d(x: torch.Tensor, f: torch.Tensor, *, up: int = 2) -> torch.Tensor:
    """Upsample ``[N, C, H, W]`` to ``[N, C, up*H, up*W]`` with the low-pass filter ``f``."""
    fh, fw = f.shape[-2], f.shape[-1]
    pad = [(fw + up - 1) // 2, (fw - up) // 2, (fh + up - 1) // 2, (fh - up) // 2]
    return upfirdn2d(x, f, up=up, padding=pad, gain=up * up)


def conv2d_up(x: torch.Tensor, w: torch.Tensor, f: torch.Tensor, *, up: int = 2, padding: int = 0,
              groups: int = 1) -> torch.Tensor:
    """Convolution on the ``up``-times upsampled, low-pass filtered input.

    The same as zero-insertion upsampling, filtering with ``f`` and a true
    convolution with ``w`` (padding counted on the upsampled image), computed as
    a strided transposed convolution followed by the filter. ``w`` is
    ``[out, in/groups, kh, kw]``.
    """
    out_ch, in_per_group, kh, kw = w.shape
    fh, fw = f.shape[-2], f.shape[-1]
    # Padding of the upsampled signal before the filter, then what the
    # transposed convolution already contributes.
    px0 = padding + (fw + up - 1) // 2 - (kw - 1)
    px1 = padding + (fw - up) // 2 - (kw - up)
    py0 = padding + (fh + up - 1) // 2 - (kh - 1)
    py1 = padding + (fh - up) // 2 - (kh - up)
    if kh == 1 and kw == 1:
        x = F.conv2d(x, w, groups=groups)
        pad = [padding + (fw + up - 1) // 2, padding + (fw - up) // 2,
               padding + (fh + up - 1) // 2, padding + (fh - up) // 2]
        return upfirdn2d(x, f, up=up, padding=pad, gain=up * up)
    # conv_transpose2d wants [in, out/groups, kh, kw]
    if groups == 1:
        wt = w.transpose(0, 1)
    else:
        wt = w.reshape(groups, out_ch // groups, in_per_group, kh, kw).transpose(1, 2)
        wt = wt.reshape(groups * in_per_group, out_ch // groups, kh, kw)
    ptx = max(min(-px0, -px1), 0)
    pty = max(min(-py0, -py1), 0)
    x = F.conv_transpose2d(x, wt, stride=up, padding=[pty, ptx], groups=groups)
    return upfirdn2d(x, f, padding=[px0 + ptx, px1 + ptx, py0 + pty, py1 + pty], gain=up * up)


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, *,
                     noise: torch.Tensor | None = None, up: int = 1, padding: int = 0,
                     resample_filter: torch.Tensor | None = None, demodulate: bool = True) -> torch.Tensor:
    """Style-modulated (and demodulated) convolution, one weight per sample.

    x: ``[N, I, H, W]``; weight: ``[O, I, k, k]``; styles: ``[N, I]``.
    With ``up == 2`` the layer convolves (rather than correlates) the upsampled
    input; with ``up == 1`` it correlates, as the trained weights expect.
    """
    n = x.shape[0]
    out_ch, in_ch, kh, kw = weight.shape
    w = weight[None] * styles.reshape(n, 1, in_ch, 1, 1)  # [N, O, I, k, k]
    if demodulate:
        d = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()  # [N, O]
        w = w * d.reshape(n, out_ch, 1, 1, 1)
    x = x.reshape(1, n * in_ch, *x.shape[2:])
    w = w.reshape(n * out_ch, in_ch, kh, kw)
    if up > 1:
        x = conv2d_up(x, w, resample_filter, up=up, padding=padding, groups=n)
    else:
        x = F.conv2d(x, w, padding=padding, groups=n)
    x = x.reshape(n, out_ch, *x.shape[2:])
    if noise is not None:
        x = x + noise
    return x
