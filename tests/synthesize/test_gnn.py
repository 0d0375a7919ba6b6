"""GNN (k-Same-Net style): training on a few real LFW identities, checkpoints, the one-member surrogate."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is the optional extra anonfaces[stylegan]")

from anonfaces.errors import BadInputError, FileFormatError, UnsafeFileError  # noqa: E402
from anonfaces.synthesize.gnn import GNNConfig, GNNSynthesizer, load_face_set, load_gnn, train_gnn  # noqa: E402

SIZE = 32
CONFIG = dict(image_size=SIZE, width=16, id_features=128, batch_size=16, learning_rate=2e-3, checkpoint_every=200)


@pytest.fixture(scope="module")
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)  # faster than two threads for this small network on a shared 2-core machine
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def faces(lfw_dir):
    # 5 people with many photos, 6 photos each, canonically aligned with dlib
    return load_face_set(lfw_dir, size=SIZE, min_images=10, max_identities=5, max_per_identity=6, progress=False)


@pytest.fixture(scope="module")
def trained(faces, tmp_path_factory, one_thread):
    out = tmp_path_factory.mktemp("gnn")
    result = train_gnn(faces, out, config=GNNConfig(steps=600, **CONFIG), progress=False)
    return out, result


@pytest.mark.lfw
@pytest.mark.slow
def test_training_loss_falls(faces, trained):
    out, result = trained
    assert len(faces.identities) == 5 and faces.images.shape[1:] == (SIZE, SIZE, 3)
    losses = np.asarray(result["losses"])
    assert len(losses) == 600
    assert losses[-50:].mean() < 0.8 * losses[:50].mean(), (losses[:50].mean(), losses[-50:].mean())
    assert (out / "gnn.pt").is_file() and (out / "checkpoint.pt").is_file() and (out / "config.json").is_file()
    assert len((out / "metrics.jsonl").read_text().splitlines()) >= 3


@pytest.mark.lfw
@pytest.mark.slow
def test_one_member_surrogate_resembles_that_member(faces, trained):
    out, _ = trained
    syn = GNNSynthesizer(weights=out / "gnn.pt")
    n = len(faces.identities)
    lm = np.full((68, 2), 16.0, np.float32)
    surrogates = np.stack([syn.synthesize_identities([name], size=SIZE, landmarks=lm).image
                           for name in faces.identities]).astype(np.float64)
    # D[i, j]: mean squared distance from person i's photos to the surrogate of the one-member cluster {j}
    D = np.array([[((faces.images[faces.labels == i].astype(np.float64) - surrogates[j]) ** 2).mean()
                   for j in range(n)] for i in range(n)])
    assert (D.argmin(axis=1) == np.arange(n)).all(), np.round(D)


@pytest.mark.lfw
@pytest.mark.slow
def test_synthesize_maps_training_members_to_their_identity(faces, trained):
    import cv2

    out, _ = trained
    syn = GNNSynthesizer(weights=out / "gnn.pt")
    crops = np.stack([cv2.resize(f, (128, 128), interpolation=cv2.INTER_CUBIC) for f in faces.images])
    hits = (syn.assign_identities(crops) == faces.labels).mean()
    assert hits >= 0.6, hits  # pixel matching against identity means; far above chance (0.2)
    member = crops[faces.labels == 2][:1]
    lm = np.full((1, 68, 2), 64.0, np.float32)
    s = syn.synthesize(member, lm)
    assert s.image.shape == (128, 128, 3) and s.image.dtype == np.uint8 and s.landmarks.shape == (68, 2)
    with pytest.raises(BadInputError):
        syn.synthesize(member, lm[:, :5])


@pytest.mark.lfw
@pytest.mark.slow
def test_resume_continues_from_the_checkpoint(faces, tmp_path, one_thread):
    cfg = dict(CONFIG, checkpoint_every=20)
    first = train_gnn(faces, tmp_path, config=GNNConfig(steps=40, **cfg), progress=False)
    model_40, info_40 = load_gnn(first["weights"])
    resumed = train_gnn(faces, tmp_path, config=GNNConfig(steps=60, **cfg), resume=True, progress=False)
    assert resumed["step"] == 60 and len(resumed["losses"]) == 60
    assert resumed["losses"][:40] == first["losses"]
    model_60, info_60 = load_gnn(resumed["weights"])
    assert info_60["step"] == 60 and info_60["identities"] == faces.identities
    assert not torch.allclose(model_40.to_rgb.weight, model_60.to_rgb.weight)


def test_checkpoint_with_code_is_refused(tmp_path):
    import os

    class Evil:
        def __reduce__(self):
            return (os.system, ("touch PWNED",))

    path = tmp_path / "gnn.pt"
    torch.save({"format": "anonfaces-gnn", "evil": Evil()}, path)
    with pytest.raises(UnsafeFileError):
        load_gnn(path)
    assert not (tmp_path / "PWNED").exists()
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises((FileFormatError, UnsafeFileError)):
        load_gnn(tmp_path / "junk.pt")


def test_multi_hot_is_normalised():
    from anonfaces.synthesize.gnn import multi_hot

    code = multi_hot([0, 2, 2], 4)
    assert torch.allclose(code, torch.tensor([[1 / 3, 0, 2 / 3, 0]]))
    with pytest.raises(BadInputError):
        multi_hot([5], 4)


def test_network_shapes():
    from anonfaces.synthesize.gnn import FaceGenNet

    net = FaceGenNet(n_identities=7, n_attributes=3, image_size=64, width=8, id_features=32)
    out = net(torch.eye(7)[:2], torch.zeros(2, 3))
    assert out.shape == (2, 3, 64, 64) and out.abs().max() <= 1
    with pytest.raises(BadInputError):
        FaceGenNet(n_identities=3, image_size=48)
