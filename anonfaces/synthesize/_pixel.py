"""``pixel`` (k-Same-Pixel): the mean of the members' aligned crops."""

from __future__ import annotations

import numpy as np

from anonfaces.synthesize.base import (
    SYNTHESIZERS,
    Surrogate,
    Synthesizer,
    check_cluster,
)


@SYNTHESIZERS.register("pixel")
class PixelSynthesizer(Synthesizer):
    """k-Same-Pixel: average the canonical crops pixel by pixel.

    The crops are aligned only by a similarity transform (eyes and mouth), so
    the average is soft where the members' shapes differ; its landmarks are the
    members' mean landmarks.
    """

    parallel = True

    def synthesize(self, faces, landmarks, embeddings=None) -> Surrogate:
        faces, landmarks, _ = check_cluster(faces, landmarks, embeddings)
        mean = faces.astype(np.float32).mean(axis=0)  # [S, S, 3]
        return Surrogate(np.clip(np.rint(mean), 0, 255).astype(np.uint8), landmarks.mean(axis=0), {"members": len(faces)})
