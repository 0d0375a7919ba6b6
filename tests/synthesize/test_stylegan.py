"""StyleGAN generator: safe pickle round trip, latent files and averaging, projection, malicious pickles."""

from __future__ import annotations

import io
import os
import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is the optional extra anonfaces[stylegan]")

from anonfaces.errors import BadInputError, FileFormatError, UnsafeFileError
from anonfaces.synthesize.stylegan import (
    average_latents,
    latent_path_for,
    load_generator,
    load_latent,
    load_latents,
    privacy_adjusted_average,
    read_network_pickle,
    write_network_pickle,
)
from anonfaces.synthesize.stylegan.networks import Generator
from anonfaces.synthesize.stylegan.pickle import PersistentObject

W_DIM = 32


def small_generator(seed: int = 0, resolution: int = 32, **synthesis) -> Generator:
    """A random-weight generator of NVIDIA's config shape (skip architecture), small enough for a CPU test."""
    torch.manual_seed(seed)
    synthesis = {"channel_base": 1024, "channel_max": 32, **synthesis}
    G = Generator(z_dim=W_DIM, c_dim=0, w_dim=W_DIM, img_resolution=resolution, img_channels=3,
                  mapping_kwargs={"num_layers": 2}, synthesis_kwargs=synthesis)
    with torch.no_grad():
        for name, p in G.named_parameters():  # non-trivial noise strengths and biases, moderate output range
            if name.endswith(("noise_strength", ".bias")):
                p.add_(torch.randn_like(p) * 0.1)
            if ".torgb.weight" in name:
                p.mul_(0.2)
        G.mapping.w_avg.copy_(G.mapping(torch.randn(500, W_DIM))[:, 0].mean(0))
    return G.eval().requires_grad_(False)


@pytest.fixture(scope="module")
def G():
    return small_generator()


@pytest.fixture(scope="module")
def pkl(G, tmp_path_factory):
    path = tmp_path_factory.mktemp("stylegan") / "network-snapshot.pkl"
    D = PersistentObject("Discriminator", {"_parameters": {"w": np.ones((4, 4), np.float32)}, "_buffers": {},
                                           "_modules": {}, "_init_kwargs": {"c_dim": 0}})
    write_network_pickle(path, G_ema=G, G=small_generator(seed=1), D=D,
                         training_set_kwargs={"path": "ffhq.zip", "resolution": 32, "xflip": False})
    return path


# ----------------------------------------------------------------------------- round trip


def test_pickle_has_the_official_structure(pkl, pickle_globals):
    names = pickle_globals(pkl)
    assert ("torch_utils.persistence", "_reconstruct_persistent_obj") in names
    assert ("torch._utils", "_rebuild_tensor_v2") in names
    assert ("torch._utils", "_rebuild_parameter") in names
    assert ("torch.storage", "_load_from_bytes") in names
    assert ("dnnlib.util", "EasyDict") in names
    data = read_network_pickle(pkl)
    assert set(data) == {"G", "D", "G_ema", "augment_pipe", "training_set_kwargs"}
    assert data["G_ema"].class_name == "Generator" and data["D"].class_name == "Discriminator"
    assert data["augment_pipe"] is None and data["training_set_kwargs"]["resolution"] == 32
    assert data["G_ema"].init_kwargs["synthesis_kwargs"]["channel_base"] == 1024


@pytest.mark.filterwarnings("ignore:TypedStorage is deprecated")
def test_storage_bytes_are_what_torch_itself_reads():
    # our writer's tensor storages, read by torch's own (unrestricted) loader: trusted, self-written bytes
    from anonfaces.synthesize.stylegan.pickle.writer import _legacy_storage_bytes

    arr = np.arange(12, dtype=np.float32) * 0.5
    storage = torch.storage._load_from_bytes(_legacy_storage_bytes(arr))
    assert np.array_equal(np.asarray(storage.tolist(), dtype=np.float32), arr)


def test_round_trip_reproduces_the_original_module(G, pkl):
    loaded = load_generator(pkl)
    assert (loaded.z_dim, loaded.w_dim, loaded.num_ws, loaded.img_resolution) == (W_DIM, W_DIM, 8, 32)
    z = torch.from_numpy(np.random.RandomState(0).standard_normal((3, W_DIM)).astype(np.float32))
    ws = loaded.mapping(z, truncation_psi=1.0)
    assert ws.shape == (3, loaded.num_ws, W_DIM)
    img = loaded.synthesis(ws, noise_mode="const")
    assert img.shape == (3, 3, 32, 32) and torch.isfinite(img).all()
    assert 0.05 < float(img.std()) and float(img.abs().max()) < 4  # "about -1..1" for this scaled random G
    assert torch.allclose(img, G.synthesis(G.mapping(z), noise_mode="const"), atol=1e-6)
    assert torch.allclose(loaded.mapping(z, truncation_psi=0.5), G.mapping(z, truncation_psi=0.5), atol=1e-6)
    # the pickle's G (not G_ema) is another network and gives other images
    other = load_generator(pkl, key="G")
    assert not torch.allclose(other.synthesis(ws), img, atol=1e-3)


def test_truncation_pulls_toward_w_avg(G):
    z = torch.randn(4, W_DIM)
    w1, w0 = G.mapping(z), G.mapping(z, truncation_psi=0.0)
    assert torch.allclose(w0, G.w_avg.expand_as(w0), atol=1e-6)
    assert torch.allclose(G.mapping(z, truncation_psi=0.5), (w1 + w0) / 2, atol=1e-5)


@pytest.mark.parametrize("architecture", ["orig", "resnet"])
def test_other_architectures_round_trip(tmp_path, architecture):
    G = small_generator(architecture=architecture, conv_clamp=256)
    write_network_pickle(tmp_path / "g.pkl", G_ema=G)
    loaded = load_generator(tmp_path / "g.pkl")
    ws = G.mapping(torch.randn(2, W_DIM))
    assert torch.allclose(loaded.synthesis(ws), G.synthesis(ws), atol=1e-6)


def test_top_level_load_generator(pkl):
    import anonfaces

    assert anonfaces.load_generator(pkl).num_ws == 8


# ----------------------------------------------------------------------------- refusals


class _System:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_malicious_pickle_is_refused_without_running(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "evil.pkl"
    bad.write_bytes(pickle.dumps({"G_ema": _System()}))
    with pytest.raises(UnsafeFileError, match="os.system|posix.system"):
        load_generator(bad)
    assert not (tmp_path / "PWNED").exists()


def test_code_in_module_src_is_never_executed(G, tmp_path, monkeypatch):
    # NVIDIA's own loader would exec module_src; ours must not
    from anonfaces.synthesize.stylegan.pickle import writer

    monkeypatch.setattr(writer, "MODULE_SRC", "open('PWNED', 'w').write('x')\n")
    monkeypatch.chdir(tmp_path)
    write_network_pickle(tmp_path / "g.pkl", G_ema=G)
    assert b"PWNED" in (tmp_path / "g.pkl").read_bytes()
    assert load_generator(tmp_path / "g.pkl").num_ws == G.num_ws
    assert not (tmp_path / "PWNED").exists()


def test_malicious_storage_bytes_are_refused():
    # a well-formed outer pickle whose tensor storage bytes hide a call to os.system
    from anonfaces.synthesize.stylegan.pickle.writer import _GlobalRef, _Writer

    class Storage:
        def __reduce__(self):
            return _GlobalRef("torch.storage", "_load_from_bytes"), (pickle.dumps(_System(), protocol=2),)

    buf = io.BytesIO()
    _Writer(buf, protocol=4).dump({"G_ema": Storage()})
    with pytest.raises(UnsafeFileError, match="system"):
        read_network_pickle(buf.getvalue())


def test_wrong_shapes_and_settings_are_refused(G, tmp_path):
    from anonfaces.synthesize.stylegan.pickle import record_from_module

    rec = record_from_module(G)
    rec.state["_modules"]["mapping"].state["_modules"]["fc0"].state["_parameters"]["weight"] = np.zeros((3, 3), np.float32)
    write_network_pickle(tmp_path / "shape.pkl", G_ema=rec)
    with pytest.raises(FileFormatError, match="mapping.fc0.weight has shape"):
        load_generator(tmp_path / "shape.pkl")
    rec = record_from_module(G)
    rec.state["_init_kwargs"]["synthesis_kwargs"]["architecture"] = "exotic"
    write_network_pickle(tmp_path / "arch.pkl", G_ema=rec)
    with pytest.raises(FileFormatError, match="architecture"):
        load_generator(tmp_path / "arch.pkl")
    rec = record_from_module(G)
    rec.state["_init_kwargs"]["img_resolution"] = 64  # the stored weights are for 32
    write_network_pickle(tmp_path / "res.pkl", G_ema=rec)
    with pytest.raises(FileFormatError):
        load_generator(tmp_path / "res.pkl")
    rec = record_from_module(G)
    rec.state["_init_kwargs"]["synthesis_kwargs"]["use_noise"] = 1  # a number where a boolean belongs
    write_network_pickle(tmp_path / "noise.pkl", G_ema=rec)
    with pytest.raises(FileFormatError, match="generator setting synthesis.use_noise=1 must be true or false"):
        load_generator(tmp_path / "noise.pkl")


def test_plain_data_pickle_is_not_a_network(tmp_path):
    (tmp_path / "list.pkl").write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(FileFormatError, match="not the dict of networks"):
        load_generator(tmp_path / "list.pkl")


# ----------------------------------------------------------------------------- latents


def test_latent_files_original_naming(tmp_path):
    w = np.arange(W_DIM, dtype=np.float32)
    wplus = np.tile(w, (8, 1)) + np.arange(8, dtype=np.float32)[:, None]
    np.save(tmp_path / "Aaron_Eckhart_0001_01.npy", wplus[None])  # [1, L, C] as projectors save it
    np.save(tmp_path / "other.npy", w[None])
    assert latent_path_for("photos/Aaron_Eckhart_0001.jpg", tmp_path).name == "Aaron_Eckhart_0001_01.npy"
    assert latent_path_for("x/other.png", tmp_path).name == "other.npy"
    assert latent_path_for("x/missing.jpg", tmp_path) is None
    assert load_latent(tmp_path / "Aaron_Eckhart_0001_01.npy").shape == (8, W_DIM)
    assert load_latent(tmp_path / "other.npy").shape == (W_DIM,)
    both = load_latents([tmp_path / "Aaron_Eckhart_0001_01.npy", tmp_path / "other.npy"], w_dim=W_DIM, num_ws=8)
    assert both.shape == (2, 8, W_DIM) and np.array_equal(both[1, 5], w)
    with pytest.raises(FileFormatError, match="w_dim"):
        load_latent(tmp_path / "other.npy", w_dim=512)


def test_averaging_options_by_hand():
    lat = np.array([[1.0, 2.0], [3.0, 6.0]], dtype=np.float32)
    w_avg = np.array([1.0, 0.0], dtype=np.float32)
    assert np.allclose(average_latents(lat), [2.0, 4.0])
    assert np.allclose(average_latents(lat, alpha=0.5), [1.0, 2.0])  # toward zero (the original)
    assert np.allclose(average_latents(lat, alpha=0.5, toward="w_avg", w_avg=w_avg), [1.5, 2.0])
    assert np.allclose(average_latents(lat, alpha=0.0, toward="w_avg", w_avg=w_avg), w_avg)
    assert np.allclose(average_latents(lat, weights=[3, 1]), [1.5, 3.0])
    r1 = average_latents(lat, weights="random", random_state=7)
    assert np.allclose(r1, average_latents(lat, weights="random", random_state=7))
    assert not np.allclose(r1, average_latents(lat, weights="random", random_state=8))
    # a random convex combination lies on the segment between the two members
    t = (r1[0] - 1.0) / 2.0
    assert 0 < t < 1 and np.allclose(r1, lat[0] + t * (lat[1] - lat[0]))
    wplus = np.stack([np.tile(lat[0], (3, 1)), np.tile(lat[1], (3, 1))])
    assert average_latents(wplus).shape == (3, 2)
    with pytest.raises(BadInputError):
        average_latents(lat, toward="w_avg")
    with pytest.raises(BadInputError):
        average_latents(lat, weights=[1.0, -1.0])


def test_privacy_adjusted_loop_shrinks_alpha_until_rate_is_low_enough():
    lat = np.array([[2.0, 0.0], [4.0, 0.0]], dtype=np.float32)
    calls = []

    def rate(latent):  # a toy re-identification: everyone matched while the latent is far from 0
        calls.append(float(latent[0]))
        return 1.0 if latent[0] > 1.0 else 0.2

    res = privacy_adjusted_average(lat, k=5, reidentification_rate=rate, alpha=1.0, shrink=0.5)
    assert res.satisfied and res.rate <= 1 / 5
    assert res.alpha == 0.25 and np.allclose(res.latent, [0.75, 0.0])
    assert [a for a, _ in res.history] == [1.0, 0.5, 0.25] and calls == [3.0, 1.5, 0.75]
    never = privacy_adjusted_average(lat, k=5, reidentification_rate=lambda _: 1.0, shrink=0.5, min_alpha=0.2)
    assert not never.satisfied and never.alpha == 0.25


# ----------------------------------------------------------------------------- projection


@pytest.fixture(scope="module")
def aligned_lfw_face(lfw_dir):
    from PIL import Image

    from anonfaces.detect import align_face, detect_faces

    with Image.open(lfw_dir / "Aaron_Eckhart" / "Aaron_Eckhart_0001.jpg") as im:
        image = np.asarray(im.convert("RGB"))
    faces = detect_faces(image, upsample=0)
    assert faces, "dlib found no face in Aaron_Eckhart_0001.jpg"
    return align_face(image, faces[0].landmarks68, size=128)


@pytest.mark.lfw
@pytest.mark.slow
def test_projection_lowers_reconstruction_error(G, aligned_lfw_face):
    from anonfaces.synthesize.stylegan.projector import project
    from anonfaces.synthesize.stylegan.synthesizer import to_generator_frame

    target, mask = to_generator_frame(aligned_lfw_face.image, aligned_lfw_face.landmarks68, G.img_resolution)
    assert mask.mean() > 0.5
    res = project(G, target, num_steps=40, space="w+", mask=mask, random_state=0, progress=False)
    assert res.latent.shape == (G.num_ws, W_DIM) and res.image.shape == (32, 32, 3)
    assert res.losses[-1] < 0.6 * res.losses[0], res.losses[[0, -1]]
    # the returned image is the render of the returned latent
    ws = torch.from_numpy(res.latent)[None]
    again = ((G.synthesis(ws).clamp(-1, 1) + 1) * 127.5).round()[0].permute(1, 2, 0).numpy()
    assert np.abs(again - res.image).max() <= 1


@pytest.mark.lfw
@pytest.mark.slow
def test_stylegan_synthesizer_on_a_cluster(G, aligned_lfw_face, tmp_path):
    from anonfaces.synthesize.stylegan import StyleGANSynthesizer

    face, lm = aligned_lfw_face.image, aligned_lfw_face.landmarks68
    faces = np.stack([face, face[:, ::-1].copy()])
    lms = np.stack([lm, lm])
    syn = StyleGANSynthesizer(generator=G, num_steps=10, landmarks="mean", cache_dir=tmp_path, random_state=0,
                              progress=False)
    out = syn.synthesize(faces, lms)
    assert out.image.shape == (128, 128, 3) and out.image.dtype == np.uint8
    assert out.landmarks.shape == (68, 2) and np.allclose(out.landmarks, lm, atol=1e-4)
    assert len(list(tmp_path.glob("*.npy"))) == 2  # one cached projection per member
    with pytest.raises(BadInputError, match="landmarks must have shape"):
        syn.synthesize(faces, lms[:1])
