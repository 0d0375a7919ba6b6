"""dlib's face-recognition ResNet as a PyTorch module (a frozen, differentiable critic).

Built from the same layer description as the ONNX model
(`anonfaces.encode._dlib_dat.parse_dat`), so it computes dlib's descriptors with
dlib's weights; gradients flow to the input image (for identity losses). torch is
imported only here.

    net = dlib_resnet()                      # the installed .dat, frozen, eval mode
    d = net(images)                          # float (N, 3, 150, 150), RGB, 0..255 -> (N, 128)
    d = net.from_chips(chips)                # uint8 (N, 150, 150, 3) as dlib.get_face_chip cuts them
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from anonfaces.encode import _dlib_dat as dat


class DlibResNet(nn.Module):
    """Runs a `DlibNetwork`: input ``(N, 3, S, S)`` float RGB pixels in 0..255 -> ``(N, 128)``."""

    def __init__(self, network: dat.DlibNetwork):
        super().__init__()
        self.size = network.input.size
        self.register_buffer("mean", torch.tensor(network.input.mean_rgb, dtype=torch.float32).view(1, 3, 1, 1))
        self.plan: list[tuple] = []  # (kind, index or settings) in order
        self.weights = nn.ParameterList()
        for layer in network.layers[1:]:
            if isinstance(layer, dat.Conv):
                self.plan.append(("conv", len(self.weights), layer.stride, layer.padding))
                self.weights.append(nn.Parameter(torch.from_numpy(layer.weight.copy()), requires_grad=False))
                bias = layer.bias if layer.bias is not None else np.zeros(layer.weight.shape[0], np.float32)
                self.weights.append(nn.Parameter(torch.from_numpy(bias.copy()), requires_grad=False))
            elif isinstance(layer, dat.Affine):
                self.plan.append(("affine", len(self.weights)))
                self.weights.append(nn.Parameter(torch.from_numpy(layer.gamma.copy()).view(1, -1, 1, 1), requires_grad=False))
                self.weights.append(nn.Parameter(torch.from_numpy(layer.beta.copy()).view(1, -1, 1, 1), requires_grad=False))
            elif isinstance(layer, dat.Dense):
                self.plan.append(("dense", len(self.weights), layer.bias is not None))
                self.weights.append(nn.Parameter(torch.from_numpy(layer.weight.copy()), requires_grad=False))
                if layer.bias is not None:
                    self.weights.append(nn.Parameter(torch.from_numpy(layer.bias.copy()), requires_grad=False))
            elif isinstance(layer, dat.Relu):
                self.plan.append(("relu",))
            elif isinstance(layer, dat.Pool):
                self.plan.append(("pool", layer.kind, layer.size, layer.stride, layer.padding))
            elif isinstance(layer, (dat.Tag, dat.Skip, dat.AddPrev)):
                self.plan.append((type(layer).__name__.lower(), layer.id))
            else:  # pragma: no cover - parse_dat admits no other layer
                raise TypeError(f"cannot build layer {layer!r}")

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != 3 or tuple(images.shape[2:]) != (self.size, self.size):
            raise ValueError(f"expected images of shape (N, 3, {self.size}, {self.size}); got {tuple(images.shape)}")
        x = (images - self.mean) / 256.0
        w = self.weights
        saved: dict[int, torch.Tensor] = {}
        for step in self.plan:
            kind = step[0]
            if kind == "conv":
                _, i, stride, padding = step
                x = F.conv2d(x, w[i], w[i + 1], stride=stride, padding=padding)
            elif kind == "affine":
                x = x * w[step[1]] + w[step[1] + 1]
            elif kind == "relu":
                x = F.relu(x)
            elif kind == "pool":
                _, how, size, stride, padding = step
                if size == (0, 0):
                    x = x.mean(dim=(2, 3), keepdim=True)
                elif how == "max":
                    x = F.max_pool2d(x, size, stride, padding)
                else:
                    x = F.avg_pool2d(x, size, stride, padding, count_include_pad=False)
            elif kind == "tag":
                saved[step[1]] = x
            elif kind == "skip":
                x = saved[step[1]]
            elif kind == "addprev":
                x = _add_prev(x, saved[step[1]])
            elif kind == "dense":
                x = x.flatten(1) @ w[step[1]]
                if step[2]:
                    x = x + w[step[1] + 1]
        return x

    def from_chips(self, chips) -> torch.Tensor:
        """Descriptors of uint8 chips (N, S, S, 3) RGB, as ``dlib.get_face_chip`` returns them."""
        t = torch.as_tensor(np.ascontiguousarray(chips)).permute(0, 3, 1, 2).float()
        return self(t)


def _add_prev(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's add_prev: the sum is as large as the larger input; missing parts count as zero."""
    shape = [max(x, y) for x, y in zip(a.shape[1:], b.shape[1:])]

    def grow(t):
        c, h, wd = t.shape[1:]
        if [c, h, wd] == shape:
            return t
        return F.pad(t, (0, shape[2] - wd, 0, shape[1] - h, 0, shape[0] - c))

    return grow(a) + grow(b)


def dlib_resnet(dat_path=None) -> DlibResNet:
    """dlib's face ResNet (default: the installed .dat) as a frozen module in eval mode."""
    if dat_path is None:
        from anonfaces.detect import _models

        dat_path = _models._paths()["resnet"]
    return DlibResNet(dat.parse_dat(dat_path)).eval()
