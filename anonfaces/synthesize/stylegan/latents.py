"""Per-image StyleGAN latents and the original research's ways of averaging them.

A latent is W (``[w_dim]``, one vector for every layer) or W+ (``[num_ws, w_dim]``,
one per layer). Files are ``.npy`` arrays read with ``allow_pickle=False``; the
original research's naming ``<image stem>_01.npy`` (first face of the image) is
found as well as ``<image stem>.npy``.

Averaging (`average_latents`) — the options of the original research:

* plain mean of the members' latents (``alpha=1``, ``weights=None``);
* random member weights (``weights="random"``: uniform draws normalised to sum 1);
* ``alpha`` scaling of the average. The original scaled **toward zero**
  (``toward="zero"``: ``alpha * mean``). Because W space is not centred on 0,
  that also changes contrast and style; ``toward="w_avg"`` scales toward the
  generator's average latent instead (``w_avg + alpha * (mean - w_avg)``), which
  is StyleGAN's truncation trick and pulls the face toward the "average person";
* the privacy-adjusted loop (`privacy_adjusted_average`): shrink ``alpha`` until a
  re-identification function supplied by the caller reports a rate of at most 1/k.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from anonfaces.errors import BadInputError, FileFormatError

log = logging.getLogger(__name__)

TOWARD = ("zero", "w_avg")


def latent_path_for(image_path: str | os.PathLike, latent_dir: str | os.PathLike | None = None, *,
                    face: int = 0) -> Path | None:
    """The latent file of one face of an image, or None if there is none.

    Looks in ``latent_dir`` (default: the image's folder) for ``<stem>_NN.npy``
    (``NN`` = face + 1, two digits, the original naming) and then, for the first
    face, ``<stem>.npy``.
    """
    image_path = Path(image_path)
    folder = Path(latent_dir) if latent_dir is not None else image_path.parent
    candidates = [folder / f"{image_path.stem}_{face + 1:02d}.npy"]
    if face == 0:
        candidates.append(folder / f"{image_path.stem}.npy")
    for path in candidates:
        if path.is_file():
            return path
    return None


def load_latent(path: str | os.PathLike, *, w_dim: int | None = None, num_ws: int | None = None) -> np.ndarray:
    """Read one W (``[w_dim]``) or W+ (``[num_ws, w_dim]``) latent from a ``.npy`` file.

    Leading axes of length 1 (``[1, w_dim]``, ``[1, num_ws, w_dim]``) are dropped.
    Returns float32.
    """
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise FileFormatError(f"{os.fspath(path)} is not a plain .npy array: {exc}") from exc
    if not isinstance(arr, np.ndarray):
        raise FileFormatError(f"{os.fspath(path)} holds an archive, not one latent array")
    return check_latent(arr, w_dim=w_dim, num_ws=num_ws, name=os.fspath(path))


def check_latent(arr, *, w_dim: int | None = None, num_ws: int | None = None, name: str = "latent") -> np.ndarray:
    arr = np.asarray(arr)
    if arr.ndim == 3 and arr.shape[0] == 1:  # [1, num_ws, w_dim]
        arr = arr[0]
    if arr.ndim == 2 and arr.shape[0] == 1:  # [1, w_dim] (a generator always has num_ws >= 2)
        arr = arr[0]
    if arr.ndim not in (1, 2) or arr.dtype.kind not in "fiu":
        raise FileFormatError(f"{name}: expected W [w_dim] or W+ [num_ws, w_dim]; got {arr.dtype} {list(arr.shape)}")
    if w_dim is not None and arr.shape[-1] != w_dim:
        raise FileFormatError(f"{name}: w_dim={arr.shape[-1]} does not match the generator's w_dim={w_dim}")
    if arr.ndim == 2 and num_ws is not None and arr.shape[0] != num_ws:
        raise FileFormatError(f"{name}: {arr.shape[0]} layers (W+) do not match the generator's num_ws={num_ws}")
    arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        raise FileFormatError(f"{name}: holds NaN or infinite values")
    return arr


def load_latents(paths: Iterable[str | os.PathLike], *, w_dim: int | None = None,
                 num_ws: int | None = None) -> np.ndarray:
    """Stack several latent files: ``[m, w_dim]`` if all are W, else ``[m, num_ws, w_dim]`` (W broadcast)."""
    latents = [load_latent(p, w_dim=w_dim, num_ws=num_ws) for p in paths]
    if not latents:
        raise BadInputError("no latent files given")
    return stack_latents(latents, num_ws=num_ws)


def stack_latents(latents: Sequence[np.ndarray], *, num_ws: int | None = None) -> np.ndarray:
    if all(l.ndim == 1 for l in latents):
        return np.stack(latents)
    layers = {l.shape[0] for l in latents if l.ndim == 2}
    if len(layers) != 1:
        raise BadInputError(f"W+ latents with different numbers of layers: {sorted(layers)}")
    L = layers.pop()
    return np.stack([to_wplus(l, L) for l in latents])


def to_wplus(latent: np.ndarray, num_ws: int) -> np.ndarray:
    """``[w_dim]`` -> ``[num_ws, w_dim]`` (the same W for every layer); W+ passes through."""
    latent = np.asarray(latent, dtype=np.float32)
    if latent.ndim == 1:
        return np.repeat(latent[None], num_ws, axis=0)
    if latent.shape[0] != num_ws:
        raise BadInputError(f"latent has {latent.shape[0]} layers, expected num_ws={num_ws}")
    return latent


def member_weights(m: int, weights=None, *, random_state=None) -> np.ndarray:
    """Normalised member weights: equal (None), random ("random"), or given (array of m non-negatives)."""
    if m < 1:
        raise BadInputError("need at least one latent to average")
    if weights is None or (isinstance(weights, str) and weights == "mean"):
        return np.full(m, 1.0 / m)
    if isinstance(weights, str):
        if weights != "random":
            raise BadInputError(f"weights={weights!r} must be None, 'mean', 'random' or an array")
        from sklearn.utils import check_random_state

        w = check_random_state(random_state).uniform(0.0, 1.0, size=m) + 1e-12
    else:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (m,) or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
            raise BadInputError(f"weights must be {m} non-negative numbers with a positive sum; got {w!r}")
    return w / w.sum()


def scale_latent(latent: np.ndarray, alpha: float, *, toward: str = "zero", w_avg: np.ndarray | None = None) -> np.ndarray:
    """``alpha * latent`` (toward zero) or ``w_avg + alpha * (latent - w_avg)`` (toward the average latent)."""
    if toward not in TOWARD:
        raise BadInputError(f"toward={toward!r} must be one of {', '.join(TOWARD)}")
    if not np.isfinite(alpha) or alpha < 0:
        raise BadInputError(f"alpha={alpha!r} must be a non-negative number")
    latent = np.asarray(latent, dtype=np.float32)
    if toward == "zero":
        return (alpha * latent).astype(np.float32)
    if w_avg is None:
        raise BadInputError("toward='w_avg' needs the generator's average latent (w_avg)")
    w_avg = np.asarray(w_avg, dtype=np.float32)
    return (w_avg + alpha * (latent - w_avg)).astype(np.float32)


def average_latents(latents, *, alpha: float = 1.0, toward: str = "zero", w_avg: np.ndarray | None = None,
                    weights=None, random_state=None) -> np.ndarray:
    """Average the members' latents (``[m, w_dim]`` or ``[m, num_ws, w_dim]``) into one.

    Parameters
    ----------
    alpha : scale factor for the average (1 = plain mean); see ``toward``.
    toward : ``"zero"`` (the original research) or ``"w_avg"`` (truncation toward the generator's average).
    w_avg : ndarray of shape (w_dim,); needed for ``toward="w_avg"`` (``G.w_avg``).
    weights : None (equal), ``"random"`` or an array of m non-negative weights (normalised).
    random_state : seed for ``weights="random"``.

    Returns
    -------
    ndarray of shape (w_dim,) or (num_ws, w_dim), float32.
    """
    latents = np.asarray(latents, dtype=np.float32)
    if latents.ndim not in (2, 3) or not len(latents):
        raise BadInputError(f"latents must have shape [m, w_dim] or [m, num_ws, w_dim]; got {list(latents.shape)}")
    w = member_weights(len(latents), weights, random_state=random_state)
    mean = np.tensordot(w, latents.astype(np.float64), axes=1).astype(np.float32)
    return scale_latent(mean, alpha, toward=toward, w_avg=w_avg)


@dataclass
class AdjustedAverage:
    """Result of `privacy_adjusted_average`."""

    latent: np.ndarray
    alpha: float
    rate: float
    satisfied: bool  # rate <= 1/k reached
    history: list[tuple[float, float]] = field(default_factory=list)  # (alpha, rate) per try


def privacy_adjusted_average(latents, *, k: int, reidentification_rate: Callable[[np.ndarray], float],
                             alpha: float = 1.0, shrink: float = 0.8, min_alpha: float = 0.05,
                             toward: str = "zero", w_avg: np.ndarray | None = None, weights=None,
                             random_state=None) -> AdjustedAverage:
    """Shrink ``alpha`` until the surrogate's re-identification rate is at most ``1/k``.

    ``reidentification_rate(latent) -> float in [0, 1]`` is supplied by the caller
    (for example: render the latent, embed the face, and count how many members
    are matched to it). Starting at ``alpha``, each failed try multiplies alpha by
    ``shrink``; the loop stops at the first rate <= 1/k or when alpha would fall
    below ``min_alpha`` (then ``satisfied`` is False and the last try is returned).
    The member weights are drawn once, so only alpha changes between tries.
    """
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise BadInputError(f"k={k!r} must be a positive integer")
    if not 0 < shrink < 1:
        raise BadInputError(f"shrink={shrink!r} must be between 0 and 1")
    if not 0 <= min_alpha <= alpha:
        raise BadInputError(f"min_alpha={min_alpha!r} must be between 0 and alpha={alpha!r}")
    latents = np.asarray(latents, dtype=np.float32)
    w = member_weights(len(latents), weights, random_state=random_state)
    target = 1.0 / k
    history: list[tuple[float, float]] = []
    a = float(alpha)
    while True:
        latent = average_latents(latents, alpha=a, toward=toward, w_avg=w_avg, weights=w)
        rate = float(reidentification_rate(latent))
        if not 0.0 <= rate <= 1.0:
            raise BadInputError(f"reidentification_rate returned {rate!r}; expected a rate in [0, 1]")
        history.append((a, rate))
        log.debug("alpha=%.4f: re-identification rate %.3f (target <= %.3f)", a, rate, target)
        if rate <= target + 1e-12:
            return AdjustedAverage(latent, a, rate, True, history)
        if a * shrink < min_alpha:
            log.warning("re-identification rate %.3f still above 1/k=%.3f at alpha=%.3f (min_alpha=%.3f)",
                        rate, target, a, min_alpha)
            return AdjustedAverage(latent, a, rate, False, history)
        a *= shrink
