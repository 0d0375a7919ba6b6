"""dlib's ResNet rebuilt for ONNX Runtime: the parsed file, equality with dlib on real
faces, the self-check, the model cache, and the original path kept behind backend=dlib."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import anonfaces
from anonfaces.cli import main
from anonfaces.detect import _models
from anonfaces.detect.align import face_chip, to_dlib_shape
from anonfaces.encode import DlibEncoder, _dlib_dat, _dlib_onnx
from anonfaces.errors import BadInputError
from anonfaces.utils.images import read_image
from tests.conftest import SAMPLE

TOLERANCE = 1e-4  # the bound on any element of a descriptor


@pytest.fixture(scope="module")
def network():
    return _dlib_dat.parse_dat(_models._paths()["resnet"])


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv(_dlib_onnx.CACHE_ENV, str(folder))
    _dlib_onnx._session_for.cache_clear()
    yield folder
    _dlib_onnx._session_for.cache_clear()


def test_parsed_network_is_dlibs_face_resnet(network):
    assert network.counts() == _dlib_dat.EXPECTED_COUNTS
    assert network.n_parameters() == 5_614_592
    assert network.input.size == 150
    np.testing.assert_allclose(network.input.mean_rgb, (122.782, 117.001, 104.298), atol=1e-4)
    assert network.margin == pytest.approx(0.04) and network.distance_threshold == pytest.approx(0.6)
    convs = [layer for layer in network.layers if isinstance(layer, _dlib_dat.Conv)]
    assert convs[0].weight.shape == (32, 3, 7, 7) and convs[0].stride == (2, 2) and convs[0].padding == (0, 0)
    for conv in convs:  # stride-1 layers pad k/2, others 0
        k = conv.weight.shape[2]
        assert conv.padding == ((k // 2, k // 2) if conv.stride == (1, 1) else (0, 0))
        assert conv.bias is not None and np.isfinite(conv.weight).all()
    dense = network.layers[-1]
    assert isinstance(dense, _dlib_dat.Dense) and dense.weight.shape == (256, 128) and dense.bias is None


@pytest.mark.parametrize("cut", [10, 1000, 5_000_000, -3])
def test_truncated_or_altered_file_is_a_clear_error(tmp_path, cut):
    data = Path(_models._paths()["resnet"]).read_bytes()
    with pytest.raises(BadInputError, match="not dlib's face-recognition ResNet"):
        _dlib_dat.parse_dat_bytes(data[:cut] if cut > 0 else data + b"xyz"[:-cut])


def test_other_dlib_files_are_refused():
    with pytest.raises(BadInputError, match="not dlib's face-recognition ResNet"):
        _dlib_dat.parse_dat(_models._paths()["mmod"])


def test_equal_to_dlib_on_every_face_of_the_sample(sample_encodings):
    """The pipeline's default (ONNX) descriptors against dlib's own, computed the way
    face_recognition does: compute_face_descriptor(photo, shape) with the 5-point shape."""
    enc = sample_encodings
    assert enc.meta["encoder"]["backend"] == "onnx"
    recognizer = _models.face_recognizer()
    worst = 0.0
    for path in sorted(set(enc.paths.tolist())):
        image = read_image(SAMPLE / path)
        for i in np.flatnonzero(enc.paths == path):
            shape = to_dlib_shape(enc.landmarks5[i], enc.boxes[i])
            ref = np.asarray(recognizer.compute_face_descriptor(image, shape), np.float32)
            worst = max(worst, float(np.abs(enc.embeddings[i] - ref).max()))
    print(f"max abs difference to dlib over {len(enc)} sample faces: {worst:.2g}")
    assert worst <= TOLERANCE


def test_batches_and_threads_give_the_same_descriptors():
    chips = _dlib_onnx.check_chips()
    one = np.concatenate([DlibEncoder().embed(chips[i : i + 1]) for i in range(len(chips))])
    together = DlibEncoder(threads=2).embed(chips)
    np.testing.assert_allclose(together, one, atol=1e-6)
    assert DlibEncoder().embed(chips[:0]).shape == (0, 128)


def test_self_check_refuses_a_corrupted_model(network):
    from onnx import numpy_helper

    model = _dlib_onnx.build_model(network)
    assert _dlib_onnx.self_check(model.SerializeToString())["passed"]
    # corrupt one weight tensor slightly: one filter of one convolution scaled by 1.01
    init = next(t for t in model.graph.initializer if t.name.startswith("w") and len(t.dims) == 4 and t.dims[0] == 128)
    arr = numpy_helper.to_array(init).copy()
    arr[0] *= 1.01
    init.CopyFrom(numpy_helper.from_array(arr, init.name))
    with pytest.raises(_dlib_onnx.SelfCheckError, match="refusing"):
        _dlib_onnx.self_check(model.SerializeToString())
    with pytest.raises(_dlib_onnx.SelfCheckError, match="does not run"):
        _dlib_onnx.self_check(b"not a model")


def test_a_build_that_differs_is_never_cached_or_used(fresh_cache, monkeypatch, network):
    real_build = _dlib_onnx.build_model

    def broken_build(net):
        layers = list(net.layers)
        i = next(i for i, layer in enumerate(layers) if isinstance(layer, _dlib_dat.Affine))
        layers[i] = _dlib_dat.Affine(gamma=layers[i].gamma * 1.05, beta=layers[i].beta)
        return real_build(_dlib_dat.DlibNetwork(tuple(layers), net.margin, net.distance_threshold))

    monkeypatch.setattr(_dlib_onnx, "build_model", broken_build)
    with pytest.raises(_dlib_onnx.SelfCheckError):
        DlibEncoder().embed(_dlib_onnx.check_chips()[:1])
    assert not fresh_cache.exists() or not list(fresh_cache.iterdir())


def test_cache_is_built_once_and_rebuilt_after_deletion_and_corruption(fresh_cache):
    chips = _dlib_onnx.check_chips()[:2]
    path = _dlib_onnx.model_path()
    assert path.parent == fresh_cache and path.is_file()
    meta = json.loads(path.with_name(path.name + ".json").read_text())
    assert meta["dat_sha256"] == _dlib_onnx.sha256_of(_models._paths()["resnet"])
    assert meta["self_check"]["passed"] and meta["self_check"]["max_abs_diff"] <= TOLERANCE
    expected = DlibEncoder().embed(chips)
    mtime = path.stat().st_mtime_ns
    assert _dlib_onnx.model_path() == path and path.stat().st_mtime_ns == mtime  # cached: not rebuilt

    path.unlink()
    assert _dlib_onnx.model_path() == path and path.is_file()
    np.testing.assert_array_equal(DlibEncoder().embed(chips), expected)

    data = bytearray(path.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)  # zero some weights in the middle
    path.write_bytes(bytes(data))
    _dlib_onnx._file_sha256.cache_clear()
    assert _dlib_onnx.model_path() == path
    assert _dlib_onnx.sha256_of(path) == meta["onnx_sha256"]
    np.testing.assert_array_equal(DlibEncoder().embed(chips), expected)

    path.with_name(path.name + ".json").write_text("{not json")
    assert _dlib_onnx.model_path() == path
    assert json.loads(path.with_name(path.name + ".json").read_text())["onnx_sha256"] == meta["onnx_sha256"]


def test_backend_dlib_gives_dlibs_own_descriptors(tmp_path):
    """--param backend=dlib: the original path, bit for bit (dlib over the same chips)."""
    data = tmp_path / "photos"
    for person in ["Tiger_Woods", "Kate_Hudson"]:
        shutil.copytree(SAMPLE / person, data / person)
    runs = {}
    for backend in ("dlib", "onnx"):
        out = tmp_path / f"{backend}.npz"
        result = CliRunner().invoke(main, ["encode", "--dataset", str(data), "--encodings", str(out), "--jobs", "1",
                                           "--no-progress", "--param", f"backend={backend}"])
        assert result.exit_code == 0, result.output
        runs[backend] = anonfaces.load_encodings(out)
    ref, fast = runs["dlib"], runs["onnx"]
    assert ref.meta["encoder"] == {"name": "dlib", "num_jitters": 1, "backend": "dlib"}
    chips = [face_chip(read_image(data / p), lm) for p, lm in zip(ref.paths.tolist(), ref.landmarks5)]
    own = np.asarray([np.asarray(v) for v in _models.face_recognizer().compute_face_descriptor(chips)], np.float32)
    np.testing.assert_array_equal(ref.embeddings, own)
    # the same faces, and the default backend within the tolerance
    np.testing.assert_array_equal(ref.paths, fast.paths)
    np.testing.assert_array_equal(ref.boxes, fast.boxes)
    assert np.abs(ref.embeddings - fast.embeddings).max() <= TOLERANCE


def test_bad_settings_are_clear():
    with pytest.raises(BadInputError, match="backend"):
        DlibEncoder(backend="torch")
    with pytest.raises(BadInputError, match="threads"):
        DlibEncoder(threads=0)
    with pytest.raises(BadInputError, match="face chips"):
        DlibEncoder().embed(np.zeros((1, 100, 100, 3), np.uint8))


def test_set_embed_threads_is_the_process_default():
    from anonfaces.encode import set_embed_threads

    before = _dlib_onnx.get_threads()
    try:
        set_embed_threads(2)
        assert _dlib_onnx.get_threads() == 2
        assert _dlib_onnx.session().get_session_options().intra_op_num_threads == 2
        with pytest.raises(ValueError, match="threads"):
            set_embed_threads(0)
    finally:
        set_embed_threads(before)
