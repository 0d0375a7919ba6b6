"""dlib's CNN (MMOD) face detector run by ONNX Runtime: dlib's detections, faster.

What ``dlib.cnn_face_detection_model_v1(path)(image, upsample)`` does, step by step,
and where each step is here:

1. upsampling: ``upsample`` times ``pyramid_up`` with ``pyramid_down<2>``: a bilinear
   resize of the uint8 RGB image to (2h + 1, 2w + 2) (`upsample_image`, which repeats
   the float32 arithmetic and truncation of dlib's SIMD resize);
2. the input tensor: ``input_rgb_image_pyramid<pyramid_down<6>>`` tiles the image,
   ``(pixel - mean) / 256``, and its ever smaller copies (5/6 of the side each, bilinear
   in float32, down to 5 rows) into one image (`tiled_rects`, `tiled_pyramid`);
3. the network (convolutions, batch norm as an affine layer, relu) maps the tiled
   image to one score per position of an 8x smaller grid: the ONNX graph of
   `build_model`, each affine layer folded into the convolution before it;
4. ``loss_mmod``: every score > 0 is a detector window (80 x 80) centred on the
   position's input pixel, mapped back from its pyramid level to the image, rounded,
   sorted by score and thinned by non-max suppression; then mapped back through the
   upsampling (`decode`).

Steps 1, 2 and 4 are numpy; step 3 is ONNX Runtime. The built model is cached and
checked against dlib before use (`anonfaces.utils.onnx_cache`, `self_check`).
`MmodDetector` is the drop-in for dlib's object (`anonfaces.detect._models.cnn_detector`).
"""

from __future__ import annotations

import functools
import itertools
import logging
import math
import os
from pathlib import Path

import numpy as np

from anonfaces.detect import _mmod_dat as dat
from anonfaces.errors import AnonfacesError, BadInputError
from anonfaces.utils import onnx_cache

log = logging.getLogger(__name__)

#: Bumped whenever the graph `build_model` makes changes (part of the cache key).
GRAPH_VERSION = 1
OPSET = 17
#: The self-check refuses a build whose detections on the check photos differ from dlib's in
#: number or box, or whose confidences differ by more than this.
SELF_CHECK_TOLERANCE = 1e-3


class SelfCheckError(AnonfacesError):
    """The built detector does not reproduce dlib's detections: it is not used."""


# --- 1. upsampling (dlib's pyramid_up with pyramid_down<2>) ----------------------------------
def upsampled_size(h: int, w: int) -> tuple[int, int]:
    """(rows, columns) of ``pyramid_up``: the image rectangle's corners mapped up
    (``(p + (1.25, 0.75)) * 2``) and rounded (``lround``)."""
    return _lround(2 * (h - 1) + 1.5) + 1, _lround(2 * (w - 1) + 2.5) + 1


def _lround(v: float) -> int:
    """C's lround: halves away from zero."""
    return math.floor(abs(v) + 0.5) * (1 if v >= 0 else -1)


@functools.lru_cache(maxsize=64)
def _columns(in_w: int, out_w: int):
    """The source columns and weights of dlib's bilinear resize, as its SIMD loop computes them:
    groups of four positions advanced in float32; the columns after the last whole group in double.
    Returns (left, right, frac, inv_frac) of the SIMD part (float32 weights) and (left, right, frac)
    of the tail (float64 positions; frac rounded to float32 as dlib's tail does for float images)."""
    xs = (in_w - 1) / max(out_w - 1, 1)
    x = -4 * xs
    pos = np.array([x, x + xs, x + 2 * xs, x + 3 * xs], dtype=np.float32)
    step = np.float32(4 * xs)
    lefts, fracs = [], []
    c = 0
    while c < out_w + 8:  # dlib stops at the first group whose last right neighbour is outside the image
        pos = (pos + step).astype(np.float32)
        left = pos.astype(np.int32)  # truncation (positions are >= 0)
        if left[3] + 1 >= in_w:
            break
        lefts.append(left)
        fracs.append((pos - left.astype(np.float32)).astype(np.float32))
        c += 4
    # a group reaching past the row's end has its last position past the last column, so dlib breaks there
    c = min(c, out_w)
    simd_left = np.concatenate(lefts)[:c] if lefts else np.empty(0, np.int64)
    simd_frac = np.concatenate(fracs)[:c] if fracs else np.empty(0, np.float32)
    tail_x = -xs + c * xs
    tl, tf = [], []
    for _ in range(c, out_w):
        tail_x += xs
        left = math.floor(tail_x)
        tl.append(left)
        tf.append(tail_x - left)
    tail_left = np.asarray(tl, np.int64)
    simd_left = simd_left.astype(np.int64)
    return (simd_left, np.minimum(simd_left + 1, in_w - 1), simd_frac, (np.float32(1) - simd_frac).astype(np.float32),
            tail_left, np.minimum(tail_left + 1, in_w - 1), np.asarray(tf, np.float64))


@functools.lru_cache(maxsize=64)
def _rows(in_h: int, out_h: int):
    """Source rows (top, bottom) and the fraction (float64) of dlib's resize, row by row."""
    ys = (in_h - 1) / max(out_h - 1, 1)
    y = -ys
    tops, fracs = [], []
    for _ in range(out_h):
        y += ys
        top = math.floor(y)
        tops.append(top)
        fracs.append(y - top)
    top = np.asarray(tops, np.int64)
    return top, np.minimum(top + 1, in_h - 1), np.asarray(fracs, np.float64)


def _bilinear(src: np.ndarray, out_h: int, out_w: int, *, to_uint8: bool) -> np.ndarray:
    """dlib's ``resize_image`` (bilinear, corners aligned) of ``src`` (..., H, W): float32
    arithmetic in the SIMD part, the tail columns in double; uint8 results truncated."""
    lead = src.shape[:-2]
    in_h, in_w = src.shape[-2:]
    top, bottom, tb = _rows(in_h, out_h)
    sl, sr, sf, sinv, tlft, trgt, tf = _columns(in_w, out_w)
    f = src.reshape((-1, in_h, in_w))
    out = np.empty((f.shape[0], out_h, out_w), np.uint8 if to_uint8 else np.float32)
    ns = len(sl)
    ft, fb = np.take(f, top, axis=1), np.take(f, bottom, axis=1)  # (n, out_h, in_w): the rows above and below
    if ns:
        tbf = tb.astype(np.float32)[:, None]
        inv_tbf = (1.0 - tb).astype(np.float32)[:, None]
        # ((tlf * tl + trf * tr) + blf * bl) + brf * br, each product and sum in float32, as dlib's SIMD loop
        v = np.multiply(inv_tbf * sinv[None, :], np.take(ft, sl, axis=2), dtype=np.float32)
        v += (inv_tbf * sf[None, :]) * np.take(ft, sr, axis=2)
        v += (tbf * sinv[None, :]) * np.take(fb, sl, axis=2)
        v += (tbf * sf[None, :]) * np.take(fb, sr, axis=2)
        out[..., :ns] = np.trunc(v) if to_uint8 else v
    if len(tlft):
        ft, fb = ft.astype(np.float32, copy=False), fb.astype(np.float32, copy=False)
        tbd = tb[:, None]
        if to_uint8:  # dlib's tail for RGB pixels: double arithmetic, truncated
            lr = tf[None, :]
            v = (1 - tbd) * ((1 - lr) * ft[..., tlft] + lr * ft[..., trgt]) + tbd * ((1 - lr) * fb[..., tlft] + lr * fb[..., trgt])
            out[..., ns:] = np.trunc(v)
        else:  # for float images: float fraction, float neighbour sums, double row weights
            lr = tf.astype(np.float32)[None, :]
            inv = np.float32(1) - lr
            upper = inv * ft[..., tlft] + lr * ft[..., trgt]
            lower = inv * fb[..., tlft] + lr * fb[..., trgt]
            out[..., ns:] = ((1 - tbd) * upper + tbd * lower).astype(np.float32)
    return out.reshape(lead + (out_h, out_w))


def upsample_image(image: np.ndarray, times: int = 1) -> np.ndarray:
    """``image`` (H, W, 3) uint8 upsampled ``times`` times as dlib's CNN detector does."""
    for _ in range(times):
        h, w = image.shape[:2]
        oh, ow = upsampled_size(h, w)
        planar = np.ascontiguousarray(image.transpose(2, 0, 1))
        image = _bilinear(planar, oh, ow, to_uint8=True).transpose(1, 2, 0)
    return np.ascontiguousarray(image)


def rect_down(ltrb: np.ndarray, times: int) -> np.ndarray:
    """Boxes (n, 4) found on an image upsampled ``times`` times, in the original's pixels:
    ``p / 2 - (1.25, 0.75)`` per step, then rounded (dlib's ``rect_down``)."""
    out = np.asarray(ltrb, np.float64).copy()
    for _ in range(times):
        out[:, 0::2] = out[:, 0::2] / 2.0 - 1.25
        out[:, 1::2] = out[:, 1::2] / 2.0 - 0.75
    return _lround_array(out)


def _lround_array(v: np.ndarray) -> np.ndarray:
    return (np.sign(v) * np.floor(np.abs(v) + 0.5)).astype(np.int64)


# --- 2. the tiled pyramid (input_rgb_image_pyramid<pyramid_down<6>>) ------------------------
@functools.lru_cache(maxsize=64)
def tiled_rects(h: int, w: int, down: int = dat.PYRAMID_DOWN, padding: int = 10, outer: int = 11):
    """Where dlib puts each pyramid level of an h x w image: ((left, top, right, bottom) inclusive,
    one per level, largest first), and the tiled image's (rows, columns). dlib's
    ``compute_tiled_image_pyramid_details``: levels of ``floor(rate * side)`` down to 5 rows, the
    first column of levels top-down, the rest bottom-up in a second column at the right."""
    if h * w == 0:
        return (), 0, 0
    rate = (down - 1.0) / down
    sizes = [(w, h)]  # (width, height)
    nr, nc = h, w
    while True:
        nr, nc = math.floor(rate * nr), math.floor(rate * nc)
        if nr * nc == 0 or nr < 5:
            break
        sizes.append((nc, nr))
    total_height = sum(s[1] + padding for s in sizes) - 2 * padding
    height = prev_width = 0
    for sw, sh in sizes:
        if sw <= sizes[0][0] - prev_width - padding and (height - sizes[0][1]) * 2 >= total_height - sizes[0][1]:
            break
        height += sh + padding
        prev_width = sw
    height -= padding
    width = sizes[0][0]
    out_nr, out_nc = height + 2 * outer, width + 2 * outer
    rects = []
    y = outer
    i = 0
    while y < height + outer and i < len(sizes):
        sw, sh = sizes[i]
        rects.append((outer, y, outer + sw - 1, y + sh - 1))
        y += sh + padding
        i += 1
    y -= padding
    first = rects[0]
    while i < len(sizes):
        sw, sh = sizes[i]
        rect = (outer + width - sw, y - sh, outer + width - 1, y - 1)
        if _intersects(first, rect):
            break
        rects.append(rect)
        y -= sh + padding
        i += 1
    # images of a few pixels: dlib places levels outside its tiled image (and fails); none are kept here
    rects = [r for r in rects if r[0] >= 0 and r[1] >= 0 and r[2] < out_nc and r[3] < out_nr]
    return tuple(rects), out_nr, out_nc


def _intersects(a, b) -> bool:
    return max(a[0], b[0]) <= min(a[2], b[2]) and max(a[1], b[1]) <= min(a[3], b[3])


def tiled_pyramid(images: np.ndarray, net: dat.MmodNetwork) -> tuple[np.ndarray, tuple]:
    """The network's input for uint8 images (N, H, W, 3) of one size: float32 (N, 3, rows, cols)
    and the level rectangles (`tiled_rects`)."""
    n, h, w, _ = images.shape
    rects, nr, nc = tiled_rects(h, w, net.pyramid_down, net.pyramid_padding, net.pyramid_outer_padding)
    data = np.zeros((n, 3, nr, nc), np.float32)
    if not rects:
        return data, rects
    l0, t0, r0, b0 = rects[0]
    mean = np.asarray(net.mean_rgb, np.float32).reshape(1, 3, 1, 1)
    data[:, :, t0 : b0 + 1, l0 : r0 + 1] = (images.transpose(0, 3, 1, 2).astype(np.float32) - mean) / np.float32(256)
    for prev, cur in itertools.pairwise(rects):
        src = data[:, :, prev[1] : prev[3] + 1, prev[0] : prev[2] + 1]
        data[:, :, cur[1] : cur[3] + 1, cur[0] : cur[2] + 1] = _bilinear(src, cur[3] - cur[1] + 1, cur[2] - cur[0] + 1,
                                                                         to_uint8=False)
    return data, rects


# --- 3. the network -------------------------------------------------------------------------
def build_model(net: dat.MmodNetwork):
    """The ONNX model (``onnx.ModelProto``): float32 tiled pyramids (N, 3, H, W) -> scores
    (N, windows, h, w). Each affine layer is folded into the convolution before it."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []
    x = "pyramid"
    layers = list(net.layers)
    i = 0
    while i < len(layers):
        layer = layers[i]
        if isinstance(layer, dat.Conv):
            w = layer.weight.astype(np.float64)
            b = (layer.bias if layer.bias is not None else np.zeros(w.shape[0], np.float32)).astype(np.float64)
            if i + 1 < len(layers) and isinstance(layers[i + 1], dat.Affine):
                aff = layers[i + 1]
                w = w * aff.gamma.astype(np.float64)[:, None, None, None]
                b = b * aff.gamma + aff.beta
                i += 1
            k = len(nodes)
            inits += [numpy_helper.from_array(w.astype(np.float32), f"w{k}"), numpy_helper.from_array(b.astype(np.float32), f"b{k}")]
            (py, px), (sy, sx) = layer.padding, layer.stride
            kh, kw = w.shape[2:]
            nodes.append(helper.make_node("Conv", [x, f"w{k}", f"b{k}"], [f"conv{k}"], kernel_shape=[kh, kw],
                                          strides=[sy, sx], pads=[py, px, py, px]))
            x = f"conv{k}"
        elif isinstance(layer, dat.Affine):
            k = len(nodes)
            c = len(layer.gamma)
            inits += [numpy_helper.from_array(layer.gamma.reshape(1, c, 1, 1), f"g{k}"),
                      numpy_helper.from_array(layer.beta.reshape(1, c, 1, 1), f"h{k}")]
            nodes += [helper.make_node("Mul", [x, f"g{k}"], [f"mul{k}"]), helper.make_node("Add", [f"mul{k}", f"h{k}"], [f"add{k}"])]
            x = f"add{k}"
        elif isinstance(layer, dat.Relu):
            k = len(nodes)
            nodes.append(helper.make_node("Relu", [x], [f"relu{k}"]))
            x = f"relu{k}"
        else:
            raise AnonfacesError(f"cannot build layer {layer!r}")
        i += 1
    nodes.append(helper.make_node("Identity", [x], ["scores"]))
    graph = helper.make_graph(
        nodes, "mmod_human_face_detector",
        [helper.make_tensor_value_info("pyramid", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["n", len(net.windows), "sh", "sw"])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="anonfaces")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


# --- 4. scores -> boxes (loss_mmod) ---------------------------------------------------------
def _nearest_rect(rects, px: float, py: float) -> int:
    """dlib's ``nearest_rect`` for the point rounded to integers: the first level containing
    it, else the nearest one (first of equals)."""
    x, y = math.floor(px + 0.5), math.floor(py + 0.5)
    best, best_d = 0, math.inf
    for i, (l, t, r, b) in enumerate(rects):
        if l <= x <= r and t <= y <= b:
            return i
        d = math.hypot(min(max(x, l), r) - x, min(max(y, t), b) - y)
        if d < best_d:
            best, best_d = i, d
    return best


def _covers(a, b, overlap: dat.BoxOverlap) -> bool:
    """dlib's ``test_box_overlap`` on inclusive integer boxes."""
    iw = min(a[2], b[2]) - max(a[0], b[0]) + 1
    ih = min(a[3], b[3]) - max(a[1], b[1]) + 1
    if iw <= 0 or ih <= 0:
        return False
    inner = float(iw * ih)
    outer = float((max(a[2], b[2]) - min(a[0], b[0]) + 1) * (max(a[3], b[3]) - min(a[1], b[1]) + 1))
    area_a = float((a[2] - a[0] + 1) * (a[3] - a[1] + 1))
    area_b = float((b[2] - b[0] + 1) * (b[3] - b[1] + 1))
    return inner / outer > overlap.iou or inner / area_a > overlap.covered or inner / area_b > overlap.covered


def decode(scores: np.ndarray, rects, net: dat.MmodNetwork, upsample: int = 0, threshold: float = 0.0):
    """Detections of one image from its score map (windows, h, w): a list of (ltrb int64 array, confidence),
    best first, in the pixels of the image before ``upsample``."""
    if not rects:
        return []
    dets = []
    rate = net.pyramid_down / (net.pyramid_down - 1.0)
    for k, window in enumerate(net.windows):
        rows, cols = np.nonzero(scores[k] > threshold)
        if not len(rows):
            continue
        px, py = net.output_to_input(cols.astype(np.float64), rows.astype(np.float64))
        hw, hh = (window.width - 1) / 2, (window.height - 1) / 2
        for x, y, s in zip(px.tolist(), py.tolist(), scores[k, rows, cols].tolist()):
            box = [x - hw, y - hh, x + hw, y + hh]
            level = _nearest_rect(rects, (box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
            ox, oy = rects[level][0], rects[level][1]
            box = [box[0] - ox, box[1] - oy, box[2] - ox, box[3] - oy]
            for _ in range(level):
                box = [v * rate + 0.3 for v in box]
            dets.append((s, [_lround(v) for v in box]))
    dets.sort(key=lambda d: -d[0])  # dlib sorts by score, best first
    kept = []
    for s, box in dets:
        if any(_covers(other, box, net.overlaps_nms) for _, other in kept):
            continue
        kept.append((s, box))
    if not kept:
        return []
    boxes = rect_down(np.asarray([b for _, b in kept], np.float64), upsample) if upsample else np.asarray([b for _, b in kept], np.int64)
    return [(boxes[i], float(s)) for i, (s, _) in enumerate(kept)]


# --- the model: cache, session, self-check --------------------------------------------------
def _default_dat() -> str:
    from anonfaces.detect import _models

    return _models._paths()["mmod"]


@functools.lru_cache(maxsize=4)
def load_network(dat_path: str) -> dat.MmodNetwork:
    return dat.parse_mmod_dat(dat_path)


def model_path(dat_path: str | os.PathLike | None = None) -> Path:
    """Path of the checked ONNX model of ``dat_path`` (default: the installed detector),
    built and checked against dlib first when the cache holds no intact copy. Raises
    `SelfCheckError` when a new build differs from dlib, `BadInputError` for another file."""
    dat_path = str(dat_path or _default_dat())
    net = load_network(dat_path)
    return onnx_cache.cached_model(
        "dlib_mmod", dat_path, GRAPH_VERSION,
        build=lambda: build_model(net).SerializeToString(),
        check=lambda data: self_check(data, dat_path),
        what="dlib's CNN face detector",
        on_build=lambda: _session_for.cache_clear(),
    )


@functools.lru_cache(maxsize=8)
def _session_for(path: str, threads: int, pid: int):
    # keyed by the process id: a forked child never runs its parent's session
    return onnx_cache.make_session(path, threads)


def default_threads() -> int:
    """Threads of a detector session: ``$ANONFACES_DETECT_THREADS``, else the worker pool's share of the cores."""
    value = os.environ.get("ANONFACES_DETECT_THREADS", "").strip()
    if value:
        if not value.isdigit() or int(value) < 1:
            raise BadInputError(f"ANONFACES_DETECT_THREADS={value!r} must be an integer >= 1")
        return int(value)
    from anonfaces.utils.parallel import worker_threads

    return max(1, worker_threads())


class MmodDetector:
    """dlib's CNN face detector on ONNX Runtime; called like ``dlib.cnn_face_detection_model_v1``:
    ``detector(image, upsample)`` -> detections with ``.rect`` (``dlib.rectangle``) and
    ``.confidence``; ``detector(images, upsample, batch_size=...)`` -> one list per image
    (images of one size)."""

    engine = "onnx"

    def __init__(self, dat_path: str | os.PathLike | None = None, *, model: str | os.PathLike | bytes | None = None,
                 threads: int | None = None):
        self.dat_path = str(dat_path or _default_dat())
        self.net = load_network(self.dat_path)
        # built and checked now (once per cache), so that a detector that exists is one that works
        self._model = model if model is not None else str(model_path(self.dat_path))
        self.threads = threads

    def _session(self):
        threads = int(self.threads or default_threads())
        if isinstance(self._model, bytes):
            return onnx_cache.make_session(self._model, threads)
        return _session_for(str(self._model), threads, os.getpid())

    def scores(self, images: np.ndarray):
        """Score maps (N, windows, h, w) and the level rectangles of uint8 images (N, H, W, 3) of one size."""
        data, rects = tiled_pyramid(images, self.net)
        if not rects or min(self.net.output_size(*data.shape[2:])) < 1:  # too small for the network: no faces
            return np.zeros((len(images), len(self.net.windows), 0, 0), np.float32), rects
        return self._session().run(["scores"], {"pyramid": data})[0], rects

    def detect(self, images: np.ndarray, upsample: int = 0):
        """(ltrb int64 (4,), confidence) per face, best first, for each uint8 image of (N, H, W, 3)."""
        if upsample:
            images = np.stack([upsample_image(img, upsample) for img in images])
        scores, rects = self.scores(images)
        return [decode(s, rects, self.net, upsample) for s in scores]

    def __call__(self, image, upsample_num_times: int = 0, batch_size: int = 128):
        import dlib

        def wrap(dets):
            return [Detection(dlib.rectangle(*(int(v) for v in box)), conf) for box, conf in dets]

        if isinstance(image, (list, tuple)):
            images = [_as_rgb(img) for img in image]
            if not images:
                return []
            if any(img.shape != images[0].shape for img in images):
                raise BadInputError("images in a batch must all have the same size")
            out = []
            for start in range(0, len(images), max(1, int(batch_size))):
                out += [wrap(d) for d in self.detect(np.stack(images[start : start + batch_size]), upsample_num_times)]
            return out
        return wrap(self.detect(_as_rgb(image)[None], upsample_num_times)[0])


class Detection:
    """One face: ``rect`` (``dlib.rectangle``) and ``confidence``, as dlib's ``mmod_rectangle``."""

    __slots__ = ("confidence", "rect")

    def __init__(self, rect, confidence: float):
        self.rect = rect
        self.confidence = confidence

    def __repr__(self):
        return f"Detection({self.rect}, {self.confidence:.4f})"


def _as_rgb(image) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 2 and image.dtype == np.uint8:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise BadInputError(f"expected an RGB uint8 image of shape (H, W, 3); got {image.dtype} {image.shape}")
    return np.ascontiguousarray(image)


# --- the self-check -------------------------------------------------------------------------
CHECK_PHOTO = Path(__file__).resolve().parent / "data" / "selfcheck_faces.jpg"


def check_images() -> list[np.ndarray]:
    """The photos the self-check runs: LFW faces shipped with anonfaces (`CHECK_PHOTO`)."""
    import cv2

    image = cv2.imread(str(CHECK_PHOTO), cv2.IMREAD_COLOR)
    if image is None:
        raise AnonfacesError(f"the detector self-check's photo is missing ({CHECK_PHOTO}); reinstall anonfaces")
    return [np.ascontiguousarray(image[..., ::-1])]


def compare(ours, theirs) -> dict:
    """How two detection lists of one image differ: same number, same boxes (in order), largest confidence difference."""
    same_boxes = len(ours) == len(theirs) and all(
        tuple(int(v) for v in a[0]) == tuple(int(v) for v in b[0]) for a, b in zip(ours, theirs))
    diff = max((abs(a[1] - b[1]) for a, b in zip(ours, theirs)), default=0.0)
    return {"count": len(ours), "dlib_count": len(theirs), "same_boxes": bool(same_boxes), "max_conf_diff": float(diff)}


def dlib_detections(detector, image: np.ndarray, upsample: int):
    """dlib's detections of ``image`` as (ltrb int64, confidence), best first."""
    dets = sorted(detector(image, upsample), key=lambda d: -d.confidence)
    return [(np.array([d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom()], np.int64), float(d.confidence))
            for d in dets]


def self_check(model: str | os.PathLike | bytes, dat_path: str | os.PathLike | None = None) -> dict:
    """Compare ``model``'s detections with dlib's on `check_images` at upsample 0 and 1; raise
    `SelfCheckError` unless the boxes are the same and the confidences within `SELF_CHECK_TOLERANCE`."""
    import dlib

    dat_path = str(dat_path or _default_dat())
    ours = MmodDetector(dat_path, model=model if isinstance(model, bytes) else str(model), threads=1)
    theirs = dlib.cnn_face_detection_model_v1(dat_path)
    results = []
    try:
        for image in check_images():
            for up in (0, 1):
                mine = ours.detect(image[None], up)[0]
                results.append({"upsample": up, **compare(mine, dlib_detections(theirs, image, up))})
    except (AnonfacesError, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001  (onnxruntime raises its own types on a broken model)
        raise SelfCheckError(f"the MMOD ONNX model does not run: {exc}") from None
    diff = max(r["max_conf_diff"] for r in results)
    passed = all(r["same_boxes"] for r in results) and diff <= SELF_CHECK_TOLERANCE and sum(r["count"] for r in results) > 0
    report = {"images": len(results) // 2, "checks": results, "max_conf_diff": diff, "tolerance": SELF_CHECK_TOLERANCE,
              "passed": passed}
    if not passed:
        raise SelfCheckError(f"the ONNX build of dlib's CNN face detector differs from dlib ({results}); refusing it")
    log.info("MMOD ONNX detector self-check: same boxes, max confidence diff %.2g", diff)
    return report
