import numpy as np
import pytest

import anonfaces
from anonfaces.encode import PCAEncoder, encode_photos
from anonfaces.errors import BadInputError


def test_fit_transform_reconstruct_on_random_crops():
    rng = np.random.default_rng(0)
    # crops that live in a 5-dimensional subspace: PCA with 5 components reconstructs them
    basis = rng.normal(size=(5, 16 * 16))
    crops = (128 + 4 * rng.normal(size=(40, 5)) @ basis).clip(0, 255).round().astype(np.uint8).reshape(40, 16, 16)
    enc = PCAEncoder(n_components=5, size=16).fit(crops)
    Z = enc.embed(crops)
    assert Z.shape == (40, 5) and Z.dtype == np.float32
    assert np.allclose(Z.mean(0), 0, atol=1e-4)  # centred
    err = np.abs(enc.reconstruct(Z) - crops.astype(np.float32) / 255).max()
    assert err < 0.01  # only the rounding to uint8 is lost
    # components are orthonormal and explained variance is sorted
    G = enc.components_ @ enc.components_.T
    np.testing.assert_allclose(G, np.eye(5), atol=1e-4)
    assert np.all(np.diff(enc.explained_variance_) <= 0)


def test_not_fitted_and_bad_settings():
    with pytest.raises(BadInputError, match="not fitted"):
        PCAEncoder(size=16).embed(np.zeros((2, 16, 16), np.uint8))
    with pytest.raises(BadInputError, match="n_components"):
        PCAEncoder(n_components=0)
    with pytest.raises(BadInputError, match="at least 2"):
        PCAEncoder(size=16).fit(np.zeros((1, 16, 16), np.uint8))


def test_pca_on_real_faces_and_basis_reuse(tmp_path, sample_dir):
    import shutil

    ds = tmp_path / "ds"
    for person in ["Tiger_Woods", "Bill_Gates", "Kate_Hudson", "Hu_Jintao"]:
        shutil.copytree(sample_dir / person, ds / person)
    report = encode_photos(ds, tmp_path / "pca.npz", encoder="pca", encoder_settings={"n_components": 10}, jobs=2, progress=False)
    enc = anonfaces.load_encodings(report.encodings_path)
    assert enc.embeddings.shape[1] == 10 and enc.encoder["name"] == "pca"
    assert set(enc.encoder_state) == {"mean", "components", "explained_variance"}
    # the saved basis encodes the same photos to the same vectors
    pca = enc.make_encoder()
    assert pca.is_fitted
    again = encode_photos(ds, tmp_path / "again.npz", encoder=pca, jobs=1, progress=False)
    np.testing.assert_allclose(anonfaces.load_encodings(again.encodings_path).embeddings, enc.embeddings, atol=1e-4)
    # eigenfaces carry identity: nearest neighbour is the same person more often than chance (1/4)
    X = enc.embeddings
    d = np.linalg.norm(X[:, None] - X[None], axis=2)
    np.fill_diagonal(d, np.inf)
    hit = (enc.identities[d.argmin(1)] == enc.identities).mean()
    assert hit > 0.4
