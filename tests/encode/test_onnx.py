"""The onnx encoder on a tiny model the test builds itself (no weights can be downloaded here)."""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper

from anonfaces.detect import detect_faces, face_chip
from anonfaces.encode import OnnxEncoder
from anonfaces.errors import BadInputError
from anonfaces.utils.images import read_image

SIZE, DIM = 24, 8


def tiny_model(path, layout="nchw", seed=0):
    """Flatten -> MatMul: a linear 'embedding' whose output we can compute by hand."""
    W = np.random.default_rng(seed).normal(size=(3 * SIZE * SIZE, DIM)).astype(np.float32)
    shape = [1, 3, SIZE, SIZE] if layout == "nchw" else [1, SIZE, SIZE, 3]
    shape[0] = "batch"
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["input"], ["flat"], axis=1),
            helper.make_node("MatMul", ["flat", "W"], ["embedding"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", DIM])],
        [numpy_helper.from_array(W, "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # readable by every onnxruntime of the last years
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return W


@pytest.fixture(scope="module")
def face(sample_dir):
    image = read_image(sample_dir / "Tiger_Woods" / "Tiger_Woods_0001.jpg")
    return image, detect_faces(image)


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
@pytest.mark.parametrize("color", ["rgb", "bgr"])
def test_matches_a_hand_computed_embedding(tmp_path, face, layout, color):
    W = tiny_model(tmp_path / "m.onnx", layout)
    image, faces = face
    enc = OnnxEncoder(model=str(tmp_path / "m.onnx"), color=color, mean=127.5, std=128.0)
    assert enc.input_size == SIZE and enc.layout == layout
    out = enc.encode(image, faces)
    chip = face_chip(image, faces[0].landmarks5, size=SIZE).astype(np.float32)
    if color == "bgr":
        chip = chip[..., ::-1]
    x = (chip - 127.5) / 128.0
    x = x.transpose(2, 0, 1) if layout == "nchw" else x
    expected = x.reshape(-1) @ W
    expected /= np.linalg.norm(expected)
    np.testing.assert_allclose(out[0], expected, rtol=1e-4, atol=1e-5)


def test_batches_and_empty(tmp_path, face):
    tiny_model(tmp_path / "m.onnx")
    image, faces = face
    enc = OnnxEncoder(model=str(tmp_path / "m.onnx"), normalize=False)
    two = enc.encode(image, faces * 2)
    assert two.shape == (2, DIM) and np.allclose(two[0], two[1])
    assert enc.encode(image, []).shape == (0, DIM)


def test_encode_dataset_and_cli(tmp_path, sample_dir):
    import shutil

    from click.testing import CliRunner

    import anonfaces
    from anonfaces.cli import main

    tiny_model(tmp_path / "m.onnx")
    shutil.copytree(sample_dir / "Bill_Gates", tmp_path / "ds" / "Bill_Gates")
    res = CliRunner().invoke(main, ["encode", "--dataset", str(tmp_path / "ds"), "--encodings", str(tmp_path / "e.npz"),
                                    "--encoder", "onnx", "--onnx-model", str(tmp_path / "m.onnx"), "--onnx-std", "127.5", "--jobs", "2",
                                    "--no-progress"])
    assert res.exit_code == 0, res.output
    enc = anonfaces.load_encodings(tmp_path / "e.npz")
    assert enc.embeddings.shape[1] == DIM and enc.encoder["std"] == [127.5]
    np.testing.assert_allclose(np.linalg.norm(enc.embeddings, axis=1), 1, rtol=1e-5)


def test_bad_model_files(tmp_path):
    with pytest.raises(BadInputError, match="not found"):
        OnnxEncoder(model=str(tmp_path / "missing.onnx"))
    (tmp_path / "junk.onnx").write_bytes(b"junk")
    with pytest.raises(BadInputError, match="cannot load ONNX model"):
        OnnxEncoder(model=str(tmp_path / "junk.onnx"))
    tiny_model(tmp_path / "m.onnx")
    with pytest.raises(BadInputError, match="color"):
        OnnxEncoder(model=str(tmp_path / "m.onnx"), color="yuv")
