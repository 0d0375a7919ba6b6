"""FaceGen-style identity-conditioned generator (the GNN of k-Same-Net).

After Dosovitskiy et al.'s "learning to generate chairs" and its use in
k-Same-Net (Meden et al., 2018): fully connected layers read an identity code
(one-hot for one person, a normalised multi-hot vector for a mix of people)
and an optional attribute code, and a stack of up-convolutions turns them into
an image. A cluster's surrogate is the image of the normalised multi-hot vector
of its members.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn

from anonfaces.errors import BadInputError

#: the settings that define the network's shape (stored in checkpoints)
ARCH_KEYS = ("n_identities", "n_attributes", "image_size", "width", "id_features")


class FaceGenNet(nn.Module):
    """``(identity code [N, n_identities], attributes [N, n_attributes]) -> images [N, 3, S, S]`` in [-1, 1].

    Parameters
    ----------
    n_identities : number of training identities (length of the identity code).
    n_attributes : length of the optional attribute/expression code (0 = none).
    image_size : output side, a power of two from 16 to 256.
    width : channels of the last up-convolution stage (earlier stages double it, up to 512).
    id_features : width of the fully connected layers.
    """

    def __init__(self, *, n_identities: int, n_attributes: int = 0, image_size: int = 64, width: int = 32,
                 id_features: int = 256):
        super().__init__()
        if n_identities < 1:
            raise BadInputError(f"n_identities={n_identities} must be >= 1")
        if image_size not in (16, 32, 64, 128, 256):
            raise BadInputError(f"image_size={image_size} must be a power of two from 16 to 256")
        self.n_identities = n_identities
        self.n_attributes = n_attributes
        self.image_size = image_size
        self.width = width
        self.id_features = id_features
        act = lambda: nn.LeakyReLU(0.2, inplace=True)
        self.identity = nn.Sequential(nn.Linear(n_identities, id_features), act(),
                                      nn.Linear(id_features, id_features), act())
        in_features = id_features
        if n_attributes > 0:
            self.attributes = nn.Sequential(nn.Linear(n_attributes, id_features // 2), act())
            in_features += id_features // 2
        n_up = int(math.log2(image_size)) - 2  # from 4 x 4
        channels = [min(width * 2 ** (n_up - i), 512) for i in range(n_up + 1)]
        self._start_channels = channels[0]
        self.joint = nn.Sequential(nn.Linear(in_features, 2 * id_features), act(),
                                   nn.Linear(2 * id_features, channels[0] * 16), act())
        blocks = []
        for c_in, c_out in itertools.pairwise(channels):
            blocks += [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1), act(),
                       nn.Conv2d(c_out, c_out, 3, padding=1), act()]
        self.upconv = nn.Sequential(*blocks)
        self.to_rgb = nn.Conv2d(channels[-1], 3, 3, padding=1)

    def arch(self) -> dict:
        return {k: getattr(self, k) for k in ARCH_KEYS}

    def forward(self, identity: torch.Tensor, attributes: torch.Tensor | None = None) -> torch.Tensor:
        if identity.ndim != 2 or identity.shape[1] != self.n_identities:
            raise BadInputError(f"identity code must have shape [N, {self.n_identities}]; got {list(identity.shape)}")
        h = self.identity(identity)
        if self.n_attributes > 0:
            if attributes is None:
                attributes = identity.new_zeros([identity.shape[0], self.n_attributes])
            h = torch.cat([h, self.attributes(attributes)], dim=1)
        h = self.joint(h).reshape(-1, self._start_channels, 4, 4)
        return torch.tanh(self.to_rgb(self.upconv(h)))


def multi_hot(indices, n_identities: int, weights=None) -> torch.Tensor:
    """The normalised multi-hot code ``[1, n_identities]`` of the given identity indices (repeats add weight)."""
    code = torch.zeros([1, n_identities])
    w = [1.0] * len(indices) if weights is None else list(weights)
    for i, wi in zip(indices, w):
        if not 0 <= int(i) < n_identities:
            raise BadInputError(f"identity index {i} is outside 0..{n_identities - 1}")
        code[0, int(i)] += float(wi)
    total = float(code.sum())
    if total <= 0:
        raise BadInputError("a multi-hot code needs at least one identity with positive weight")
    return code / total
