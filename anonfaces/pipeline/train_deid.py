"""Training of the CNN de-identifiers (`anonfaces.synthesize.deid`) on aligned CelebA faces.

    prepare_faces("../shared/data/celeba-aligned", "celeba64.npz", size=64)   # once: detect, crop, embed
    train("inversion", "celeba64.npz", "runs/inversion", steps=4000)         # resumable

Data (`prepare_faces`): every image's first dlib HOG face, its region of interest
as the baselines cut it (`face_roi`, margin 0.3, forehead 0.15) resized to
``size`` px, the face mask, the 68 landmarks in crop pixels, and dlib's
embedding of the crop (upsampled to dlib's 150 px input) as the identity target.

Losses of the generator (``out`` the network's output put into the crop inside the
face mask, ``x`` the crop):

* ``low``: L1 between ``out`` and ``x`` averaged over 8x8 px cells (what must stay:
  lighting, skin tone, pose and head outline), plus ``mid`` at 4x4 px (expression);
* ``ctx``: L1 of the raw output outside the face (the decoder reproduces the context,
  so the seam at the mask's edge is smooth);
* ``grad``: L1 between the gradient energy (|dx| + |dy|) of ``out`` and of ``x``, averaged
  over 4x4 px cells: as much fine texture as the original, no more (without it the
  identity term is met by high-frequency stripes that fool dlib and nothing else);
* ``id``: ``relu(0.6 + margin - |dlib(blur(out)) - dlib(blur(x))|)``: dlib's ResNet
  (`anonfaces.encode._dlib_torch`, frozen) as the critic, on the crops blurred by
  ``critic_blur`` px (so that fine adversarial patterns do not count) and upsampled to 150 px;
* d2gan only, ``adv``: the generator's D2GAN loss ``-D1(G) + beta log D2(G)``; the
  discriminators minimise ``-alpha log D1(x) + D1(G) + D2(x) - beta log D2(G)``
  (Nguyen et al. 2017, D1 rewards real data, D2 rewards generated data).

Every run is seeded (the batch order is a function of seed and step, so a resumed
run draws the same batches as an uninterrupted one), records its settings
(``settings.json``), writes ``checkpoint.pt`` atomically every ``save_every`` steps
(read back with ``torch.load(weights_only=True)``: tensors and plain containers
only), the loss history (``losses.csv``), a loss plot (``losses.png``) and the
inference checkpoint ``<model>.npz`` (`anonfaces.synthesize.deid.save_weights`).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import time
from pathlib import Path

import numpy as np

from anonfaces.errors import BadInputError
from anonfaces.utils.atomic import atomic_open, atomic_write_bytes, atomic_write_text

log = logging.getLogger(__name__)

DEFAULTS = {
    "encoder": "mobilenetv2", "width": 0.5, "decoder_channels": [48, 32, 24, 16], "size": 64,
    "batch": 16, "lr": 2e-3, "lr_d": 1e-3, "margin": 0.1, "w_low": 10.0, "w_mid": 2.0, "w_ctx": 1.0, "w_id": 2.0,
    "w_adv": 0.05, "w_grad": 5.0, "critic_blur": 1.0, "w_hf": 0.0, "hf_blur": 1.5, "w_chroma": 0.0,
    "w_orient": 0.0, "orient_cell": 4, "alpha": 0.2, "beta": 0.1, "forehead": 0.15, "roi_margin": 0.3,
}
SETTING_NAMES = sorted(DEFAULTS)


# --- data ---------------------------------------------------------------------------------------
def _images(root: Path) -> list[Path]:
    folder = root / "images" if (root / "images").is_dir() else root
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))


def crop_face(image: np.ndarray, landmarks68: np.ndarray, size: int, *, forehead: float = 0.15, margin: float = 0.3):
    """(crop uint8 (size, size, 3), mask bool (size, size), landmarks (68, 2) in crop pixels) or None.

    The same region of interest and face mask as `anonfaces.synthesize.baselines.apply_baseline`.
    """
    import cv2

    from anonfaces.synthesize.blend import face_mask, face_roi

    x0, y0, x1, y1 = face_roi(landmarks68, image.shape[:2], forehead=forehead, margin=margin)
    if x1 - x0 < 16 or y1 - y0 < 16:
        return None
    patch = image[y0:y1, x0:x1]
    mask = face_mask((y1 - y0, x1 - x0), landmarks68, forehead=forehead, feather=0, offset=(x0, y0))
    h, w = patch.shape[:2]
    crop = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)
    small = cv2.resize(mask, (size, size), interpolation=cv2.INTER_AREA) > 0.5
    lm = (np.asarray(landmarks68, np.float32) - [x0, y0]) * np.array([size / w, size / h], np.float32)
    return crop, small, lm


def prepare_faces(data, out, *, size: int = 64, limit: int | None = None, forehead: float = 0.15,
                  margin: float = 0.3, progress: bool = True) -> dict:
    """Detect, crop and embed the faces of ``data`` (a folder of aligned face photos); write ``out`` (.npz)."""
    import torch
    from PIL import Image
    from tqdm import tqdm

    from anonfaces.detect import HogDetector
    from anonfaces.encode._dlib_torch import dlib_resnet

    paths = _images(Path(data))
    if not paths:
        raise BadInputError(f"no images found under {data}")
    if limit:
        paths = paths[: int(limit)]
    det = HogDetector(upsample=1)  # the CelebA copy is 89 x 109 px: faces below HOG's 80 px window
    crops, masks, lms, names = [], [], [], []
    for p in tqdm(paths, desc="detect", disable=not progress):
        image = np.asarray(Image.open(p).convert("RGB"))
        faces = det.detect(image)
        if not faces:
            continue
        cut = crop_face(image, faces[0].landmarks68, size, forehead=forehead, margin=margin)
        if cut is None:
            continue
        crops.append(cut[0]), masks.append(cut[1]), lms.append(cut[2]), names.append(str(p.relative_to(data)))
    if not crops:
        raise BadInputError(f"no face found in the images under {data}")
    crops = np.stack(crops)
    critic = dlib_resnet()
    emb = []
    with torch.no_grad():
        for i in tqdm(range(0, len(crops), 64), desc="embed", disable=not progress):
            x = torch.from_numpy(crops[i:i + 64].astype(np.float32) / 127.5 - 1).permute(0, 3, 1, 2)
            emb.append(critic(_to_critic(x)).numpy())
    arrays = {"crops": crops, "masks": np.stack(masks), "landmarks": np.stack(lms), "embeddings": np.concatenate(emb),
              "names": np.array(names), "settings": np.array(json.dumps(
                  {"size": size, "forehead": forehead, "roi_margin": margin, "n_images": len(paths)}))}
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(out, buf.getvalue())
    log.info("%d faces of %d images -> %s", len(crops), len(paths), out)
    return {"faces": len(crops), "images": len(paths)}


def load_faces(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"prepared faces not found: {path} (make them with prepare_faces / --prepare)")
    with np.load(path, allow_pickle=False) as data:
        out = {k: np.array(data[k]) for k in data.files}
    out["settings"] = json.loads(str(out["settings"]))
    return out


def _to_critic(x):
    """-1..1 (N, 3, S, S) -> dlib's input: 0..255 at 150 px."""
    import torch.nn.functional as F

    return F.interpolate((x + 1) * 127.5, size=(150, 150), mode="bilinear", align_corners=False)


def _gradient_energy(x):
    """|horizontal| + |vertical| differences, summed over the colours: (N, 1, S, S) (zero-padded at the far edge)."""
    import torch.nn.functional as F

    dx = F.pad((x[..., :, 1:] - x[..., :, :-1]).abs(), (0, 1, 0, 0))
    dy = F.pad((x[..., 1:, :] - x[..., :-1, :]).abs(), (0, 0, 0, 1))
    return (dx + dy).sum(1, keepdim=True)


def _orientation_field(x, cell: int):
    """Where the edges run, per ``cell`` x ``cell`` px cell: (N, 3, S/cell, S/cell).

    The grey image's Sobel gradient (gx, gy) as the doubled-angle vector
    (gx^2 - gy^2, 2 gx gy) / |g| = |g| (cos 2t, sin 2t) (an edge and its opposite
    count the same, as in an unsigned orientation histogram) beside |g|, averaged
    over each cell: the coarse oriented-edge layout a HOG face detector looks at
    (eyes and mouth as horizontal edges, the nose and the cheeks' outline as vertical
    ones), without the pixel values.
    """
    import torch
    import torch.nn.functional as F

    g = x.mean(1, keepdim=True)
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=x.dtype).view(1, 1, 3, 3) / 8
    gp = F.pad(g, (1, 1, 1, 1), mode="replicate")
    gx, gy = F.conv2d(gp, kx), F.conv2d(gp, kx.transpose(2, 3))
    mag = torch.sqrt(gx * gx + gy * gy + 1e-6)
    field = torch.cat([mag, (gx * gx - gy * gy) / mag, 2 * gx * gy / mag], 1)
    return F.avg_pool2d(field, int(cell))


def _chroma(x):
    """The two colour-difference channels (R - G, B - G) of (N, 3, S, S)."""
    import torch

    return torch.stack([x[:, 0] - x[:, 1], x[:, 2] - x[:, 1]], 1)


def _blur(x, sigma: float):
    """Separable Gaussian blur of (N, C, S, S) with ``sigma`` px (reflected edges)."""
    import torch
    import torch.nn.functional as F

    r = max(1, round(2.5 * sigma))
    t = torch.arange(-r, r + 1, dtype=x.dtype)
    k = torch.exp(-(t ** 2) / (2 * sigma ** 2))
    k = (k / k.sum()).to(x)
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def batch_indices(n: int, batch: int, step: int, seed: int) -> np.ndarray:
    """The rows of batch ``step``: epochs of seeded permutations, a function of (seed, step) only."""
    start = step * batch
    epoch, offset = divmod(start, n)
    rows = []
    while len(rows) < batch:
        perm = np.random.default_rng([seed, epoch]).permutation(n)
        take = perm[offset: offset + batch - len(rows)]
        rows.extend(take.tolist())
        epoch, offset = epoch + 1, 0
    return np.asarray(rows)


# --- the run ------------------------------------------------------------------------------------
class _Run:
    def __init__(self, model, settings, seed):
        import torch

        from anonfaces.encode._dlib_torch import dlib_resnet
        from anonfaces.synthesize.deid.models import Discriminator, build

        torch.manual_seed(seed)
        self.model, self.s = model, settings
        self.net = build({"model": model, **settings})
        self.opt = torch.optim.Adam(self.net.parameters(), lr=settings["lr"], betas=(0.5, 0.999))
        self.critic = dlib_resnet()
        self.discs = []
        if model == "d2gan":
            self.discs = [Discriminator(size=settings["size"]), Discriminator(size=settings["size"])]
            params = [p for d in self.discs for p in d.parameters()]
            self.opt_d = torch.optim.Adam(params, lr=settings["lr_d"], betas=(0.5, 0.999))

    def state(self) -> dict:
        st = {"net": self.net.state_dict(), "opt": self.opt.state_dict()}
        if self.discs:
            st["d1"], st["d2"] = self.discs[0].state_dict(), self.discs[1].state_dict()
            st["opt_d"] = self.opt_d.state_dict()
        return st

    def load(self, st: dict):
        self.net.load_state_dict(st["net"])
        self.opt.load_state_dict(st["opt"])
        if self.discs:
            self.discs[0].load_state_dict(st["d1"])
            self.discs[1].load_state_dict(st["d2"])
            self.opt_d.load_state_dict(st["opt_d"])

    def step(self, x, m, h, target) -> dict:
        import torch
        import torch.nn.functional as F

        from anonfaces.synthesize.deid import make_input

        s = self.s
        raw = self.net(make_input(self.model, x, m, h))
        out = m * raw + (1 - m) * x
        losses = {}
        if self.discs:
            d1, d2 = self.discs
            fake = out.detach()
            loss_d = (-s["alpha"] * torch.log(d1(x) + 1e-6).mean() + d1(fake).mean()
                      + d2(x).mean() - s["beta"] * torch.log(d2(fake) + 1e-6).mean())
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.opt_d.step()
            losses["d"] = float(loss_d.detach())
            for p in (*d1.parameters(), *d2.parameters()):
                p.requires_grad_(False)
            adv = -d1(out).mean() + s["beta"] * torch.log(d2(out) + 1e-6).mean()
            for p in (*d1.parameters(), *d2.parameters()):
                p.requires_grad_(True)
            losses["adv"] = float(adv.detach())
        low = F.l1_loss(F.avg_pool2d(out, 8), F.avg_pool2d(x, 8))
        mid = F.l1_loss(F.avg_pool2d(out, 4), F.avg_pool2d(x, 4))
        ctx = (torch.abs(raw - x) * (1 - m)).sum() / ((1 - m).sum() * 3 + 1)
        grad = F.l1_loss(F.avg_pool2d(_gradient_energy(out), 4), F.avg_pool2d(_gradient_energy(x), 4))
        hf = F.l1_loss(out - _blur(out, s["hf_blur"]), x - _blur(x, s["hf_blur"])) if s["w_hf"] else out.new_zeros(())
        chroma = (F.l1_loss(F.avg_pool2d(_chroma(out), 4), F.avg_pool2d(_chroma(x), 4)) if s["w_chroma"]
                  else out.new_zeros(()))
        orient = (F.l1_loss(_orientation_field(out, s["orient_cell"]), _orientation_field(x, s["orient_cell"]))
                  if s["w_orient"] else out.new_zeros(()))
        if s["critic_blur"] > 0:  # the critic sees both faces blurred: no gain from fine adversarial patterns
            with torch.no_grad():
                target = self.critic(_to_critic(_blur(x, s["critic_blur"])))
            seen = _blur(out, s["critic_blur"])
        else:
            seen = out
        dist = torch.linalg.vector_norm(self.critic(_to_critic(seen)) - target, dim=1)
        ident = F.relu(0.6 + s["margin"] - dist).mean()
        total = s["w_low"] * low + s["w_mid"] * mid + s["w_ctx"] * ctx + s["w_grad"] * grad + s["w_id"] * ident
        total = total + s["w_hf"] * hf + s["w_chroma"] * chroma + s["w_orient"] * orient
        if self.discs:
            total = total + s["w_adv"] * adv
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        self.opt.step()
        losses.update({k: float(v.detach()) for k, v in (("total", total), ("low", low), ("mid", mid), ("ctx", ctx), ("grad", grad),
                                                         ("hf", hf), ("chroma", chroma), ("orient", orient),
                                                         ("id", ident), ("dist", dist.mean()))})
        losses["passed"] = float((dist.detach() > 0.6).float().mean())
        return losses


def _tensors(faces: dict, rows: np.ndarray):
    import torch

    from anonfaces.synthesize.deid import landmark_heatmap

    size = faces["crops"].shape[1]
    x = torch.from_numpy(faces["crops"][rows].astype(np.float32) / 127.5 - 1).permute(0, 3, 1, 2)
    m = torch.from_numpy(faces["masks"][rows].astype(np.float32))[:, None]
    h = torch.from_numpy(np.stack([landmark_heatmap(lm, size) for lm in faces["landmarks"][rows]]))[:, None]
    return x, m, h, torch.from_numpy(faces["embeddings"][rows])


def _plot(history: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in ("total", "low", "mid", "ctx", "grad", "hf", "chroma", "orient", "id", "adv", "d", "passed")
            if any(r.get(k) for r in history)]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    steps = np.array([r["step"] for r in history])
    win = max(1, len(history) // 50)
    for k in keys:
        v = np.convolve([r.get(k, np.nan) for r in history], np.ones(win) / win, mode="valid")
        (axes[1] if k == "passed" else axes[0]).plot(steps[win - 1:], v, label=k)
    axes[0].set_yscale("symlog", linthresh=0.01)
    axes[0].set_xlabel("step"), axes[1].set_xlabel("step")
    axes[1].set_ylabel("share of batch past dlib's 0.6")
    axes[0].legend(fontsize=7)
    fig.suptitle(title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def _init_from_run(path, model: str) -> tuple[dict, dict]:
    """``(provenance, model state)`` of an earlier run's ``checkpoint.pt`` (read with ``weights_only=True``)."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"--init {path} not found")
    try:
        st = torch.load(path, weights_only=True)
        record, state = st["record"], st["state"]
    except (RuntimeError, KeyError, TypeError, OSError) as exc:
        raise BadInputError(f"--init {path} is not a training checkpoint: {exc}") from None
    if record.get("model") != model:
        raise BadInputError(f"--init {path} holds a {record.get('model')!r} run, not {model!r}")
    earlier = None  # what that run itself started from: its inference checkpoint records it
    if (path.parent / f"{model}.npz").is_file():
        from anonfaces.synthesize.deid import load_weights

        earlier = load_weights(path.parent / f"{model}.npz")[1].get("init")
    return {"file": path.name, "steps": int(st["step"]), "init": earlier}, state


def train(model: str, faces, out, *, steps: int, seed: int = 0, minutes: float | None = None, save_every: int = 100,
          threads: int = 1, progress: bool = True, init=None, **settings) -> dict:
    """Train (or resume) ``model`` (inversion | d2gan) on prepared faces; returns a summary.

    ``out`` holds the run (settings.json, checkpoint.pt, losses.csv, losses.png, <model>.npz).
    A run in ``out`` with a checkpoint is resumed up to ``steps`` (its settings must match).
    ``minutes`` stops early (checkpointed) after that much wall time. ``init``: an inference
    checkpoint (``<model>.npz`` of an earlier run) to start the generator from (fine-tuning), or an earlier
    run's ``checkpoint.pt`` (generator and discriminators; the optimisers start afresh).
    """
    import torch
    from tqdm import tqdm

    from anonfaces.synthesize.deid import MODELS, save_weights

    if model not in MODELS:
        raise BadInputError(f"unknown model {model!r}; valid: {', '.join(MODELS)}")
    unknown = sorted(set(settings) - set(DEFAULTS))
    if unknown:
        raise BadInputError(f"unknown setting(s) {', '.join(unknown)}; valid: {', '.join(SETTING_NAMES)}")
    if not isinstance(steps, int) or steps < 1:
        raise BadInputError(f"steps={steps!r} must be an integer >= 1")
    torch.set_num_threads(int(threads))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = load_faces(faces)
    s = {**DEFAULTS, **{k: v for k, v in settings.items() if v is not None}, "size": int(data["crops"].shape[1])}
    s["decoder_channels"] = [int(c) for c in s["decoder_channels"]]
    record = {"model": model, "seed": int(seed), "faces": str(faces), "n_faces": len(data["crops"]),
              "data": data["settings"], "init": str(init) if init else None, **s}
    ckpt = out / "checkpoint.pt"
    run = _Run(model, s, seed)
    history: list[dict] = []
    start = 0
    if ckpt.is_file():
        st = torch.load(ckpt, weights_only=True)
        old = {**DEFAULTS, "init": None, **st["record"]}  # settings added since: their defaults
        diff = sorted(k for k in set(record) | set(old) if record.get(k) != old.get(k))
        if diff:
            raise BadInputError(f"{out} holds a run with other settings ({', '.join(diff)}); use another output folder")
        run.load(st["state"])
        history, start = list(st["history"]), int(st["step"])
        log.info("resuming %s at step %d", out, start)
    init_meta = None
    if init:
        if Path(init).suffix == ".pt":  # an earlier run's training checkpoint: the generator and the discriminators
            init_meta, state = _init_from_run(init, model)
            if not start:
                run.net.load_state_dict(state["net"])
                for name, disc in zip(("d1", "d2"), run.discs):
                    disc.load_state_dict(state[name])
        else:
            from anonfaces.synthesize.deid import load_weights

            net, meta = load_weights(init)
            if meta["model"] != model:
                raise BadInputError(f"--init {init} holds a {meta['model']!r} model, not {model!r}")
            init_meta = {"file": Path(init).name, "steps": meta["steps"], "init": meta.get("init")}
            if not start:
                run.net.load_state_dict(net.state_dict())
    atomic_write_text(out / "settings.json", json.dumps({**record, "steps": steps}, indent=2, sort_keys=True) + "\n")
    t0 = time.monotonic()
    n = len(data["crops"])

    def save(step):
        with atomic_open(ckpt, "wb") as fh:
            torch.save({"step": step, "record": record, "state": run.state(), "history": history}, fh)
        with atomic_open(out / "losses.csv", "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(dict.fromkeys(k for r in history for k in r)), restval="")
            writer.writeheader()
            writer.writerows(history)
        _plot(history, out / "losses.png", f"{model} ({s['encoder']}, {s['size']} px)")
        run.net.eval()
        save_weights(out / f"{model}.npz", run.net, {"model": model, "steps": step, "seed": int(seed), "init": init_meta,
                                                     **{k: s[k] for k in ("encoder", "width", "decoder_channels", "size",
                                                                          "forehead", "roi_margin")}})
        run.net.train()

    step = start
    run.net.train()
    bar = tqdm(total=steps, initial=start, desc=f"train {model}", disable=not progress)
    try:
        while step < steps:
            rows = batch_indices(n, s["batch"], step, seed)
            losses = run.step(*_tensors(data, rows))
            history.append({"step": step, **{k: round(v, 6) for k, v in losses.items()}})
            step += 1
            bar.update(1)
            bar.set_postfix(id=f"{losses['id']:.3f}", low=f"{losses['low']:.3f}", passed=f"{losses['passed']:.2f}")
            if step % save_every == 0 or step == steps:
                save(step)
            if minutes is not None and time.monotonic() - t0 > 60 * minutes:
                break
    finally:
        bar.close()
    if history and step % save_every and step != steps:
        save(step)
    return {"steps": step, "seconds": round(time.monotonic() - t0, 1), "last": history[-1] if history else None}
