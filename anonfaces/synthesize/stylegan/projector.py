"""Projection: find the latent from which the generator reconstructs a given face.

Optimises W (one vector for all layers) or W+ (one per layer) with Adam from the
generator's average latent, with a warm-up/cosine learning-rate ramp and a small
decaying jitter on the latent (as in the StyleGAN2 paper's projector). The
loss is the mean squared pixel error at up to 256 x 256, plus an optional
perceptual term from a caller-supplied feature function (the paper's VGG16
LPIPS weights cannot be downloaded here, so none is built in).

The target must already be in the generator's frame (for FFHQ generators:
FFHQ-aligned; `anonfaces.synthesize.stylegan.frames` maps a canonical crop there).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn.utils import check_random_state

from anonfaces.errors import BadInputError

log = logging.getLogger(__name__)

SPACES = ("w", "w+")


@dataclass
class Projection:
    """Result of `project`.

    Attributes
    ----------
    latent : ndarray of shape (w_dim,) for W, (num_ws, w_dim) for W+, float32
    losses : ndarray of shape (num_steps + 2,): pixel MSE (in [-1, 1] units) at the start, at each step
        (with the latent jitter), and of the final latent
    image : ndarray of shape (R, R, 3), uint8: the reconstruction from ``latent``
    """

    latent: np.ndarray
    losses: np.ndarray
    image: np.ndarray


def image_to_tensor(image: np.ndarray, resolution: int):
    """uint8 ``(H, W, 3)`` -> float tensor ``[1, 3, R, R]`` in [-1, 1] (area-resized when needed)."""
    import cv2
    import torch

    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise BadInputError(f"expected an RGB uint8 image (H, W, 3); got {image.dtype} {image.shape}")
    if image.shape[:2] != (resolution, resolution):
        interp = cv2.INTER_AREA if image.shape[0] > resolution else cv2.INTER_CUBIC
        image = cv2.resize(image, (resolution, resolution), interpolation=interp)
    t = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].to(torch.float32)
    return t / 127.5 - 1.0


def tensor_to_images(x) -> np.ndarray:
    """``[N, 3, H, W]`` in about [-1, 1] -> uint8 ``(N, H, W, 3)``."""
    import torch

    x = (x.detach().cpu().clamp(-1, 1) + 1) * 127.5
    return x.round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def mean_w(G, *, samples: int = 2000, random_state=None) -> tuple[np.ndarray, float]:
    """Mean of W over random z and the root-mean-square distance to it (sets the jitter scale)."""
    import torch

    rng = check_random_state(random_state)
    with torch.no_grad():
        z = torch.from_numpy(rng.standard_normal((samples, G.z_dim)).astype(np.float32))
        w = G.mapping(z)[:, 0].numpy().astype(np.float64)  # [N, C]
    avg = w.mean(0)
    std = float(np.sqrt(((w - avg) ** 2).sum() / samples))
    return avg.astype(np.float32), std


def project(G, target: np.ndarray, *, num_steps: int = 300, space: str = "w+", initial_learning_rate: float = 0.1,
            initial_noise_factor: float = 0.05, w_avg_samples: int = 2000, init: np.ndarray | None = None,
            feature_fn: Callable | None = None, feature_weight: float = 1.0, noise_mode: str = "const",
            mask: np.ndarray | None = None, random_state=None, progress: bool = True) -> Projection:
    """Optimise a latent so that ``G.synthesis`` reconstructs ``target``.

    Parameters
    ----------
    G : a generator from `anonfaces.load_generator` (or our `Generator`).
    target : ndarray of shape (H, W, 3), uint8, in the generator's frame (resized to its resolution).
    num_steps : the step budget.
    space : ``"w"`` (one latent shared by all layers) or ``"w+"`` (one per layer; reconstructs better,
        averages less cleanly).
    init : starting latent (W or W+); default the average W over ``w_avg_samples`` mapped z.
    feature_fn : optional ``images [N, 3, H, W] in [-1, 1] -> features``; adds
        ``feature_weight * squared feature distance`` to the pixel loss.
    mask : optional ndarray of shape (H, W) (same size as ``target``), weights of the pixels in the loss
        (for example 0 where the target was padded when it was mapped into the generator's frame).
    random_state, progress : seed of the z samples and jitter; tqdm progress bar.
    """
    import torch
    import torch.nn.functional as F
    from tqdm.auto import tqdm

    if space not in SPACES:
        raise BadInputError(f"space={space!r} must be one of {', '.join(SPACES)}")
    if not isinstance(num_steps, (int, np.integer)) or num_steps < 1:
        raise BadInputError(f"num_steps={num_steps!r} must be a positive integer")
    rng = check_random_state(random_state)
    gen = torch.Generator().manual_seed(int(rng.randint(0, 2**31 - 1)))
    device = next(G.parameters()).device
    target_t = image_to_tensor(target, G.img_resolution).to(device)
    loss_res = min(G.img_resolution, 256)
    if loss_res != G.img_resolution:
        target_t = F.interpolate(target_t, size=(loss_res, loss_res), mode="area")
    target_feat = feature_fn(target_t).detach() if feature_fn is not None else None
    weight_t = None
    if mask is not None:
        import cv2

        mask = np.asarray(mask, dtype=np.float32)
        if mask.shape != np.asarray(target).shape[:2]:
            raise BadInputError(f"mask shape {mask.shape} does not match the target's {np.asarray(target).shape[:2]}")
        mask = cv2.resize(mask, (loss_res, loss_res), interpolation=cv2.INTER_AREA)
        if mask.sum() <= 0:
            raise BadInputError("mask selects no pixel")
        weight_t = torch.from_numpy(mask)[None, None].to(device) / float(mask.mean())

    w_mean, w_std = mean_w(G, samples=w_avg_samples, random_state=rng)
    if init is None:
        start = w_mean if space == "w" else np.repeat(w_mean[None], G.num_ws, axis=0)
    else:
        from anonfaces.synthesize.stylegan.latents import check_latent, to_wplus

        start = check_latent(init, w_dim=G.w_dim, num_ws=G.num_ws, name="init")
        if space == "w+":
            start = to_wplus(start, G.num_ws)
        elif start.ndim == 2:
            start = start.mean(0)
    w_opt = torch.tensor(start[None], dtype=torch.float32, device=device, requires_grad=True)
    optimizer = torch.optim.Adam([w_opt], betas=(0.9, 0.999), lr=initial_learning_rate)

    def render(w):
        ws = w.unsqueeze(1).repeat(1, G.num_ws, 1) if space == "w" else w
        img = G.synthesis(ws, noise_mode=noise_mode)
        if loss_res != G.img_resolution:
            img = F.interpolate(img, size=(loss_res, loss_res), mode="area")
        return img

    def loss_of(img):
        err = (img - target_t).square()
        pixel = (err * weight_t).mean() if weight_t is not None else err.mean()
        total = pixel
        if feature_fn is not None:
            total = total + feature_weight * (feature_fn(img) - target_feat).square().sum()
        return total, pixel

    losses = []
    G_params = [p.requires_grad for p in G.parameters()]
    for p in G.parameters():
        p.requires_grad_(False)
    try:
        with torch.no_grad():
            losses.append(float(loss_of(render(w_opt))[1]))
        bar = tqdm(range(num_steps), desc="projecting", unit="step", disable=not progress, leave=False)
        for step in bar:
            t = step / num_steps
            noise_scale = w_std * initial_noise_factor * max(0.0, 1.0 - t / 0.75) ** 2
            ramp = min(1.0, (1.0 - t) / 0.25)
            ramp = (0.5 - 0.5 * math.cos(ramp * math.pi)) * min(1.0, (step + 1) / max(1.0, 0.05 * num_steps))
            for group in optimizer.param_groups:
                group["lr"] = initial_learning_rate * ramp
            jitter = torch.randn(w_opt.shape, generator=gen).to(device) * noise_scale
            total, pixel = loss_of(render(w_opt + jitter))
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            optimizer.step()
            losses.append(float(pixel.detach()))
            bar.set_postfix(mse=f"{losses[-1]:.4f}")
        with torch.no_grad():
            losses.append(float(loss_of(render(w_opt))[1]))
            full = G.synthesis(w_opt.unsqueeze(1).repeat(1, G.num_ws, 1) if space == "w" else w_opt,
                               noise_mode=noise_mode)
    finally:
        for p, flag in zip(G.parameters(), G_params):
            p.requires_grad_(flag)
    latent = w_opt.detach().cpu().numpy()[0].astype(np.float32)
    log.debug("projection: mse %.4f -> %.4f in %d steps", losses[0], losses[-1], num_steps)
    return Projection(latent=latent, losses=np.asarray(losses, dtype=np.float64), image=tensor_to_images(full)[0])
