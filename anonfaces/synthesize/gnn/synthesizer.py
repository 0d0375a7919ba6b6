"""The ``gnn`` synthesizer: k-Same-Net style surrogate from the multi-hot code of a cluster's members."""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

import numpy as np

from anonfaces.errors import BadInputError
from anonfaces.synthesize.base import Surrogate, check_cluster, check_identities

log = logging.getLogger(__name__)

DEFAULT_WEIGHTS = Path("GNN") / "runs" / "default" / "gnn.pt"
#: how a member was mapped to a GNN training identity, in the order they are tried
MAPPED_BY = ("label", "embedding", "pixels")


class GNNSynthesizer:
    """Surrogate = the trained GNN's image of the normalised multi-hot vector of the members' identities.

    Each member is mapped to one of the GNN's training identities (`match_members`),
    trying in turn:

    1. ``label``: the member's identity label (``identities``, which the pipeline
       passes from the encodings) is a training identity: that one, exactly. This
       is k-Same-Net's setting, where the GNN is trained on the people being
       anonymised.
    2. ``embedding``: the training identity whose mean face embedding (stored in
       checkpoints trained with ``--encodings`` or ``--encode``) is nearest to the
       member's embedding (Euclidean). The embeddings must come from the same
       encoder (the checkpoint records it in ``info["embedding_encoder"]``).
    3. ``pixels``: the identity whose mean training crop is nearest in grey-level
       pixels (`assign_identities`): fair for photos the GNN was trained on, near
       chance for unseen people (then the surrogate mixes proxy identities).

    ``Surrogate.info["gnn_mapped"]`` counts the members mapped each way, and
    ``settings()["mapped"]`` the running totals (recorded in ``run.json``). A
    warning is logged the first time most members of a cluster fall back to pixels.

    Parameters
    ----------
    weights : a ``gnn.pt`` written by ``GNN/train.py`` (or `train_gnn`), or ``(model, info)`` from `load_gnn`.
    landmarks : ``"mean"`` (the members' mean shape; the GNN draws faces in the canonical frame)
        or ``"detect"`` (dlib's 68 points on the surrogate).
    attributes : attribute/expression code for GNNs trained with attributes (`parse_attributes`):
        None (the training mean), a sequence of ``n_attributes`` numbers in [0, 1],
        a string of comma-separated numbers (``"0,1,0.5"``), or a string of attribute
        names, each optionally ``=value`` (``"Smiling,Male=0"``: named ones set, by
        default to 1, the others at the training mean). Checked against the
        checkpoint when the synthesizer is made.
    device : torch device.
    """

    #: `anonfaces.synthesize.base`: ``synthesize`` takes the members' identity labels
    uses_identities = True

    def __init__(self, *, weights=DEFAULT_WEIGHTS, landmarks: str = "mean", attributes=None, device: str = "cpu"):
        if landmarks not in ("mean", "detect"):
            raise BadInputError(f"landmarks={landmarks!r} must be 'mean' or 'detect'")
        self.weights = weights
        self.landmarks = landmarks
        self.attributes = attributes
        self.device = device
        self.mapped_ = dict.fromkeys(MAPPED_BY, 0)
        self._loaded = None
        self._attribute_code = None
        self._warned: set[str] = set()
        if attributes is not None:
            self.attribute_code()  # a wrong value fails now, not after encoding and clustering

    def settings(self) -> dict:
        w = os.fspath(self.weights) if isinstance(self.weights, (str, os.PathLike)) else "in memory"
        attrs = self.attributes
        if attrs is not None and not isinstance(attrs, (str, int, float)):
            attrs = [float(v) for v in np.asarray(attrs, dtype=np.float64).reshape(-1)]
        return {"name": getattr(self, "registry_name", "gnn"), "weights": w, "landmarks": self.landmarks,
                "attributes": attrs, "mapped": dict(self.mapped_)}

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

    def attribute_code(self) -> np.ndarray | None:
        """The attribute code the surrogates are drawn with, float32 (n_attributes,); None without attributes."""
        if self._attribute_code is None:
            model, info = self._load()
            code = parse_attributes(self.attributes, names=info.get("attribute_names") or [],
                                    mean=info.get("attribute_mean"), n_attributes=model.n_attributes)
            self._attribute_code = (code,)
        return self._attribute_code[0]

    def assign_identities(self, faces: np.ndarray) -> np.ndarray:
        """Index of the nearest GNN identity for each member by pixels (shape (m,)).

        Compares grey-level crops at the GNN's size, each standardised to zero mean
        and unit variance (so that overall brightness and contrast do not decide).
        """
        means = self.info["identity_means"]  # (n_id, s, s, 3) uint8
        s = means.shape[1]
        a = _standardised(faces, s)
        b = _standardised(means, s)
        d = ((a[:, None] - b[None]) ** 2).mean(axis=2)
        return d.argmin(1)

    def match_members(self, faces: np.ndarray, embeddings: np.ndarray | None = None,
                      identities=None) -> tuple[np.ndarray, np.ndarray]:
        """Each member's GNN training identity and how it was found (see the class docstring).

        Parameters
        ----------
        faces : uint8 ndarray of shape (m, S, S, 3)
        embeddings : float32 ndarray of shape (m, dim), optional
        identities : sequence of m str, optional (``""`` = unknown)

        Returns
        -------
        index : int64 ndarray of shape (m,), into ``info["identities"]``
        how : str ndarray of shape (m,), each one of `MAPPED_BY`
        """
        m = len(faces)
        index = np.full(m, -1, dtype=np.int64)
        how = np.full(m, "pixels", dtype=object)
        if identities is not None:
            by_name = {name: i for i, name in enumerate(self.info["identities"])}
            for j, label in enumerate(identities):
                if label in by_name:
                    index[j], how[j] = by_name[label], "label"
        id_emb = self.info.get("identity_embeddings")
        todo = index < 0
        if todo.any() and embeddings is not None and id_emb is not None:
            embeddings = np.asarray(embeddings, dtype=np.float32)
            if embeddings.shape[1] != id_emb.shape[1]:
                self._warn_once("dim", "the embeddings have %d dimensions, the GNN's identity embeddings %d "
                                "(encoder %s); matching by pixels", embeddings.shape[1], id_emb.shape[1],
                                self.info.get("embedding_encoder"))
            else:
                known = np.flatnonzero(np.isfinite(id_emb).all(axis=1))
                rows = np.flatnonzero(todo & np.isfinite(embeddings).all(axis=1))
                if len(known) and len(rows):
                    d = np.linalg.norm(embeddings[rows, None, :] - id_emb[None, known, :], axis=2)  # [rows, known]
                    index[rows], how[rows] = known[d.argmin(axis=1)], "embedding"
        todo = index < 0
        if todo.any():
            index[todo] = self.assign_identities(faces[todo])
        return index, how.astype(str)

    def _warn_once(self, key: str, message: str, *args) -> None:
        if key in self._warned:
            log.debug(message, *args)
        else:
            self._warned.add(key)
            log.warning(message + " (further cases are logged at debug level)", *args)

    def generate(self, code) -> np.ndarray:
        """uint8 (s, s, 3) image of an identity code ``[n_identities]`` (or ``[1, n_identities]``)."""
        import torch

        model, _ = self._load()
        code = torch.as_tensor(np.asarray(code, dtype=np.float32)).reshape(1, -1)
        a = self.attribute_code()
        attrs = torch.as_tensor(a).reshape(1, -1).to(self.device) if a is not None else None
        with torch.no_grad():
            img = model(code.to(self.device), attrs)
        img = ((img[0].cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        return img.permute(1, 2, 0).numpy()

    def synthesize_identities(self, identities, *, size: int, landmarks: np.ndarray) -> Surrogate:
        """Surrogate of given GNN identities (names or indices; repeats add weight) in a ``size`` crop."""
        import cv2

        from anonfaces.synthesize.gnn.network import multi_hot

        names = list(self.info["identities"])
        unknown = [i for i in identities if isinstance(i, str) and i not in names]
        if unknown:
            raise BadInputError(f"{unknown[0]!r} is not one of the GNN's {len(names)} training identities")
        idx = [names.index(i) if isinstance(i, str) else int(i) for i in identities]
        code = multi_hot(idx, len(names))
        image = cv2.resize(self.generate(code.numpy()[0]), (size, size), interpolation=cv2.INTER_CUBIC)
        shape = np.asarray(landmarks, dtype=np.float32)
        if self.landmarks == "detect":
            from anonfaces.synthesize.stylegan.synthesizer import detect_landmarks

            shape = detect_landmarks(image, shape)
        return Surrogate(image, shape, {"gnn_identities": [names[i] for i in idx]})

    def synthesize(self, faces: np.ndarray, landmarks: np.ndarray, embeddings: np.ndarray | None = None, *,
                   identities=None) -> Surrogate:
        """One surrogate for a cluster (see `anonfaces.synthesize.base` for the arguments).

        faces uint8 (m, S, S, 3) in the canonical frame, landmarks (m, 68, 2),
        embeddings (m, dim) or None, identities m labels (``""`` = unknown) or None.
        """
        faces, landmarks, embeddings = check_cluster(faces, landmarks, embeddings)
        identities = check_identities(identities, len(faces))
        members, how = self.match_members(faces, embeddings, identities)
        counts = {k: int((how == k).sum()) for k in MAPPED_BY}
        for k, n in counts.items():
            self.mapped_[k] += n
        if 2 * counts["pixels"] > len(faces):
            self._warn_once("pixels", "%d of %d members of a cluster were matched to a GNN training identity by "
                            "pixel distance only (%s); this is near chance for people the GNN was not trained on",
                            counts["pixels"], len(faces),
                            "no identity labels were given" if identities is None else "their labels are not training identities")
        log.debug("cluster of %d mapped to GNN identities %s (%s)", len(faces), members.tolist(), counts)
        sur = self.synthesize_identities(members, size=faces.shape[1], landmarks=landmarks.mean(0))
        return dataclasses.replace(sur, info={**sur.info, "gnn_mapped": counts})


def parse_attributes(value, *, names, mean, n_attributes: int) -> np.ndarray | None:
    """The attribute code, float32 (n_attributes,), for the ``attributes`` setting of `GNNSynthesizer`.

    ``value`` is None (``mean``, the training mean), a sequence of ``n_attributes``
    numbers, a string of comma-separated numbers (``"0,1,0.5"``), or a string of
    comma-separated attribute ``names``, each optionally ``name=value``
    (``"Smiling,Male=0"``; named attributes are set, to 1 by default, the others
    stay at the training mean). Values must lie in [0, 1], the range the GNN was
    trained on. Returns None for a GNN without attributes (where ``value`` must be None).
    """
    names = [str(n) for n in names]
    listed = f"its attributes: {', '.join(names)}" if names else "its checkpoint names no attributes"
    if n_attributes == 0:
        if value is not None:
            raise BadInputError(f"attributes={value!r}: this GNN was trained without attributes")
        return None
    base = np.zeros(n_attributes, np.float32) if mean is None else np.asarray(mean, np.float32).reshape(-1)
    if value is None:
        return base
    if isinstance(value, (bool, np.bool_)):
        raise BadInputError(f"attributes={value!r} must be numbers or attribute names, not a boolean")
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",")]
        if not all(items):
            raise BadInputError(f"attributes={value!r} has an empty item; give comma-separated numbers or names")
        numbers = [_number(v) for v in items]
        if all(x is not None for x in numbers):
            code = np.array(numbers, np.float32)
        else:
            code = base.copy()
            for item in items:
                name, eq, text = (part.strip() for part in item.partition("="))
                if name not in names:
                    raise BadInputError(f"attributes={value!r}: unknown attribute {name!r}; {listed} "
                                        f"(or give {n_attributes} comma-separated numbers)")
                x = _number(text) if eq else 1.0
                if x is None:
                    raise BadInputError(f"attributes={value!r}: {item!r} must be NAME or NAME=NUMBER")
                code[names.index(name)] = x
    else:
        try:
            code = np.asarray(value, dtype=np.float32).reshape(-1)
        except (TypeError, ValueError):
            raise BadInputError(f"attributes={value!r} must be numbers or attribute names") from None
    if code.shape != (n_attributes,):
        raise BadInputError(f"attributes={value!r} gives {code.size} values; this GNN takes {n_attributes} "
                            f"({listed}), or name the ones to set")
    if not np.isfinite(code).all() or code.min() < 0 or code.max() > 1:
        raise BadInputError(f"attributes={value!r}: values must be in [0, 1] (the range the GNN was trained on)")
    return code


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


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
