"""The small records of the pipeline: Mapping, the cache key, options, the layout, the shared join."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from anonfaces.cluster import Clustering, people_per_cluster, unit_names
from anonfaces.errors import BadInputError, FileFormatError
from anonfaces.pipeline import (
    AnonymizeOptions,
    ClusterOptions,
    EvaluateOptions,
    RunLayout,
    check_k,
    check_ks,
)
from anonfaces.pipeline.cache import cached, content_key, files_digest
from anonfaces.pipeline.options import as_record
from anonfaces.synthesize.mapping import NOT_CLUSTERED, Mapping


def test_mapping_round_trip_is_sorted_by_photo_and_face(tmp_path):
    m = Mapping(np.array(["b/2.jpg", "a/1.jpg", "b/2.jpg"]), np.array([1, 0, 0]), np.array([4, 3, 4]),
                np.array([[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]], float))
    assert m.paths.tolist() == ["a/1.jpg", "b/2.jpg", "b/2.jpg"] and m.face_index.tolist() == [0, 0, 1]
    path = m.save(tmp_path / "mapping.csv")
    assert path.read_text().splitlines()[0] == "path,face,cluster,left,top,right,bottom,output"
    back = Mapping.load(path)
    assert back.outputs.tolist() == m.paths.tolist()  # no output names given: the dataset's own
    for name in ("paths", "face_index", "clusters", "boxes_ltrb", "outputs"):
        assert np.array_equal(getattr(back, name), getattr(m, name)), name
    assert back.n_clusters == 2
    named = Mapping(m.paths, m.face_index, m.clusters, m.boxes_ltrb, ["x.jpg", "y.jpg", "y.jpg"])
    assert Mapping.load(named.save(tmp_path / "named.csv")).outputs.tolist() == ["x.jpg", "y.jpg", "y.jpg"]
    assert Mapping(np.array(["x"]), np.array([0]), np.array([NOT_CLUSTERED]), np.zeros((1, 4))).n_clusters == 0
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(FileFormatError, match="not a mapping.csv"):
        Mapping.load(tmp_path / "bad.csv")


def test_the_join_of_clusters_to_encodings():
    c = Clustering(np.array(["a", "a", "b"]), np.array([0, 1, 0]), np.array([0, 1, 1]), np.array(["p", "q", "q"]),
                   np.array(["", "", ""]), {})
    joined = c.aligned_to(np.array(["b", "a", "a"]), np.array([0, 1, 0]))
    assert joined.labels.tolist() == [1, 1, 0]
    assert joined.units.tolist() == ["b#0", "a#1", "a#0"] == unit_names(["b", "a", "a"], [0, 1, 0]).tolist()
    with pytest.raises(BadInputError, match="no row for face"):
        c.aligned_to(np.array(["c"]), np.array([0]))
    assert people_per_cluster([0, 0, 1, 1, 1], ["x", "x", "x", "y", "y"]) == {0: 1, 1: 2}


def test_content_key_follows_bytes_not_order_or_times(tmp_path):
    for name, data in (("a/1.jpg", b"one"), ("b/2.jpg", b"two")):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(data)
    d = files_digest(tmp_path, ["a/1.jpg", "b/2.jpg"])
    assert files_digest(tmp_path, ["b/2.jpg", "a/1.jpg"]) == d
    os.utime(tmp_path / "a/1.jpg", (1, 1))
    assert files_digest(tmp_path, ["a/1.jpg", "b/2.jpg"]) == d
    (tmp_path / "a/1.jpg").write_bytes(b"ONE")
    assert files_digest(tmp_path, ["a/1.jpg", "b/2.jpg"]) != d
    assert content_key({"k": 2}, "x") == content_key({"k": 2}, "x") != content_key({"k": 3}, "x")


def test_cached_makes_once_per_key(tmp_path):
    made = []

    def make(p):
        made.append(p)
        p.write_text("v")
        return "made"

    entry = tmp_path / "entry.txt"
    assert cached(entry, "k1", make, lambda p: "loaded") == "made"
    assert cached(entry, "k1", make, lambda p: "loaded") == "loaded"
    assert cached(entry, "k2", make, lambda p: "loaded") == "made"
    assert len(made) == 2


def test_options_are_checked_and_recorded_verbatim():
    assert check_k("3") == 3 and check_ks("5,2,5") == (2, 5)
    for bad in (1, 0, "x", True, 2.5):
        with pytest.raises(BadInputError, match="k"):
            check_k(bad)
    with pytest.raises(BadInputError, match="k values"):
        check_ks("1,2")
    opts = AnonymizeOptions(k=3, synth="pixel", blend={"color": "mean"})
    assert opts.blend == {"shape": "cluster", "region": "head", "blend": "feather", "color": "mean", "feather": 0.06,
                          "forehead": None, "pose": 0, "place": "anchors", "detail": 0.0, "ring": 1.2}
    assert (opts.reroll_steps, opts.soften, opts.check_found) == ("every", (0.03, 0.06, 0.1), False)
    for bad in ({"reroll_steps": "all"}, {"soften": "0.1,0.05"}, {"check_found": "yes"}, {"blend": {"pose": 9}},
                {"blend": {"detail": 2}}, {"blend": {"ring": 1.0}}, {"blend": {"place": "eyes"}}):
        with pytest.raises(BadInputError):
            AnonymizeOptions(**bad)
    assert opts.privacy_check and opts.privacy_margin == 0.05 and opts.on_leak == "blur" and opts.output == "photos"
    record = json.loads(json.dumps(as_record(opts)))
    assert record["k"] == 3 and record["synth"] == "pixel" and record["blend"]["color"] == "mean"
    assert AnonymizeOptions(method="blur", k=1).k is None  # baselines have no k
    with pytest.raises(BadInputError, match="blurr"):
        AnonymizeOptions(method="blurr")
    with pytest.raises(BadInputError, match="color"):
        AnonymizeOptions(blend={"color": "sepia"})
    with pytest.raises(BadInputError, match="shape"):
        AnonymizeOptions.from_flat(shape="round")
    with pytest.raises(BadInputError, match="on_leak"):
        AnonymizeOptions(on_leak="pixelate")
    with pytest.raises(BadInputError, match="surrogates"):
        AnonymizeOptions(method="blur", output="surrogates")
    assert AnonymizeOptions.from_flat(shape="member", region="inner", color="lab").blend_settings().weight == 0.0
    with pytest.raises(BadInputError, match="fixed-kmeans"):
        ClusterOptions(algo="kmeans")
    with pytest.raises(BadInputError, match="eigenfaces"):
        EvaluateOptions(recognizers="dlib,eigenface")
    assert EvaluateOptions(recognizers="dlib, lbp,dlib").recognizers == ("dlib", "lbp")


def test_layout_names_every_output(tmp_path):
    layout = RunLayout.for_out(tmp_path / "OUT")
    assert layout.private == tmp_path / "OUT.private"  # never inside OUT
    assert layout.output_names(["a/1.jpg"]) == {"a/1.jpg": "a/1.jpg"}  # names="keep"
    assert layout.mapping.parent == layout.run_record.parent == layout.privacy.parent == layout.files.parent \
        == layout.encodings.parent == layout.surrogates.parent == layout.private
    assert layout.shared_surrogates.parent == layout.metrics.parent == layout.report.parent == layout.public
    hashed = RunLayout(tmp_path / "OUT", tmp_path / "P", names="hash", key=bytes(32))
    name = hashed.output_names(["Ariel_Sharon/Ariel_Sharon_0001.jpg"])["Ariel_Sharon/Ariel_Sharon_0001.jpg"]
    assert "Sharon" not in name and "/" not in name
    assert layout.run("ksame-morph", 5) == layout.private / "runs" / "ksame-morph" / "k5"
    assert layout.run("blur", None).name == "all"


def test_the_cache_key_follows_the_model_files_bytes(tmp_path):
    """A checkpoint replaced under the same name changes the key (a sweep never scores photos of other weights)."""
    from anonfaces.pipeline.cache import model_files_digest
    from anonfaces.pipeline.options import AnonymizeOptions
    from anonfaces.synthesize.deid import shipped_weights

    weights = tmp_path / "g.npz"
    weights.write_bytes(shipped_weights("d2gan").read_bytes())
    opts = AnonymizeOptions(method="d2gan", k=None, method_params={"weights": str(weights)})
    before = model_files_digest(opts)
    assert model_files_digest(opts) == before
    weights.write_bytes(shipped_weights("inversion").read_bytes())  # retrained / replaced under the same name
    assert model_files_digest(opts) != before
    shipped = model_files_digest(AnonymizeOptions(method="d2gan", k=None))
    assert shipped == before != model_files_digest(opts)  # the shipped file by default, the given one's bytes else
    assert model_files_digest(AnonymizeOptions()) == model_files_digest(AnonymizeOptions(k=10))  # morph: no model file


def test_variants_default_to_eight_for_ksame_morph_only():
    from anonfaces.pipeline.options import DEFAULT_VARIANTS, AnonymizeOptions

    assert AnonymizeOptions().variants == DEFAULT_VARIANTS == 8
    assert AnonymizeOptions(variants=0).variants == 0
    assert AnonymizeOptions(method="blur", k=None).variants == 0
    assert AnonymizeOptions(synth="pixel").variants == 0  # not measured there: one surrogate per cluster
