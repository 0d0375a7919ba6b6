"""Training the GNN, and its checkpoints (no pickle: ``torch.save`` of tensors and plain values, read back
with ``torch.load(weights_only=True)``, torch's restricted loader)."""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from anonfaces.errors import BadInputError, FileFormatError, UnsafeFileError
from anonfaces.utils.atomic import atomic_open, atomic_write_text

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "anonfaces-gnn"
CHECKPOINT_VERSION = 1


@dataclass
class GNNConfig:
    """Training settings (``GNN/config.toml`` holds the defaults for the command line)."""

    image_size: int = 64
    width: int = 16
    id_features: int = 128
    steps: int = 1000
    batch_size: int = 32
    learning_rate: float = 2e-3
    lr_decay_start: float = 0.6  # fraction of the steps after which the rate decays (cosine) to 5 %
    loss: str = "mse"  # "mse" (learns each identity's mean appearance) or "l1", on pixels in [-1, 1]
    flip: bool = True  # random horizontal flips
    checkpoint_every: int = 250
    seed: int = 0

    @classmethod
    def from_dict(cls, values: dict) -> GNNConfig:
        names = {f.name for f in fields(cls)}
        unknown = set(values) - names
        if unknown:
            raise BadInputError(f"unknown GNN settings {sorted(unknown)}; valid: {sorted(names)}")
        cfg = cls(**values)
        cfg.check()
        return cfg

    def check(self) -> None:
        if self.image_size not in (16, 32, 64, 128, 256):
            raise BadInputError(f"image_size={self.image_size} must be a power of two from 16 to 256")
        for name in ("width", "id_features", "steps", "batch_size", "checkpoint_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise BadInputError(f"{name}={value!r} must be a positive integer")
        if not self.learning_rate > 0:
            raise BadInputError(f"learning_rate={self.learning_rate!r} must be positive")
        if self.loss not in ("l1", "mse"):
            raise BadInputError(f"loss={self.loss!r} must be 'l1' or 'mse'")
        if not 0 <= self.lr_decay_start <= 1:
            raise BadInputError(f"lr_decay_start={self.lr_decay_start!r} must be in [0, 1]")


# ----------------------------------------------------------------------------- checkpoints


def save_checkpoint(path: str | os.PathLike, *, model, config: GNNConfig, identities: list, step: int,
                    losses: list, identity_means: np.ndarray, optimizer=None, rng_state=None,
                    attribute_names: list | None = None, attribute_mean: np.ndarray | None = None,
                    identity_embeddings: np.ndarray | None = None, embedding_encoder: dict | None = None) -> None:
    """Write a checkpoint atomically (model weights, settings, identities; optimizer and RNG for resuming).

    ``identity_embeddings`` (n_identities, dim), NaN rows where unknown, with the
    settings of the encoder that made them, let the ``gnn`` synthesizer match
    people it has no label for by embedding. Checkpoints without them still load.
    """
    import torch

    state = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "arch": model.arch(),
        "config": asdict(config),
        "identities": list(identities),
        "step": int(step),
        "losses": [float(x) for x in losses],
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "identity_means": torch.from_numpy(np.ascontiguousarray(identity_means)),
        "attribute_names": list(attribute_names or []),
    }
    if attribute_mean is not None:
        state["attribute_mean"] = torch.from_numpy(np.asarray(attribute_mean, dtype=np.float32))
    if identity_embeddings is not None:
        emb = np.asarray(identity_embeddings, dtype=np.float32)
        if emb.ndim != 2 or len(emb) != len(identities):
            raise BadInputError(f"identity_embeddings must have shape ({len(identities)}, dim); got {emb.shape}")
        state["identity_embeddings"] = torch.from_numpy(np.ascontiguousarray(emb))
        state["embedding_encoder"] = json.dumps(embedding_encoder or {})
    if optimizer is not None:
        state["optimizer"] = optimizer.state_dict()
    if rng_state is not None:
        state["rng_state"] = rng_state
    with atomic_open(path, "wb") as fh:
        torch.save(state, fh)


def read_checkpoint(path: str | os.PathLike, *, device: str = "cpu") -> dict:
    """Read a checkpoint with ``torch.load(weights_only=True)``: tensors and plain values only, no code."""
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"GNN checkpoint {str(path)!r} does not exist")
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise UnsafeFileError(f"refused to load {path}: it holds more than tensors and plain values ({exc})") from exc
    except (RuntimeError, EOFError, ValueError) as exc:
        raise FileFormatError(f"{path} is not a readable GNN checkpoint: {exc}") from exc
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise FileFormatError(f"{path} is not an anonfaces GNN checkpoint")
    if state.get("version") != CHECKPOINT_VERSION:
        raise FileFormatError(f"{path} has checkpoint version {state.get('version')!r}; "
                              f"this anonfaces reads version {CHECKPOINT_VERSION}")
    return state


def load_gnn(path: str | os.PathLike, *, device: str = "cpu"):
    """Load a trained GNN: returns ``(model, info)``.

    ``info`` holds ``identities``, ``identity_means`` (uint8 (n_identities, s, s, 3)),
    ``identity_embeddings`` (float32 (n_identities, dim) or None for checkpoints
    trained without embeddings), ``embedding_encoder`` (dict or None),
    ``attribute_names``, ``attribute_mean``, ``config``, ``step``, ``losses``.
    """
    from anonfaces.synthesize.gnn.network import ARCH_KEYS, FaceGenNet

    state = read_checkpoint(path, device=device)
    arch = state.get("arch")
    if not isinstance(arch, dict) or set(arch) != set(ARCH_KEYS) or not all(isinstance(v, int) for v in arch.values()):
        raise FileFormatError(f"{path}: malformed network settings {arch!r}")
    if len(state["identities"]) != arch["n_identities"]:
        raise FileFormatError(f"{path}: {len(state['identities'])} identity names for {arch['n_identities']} identities")
    model = FaceGenNet(**arch)
    try:
        model.load_state_dict(state["model"], strict=True)
    except RuntimeError as exc:
        raise FileFormatError(f"{path}: weights do not fit the network: {exc}") from exc
    info = {k: state[k] for k in ("identities", "config", "step", "losses", "attribute_names")}
    info["identity_means"] = state["identity_means"].numpy()
    info["attribute_mean"] = state["attribute_mean"].numpy() if "attribute_mean" in state else None
    info["identity_embeddings"] = None
    info["embedding_encoder"] = None
    if "identity_embeddings" in state:
        emb = state["identity_embeddings"].numpy().astype(np.float32)
        if emb.ndim != 2 or len(emb) != arch["n_identities"]:
            raise FileFormatError(f"{path}: identity embeddings of shape {emb.shape} for {arch['n_identities']} identities")
        info["identity_embeddings"] = emb
        info["embedding_encoder"] = json.loads(state.get("embedding_encoder") or "{}")
    return model.to(device).eval().requires_grad_(False), info


# ----------------------------------------------------------------------------- training


def _lr_at(step: int, cfg: GNNConfig) -> float:
    start = cfg.lr_decay_start * cfg.steps
    if step < start:
        return cfg.learning_rate
    t = (step - start) / max(1.0, cfg.steps - start)
    return cfg.learning_rate * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


def train_gnn(faces, out_dir: str | os.PathLike, *, config: GNNConfig | None = None, resume: bool = False,
              progress: bool = True) -> dict:
    """Train the GNN on a `FaceSet`; write checkpoints to ``out_dir``.

    ``out_dir`` receives ``config.json`` (the settings of the run), ``metrics.jsonl``
    (one line per checkpoint), ``checkpoint.pt`` (latest, with optimizer state,
    for ``resume=True``) and ``gnn.pt`` (the final weights, what the ``gnn``
    synthesizer loads). With ``resume``, training continues from ``checkpoint.pt``
    with the same settings and identities (and the run's recorded settings win
    over ``config``, except ``steps``, which may be raised).

    Returns ``{"losses": [...], "step": int, "checkpoint": path, "weights": path}``.
    """
    import torch
    import torch.nn.functional as F
    from tqdm.auto import tqdm

    from anonfaces.synthesize.gnn.network import FaceGenNet

    cfg = config or GNNConfig()
    cfg.check()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path, weights_path = out / "checkpoint.pt", out / "gnn.pt"
    state = None
    if resume:  # the run's recorded settings (the network's shape among them) win
        if not ckpt_path.is_file():
            raise BadInputError(f"--resume: no checkpoint at {ckpt_path}")
        state = read_checkpoint(ckpt_path)
        if state["identities"] != list(faces.identities):
            raise BadInputError(f"--resume: {ckpt_path} was trained on other identities than the given faces")
        recorded = GNNConfig.from_dict(state["config"])
        recorded.steps = max(recorded.steps, cfg.steps)
        cfg = recorded
    if faces.images.shape[1] != cfg.image_size:
        raise BadInputError(f"faces are {faces.images.shape[1]} px, the config wants image_size={cfg.image_size}")
    n_attr = 0 if faces.attributes is None else faces.attributes.shape[1]
    torch.manual_seed(cfg.seed)
    model = FaceGenNet(n_identities=len(faces.identities), n_attributes=n_attr, image_size=cfg.image_size,
                       width=cfg.width, id_features=cfg.id_features)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate, betas=(0.5, 0.999))
    gen = torch.Generator().manual_seed(cfg.seed)
    step, losses = 0, []
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if "rng_state" in state:
            gen.set_state(state["rng_state"])
        step, losses = int(state["step"]), list(state["losses"])
        log.info("resuming at step %d of %d", step, cfg.steps)
    atomic_write_text(out / "config.json", json.dumps(
        {"config": asdict(cfg), "identities": list(faces.identities), "n_faces": len(faces),
         "n_attributes": n_attr, "attribute_names": faces.attribute_names or [],
         "embedding_encoder": faces.embedding_encoder}, indent=2) + "\n")

    images = torch.from_numpy(faces.images).permute(0, 3, 1, 2).to(torch.float32) / 127.5 - 1.0
    labels = torch.from_numpy(faces.labels)
    attrs = torch.from_numpy(faces.attributes) if faces.attributes is not None else None
    eye = torch.eye(len(faces.identities))
    means = faces.identity_means()
    attr_mean = faces.attributes.mean(0) if faces.attributes is not None else None
    id_emb = faces.identity_embeddings()
    if id_emb is not None:
        log.info("identity embeddings for %d of %d identities", int(np.isfinite(id_emb).all(1).sum()), len(id_emb))

    def checkpoint(final: bool = False):
        save_checkpoint(ckpt_path, model=model, config=cfg, identities=faces.identities, step=step, losses=losses,
                        identity_means=means, optimizer=optimizer, rng_state=gen.get_state(),
                        attribute_names=faces.attribute_names, attribute_mean=attr_mean,
                        identity_embeddings=id_emb, embedding_encoder=faces.embedding_encoder)
        with open(out / "metrics.jsonl", "a", encoding="utf-8") as fh:
            recent = losses[-cfg.checkpoint_every:] or [float("nan")]
            fh.write(json.dumps({"step": step, "loss": float(np.mean(recent)), "time": time.time()}) + "\n")
        if final:
            save_checkpoint(weights_path, model=model, config=cfg, identities=faces.identities, step=step,
                            losses=losses, identity_means=means, attribute_names=faces.attribute_names,
                            attribute_mean=attr_mean, identity_embeddings=id_emb,
                            embedding_encoder=faces.embedding_encoder)

    model.train()
    bar = tqdm(total=cfg.steps, initial=step, desc="training GNN", unit="step", disable=not progress)
    try:
        while step < cfg.steps:
            idx = torch.randint(len(images), (min(cfg.batch_size, len(images)),), generator=gen)
            x = images[idx]
            if cfg.flip:
                flip = torch.rand(len(idx), generator=gen) < 0.5
                x = torch.where(flip[:, None, None, None], x.flip(3), x)
            for group in optimizer.param_groups:
                group["lr"] = _lr_at(step, cfg)
            pred = model(eye[labels[idx]], attrs[idx] if attrs is not None else None)
            loss = F.l1_loss(pred, x) if cfg.loss == "l1" else F.mse_loss(pred, x)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            losses.append(float(loss.detach()))
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
            if step % cfg.checkpoint_every == 0 and step < cfg.steps:
                checkpoint()
    finally:
        bar.close()
    model.eval()
    checkpoint(final=True)
    return {"losses": losses, "step": step, "checkpoint": ckpt_path, "weights": weights_path}
