"""GNN (k-Same-Net style): training on a few real LFW identities, checkpoints, the one-member surrogate."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is the optional extra anonfaces[stylegan]")

from anonfaces.errors import BadInputError, FileFormatError, UnsafeFileError
from anonfaces.synthesize.gnn import (
    GNNConfig,
    GNNSynthesizer,
    load_face_set,
    load_gnn,
    train_gnn,
)

SIZE = 32
CONFIG = {"image_size": SIZE, "width": 16, "id_features": 128, "batch_size": 16, "learning_rate": 2e-3,
          "checkpoint_every": 200}


@pytest.fixture(scope="module")
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)  # faster than two threads for this small network on a shared 2-core machine
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def faces(lfw_dir):
    # 5 people with many photos, 6 photos each, canonically aligned with dlib, embedded with dlib's encoder
    return load_face_set(lfw_dir, size=SIZE, min_images=10, max_identities=5, max_per_identity=6, encoder="dlib",
                         progress=False)


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
    lm = np.full((68, 2), 16.0, np.float32)
    surrogates = np.stack([syn.synthesize_identities([name], size=SIZE, landmarks=lm).image
                           for name in faces.identities]).astype(np.float64)
    _assert_each_person_nearest_own_surrogate(faces, surrogates)


def _assert_each_person_nearest_own_surrogate(faces, surrogates):
    """D[i, j]: mean squared distance from person i's photos to surrogate j (made from person j); argmin is i."""
    n = len(faces.identities)
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
    model_40, _ = load_gnn(first["weights"])
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


# --- identity labels, embeddings and pixels (issue 5: members map to their own identities) -------------------------


def _upsampled(images, size=128):
    import cv2

    return np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_CUBIC) for f in images])


LM128 = np.full((1, 68, 2), 64.0, np.float32)


@pytest.mark.lfw
@pytest.mark.slow
def test_a_labelled_member_maps_to_its_own_identity(faces, trained):
    out, _ = trained
    syn = GNNSynthesizer(weights=out / "gnn.pt")
    n = len(faces.identities)
    surrogates = []
    for i, name in enumerate(faces.identities):
        member = _upsampled(faces.images[faces.labels == i][:1])
        s = syn.synthesize(member, LM128, identities=[name])
        assert s.info["gnn_mapped"] == {"label": 1, "embedding": 0, "pixels": 0}
        assert s.info["gnn_identities"] == [name]
        surrogates.append(s.image)
    # each person's photos are nearest to the surrogate made from one of their own photos
    _assert_each_person_nearest_own_surrogate(faces, np.stack([_downsampled(img) for img in surrogates]).astype(np.float64))
    # the label decides, whatever the pixels look like
    other = _upsampled(faces.images[faces.labels == 0][:1])
    s = syn.synthesize(other, LM128, identities=[faces.identities[1]])
    assert s.info["gnn_identities"] == [faces.identities[1]]
    assert syn.settings()["mapped"] == {"label": n + 1, "embedding": 0, "pixels": 0}


def _downsampled(image):
    import cv2

    return cv2.resize(image, (SIZE, SIZE), interpolation=cv2.INTER_AREA)


@pytest.mark.lfw
@pytest.mark.slow
def test_unknown_labels_fall_back_to_embeddings_then_pixels(faces, trained, caplog):
    out, _ = trained
    syn = GNNSynthesizer(weights=out / "gnn.pt")
    assert syn.info["identity_embeddings"].shape == (5, 128)
    assert syn.info["embedding_encoder"]["name"] == "dlib"
    crops = _upsampled(faces.images)
    lm = np.repeat(LM128, len(crops), axis=0)
    index, how = syn.match_members(crops, faces.embeddings, ["Nobody"] * len(crops))
    assert (how == "embedding").all() and (index == faces.labels).mean() >= 0.9, index
    # a cluster of three: one labelled, one unknown with an embedding, one without a label
    pick = [0, 6, 12]
    s = syn.synthesize(crops[pick], lm[pick], faces.embeddings[pick], identities=[faces.identities[0], "Nobody", ""])
    assert s.info["gnn_mapped"] == {"label": 1, "embedding": 2, "pixels": 0}
    # no embeddings: pixels, with one warning however many clusters
    with caplog.at_level("WARNING", logger="anonfaces.synthesize.gnn.synthesizer"):
        s = syn.synthesize(crops[pick], lm[pick], identities=[faces.identities[0], "Nobody", ""])
        syn.synthesize(crops[pick], lm[pick], identities=["", "", ""])
    assert s.info["gnn_mapped"] == {"label": 1, "embedding": 0, "pixels": 2}
    warnings = [r for r in caplog.records if "pixel distance only" in r.getMessage()]
    assert len(warnings) == 1
    # embeddings of another encoder (other width): pixels
    s = syn.synthesize(crops[:1], lm[:1], np.zeros((1, 64), np.float32), identities=["Nobody"])
    assert s.info["gnn_mapped"]["pixels"] == 1
    with pytest.raises(BadInputError, match=r"one label per face \(1\); got 2"):
        syn.synthesize(crops[:1], lm[:1], identities=["a", "b"])


@pytest.mark.lfw
@pytest.mark.slow
def test_checkpoints_without_embeddings_still_load_and_match_by_pixels(faces, trained, tmp_path):
    from anonfaces.synthesize.gnn import save_checkpoint

    out, _ = trained
    model, info = load_gnn(out / "gnn.pt")
    save_checkpoint(tmp_path / "old.pt", model=model, config=GNNConfig(**info["config"]), identities=info["identities"],
                    step=info["step"], losses=info["losses"], identity_means=info["identity_means"])
    syn = GNNSynthesizer(weights=tmp_path / "old.pt")
    assert syn.info["identity_embeddings"] is None and syn.info["embedding_encoder"] is None
    s = syn.synthesize(_upsampled(faces.images[:1]), LM128, faces.embeddings[:1], identities=["Nobody"])
    assert s.info["gnn_mapped"] == {"label": 0, "embedding": 0, "pixels": 1}


def test_identity_labels_are_checked():
    from anonfaces.synthesize.base import check_identities

    assert check_identities(None, 2) is None
    assert check_identities(np.array(["a", ""]), 2) == ["a", ""]
    with pytest.raises(BadInputError, match="one string"):
        check_identities("ab", 2)
    with pytest.raises(BadInputError, match="must be str"):
        check_identities(["a", 3], 2)


# --- the pipeline passes labels only to synthesizers that ask for them ---------------------------------------------

PEOPLE = ("Bill_Gates", "Donald_Rumsfeld", "Gerhard_Schroeder", "Tiger_Woods")  # two of them are in the tiny GNN


@pytest.fixture(scope="module")
def people(sample_dir, tmp_path_factory):
    """4 people x 2 photos of the sample, encoded once."""
    import shutil

    from anonfaces.encode import encode_photos

    root = tmp_path_factory.mktemp("people") / "dataset"
    for person in PEOPLE:
        for src in sorted((sample_dir / person).iterdir())[:2]:
            (root / person).mkdir(parents=True, exist_ok=True)
            shutil.copy(src, root / person / src.name)
    enc_path = root.parent / "encodings.npz"
    encode_photos(root, enc_path, jobs=2, progress=False)
    return root, enc_path


class MeanFace:
    """A user synthesizer with the plain three-argument ``synthesize``."""

    def synthesize(self, faces, landmarks, embeddings=None):
        from anonfaces.synthesize import Surrogate

        return Surrogate(np.mean(faces, axis=0).astype(np.uint8), np.mean(landmarks, axis=0))


class LabelRecorder(MeanFace):
    uses_identities = True

    def __init__(self):
        self.seen = []

    def synthesize(self, faces, landmarks, embeddings=None, *, identities=None):
        self.seen.append(list(identities))
        return super().synthesize(faces, landmarks, embeddings)


class ParallelLabelCheck(MeanFace):
    """Runs in the worker processes; refuses a cluster without its labels."""

    parallel = True
    uses_identities = True

    def synthesize(self, faces, landmarks, embeddings=None, *, identities=None):
        if identities is None or len(identities) != len(faces) or not set(identities) <= set(PEOPLE):
            raise BadInputError(f"labels {identities!r} for {len(faces)} faces")
        return super().synthesize(faces, landmarks, embeddings)


def test_user_synthesizers_with_and_without_labels_run_through_anonymize_dataset(people, tmp_path):
    import json

    from anonfaces.pipeline import anonymize_dataset

    root, enc_path = people
    report = anonymize_dataset(root, tmp_path / "plain", k=2, synth=MeanFace(), encodings=enc_path, jobs=1,
                               progress=False)
    assert report.n_faces >= 8 and report.n_clusters >= 1
    recorder = LabelRecorder()
    report = anonymize_dataset(root, tmp_path / "labels", k=2, synth=recorder, encodings=enc_path, jobs=1,
                               progress=False)
    assert len(recorder.seen) == report.n_clusters
    seen = [label for cluster in recorder.seen for label in cluster]
    assert len(seen) == report.n_faces and set(seen) == set(PEOPLE)
    run = json.loads(report.run_path.read_text())
    assert run["counts"]["clusters"] == report.n_clusters
    # in the worker processes too
    report = anonymize_dataset(root, tmp_path / "workers", k=2, synth=ParallelLabelCheck(), encodings=enc_path, jobs=2,
                               progress=False)
    assert report.n_faces == len(seen)


@pytest.mark.lfw
@pytest.mark.slow
def test_gnn_through_anonymize_dataset_maps_trained_people_by_label(people, faces, trained, tmp_path):
    import json

    from anonfaces.encode import Encodings
    from anonfaces.pipeline import anonymize_dataset

    out, _ = trained
    root, enc_path = people
    enc = Encodings.load(enc_path)
    known = np.isin(enc.identities, faces.identities)
    assert 0 < known.sum() < len(enc)  # Rumsfeld and Schroeder are training identities, Gates and Woods not
    report = anonymize_dataset(root, tmp_path / "out", k=2, synth=GNNSynthesizer(weights=out / "gnn.pt"),
                               encodings=enc_path, jobs=1, progress=False)
    run = json.loads(report.run_path.read_text())
    assert run["settings"]["synth"]["mapped"] == {"label": int(known.sum()), "embedding": int((~known).sum()),
                                                  "pixels": 0}


# --- the attribute code -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def attribute_gnn(tmp_path_factory, one_thread):
    """A GNN with attributes Smiling and Male, trained for a few steps on random 16 px images (its weights, not its
    pictures, are what the attribute tests need)."""
    from anonfaces.synthesize.gnn import FaceSet

    rng = np.random.RandomState(0)
    n = 12
    faces = FaceSet(rng.randint(0, 255, (n, 16, 16, 3)).astype(np.uint8), np.arange(n) % 3, ["a", "b", "c"],
                    [f"{i}.jpg" for i in range(n)], (rng.rand(n, 2) > 0.5).astype(np.float32), ["Smiling", "Male"])
    out = tmp_path_factory.mktemp("gnn-attr")
    train_gnn(faces, out, config=GNNConfig(image_size=16, width=8, id_features=16, steps=3, checkpoint_every=100),
              progress=False)
    return out / "gnn.pt", faces.attributes.mean(0)


def test_attributes_by_number_or_name(attribute_gnn):
    weights, mean = attribute_gnn
    code = GNNSynthesizer(weights=weights).attribute_code()
    assert np.allclose(code, mean)
    assert np.allclose(GNNSynthesizer(weights=weights, attributes="1,0").attribute_code(), [1, 0])
    assert np.allclose(GNNSynthesizer(weights=weights, attributes=[0.5, 1]).attribute_code(), [0.5, 1])
    assert np.allclose(GNNSynthesizer(weights=weights, attributes="Smiling").attribute_code(), [1, mean[1]])
    assert np.allclose(GNNSynthesizer(weights=weights, attributes="Male=0, Smiling").attribute_code(), [1, 0])
    syn = GNNSynthesizer(weights=weights, attributes="Smiling,Male")
    a = syn.generate([1, 0, 0])
    b = GNNSynthesizer(weights=weights, attributes="Smiling=0,Male=0").generate([1, 0, 0])
    assert a.shape == (16, 16, 3) and not np.array_equal(a, b)
    assert syn.settings()["attributes"] == "Smiling,Male"
    for bad, message in [("Happy", "unknown attribute 'Happy'; its attributes: Smiling, Male"),
                         ("0.5", "gives 1 values; this GNN takes 2"), ("1,0,1", "gives 3 values"),
                         ("Smiling=yes", "NAME or NAME=NUMBER"), ("2,0", r"in \[0, 1\]"), ("Smiling,", "empty item"),
                         (True, "not a boolean")]:
        with pytest.raises(BadInputError, match=message):
            GNNSynthesizer(weights=weights, attributes=bad)


@pytest.mark.lfw
@pytest.mark.slow
def test_attributes_for_a_gnn_without_them_are_refused(trained):
    out, _ = trained
    with pytest.raises(BadInputError, match="trained without attributes"):
        GNNSynthesizer(weights=out / "gnn.pt", attributes="Smiling")


def test_cli_bad_attributes_exit_2_with_a_message(attribute_gnn, tmp_path):
    from click.testing import CliRunner

    from anonfaces.cli import main

    weights, _ = attribute_gnn
    (tmp_path / "photos").mkdir()
    for value, message in [("Smiling,Happy", "unknown attribute 'Happy'"), ("0.5", "this GNN takes 2")]:
        r = CliRunner().invoke(main, ["anonymize", "--dataset", str(tmp_path / "photos"), "--out", str(tmp_path / "o"),
                                      "--synth", "gnn", "--synth-param", f"weights={weights}",
                                      "--synth-param", f"attributes={value}", "--no-progress"])
        assert r.exit_code == 2, r.output
        assert message in r.output and "Traceback" not in r.output
        assert isinstance(r.exception, SystemExit)
