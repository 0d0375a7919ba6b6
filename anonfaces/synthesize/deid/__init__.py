"""CNN de-identification: feature inversion and D2GAN, one new face per input face.

Two learned one-to-one de-identifiers (no clusters, no k), used like the classic
baselines (`anonfaces.synthesize.baselines`: ``--method inversion`` / ``--method d2gan``):

* ``inversion``: an encoder (MobileNetV2-style, width 0.5; a ResNet-style option)
  and a U-Net decoder rebuild the face crop from the encoder's features, trained
  to keep what must stay (the low-frequency content: pose, expression, lighting;
  the image around the face) and to move dlib's 128-D embedding of the face past
  dlib's 0.6 match threshold (an identity hinge with dlib's ResNet as a frozen,
  differentiable critic).
* ``d2gan``: a generator that paints the face into the masked crop, conditioned
  on the face mask and a landmark heatmap, trained against the two
  discriminators of D2GAN (Nguyen et al. 2017) plus the same identity hinge.

Both work on the face's region of interest (`anonfaces.synthesize.blend.face_roi`
with a 0.3 margin, as the baselines) resized to ``size`` px (64 for the shipped
checkpoints); the network's output is resized back and put into the photo
inside the face region only (with ``detail=True`` the photo's own detail finer
than the network's resolution is kept instead: the network's low-resolution
change is added to the original pixels; measured on LFW it keeps more identity,
so the default is False). Further inference settings: ``region`` (``inner``: only the
eyebrows-eyes-nose-mouth hull changes), ``contrast`` (the face's Lab mean and spread made
the original's), ``sharpen`` / ``sharpen_radius`` (an unsharp mask; ``sharpen_region="inner"``: on the inner face
only, where the detector reads the eyes, brows, nose and mouth), ``outer_detail`` (the share of the photo's own
detail finer than the network's resolution put back outside the inner face), ``seam`` (the face fades into the
photo over a band this share of the face size inside the region's edge). A checkpoint may carry
its own defaults for them (``settings["inference"]``, `with_inference_settings`; the
shipped d2gan: ``contrast=True, sharpen=1.25``). Pixels outside the face region never change.

Checkpoints (``weights/<model>.npz``): the tensors as plain arrays plus the
settings as a JSON string, read with ``numpy.load(allow_pickle=False)`` (no pickled
code can be in them). The shipped ones were trained on CelebA and carry its
non-commercial research terms (``weights/NOTICE.md``).

torch is imported only when a model is used; training is
`anonfaces.pipeline.train_deid` (it holds the dlib critic, so this stage
imports nothing from ``anonfaces.encode``).
"""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path

import cv2
import numpy as np

from anonfaces.errors import BadInputError
from anonfaces.utils.atomic import atomic_write_bytes

MODELS = ("inversion", "d2gan")
#: where the network's face goes: the whole face region, or only the inner face (`inner_face_mask`)
REGIONS = ("face", "inner")
#: inference settings when neither the caller nor the checkpoint's ``inference`` record gives one
INFERENCE_DEFAULTS = {"detail": False, "region": "face", "contrast": False, "sharpen": 0.0, "sharpen_radius": 1.0,
                      "sharpen_region": "face", "outer_detail": 0.0, "seam": 0.0}
#: where ``sharpen`` acts: the whole face region, or the inner face (`inner_face_mask`: eyes, brows, nose, mouth)
SHARPEN_REGIONS = ("face", "inner")
WEIGHTS_DIR = Path(__file__).parent / "weights"
FORMAT = "anonfaces-deid/1"
#: torch threads while a face goes through a network: a 64 px face is too small to share out
#: (measured: 5 ms CPU per face on one thread, 68 ms on two threads of a loaded 2-core machine);
#: both cores are used by running two worker processes (``--jobs 2``).
INFERENCE_THREADS = 1

__all__ = ["INFERENCE_DEFAULTS", "MODELS", "REGIONS", "SHARPEN_REGIONS", "WEIGHTS_DIR", "Deidentifier", "deidentify_patch",
           "inference_settings", "inner_face_mask", "landmark_heatmap", "load_weights", "make_input", "save_weights",
           "shipped_weights", "with_inference_settings"]


def shipped_weights(model: str) -> Path:
    """The path of the shipped checkpoint of ``model`` (inversion or d2gan)."""
    if model not in MODELS:
        raise BadInputError(f"unknown de-identification model {model!r}; valid: {', '.join(MODELS)}")
    return WEIGHTS_DIR / f"{model}.npz"


def _torch():
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is in the test extra
        raise BadInputError("the inversion and d2gan methods need PyTorch: pip install 'anonfaces[deid]'") from None
    return torch


def save_weights(path, net, settings: dict) -> None:
    """Write ``net``'s tensors and ``settings`` to ``path`` (.npz, atomically; no pickle)."""
    arrays = {f"t/{k}": v.detach().cpu().numpy() for k, v in net.state_dict().items()}
    arrays["settings"] = np.array(json.dumps({"format": FORMAT, **settings}, sort_keys=True))
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def load_weights(path):
    """``(net in eval mode, settings)`` from a checkpoint written by `save_weights` (read without pickle)."""
    torch = _torch()
    from anonfaces.synthesize.deid.models import build

    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"de-identification checkpoint not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            settings = json.loads(str(data["settings"]))
            state = {k[2:]: torch.from_numpy(np.array(data[k])) for k in data.files if k.startswith("t/")}
    except (ValueError, KeyError, OSError) as exc:
        raise BadInputError(f"{path} is not a de-identification checkpoint: {exc}") from None
    if settings.get("format") != FORMAT or settings.get("model") not in MODELS:
        raise BadInputError(f"{path} is not a de-identification checkpoint (format {settings.get('format')!r})")
    net = build(settings)
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise BadInputError(f"{path}: the tensors do not fit the settings: {exc}") from None
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net, settings


def landmark_heatmap(landmarks: np.ndarray, size: int, sigma: float = 1.0) -> np.ndarray:
    """float32 (size, size) in 0..1: a Gaussian dot at each landmark (crop pixels), the maximum over them."""
    lm = np.asarray(landmarks, np.float32).reshape(-1, 2)
    grid = np.arange(size, dtype=np.float32) + 0.5
    gx = np.exp(-((grid[None, :] - lm[:, :1]) ** 2) / (2 * sigma ** 2))  # (n, size)
    gy = np.exp(-((grid[None, :] - lm[:, 1:]) ** 2) / (2 * sigma ** 2))
    return np.max(gy[:, :, None] * gx[:, None, :], axis=0) if len(lm) else np.zeros((size, size), np.float32)


def make_input(model: str, crops, masks, heatmaps):
    """The network input: (N, 3, S, S) crops in -1..1; d2gan: the crop with the face zeroed, the mask, the heatmap."""
    torch = _torch()
    if model == "inversion":
        return crops
    return torch.cat([crops * (1 - masks), masks, heatmaps], 1)


class Deidentifier:
    """A loaded checkpoint; ``deid(patch, mask, landmarks)`` -> the patch with the face region replaced."""

    def __init__(self, weights):
        self.net, self.settings = load_weights(weights)
        self.model = self.settings["model"]
        self.size = int(self.settings["size"])
        self.inference = {**INFERENCE_DEFAULTS, **{k: v for k, v in self.settings.get("inference", {}).items()
                                                   if k in INFERENCE_DEFAULTS}}

    def crops(self, patches, masks, landmarks):
        """Network outputs (N, S, S, 3) float 0..255 for uint8 patches already resized to S (for tests/benches)."""
        torch = _torch()
        x = torch.from_numpy(np.stack(patches).astype(np.float32) / 127.5 - 1).permute(0, 3, 1, 2)
        m = torch.from_numpy(np.stack(masks).astype(np.float32))[:, None]
        h = torch.from_numpy(np.stack([landmark_heatmap(lm, self.size) for lm in landmarks]))[:, None]
        prev = torch.get_num_threads()
        if prev != INFERENCE_THREADS:
            torch.set_num_threads(INFERENCE_THREADS)
        try:
            with torch.no_grad():
                y = self.net(make_input(self.model, x, m, h))
        finally:
            if prev != INFERENCE_THREADS:
                torch.set_num_threads(prev)
        return ((y.permute(0, 2, 3, 1).numpy() + 1) * 127.5).clip(0, 255)

    def __call__(self, patch: np.ndarray, mask: np.ndarray, landmarks: np.ndarray, *, detail: bool = False,
                 region: str = "face", contrast: bool = False, sharpen: float = 0.0,
                 sharpen_radius: float = 1.0, sharpen_region: str = "face", outer_detail: float = 0.0,
                 seam: float = 0.0) -> np.ndarray:
        h, w = patch.shape[:2]
        s = self.size
        small = cv2.resize(patch, (s, s), interpolation=cv2.INTER_AREA)
        small_mask = cv2.resize(mask.astype(np.float32), (s, s), interpolation=cv2.INTER_AREA)
        lm = np.asarray(landmarks, np.float32) * np.array([s / w, s / h], np.float32)
        out = self.crops([small], [(small_mask > 0.5).astype(np.float32)], [lm])[0]
        # the photo's own detail finer than the network's resolution (what the network cannot carry)
        fine = (lambda: patch.astype(np.float32) - cv2.resize(small.astype(np.float32), (w, h),
                                                               interpolation=cv2.INTER_CUBIC))
        if detail:  # the network's change, at its resolution, added to the photo's own pixels
            delta = cv2.resize(out - small.astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
            big = patch.astype(np.float32) + delta
        else:
            big = cv2.resize(out, (w, h), interpolation=cv2.INTER_CUBIC)
        inner = (inner_face_mask((h, w), landmarks)[..., None]
                 if "inner" in (region, sharpen_region) or (outer_detail > 0 and not detail) else None)
        if sharpen > 0:  # unsharp mask at the scale of ``sharpen_radius`` network pixels
            sigma = max(0.5, sharpen_radius * max(w, h) / s)
            edges = big - cv2.GaussianBlur(big, (0, 0), sigmaX=sigma)
            big = big + sharpen * (edges * inner if sharpen_region == "inner" else edges)
        if outer_detail > 0 and not detail:  # outside the inner face, the photo's fine detail (skin, hair) comes back
            big = big + outer_detail * (1 - inner) * fine()
        big = np.clip(np.rint(big), 0, 255).astype(np.uint8)
        if contrast:  # the face's mean and spread of every Lab channel made the original's
            from anonfaces.synthesize.blend import match_colors

            big = match_colors(big, patch, mask, mode="lab")
        if region == "inner":  # only the inner face changes; the original's outline (cheeks, jaw) is kept
            big = np.clip(np.rint(inner * big + (1 - inner) * patch), 0, 255).astype(np.uint8)
        if seam > 0:  # the face fades into the photo over a band ``seam`` x the face size inside its edge
            size = float(np.linalg.norm(np.asarray(landmarks, np.float64)[8] - np.asarray(landmarks, np.float64)[27]))
            inside = cv2.distanceTransform(np.pad(mask.astype(np.uint8), 1), cv2.DIST_L2, 5)[1:-1, 1:-1]
            alpha = np.clip(inside / max(1.0, seam * size), 0, 1)[..., None]
            big = np.clip(np.rint(alpha * big + (1 - alpha) * patch), 0, 255).astype(np.uint8)
        return big


def inner_face_mask(shape_hw, landmarks: np.ndarray, *, grow: float = 1.25, feather: float = 0.08) -> np.ndarray:
    """float32 (h, w) in 0..1: the hull of the eyebrows, eyes, nose and mouth (landmarks 17-67), grown by ``grow``
    about its centre, its edge feathered over ``feather`` x the face size (1 well inside, 0 outside the grown hull)."""
    lm = np.asarray(landmarks, np.float64)[17:68]
    centre = lm.mean(0)
    hull = cv2.convexHull(((lm - centre) * grow + centre).astype(np.float32)).reshape(-1, 2)
    hard = np.zeros(shape_hw, np.uint8)
    cv2.fillConvexPoly(hard, np.round(hull * 16).astype(np.int32), 255, lineType=cv2.LINE_AA, shift=4)
    size = float(np.linalg.norm(np.asarray(landmarks, np.float64)[8] - np.asarray(landmarks, np.float64)[27]))
    width = max(1.0, feather * size)
    radius = int(np.ceil(width))
    inner = cv2.erode(hard, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1)))
    soft = cv2.GaussianBlur(inner.astype(np.float32) / 255.0, (0, 0), sigmaX=width / 2.0)
    return np.minimum(soft, hard.astype(np.float32) / 255.0)


_CACHE: dict = {}
_LOCK = threading.Lock()


def _deidentifier(weights) -> Deidentifier:
    key = str(Path(weights).resolve())
    with _LOCK:
        if key not in _CACHE:
            _CACHE[key] = Deidentifier(weights)
        return _CACHE[key]


def deidentify_patch(model: str, patch, mask, landmarks, *, weights=None, detail: bool | None = None,
                     region: str | None = None, contrast: bool | None = None, sharpen: float | None = None,
                     sharpen_radius: float | None = None, sharpen_region: str | None = None,
                     outer_detail: float | None = None, seam: float | None = None) -> np.ndarray:
    """``patch`` (uint8 RGB, a face's region of interest) with its face replaced by ``model``.

    ``mask`` (bool, the face region), ``landmarks`` (68, 2) in patch pixels; ``weights``:
    a checkpoint path (None: the shipped one). ``region``: ``face`` (the whole face region)
    or ``inner`` (only the eyebrows-eyes-nose-mouth hull, feathered; the original's cheeks
    and jaw line kept); ``contrast``: the output's mean and spread per Lab channel matched
    to the original face's; ``sharpen``: unsharp-mask amount, its Gaussian's sigma ``sharpen_radius`` network pixels,
    on the whole face or (``sharpen_region="inner"``) on the inner face only; ``outer_detail`` (0..1): that share of
    the photo's detail finer than the network's resolution added back outside the inner face; ``seam`` (x the face
    size): the output fades into the original over that band inside the region's edge.
    A setting left None takes the checkpoint's own default (`inference_settings`).
    Pixels outside ``mask`` are for the caller to keep.
    """
    path = shipped_weights(model) if weights is None else Path(weights)
    deid = _deidentifier(path)
    if deid.model != model:
        raise BadInputError(f"{path} holds a {deid.model!r} model, not {model!r}")
    given = {"detail": detail, "region": region, "contrast": contrast, "sharpen": sharpen, "sharpen_radius": sharpen_radius,
             "sharpen_region": sharpen_region, "outer_detail": outer_detail, "seam": seam}
    st = {**deid.inference, **{k: v for k, v in given.items() if v is not None}}
    if st["region"] not in REGIONS:
        raise BadInputError(f"region={st['region']!r} must be one of {', '.join(REGIONS)}")
    if st["sharpen_region"] not in SHARPEN_REGIONS:
        raise BadInputError(f"sharpen_region={st['sharpen_region']!r} must be one of {', '.join(SHARPEN_REGIONS)}")
    return deid(np.ascontiguousarray(patch), mask, landmarks, detail=bool(st["detail"]), region=st["region"],
                contrast=bool(st["contrast"]), sharpen=float(st["sharpen"]), sharpen_radius=float(st["sharpen_radius"]),
                sharpen_region=st["sharpen_region"], outer_detail=float(st["outer_detail"]), seam=float(st["seam"]))


def inference_settings(weights) -> dict:
    """The inference settings a checkpoint uses when the caller gives none: `INFERENCE_DEFAULTS` updated by
    the checkpoint's own ``inference`` record (see `with_inference_settings`)."""
    return dict(_deidentifier(Path(weights)).inference)


def with_inference_settings(src, dest, **settings) -> dict:
    """Copy checkpoint ``src`` to ``dest`` with ``settings`` (names of `INFERENCE_DEFAULTS`) as its own defaults."""
    unknown = sorted(set(settings) - set(INFERENCE_DEFAULTS))
    if unknown:
        raise BadInputError(f"unknown inference setting(s) {', '.join(unknown)}; valid: {', '.join(INFERENCE_DEFAULTS)}")
    net, meta = load_weights(src)
    meta = {k: v for k, v in meta.items() if k != "format"}
    meta["inference"] = {**meta.get("inference", {}), **settings}
    save_weights(dest, net, meta)
    with _LOCK:  # a model loaded from ``dest`` before is stale now
        _CACHE.pop(str(Path(dest).resolve()), None)
    return meta["inference"]
