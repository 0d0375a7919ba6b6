"""dlib's CNN (MMOD) face detector on ONNX Runtime: the parsed file, dlib's resampling
repeated exactly, the same detections as dlib on real photos, the self-check, the model
cache, and the engine choice (auto / onnx / dlib).

Measured on 200 LFW photos and 600 CelebA photos at upsample 0 and 1 (bench/bench_mmod.py,
docs/benchmarks.md): every box identical to dlib's, confidences within 3.5e-6. The tests
below allow IoU >= 0.95 and 1e-4 (see CONF_TOLERANCE) so that another CPU's float
rounding does not fail them, and count any box that is not identical.
"""

import itertools
import json
import logging
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from anonfaces.detect import _mmod_dat, _mmod_onnx, _models, make_detector
from anonfaces.detect.sensitive import SensitiveDetector
from anonfaces.errors import AnonfacesError, BadInputError
from anonfaces.utils.images import read_image

CONF_TOLERANCE = 1e-4  # measured: 3.5e-6 at most (800 photos, upsample 0 and 1)
MIN_IOU = 0.95
SAMPLE_PHOTOS = ["Tiger_Woods/Tiger_Woods_0002.jpg", "Angelina_Jolie/Angelina_Jolie_0003.jpg",
                 "Bill_Gates/Bill_Gates_0004.jpg", "Alvaro_Uribe/Alvaro_Uribe_0005.jpg"]


@pytest.fixture(scope="module")
def dat_path():
    return _models._paths()["mmod"]


@pytest.fixture(scope="module")
def net(dat_path):
    return _mmod_dat.parse_mmod_dat(dat_path)


@pytest.fixture(scope="module")
def dlib_cnn(dat_path):
    import dlib

    return dlib.cnn_face_detection_model_v1(dat_path)


@pytest.fixture(scope="module")
def module_cache(tmp_path_factory):
    """One checked build for the module, in a cache folder of its own."""
    folder = tmp_path_factory.mktemp("mmod-cache")
    mp = pytest.MonkeyPatch()
    mp.setenv("ANONFACES_CACHE_DIR", str(folder))
    _mmod_onnx._session_for.cache_clear()
    yield folder
    mp.undo()
    _mmod_onnx._session_for.cache_clear()
    _models._cnn_detector.cache_clear()


@pytest.fixture(scope="module")
def ours(module_cache, dat_path):
    return _mmod_onnx.MmodDetector(dat_path, threads=1)


# --- the file -------------------------------------------------------------------------------
def test_parsed_file_is_dlibs_mmod_face_detector(net):
    convs = net.convs()
    assert [c.weight.shape for c in convs] == [(16, 3, 5, 5), (32, 16, 5, 5), (32, 32, 5, 5), (45, 32, 5, 5),
                                              (45, 45, 5, 5), (45, 45, 5, 5), (1, 45, 9, 9)]
    assert [c.stride for c in convs] == [(2, 2)] * 3 + [(1, 1)] * 4
    assert [c.padding for c in convs] == [(0, 0)] * 3 + [(2, 2)] * 3 + [(4, 4)]
    assert net.windows == (_mmod_dat.DetectorWindow(80, 80),)
    assert net.overlaps_nms.covered == 1.0 and 0.3 < net.overlaps_nms.iou < 0.4
    np.testing.assert_allclose(net.mean_rgb, (122.782, 117.001, 104.298), atol=1e-4)
    assert (net.pyramid_padding, net.pyramid_outer_padding) == (10, 11)
    # a score at (column 0, row 0) comes from input pixel 14: 3 stride-2 5x5 layers (2 * p + 2, three times)
    assert net.output_to_input(0, 0) == (14, 14) and net.output_to_input(3, 1) == (38, 22)
    for layer in net.layers:
        for name in ("weight", "gamma", "beta"):
            if hasattr(layer, name):
                assert np.isfinite(getattr(layer, name)).all()


@pytest.mark.parametrize("cut", [5, 100, 400_000, -4])
def test_truncated_or_altered_file_is_refused(cut, dat_path):
    data = Path(dat_path).read_bytes()
    with pytest.raises(BadInputError, match="not dlib's MMOD face detector"):
        _mmod_dat.parse_mmod_bytes(data[:cut] if cut > 0 else data + b"abcd"[:-cut])


def test_every_cut_through_the_header_is_refused(dat_path):
    data = Path(dat_path).read_bytes()
    for cut in range(300):  # loss options, layer versions, the input layer, the first layer's start
        with pytest.raises(BadInputError, match="not dlib's MMOD face detector"):
            _mmod_dat.parse_mmod_bytes(data[:cut])


def test_other_dlib_files_are_refused(tmp_path):
    with pytest.raises(BadInputError, match="not dlib's MMOD face detector.*loss"):
        _mmod_dat.parse_mmod_dat(_models._paths()["resnet"])  # a dlib network, another one
    with pytest.raises(BadInputError, match="not dlib's MMOD face detector"):
        _mmod_dat.parse_mmod_dat(_models._paths()["shape5"])  # a dlib file, not a network
    with pytest.raises(BadInputError, match="cannot read"):
        _mmod_dat.parse_mmod_dat(tmp_path / "missing.dat")
    with pytest.raises(BadInputError, match="not dlib's MMOD"):
        _mmod_onnx.MmodDetector(_models._paths()["resnet"])


# --- dlib's resampling, repeated ------------------------------------------------------------
def test_bilinear_resize_is_dlibs_to_the_bit():
    import dlib

    rng = np.random.default_rng(1)
    for _ in range(12):
        h, w = (int(v) for v in rng.integers(5, 120, 2))
        oh, ow = (int(v) for v in rng.integers(5, 260, 2))
        rgb = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
        ours = _mmod_onnx._bilinear(np.ascontiguousarray(rgb.transpose(2, 0, 1)), oh, ow, to_uint8=True)
        np.testing.assert_array_equal(ours.transpose(1, 2, 0), dlib.resize_image(rgb, oh, ow))
        plane = rng.normal(size=(h, w)).astype(np.float32)
        np.testing.assert_array_equal(_mmod_onnx._bilinear(plane, oh, ow, to_uint8=False), dlib.resize_image(plane, oh, ow))


def test_upsampled_size_and_tiled_levels():
    assert _mmod_onnx.upsampled_size(250, 250) == (501, 502)
    rects, nr, nc = _mmod_onnx.tiled_rects(250, 250)
    assert nc == 250 + 22 and rects[0] == (11, 11, 260, 260)
    sizes = [(r - l + 1, b - t + 1) for l, t, r, b in rects]
    for (w0, h0), (w1, h1) in itertools.pairwise(sizes):
        assert (w1, h1) == (int(w0 * 5 / 6), int(h0 * 5 / 6))  # each level 5/6 of the one before, floored
    assert sizes[-1][1] >= 5
    for i, a in enumerate(rects):  # inside the tiled image, no two levels overlap
        assert 0 <= a[0] and 0 <= a[1] and a[2] < nc and a[3] < nr
        assert all(not _mmod_onnx._intersects(a, b) for b in rects[i + 1 :])
    assert _mmod_onnx.tiled_rects(0, 10) == ((), 0, 0)


# --- the same detections as dlib --------------------------------------------------------------
def _iou(a, b) -> float:
    iw = min(a[2], b[2]) - max(a[0], b[0]) + 1
    ih = min(a[3], b[3]) - max(a[1], b[1]) + 1
    if iw <= 0 or ih <= 0:
        return 0.0
    area = lambda r: (r[2] - r[0] + 1) * (r[3] - r[1] + 1)
    return iw * ih / (area(a) + area(b) - iw * ih)


def _assert_same(ours_dets, dlib_dets, where):
    assert len(ours_dets) == len(dlib_dets), (where, ours_dets, dlib_dets)
    for (a, ca), (b, cb) in zip(ours_dets, dlib_dets):
        assert _iou(a.tolist(), b.tolist()) >= MIN_IOU, (where, a, b)
        assert abs(ca - cb) <= CONF_TOLERANCE, (where, ca, cb)
    return sum(tuple(a.tolist()) == tuple(b.tolist()) for (a, _), (b, _) in zip(ours_dets, dlib_dets))


def _photos(sample_dir):
    photos = [read_image(sample_dir / p) for p in SAMPLE_PHOTOS]
    return photos + [_mmod_onnx.check_images()[0]]  # three faces on three pyramid levels


@pytest.mark.parametrize("upsample", [0, 1])
def test_same_faces_as_dlib_on_sample_photos(ours, dlib_cnn, sample_dir, upsample):
    identical = found = 0
    for i, image in enumerate(_photos(sample_dir)):
        mine = ours.detect(image[None], upsample)[0]
        theirs = _mmod_onnx.dlib_detections(dlib_cnn, image, upsample)
        identical += _assert_same(mine, theirs, (i, upsample))
        found += len(theirs)
    assert found >= len(SAMPLE_PHOTOS)  # not a vacuous comparison: dlib finds faces here
    assert identical == found  # measured: every box identical


def test_same_faces_as_dlib_on_lfw_and_celeba(ours, dlib_cnn, lfw_dir, celeba_dir):
    """Other sizes than 250 x 250 too: LFW photos cropped and scaled, CelebA's aligned photos."""
    import cv2

    lfw = sorted(lfw_dir.glob("G*/*_0001.jpg"))[:3]
    celeba = sorted((celeba_dir / "images").glob("*/*.jpg"))[:3]
    images = [read_image(p) for p in celeba]
    for p in lfw:
        image = read_image(p)
        images.append(np.ascontiguousarray(image[20:233, 7:240]))  # odd sizes
        images.append(cv2.resize(image, (331, 297), interpolation=cv2.INTER_LINEAR))
    found = 0
    for i, image in enumerate(images):
        theirs = _mmod_onnx.dlib_detections(dlib_cnn, image, 0)
        _assert_same(ours.detect(image[None], 0)[0], theirs, (i, image.shape))
        found += len(theirs)
    assert found >= len(images) // 2


def test_batch_and_dlib_call_signature(ours, dlib_cnn, sample_dir):
    images = [read_image(sample_dir / p) for p in SAMPLE_PHOTOS[:3]]
    batch = ours(images, 0, batch_size=2)
    theirs = dlib_cnn(images, 0, batch_size=2)
    assert len(batch) == 3
    for mine, ref in zip(batch, theirs):
        assert [(d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom()) for d in mine] == \
            [(d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom()) for d in ref]
        assert all(abs(a.confidence - b.confidence) <= CONF_TOLERANCE for a, b in zip(mine, ref))
    single = ours(images[0], 0)
    assert [d.rect for d in single] == [d.rect for d in batch[0]]
    assert ours(np.zeros((40, 40, 3), np.uint8), 0) == []  # no face
    assert ours(np.zeros((3, 3, 3), np.uint8), 0) == []  # smaller than one pyramid level
    with pytest.raises(BadInputError, match="same size"):
        ours([images[0], images[0][:100]], 0)
    with pytest.raises(BadInputError, match="RGB uint8"):
        ours(np.zeros((10, 10, 3), np.float32), 0)


# --- the cache and the self-check -----------------------------------------------------------
def test_cache_is_checked_and_rebuilt_when_corrupt(module_cache, dat_path, caplog):
    path = _mmod_onnx.model_path(dat_path)
    assert path.parent == module_cache
    meta_path = path.with_name(path.name + ".json")
    meta = json.loads(meta_path.read_text())
    assert meta["self_check"]["passed"] and meta["self_check"]["max_conf_diff"] <= _mmod_onnx.SELF_CHECK_TOLERANCE
    assert all(c["same_boxes"] for c in meta["self_check"]["checks"])
    mtime = path.stat().st_mtime_ns
    assert _mmod_onnx.model_path(dat_path) == path and path.stat().st_mtime_ns == mtime  # reused

    data = bytearray(path.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)  # zero some weights
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING):
        assert _mmod_onnx.model_path(dat_path) == path
    assert "corrupt" in caplog.text
    from anonfaces.utils.onnx_cache import sha256_of

    assert sha256_of(path) == meta["onnx_sha256"]  # rebuilt, checked again


def test_a_build_that_differs_from_dlib_is_refused(net, dat_path):
    layers = list(net.layers)
    i = next(i for i, layer in enumerate(layers) if isinstance(layer, _mmod_dat.Affine))
    layers[i] = _mmod_dat.Affine(gamma=layers[i].gamma * 1.1, beta=layers[i].beta)
    broken = _mmod_onnx.build_model(_mmod_dat.MmodNetwork(
        tuple(layers), net.mean_rgb, net.pyramid_padding, net.pyramid_outer_padding, net.windows,
        net.overlaps_nms)).SerializeToString()
    with pytest.raises(_mmod_onnx.SelfCheckError, match="differs from dlib"):
        _mmod_onnx.self_check(broken, dat_path)


def test_engine_choice(module_cache, monkeypatch, caplog):
    monkeypatch.delenv(_models.CNN_ENGINE_ENV, raising=False)
    _models._cnn_detector.cache_clear()
    assert isinstance(_models.cnn_detector(), _mmod_onnx.MmodDetector)  # the default: onnx, checked
    monkeypatch.setenv(_models.CNN_ENGINE_ENV, "dlib")
    assert type(_models.cnn_detector()).__name__ == "cnn_face_detection_model_v1"
    monkeypatch.setenv(_models.CNN_ENGINE_ENV, "cuda")
    with pytest.raises(BadInputError, match="auto, onnx, dlib"):
        _models.cnn_detector()

    def refuse(*args, **kwargs):
        raise _mmod_onnx.SelfCheckError("differs (test)")

    monkeypatch.setattr(_mmod_onnx, "model_path", refuse)
    _models._cnn_detector.cache_clear()
    monkeypatch.setenv(_models.CNN_ENGINE_ENV, "auto")
    with caplog.at_level(logging.WARNING):
        assert type(_models.cnn_detector()).__name__ == "cnn_face_detection_model_v1"  # falls back, logged
    assert "differs (test)" in caplog.text
    monkeypatch.setenv(_models.CNN_ENGINE_ENV, "onnx")
    with pytest.raises(AnonfacesError, match="differs"):
        _models.cnn_detector()
    _models._cnn_detector.cache_clear()


def test_sensitive_detector_and_cnn_detector_on_both_engines(module_cache, monkeypatch, sample_dir):
    image = read_image(sample_dir / SAMPLE_PHOTOS[0])
    found = {}
    for engine in ("onnx", "dlib"):
        monkeypatch.setenv(_models.CNN_ENGINE_ENV, engine)
        boxes = SensitiveDetector(upsample=1, with_hog=False).boxes(image)
        faces = make_detector("cnn", upsample=0).detect(image)
        found[engine] = ([b.tolist() for b, _, _ in boxes], [f.box_ltrb.tolist() for f in faces],
                         [f.landmarks68.tolist() for f in faces])
    assert found["onnx"] == found["dlib"] and found["onnx"][0]
    _models._cnn_detector.cache_clear()
