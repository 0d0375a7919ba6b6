"""The library entry point, clusters.csv and the command line (in-process and one real run)."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from anonfaces.cluster import Clustering, cluster_encodings, read_clusters
from anonfaces.cluster.metrics import distinct_identities
from anonfaces.errors import BadInputError, FileFormatError

REPO = Path(__file__).resolve().parents[2]


def _people(n_people=12, per_person=4, d=16, seed=0):
    rng = np.random.RandomState(seed)
    centres = rng.randn(n_people, d)
    X = np.repeat(centres, per_person, axis=0) + rng.randn(n_people * per_person, d) * 0.01
    ids = np.repeat([f"person{i:02d}" for i in range(n_people)], per_person)
    return X.astype(np.float32), ids


class FakeEncodings:
    """Duck-typed stand-in for anonfaces.encode.Encodings."""

    def __init__(self, X, ids):
        self.embeddings = X
        self.identities = ids
        self.paths = np.array([f"{p}/{i}.jpg" for i, p in enumerate(ids)])
        self.face_index = np.zeros(len(X), np.int32)


@pytest.mark.parametrize("algo", ["fixed-kmeans", "hdbscan", "aroc", "mdav"])
def test_identity_unit_with_known_people(algo):
    X, ids = _people()
    out = cluster_encodings(FakeEncodings(X, ids), algo=algo, k=3, random_state=0)
    assert out.labels.min() >= 0
    assert distinct_identities(out.labels, ids).min() >= 3
    for person in np.unique(ids):
        assert np.unique(out.labels[ids == person]).size == 1
    assert out.info["n_pseudo_identities"] == 0


def test_pseudo_identities_when_labels_are_missing():
    X, ids = _people(n_people=10, per_person=5)
    out = cluster_encodings(X, algo="fixed-kmeans", k=3, pseudo_params={"threshold": 0.2}, random_state=0)
    # tight blobs: each person becomes one pseudo-identity
    assert out.info["n_pseudo_identities"] == 10
    assert distinct_identities(out.labels, ids).min() >= 3
    for person in np.unique(ids):
        assert np.unique(out.labels[ids == person]).size == 1


def test_partly_known_identities():
    X, ids = _people(n_people=10, per_person=3)
    partial = ids.copy()
    partial[ids >= "person05"] = ""
    out = cluster_encodings(FakeEncodings(X, partial), algo="oka", k=4, random_state=0)
    assert out.info["n_pseudo_identities"] == 5
    assert distinct_identities(out.labels, ids).min() >= 4
    assert (out.identities == partial).all()


def test_photo_unit_warns_and_counts_photos():
    X, ids = _people(n_people=3, per_person=10)
    with pytest.warns(UserWarning, match="unit='photo'"):
        out = cluster_encodings(FakeEncodings(X, ids), algo="fixed-kmeans", k=5, unit="photo", random_state=0)
    assert np.bincount(out.labels).min() >= 5
    assert distinct_identities(out.labels, ids).min() == 1  # why the photo unit is unsafe


def test_outliers_none_makes_noise_its_own_cluster():
    X, _ids = _people(n_people=6, per_person=1)
    X[5] += 100
    out = cluster_encodings(X, algo="dbscan", k=2, outliers="none", params={"eps": 0.5}, random_state=0)
    assert out.labels.min() >= 0  # no -1 in the output, even here ...
    assert np.bincount(out.labels).min() < 2  # ... but clusters below k are possible with "none"


def test_cluster_encodings_rejects_bad_input():
    X, ids = _people()
    with pytest.raises(BadInputError, match="unit='people'"):
        cluster_encodings(X, unit="people")
    with pytest.raises(BadInputError, match=r"identities has shape \(3,\)"):
        cluster_encodings(X, identities=["a", "b", "c"])
    with pytest.raises(BadInputError, match="n_identities=12 must be >= k=20"):
        cluster_encodings(FakeEncodings(X, ids), k=20)


def test_clusters_csv_round_trip(tmp_path):
    X, ids = _people()
    out = cluster_encodings(FakeEncodings(X, ids), algo="random", k=3, random_state=1)
    path = tmp_path / "clusters.csv"
    out.save(path)
    back = Clustering.load(path)
    assert back.paths.tolist() == out.paths.tolist()
    assert back.labels.tolist() == out.labels.tolist()
    assert back.identities.tolist() == out.identities.tolist()
    assert back.info["algorithm"] == "random" and back.info["k"] == 3
    assert path.read_text().splitlines()[0] == "path,face,cluster,identity,unit"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp files left


def test_read_clusters_refuses_bad_files(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(FileFormatError, match="not a clusters.csv"):
        read_clusters(bad)
    neg = tmp_path / "neg.csv"
    neg.write_text("path,face,cluster\nx.jpg,0,-1\n")
    with pytest.raises(FileFormatError, match="cluster must be >= 0"):
        read_clusters(neg)


def _real_encodings_file(tmp_path):
    from PIL import Image

    from anonfaces.encode.encodings import Encodings

    X, ids = _people(n_people=8, per_person=3, d=128)
    n = len(X)
    paths = []
    for i, person in enumerate(ids):
        rel = f"{person}/{person}_{i:04d}.jpg"
        (tmp_path / "data" / person).mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (64, 64), (i * 10 % 255, 80, 160)).save(tmp_path / "data" / rel)
        paths.append(rel)
    enc = Encodings(
        embeddings=X,
        paths=np.array(paths),
        face_index=np.zeros(n, np.int32),
        boxes_ltrb=np.tile(np.array([8, 8, 56, 56], np.float32), (n, 1)),
        scores=np.ones(n, np.float32),
        landmarks68=np.zeros((n, 68, 2), np.float32),
        landmarks5=np.zeros((n, 5, 2), np.float32),
        identities=ids,
        image_sizes=np.tile(np.array([64, 64], np.int32), (n, 1)),
        meta={"dataset": str(tmp_path / "data")},
    )
    return enc.save(tmp_path / "encodings.npz"), ids


def test_cli_in_process(tmp_path):
    from anonfaces.cli import main

    enc_path, ids = _real_encodings_file(tmp_path)
    out = tmp_path / "clusters.csv"
    result = CliRunner().invoke(
        main,
        ["cluster", "--encodings", str(enc_path), "--algo", "hdbscan", "--k", "3", "--param", "n_components=none",
         "--out", str(out), "--montage", str(tmp_path / "montage")],
    )
    assert result.exit_code == 0, result.output
    assert "algorithm" in result.output and "silhouette" in result.output and "hdbscan" in result.output
    back = read_clusters(out)
    assert len(back) == 24 and back.labels.min() >= 0
    assert distinct_identities(back.labels, ids).min() >= 3
    montages = sorted((tmp_path / "montage").glob("cluster_*.jpg"))
    assert len(montages) == back.n_clusters


def test_cli_errors_exit_2(tmp_path):
    from anonfaces.cli import main

    enc_path, _ = _real_encodings_file(tmp_path)
    runner = CliRunner()
    result = runner.invoke(main, ["cluster", "--encodings", str(enc_path), "--k", "50", "--out", str(tmp_path / "c.csv")])
    assert result.exit_code == 2 and "n_identities=8 must be >= k=50" in result.output
    result = runner.invoke(main, ["cluster", "--encodings", str(enc_path), "--param", "bogus=1", "--out", str(tmp_path / "c.csv")])
    assert result.exit_code == 2 and "unknown param(s) bogus" in result.output
    result = runner.invoke(main, ["cluster", "--encodings", str(tmp_path / "missing.npz"), "--out", str(tmp_path / "c.csv")])
    assert result.exit_code == 2 and "not found" in result.output


def test_cli_labels_file_and_photo_unit(tmp_path):
    from anonfaces.cli import main

    enc_path, _ids = _real_encodings_file(tmp_path)
    labels = tmp_path / "labels.csv"
    labels.write_text("path,identity\n" + "".join(f"{p},someone\n" for p in read_paths(enc_path)[:3]))
    result = CliRunner().invoke(
        main, ["cluster", "--encodings", str(enc_path), "--unit", "photo", "--k", "4", "--out", str(tmp_path / "c.csv")]
    )
    assert result.exit_code == 0, result.output
    assert "Warning: unit='photo'" in result.output
    assert "distinct people per cluster (known identities): min " in result.output
    result = CliRunner().invoke(
        main, ["cluster", "--encodings", str(enc_path), "--labels", str(labels), "--k", "2", "--out", str(tmp_path / "d.csv")]
    )
    assert result.exit_code == 0, result.output
    assert "pseudo-identities formed: " in result.output


def read_paths(enc_path):
    import anonfaces

    return anonfaces.load_encodings(enc_path).paths.tolist()


def test_script_end_to_end(tmp_path):
    enc_path, _ = _real_encodings_file(tmp_path)
    out = tmp_path / "clusters.csv"
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "cluster_faces.py"), "--encodings", str(enc_path), "--algo", "mdav",
         "--k", "3", "--out", str(out)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert read_clusters(out).labels.min() >= 0
