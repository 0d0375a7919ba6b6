"""The networks of the CNN de-identifiers (PyTorch; imported only when a model is used).

* `MobileNetV2Encoder` (inverted residual blocks, width 0.5 by default) and
  `ResNetEncoder` (basic residual blocks): an image -> features at 1/2, 1/4, 1/8
  and 1/16 of its size.
* `UNetDecoder`: rebuilds an RGB image (tanh, -1..1) from those features, with
  skip connections; ``input_skip`` also hands it the network's input at full size.
* `DeidNet`: encoder + decoder. The feature-inversion model is a `DeidNet` over the
  face crop without the input skip (the face is rebuilt from the encoder's
  features only); the D2GAN generator is a `DeidNet` over the masked crop, the
  face mask and a landmark heatmap, with the input skip (it carries only the
  context around the face).
* `Discriminator`: a small strided CNN with spectral normalisation and a
  softplus output (D2GAN's discriminators score positive numbers).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ENCODERS = ("mobilenetv2", "resnet")


def _bn_act(cin, cout, k=3, stride=1, groups=1, act=True):
    layers = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return layers


class InvertedResidual(nn.Module):
    """MobileNetV2's block: 1x1 expand, 3x3 depthwise (stride), 1x1 linear projection; residual when shapes match."""

    def __init__(self, cin, cout, stride, expand):
        super().__init__()
        hidden = cin * expand
        layers = [] if expand == 1 else _bn_act(cin, hidden, 1)
        layers += _bn_act(hidden, hidden, 3, stride, groups=hidden)
        layers += _bn_act(hidden, cout, 1, act=False)
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.body(x)
        return x + y if self.residual else y


def _width(channels, width):
    return max(8, round(channels * width / 4) * 4)


class MobileNetV2Encoder(nn.Module):
    """MobileNetV2 (Sandler et al. 2018) cut after stride 16, channels scaled by ``width``."""

    # (expansion t, channels c at width 1, repeats n, stride s) of the paper, up to stride 16
    STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1))

    def __init__(self, in_channels=3, width=0.5):
        super().__init__()
        stem = _width(32, width)
        self.stem = nn.Sequential(*_bn_act(in_channels, stem, 3, 2))
        blocks, cin, self.taps, self.channels = [], stem, [], []
        for t, c, n, s in self.STAGES:
            cout = _width(c, width)
            for i in range(n):
                blocks.append(InvertedResidual(cin, cout, s if i == 0 else 1, t))
                cin = cout
            self.taps.append(len(blocks) - 1)
        self.blocks = nn.ModuleList(blocks)
        # features handed on: after stage 1 (1/2), 2 (1/4), 3 (1/8), 5 (1/16)
        self._keep = {self.taps[0], self.taps[1], self.taps[2], self.taps[4]}
        self.channels = [_width(self.STAGES[i][1], width) for i in (0, 1, 2, 4)]

    def forward(self, x):
        x = self.stem(x)
        feats = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in self._keep:
                feats.append(x)
        return feats


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.body = nn.Sequential(*_bn_act(cin, cout, 3, stride), *_bn_act(cout, cout, 3, act=False))
        self.short = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(*_bn_act(cin, cout, 1, stride, act=False))

    def forward(self, x):
        return F.relu6(self.body(x) + self.short(x))


class ResNetEncoder(nn.Module):
    """A ResNet-style encoder (basic blocks, two per stage), same outputs as `MobileNetV2Encoder`."""

    def __init__(self, in_channels=3, width=0.5):
        super().__init__()
        chans = [_width(c, width) for c in (32, 48, 64, 128)]
        self.stem = nn.Sequential(*_bn_act(in_channels, chans[0], 3, 2))
        stages, cin = [], chans[0]
        for i, c in enumerate(chans):
            stages.append(nn.Sequential(BasicBlock(cin, c, 1 if i == 0 else 2), BasicBlock(c, c, 1)))
            cin = c
        self.stages = nn.ModuleList(stages)
        self.channels = chans

    def forward(self, x):
        x = self.stem(x)
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats


class UNetDecoder(nn.Module):
    """Upsample x2, concatenate the skip, two 3x3 convs; four times, then a 3x3 conv to RGB (tanh)."""

    def __init__(self, enc_channels, *, channels=(48, 32, 24, 16), in_channels=0):
        super().__init__()
        c2, c4, c8, c16 = enc_channels
        skips = (c8, c4, c2, in_channels)
        ups, cin = [], c16
        for skip, cout in zip(skips, channels):
            ups.append(nn.Sequential(*_bn_act(cin + skip, cout), *_bn_act(cout, cout)))
            cin = cout
        self.ups = nn.ModuleList(ups)
        self.out = nn.Conv2d(cin, 3, 3, 1, 1)
        self.in_channels = in_channels

    def forward(self, feats, x=None):
        f2, f4, f8, f16 = feats
        y = f16
        for up, skip in zip(self.ups, (f8, f4, f2, x if self.in_channels else None)):
            y = F.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False)
            y = up(torch.cat([y, skip], 1) if skip is not None else y)
        return torch.tanh(self.out(y))


class DeidNet(nn.Module):
    """Encoder + U-Net decoder: ``(N, in_channels, S, S)`` -> ``(N, 3, S, S)`` in -1..1 (S a multiple of 16)."""

    def __init__(self, *, encoder="mobilenetv2", width=0.5, in_channels=3, input_skip=False,
                 decoder_channels=(48, 32, 24, 16)):
        super().__init__()
        if encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {ENCODERS}; got {encoder!r}")
        enc = MobileNetV2Encoder if encoder == "mobilenetv2" else ResNetEncoder
        self.encoder = enc(in_channels, width)
        self.decoder = UNetDecoder(self.encoder.channels, channels=tuple(decoder_channels),
                                   in_channels=in_channels if input_skip else 0)

    def forward(self, x):
        return self.decoder(self.encoder(x), x)


class Discriminator(nn.Module):
    """Strided convs (spectral norm, leaky ReLU) -> one positive score per image (softplus)."""

    def __init__(self, in_channels=3, channels=(32, 64, 128, 128), size=64):
        super().__init__()
        layers, cin = [], in_channels
        for c in channels:
            layers += [nn.utils.spectral_norm(nn.Conv2d(cin, c, 4, 2, 1)), nn.LeakyReLU(0.2, inplace=True)]
            cin = c
        self.body = nn.Sequential(*layers)
        side = size // 2 ** len(channels)
        self.head = nn.utils.spectral_norm(nn.Linear(cin * side * side, 1))

    def forward(self, x):
        return F.softplus(self.head(self.body(x).flatten(1))).squeeze(1)


def build(settings: dict) -> DeidNet:
    """The generator a checkpoint's ``settings`` describe (``model``: inversion or d2gan)."""
    d2gan = settings["model"] == "d2gan"
    return DeidNet(encoder=settings.get("encoder", "mobilenetv2"), width=float(settings.get("width", 0.5)),
                   in_channels=5 if d2gan else 3, input_skip=d2gan,
                   decoder_channels=tuple(settings.get("decoder_channels", (48, 32, 24, 16))))
