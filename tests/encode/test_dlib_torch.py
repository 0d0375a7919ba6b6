"""dlib's ResNet built in PyTorch from the parsed .dat (issue 14's identity critic) equals dlib."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from anonfaces.detect import _models
from anonfaces.detect.align import face_chip
from anonfaces.encode import _dlib_onnx
from anonfaces.encode._dlib_torch import dlib_resnet
from anonfaces.utils.images import read_image
from tests.conftest import SAMPLE


@pytest.fixture(scope="module")
def net():
    return dlib_resnet()


def _dlib(chips):
    out = _models.face_recognizer().compute_face_descriptor([np.ascontiguousarray(c) for c in chips])
    return np.asarray([np.asarray(v) for v in out], np.float32)


def test_torch_network_equals_dlib_on_real_faces(net, sample_encodings):
    # the self-check chips (LFW faces and noise) and the faces of eight sample photos
    enc = sample_encodings
    rows = [i for i in range(len(enc)) if enc.face_index[i] == 0][:8]
    faces = [face_chip(read_image(SAMPLE / enc.paths[i]), enc.landmarks5[i]) for i in rows]
    chips = np.concatenate([_dlib_onnx.check_chips(), np.stack(faces)])
    with torch.no_grad():
        ours = net.from_chips(chips).numpy()
    assert np.abs(ours - _dlib(chips)).max() <= 1e-4


def test_gradients_reach_the_input_and_weights_stay_frozen(net):
    x = torch.as_tensor(_dlib_onnx.check_chips()[:2]).permute(0, 3, 1, 2).float().requires_grad_(True)
    out = net(x)
    assert out.shape == (2, 128)
    (out[0] - out[1]).norm().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    assert all(not p.requires_grad for p in net.parameters())


def test_wrong_input_shape_is_clear(net):
    with pytest.raises(ValueError, match="expected images of shape"):
        net(torch.zeros(1, 3, 100, 100))
