"""The ``gnn`` synthesizer: k-Same-Net style surrogate from the multi-hot code of a cluster's members."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from anonfaces.errors import BadInputError

log = logging.getLogger(__name__)

DEFAULT_WEIGHTS = Path("GNN") / "runs" / "default" / "gnn.pt"


class GNNSynthesizer:
    """Surrogate = the trained GNN's image of the normalised multi-hot vector of the members' identities.

    Each member is assigned the GNN training identity it is closest to, by pixel
    distance between the member's canonical crop (resized to the GNN's size) and
    each identity's mean training crop (stored in the checkpoint). When the GNN
    was trained on the dataset being anonymised, a member maps to its own
    identity; otherwise to a proxy identity, as in k-Same-Net. (``embeddings``
    are accepted for the common interface but not used: checkpoints hold no
    identity embeddings.)

    Parameters
    ----------
    weights : a ``gnn.pt`` written by ``GNN/train.py`` (or `train_gnn`), or ``(model, info)`` from `load_gnn`.
    landmarks : ``"mean"`` (the members' mean shape; the GNN draws faces in the canonical frame)
        or ``"detect"`` (dlib's 68 points on the surrogate).
    attributes : optional attribute code for GNNs trained with attributes (default: the training mean).
    """

    def __init__(self, *, weights=DEFAULT_WEIGHTS, landmarks: str = "mean", attributes=None, device: str = "cpu"):
        if landmarks not in ("mean", "detect"):
            raise BadInputError(f"landmarks={landmarks!r} must be 'mean' or 'detect'")
        self.weights = weights
        self.landmarks = landmarks
        self.attributes = attributes
        self.device = device
        self._loaded = None

    def settings(self) -> dict:
        w = os.fspath(self.weights) if isinstance(self.weights, (str, os.PathLike)) else "in memory"
        return {"name": getattr(self, "registry_name", "gnn"), "weights": w, "landmarks": self.landmarks}

    @property
    def model(self):
        return self._load()[0]

    @property
    def info(self) -> dict:
        return self._load()[1]

    def _load(self):
        if self._loaded is None:
            if isinstance(self.weights, (str, os.PathLike)):
                from anonfaces.synthesize.gnn.training import load_gnn

                if not Path(self.weights).is_file():
                    raise BadInputError(f"GNN weights {os.fspath(self.weights)!r} not found; train them with "
                                        "`python GNN/train.py` (see GNN/README.md) and pass weights=PATH")
                self._loaded = load_gnn(self.weights, device=self.device)
            else:
                self._loaded = tuple(self.weights)
        return self._loaded

    def assign_identities(self, faces: np.ndarray) -> np.ndarray:
        """Index of the nearest GNN identity for each member (shape (m,)).

        Compares grey-level crops at the GNN's size, each standardised to zero mean
        and unit variance (so that overall brightness and contrast do not decide).
        """
        means = self.info["identity_means"]  # (n_id, s, s, 3) uint8
        s = means.shape[1]
        a = _standardised(faces, s)
        b = _standardised(means, s)
        d = ((a[:, None] - b[None]) ** 2).mean(axis=2)
        return d.argmin(1)

    def generate(self, code) -> np.ndarray:
        """uint8 (s, s, 3) image of an identity code ``[n_identities]`` (or ``[1, n_identities]``)."""
        import torch

        model, info = self._load()
        code = torch.as_tensor(np.asarray(code, dtype=np.float32)).reshape(1, -1)
        attrs = None
        if model.n_attributes > 0:
            a = self.attributes if self.attributes is not None else info.get("attribute_mean")
            attrs = torch.as_tensor(np.asarray(a, dtype=np.float32)).reshape(1, -1)
        with torch.no_grad():
            img = model(code.to(self.device), attrs.to(self.device) if attrs is not None else None)
        img = ((img[0].cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        return img.permute(1, 2, 0).numpy()

    def synthesize_identities(self, identities, *, size: int, landmarks: np.ndarray):
        """Surrogate of given GNN identities (names or indices; repeats add weight) in a ``size`` crop."""
        import cv2

        from anonfaces.synthesize.gnn.network import multi_hot
        from anonfaces.synthesize.stylegan.synthesizer import detect_landmarks, make_surrogate

        names = list(self.info["identities"])
        idx = [names.index(i) if isinstance(i, str) else int(i) for i in identities]
        code = multi_hot(idx, len(names))
        image = cv2.resize(self.generate(code.numpy()[0]), (size, size), interpolation=cv2.INTER_CUBIC)
        shape = np.asarray(landmarks, dtype=np.float32)
        points = detect_landmarks(image, shape) if self.landmarks == "detect" else shape
        return make_surrogate(image, points, {"gnn_identities": [names[i] for i in idx]})

    def synthesize(self, faces: np.ndarray, landmarks: np.ndarray, embeddings: np.ndarray | None = None):
        """One surrogate for a cluster: faces uint8 (m, S, S, 3) in the canonical frame, landmarks (m, 68, 2)."""
        from anonfaces.synthesize.stylegan.synthesizer import check_cluster

        faces, landmarks = check_cluster(faces, landmarks)
        members = self.assign_identities(faces)
        log.debug("cluster of %d mapped to GNN identities %s", len(faces), members.tolist())
        return self.synthesize_identities(members, size=faces.shape[1], landmarks=landmarks.mean(0))


def _standardised(images: np.ndarray, size: int) -> np.ndarray:
    """(n, H, W, 3) uint8 -> (n, size * size) grey levels with zero mean and unit variance per image."""
    import cv2

    out = []
    for img in images:
        g = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY)
        if g.shape[0] != size:
            g = cv2.resize(g, (size, size), interpolation=cv2.INTER_AREA)
        g = g.astype(np.float64).ravel()
        out.append((g - g.mean()) / (g.std() + 1e-6))
    return np.stack(out)
