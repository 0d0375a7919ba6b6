"""The ``stylegan`` synthesizer: k-Same by averaging the members' StyleGAN latents.

Each member's canonical crop is mapped into the generator's frame (FFHQ
alignment, computed from its landmarks), projected to a latent, the latents
are averaged (`latents.average_latents` options, optionally the
privacy-adjusted alpha loop), the average is rendered, and the result is mapped
back into the canonical frame using the members' mean landmarks.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from anonfaces.errors import BadInputError
from anonfaces.synthesize.stylegan.latents import (
    TOWARD,
    average_latents,
    check_latent,
    privacy_adjusted_average,
    stack_latents,
)

log = logging.getLogger(__name__)

DEFAULT_GENERATOR = Path("stylegan") / "ffhq.pkl"


def make_surrogate(image: np.ndarray, landmarks: np.ndarray, info: dict | None = None):
    """The synthesis stage's `Surrogate` record (``anonfaces.synthesize.base``)."""
    from anonfaces.synthesize.base import Surrogate

    return Surrogate(image=image, landmarks=np.asarray(landmarks, dtype=np.float32), info=dict(info or {}))


def check_cluster(faces: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate the synthesizer inputs: faces uint8 (m, S, S, 3), landmarks (m, 68, 2)."""
    faces = np.asarray(faces)
    landmarks = np.asarray(landmarks, dtype=np.float32)
    if faces.ndim != 4 or faces.shape[3] != 3 or faces.shape[1] != faces.shape[2] or faces.dtype != np.uint8:
        raise BadInputError(f"faces must be uint8 of shape (m, S, S, 3); got {faces.dtype} {faces.shape}")
    if len(faces) == 0:
        raise BadInputError("a cluster needs at least one face")
    if landmarks.shape != (len(faces), 68, 2):
        raise BadInputError(f"landmarks must have shape ({len(faces)}, 68, 2); got {landmarks.shape}")
    return faces, landmarks


def ffhq_matrix(landmarks68: np.ndarray, resolution: int) -> np.ndarray:
    """The (2, 3) similarity transform from image pixels to the FFHQ-aligned frame of ``resolution`` pixels.

    FFHQ's alignment: an oriented square centred a little below the eyes
    (``eye_avg + 0.1 * eye_to_mouth``), turned with the eye line and the
    eye-to-mouth direction, with half-side ``max(2 * |eye_to_eye|, 1.8 * |eye_to_mouth|)``.
    """
    lm = np.asarray(landmarks68, dtype=np.float64)
    eye_a, eye_b = lm[36:42].mean(0), lm[42:48].mean(0)
    eye_avg = (eye_a + eye_b) / 2
    eye_to_eye = eye_b - eye_a
    mouth_avg = (lm[48] + lm[54]) / 2
    eye_to_mouth = mouth_avg - eye_avg

    def rot90(v):
        return np.array([-v[1], v[0]])

    x = eye_to_eye - rot90(eye_to_mouth)
    x /= np.hypot(*x)
    half = max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    centre = eye_avg + eye_to_mouth * 0.1
    scale = resolution / (2.0 * half)
    cos, sin = x * scale
    # rotation that takes x to the +X axis, scaled; y = rot90(x) then goes to +Y
    A = np.array([[cos, sin], [-sin, cos]])
    t = np.array([resolution / 2.0, resolution / 2.0]) - A @ centre
    return np.hstack([A, t[:, None]])


def to_generator_frame(face: np.ndarray, landmarks68: np.ndarray, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """Map a crop into the generator's frame: the image (reflect-padded) and a 0/1 mask of real pixels."""
    import cv2

    M = ffhq_matrix(landmarks68, resolution)
    img = cv2.warpAffine(face, M, (resolution, resolution), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    ones = np.ones(face.shape[:2], dtype=np.float32)
    mask = cv2.warpAffine(ones, M, (resolution, resolution), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=0)
    return img, mask


def from_generator_frame(image: np.ndarray, landmarks68: np.ndarray, size: int) -> np.ndarray:
    """Map a generated image back into a ``size`` x ``size`` crop whose face has ``landmarks68``."""
    import cv2

    res = image.shape[0]
    M = ffhq_matrix(landmarks68, res)
    factor = float(np.hypot(*M[0, :2]))  # generator pixels per crop pixel
    if factor > 1.25:  # shrink first (area filter) so the warp does not alias
        res = max(8, round(res / factor))
        image = cv2.resize(image, (res, res), interpolation=cv2.INTER_AREA)
        M = ffhq_matrix(landmarks68, res)
    return cv2.warpAffine(image, M, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REFLECT)


def detect_landmarks(image: np.ndarray, guess: np.ndarray) -> np.ndarray:
    """dlib's 68-point landmarks on ``image`` within the box of the ``guess`` landmarks (falls back to the guess)."""
    try:
        import dlib

        from anonfaces.detect import _models

        lo, hi = guess.min(0), guess.max(0)
        rect = dlib.rectangle(*(round(v) for v in (lo[0], lo[1], hi[0], hi[1])))
        shape = _models.shape_predictor(68)(np.ascontiguousarray(image), rect)
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)
    except Exception as exc:  # noqa: BLE001 - the models are optional here: keep the geometric guess
        log.warning("could not place landmarks on the surrogate (%s); using the members' mean shape", exc)
        return guess.astype(np.float32)


class StyleGANSynthesizer:
    """k-Same surrogate by StyleGAN latent averaging (the original research's generator).

    Parameters
    ----------
    generator : path of a stylegan2-ada-pytorch network pickle (default ``stylegan/ffhq.pkl``,
        see ``stylegan/README.md``) or a loaded generator. Loaded on first use.
    space : ``"w+"`` or ``"w"``: the latent space members are projected into.
    num_steps : projection step budget per member.
    alpha, toward, weights : averaging options (see `anonfaces.synthesize.stylegan.latents`).
    reidentify : optional ``callable(surrogate_crop, faces, embeddings) -> rate in [0, 1]``;
        when given, alpha is shrunk until the rate is at most ``1 / k`` (privacy-adjusted loop).
    k : anonymity parameter for that loop (default: the cluster's size).
    landmarks : ``"detect"`` (dlib's 68 points on the rendered surrogate) or ``"mean"``
        (the members' mean landmarks, where the alignment puts the face's eyes and mouth).
    cache_dir : folder to keep each member's projected latent (``<sha1 of crop>.npy``), reused across runs.
    """

    def __init__(self, *, generator: str | os.PathLike | object = DEFAULT_GENERATOR, space: str = "w+",
                 num_steps: int = 300, alpha: float = 1.0, toward: str = "zero", weights=None,
                 reidentify: Callable | None = None, k: int | None = None, shrink: float = 0.8,
                 min_alpha: float = 0.05, landmarks: str = "detect", cache_dir: str | os.PathLike | None = None,
                 device: str = "cpu", random_state=None, progress: bool = True):
        if space not in ("w", "w+"):
            raise BadInputError(f"space={space!r} must be 'w' or 'w+'")
        if toward not in TOWARD:
            raise BadInputError(f"toward={toward!r} must be one of {', '.join(TOWARD)}")
        if landmarks not in ("detect", "mean"):
            raise BadInputError(f"landmarks={landmarks!r} must be 'detect' or 'mean'")
        self.generator = generator
        self.space = space
        self.num_steps = num_steps
        self.alpha = alpha
        self.toward = toward
        self.weights = weights
        self.reidentify = reidentify
        self.k = k
        self.shrink = shrink
        self.min_alpha = min_alpha
        self.landmarks = landmarks
        self.cache_dir = cache_dir
        self.device = device
        self.random_state = random_state
        self.progress = progress
        self._G = None
        self._cache: dict[str, np.ndarray] = {}

    @property
    def G(self):
        if self._G is None:
            if isinstance(self.generator, (str, os.PathLike)):
                from anonfaces.synthesize.stylegan.loader import load_generator

                if not Path(self.generator).is_file():
                    raise BadInputError(f"StyleGAN weights {os.fspath(self.generator)!r} not found; download NVIDIA's "
                                        "ffhq.pkl into stylegan/ as described in stylegan/README.md")
                self._G = load_generator(self.generator, device=self.device)
            else:
                self._G = self.generator
        return self._G

    def settings(self) -> dict:
        gen = os.fspath(self.generator) if isinstance(self.generator, (str, os.PathLike)) else type(self.generator).__name__
        return {"name": getattr(self, "registry_name", "stylegan"), "generator": gen, "space": self.space,
                "num_steps": self.num_steps, "alpha": self.alpha, "toward": self.toward,
                "weights": self.weights if isinstance(self.weights, (str, type(None))) else "array",
                "privacy_adjusted": self.reidentify is not None, "landmarks": self.landmarks}

    # -- latents -------------------------------------------------------------------------------

    def _key(self, face: np.ndarray, landmarks: np.ndarray) -> str:
        h = hashlib.sha1()
        for part in (face.tobytes(), np.asarray(landmarks, np.float32).tobytes(),
                     repr((self.space, self.num_steps, self.G.img_resolution, self.G.num_ws)).encode()):
            h.update(part)
        return h.hexdigest()

    def project_face(self, face: np.ndarray, landmarks: np.ndarray, *, random_state=None) -> np.ndarray:
        """The latent (W or W+) of one canonical crop, projected (and cached)."""
        from anonfaces.synthesize.stylegan.projector import project

        key = self._key(face, landmarks)
        if key in self._cache:
            return self._cache[key]
        path = Path(self.cache_dir) / f"{key}.npy" if self.cache_dir is not None else None
        if path is not None and path.is_file():
            latent = check_latent(np.load(path, allow_pickle=False), w_dim=self.G.w_dim, num_ws=self.G.num_ws)
        else:
            target, mask = to_generator_frame(face, landmarks, self.G.img_resolution)
            latent = project(self.G, target, num_steps=self.num_steps, space=self.space, mask=mask,
                             random_state=random_state, progress=self.progress).latent
            if path is not None:
                from anonfaces.utils.atomic import atomic_open

                with atomic_open(path, "wb") as fh:
                    np.save(fh, latent, allow_pickle=False)
        self._cache[key] = latent
        return latent

    def project_faces(self, faces: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        faces, landmarks = check_cluster(faces, landmarks)
        rng = np.random.RandomState(self.random_state) if not isinstance(self.random_state, np.random.RandomState) \
            else self.random_state
        latents = [self.project_face(f, l, random_state=rng.randint(0, 2**31 - 1)) for f, l in zip(faces, landmarks)]
        return stack_latents(latents, num_ws=self.G.num_ws)

    # -- rendering -----------------------------------------------------------------------------

    def render(self, latent: np.ndarray) -> np.ndarray:
        """uint8 (R, R, 3) image of a W or W+ latent, in the generator's frame."""
        import torch

        from anonfaces.synthesize.stylegan.latents import to_wplus
        from anonfaces.synthesize.stylegan.projector import tensor_to_images

        G = self.G
        ws = to_wplus(check_latent(latent, w_dim=G.w_dim, num_ws=G.num_ws), G.num_ws)
        with torch.no_grad():
            img = G.synthesis(torch.from_numpy(ws)[None].to(next(G.parameters()).device), noise_mode="const")
        return tensor_to_images(img)[0]

    def _crop(self, latent: np.ndarray, shape: np.ndarray, size: int) -> np.ndarray:
        return from_generator_frame(self.render(latent), shape, size)

    def synthesize_from_latents(self, latents, landmarks: np.ndarray, *, size: int, faces=None, embeddings=None):
        """Surrogate from the members' latents (``[m, w_dim]`` or ``[m, num_ws, w_dim]``, e.g. read from
        ``<stem>_01.npy`` files) and their landmarks in a ``size`` crop."""
        G = self.G
        latents = np.asarray(latents, dtype=np.float32)
        landmarks = np.asarray(landmarks, dtype=np.float32)
        if latents.ndim not in (2, 3) or len(latents) != len(landmarks):
            raise BadInputError(f"latents {list(latents.shape)} and landmarks {list(landmarks.shape)} "
                                "must describe the same members")
        shape = landmarks.mean(0)
        w_avg = G.w_avg.detach().cpu().numpy() if hasattr(G.mapping, "w_avg") else None
        opts = {"toward": self.toward, "w_avg": w_avg, "weights": self.weights, "random_state": self.random_state}
        if self.reidentify is not None:
            k = self.k or len(latents)
            result = privacy_adjusted_average(
                latents, k=k, alpha=self.alpha, shrink=self.shrink, min_alpha=self.min_alpha,
                reidentification_rate=lambda lat: self.reidentify(self._crop(lat, shape, size), faces, embeddings),
                **opts)
            latent = result.latent
            info = {"alpha": result.alpha, "reidentification_rate": result.rate, "privacy_target_met": result.satisfied}
            log.info("privacy-adjusted alpha %.3f, re-identification rate %.3f (target %.3f)%s", result.alpha,
                     result.rate, 1 / k, "" if result.satisfied else " NOT reached")
        else:
            latent = average_latents(latents, alpha=self.alpha, **opts)
            info = {"alpha": self.alpha}
        info.update(toward=self.toward, members=len(latents))
        image = self._crop(latent, shape, size)
        points = detect_landmarks(image, shape) if self.landmarks == "detect" else shape
        return make_surrogate(image, points, info)

    def synthesize(self, faces: np.ndarray, landmarks: np.ndarray, embeddings: np.ndarray | None = None):
        """One surrogate for a cluster: faces uint8 (m, S, S, 3) in the canonical frame, landmarks (m, 68, 2)."""
        faces, landmarks = check_cluster(faces, landmarks)
        latents = self.project_faces(faces, landmarks)
        return self.synthesize_from_latents(latents, landmarks, size=faces.shape[1], faces=faces,
                                            embeddings=embeddings)
