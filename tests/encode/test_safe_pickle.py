import os
import pickle

import numpy as np
import pytest

from anonfaces.encode import Encodings
from anonfaces.errors import UnsafeFileError
from anonfaces.utils.safe_pickle import safe_load


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_data_pickles_load():
    data = {"a": [1, 2.5, "x", (None, True)], "arr": np.arange(6, dtype=np.float32).reshape(2, 3), "s": {1, 2}}
    for protocol in (2, 4, 5):
        back = safe_load(pickle.dumps(data, protocol=protocol))
        np.testing.assert_array_equal(back["arr"], data["arr"])
        assert back["a"] == data["a"] and back["s"] == data["s"]


def test_code_in_a_pickle_is_refused_and_not_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    payload = pickle.dumps([{"imagePath": "x.jpg", "loc": (1, 2, 3, 4), "encoding": _RunsCode()}])
    with pytest.raises(UnsafeFileError, match=r"(posix|os)\.system"):
        safe_load(payload)
    assert not (tmp_path / "PWNED").exists()


def test_a_class_instance_is_refused():
    import collections

    payload = pickle.dumps(collections.Counter("abc"))
    with pytest.raises(UnsafeFileError, match="collections.Counter"):
        safe_load(payload)


def test_garbage_is_a_clear_error():
    with pytest.raises(UnsafeFileError, match="could not read"):
        safe_load(b"\x80\x04not really")


def test_malicious_legacy_encodings_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "encodings.pickle"
    path.write_bytes(pickle.dumps([{"imagePath": "a/1.jpg", "loc": (0, 1, 1, 0), "encoding": _RunsCode()}]))
    with pytest.raises(UnsafeFileError):
        Encodings.from_legacy_pickle(path)
    assert not (tmp_path / "PWNED").exists()


def test_legacy_format_round_trip(tmp_path):
    # the original research's format: face_recognition's (top, right, bottom, left) boxes, float64 vectors
    rng = np.random.default_rng(0)
    records = [
        {"imagePath": str(tmp_path / "ds" / "alice" / "1.jpg"), "loc": (10, 60, 70, 5), "encoding": rng.normal(size=128)},
        {"imagePath": str(tmp_path / "ds" / "alice" / "1.jpg"), "loc": (100, 160, 170, 105), "encoding": rng.normal(size=128)},
        {"imagePath": str(tmp_path / "ds" / "bob" / "2.jpg"), "loc": (1, 2, 3, 0), "encoding": rng.normal(size=128)},
    ]
    (tmp_path / "in.pickle").write_bytes(pickle.dumps(records))
    enc = Encodings.from_legacy_pickle(tmp_path / "in.pickle", dataset_root=tmp_path / "ds")
    assert enc.paths.tolist() == ["alice/1.jpg", "alice/1.jpg", "bob/2.jpg"]
    assert enc.face_index.tolist() == [0, 1, 0]
    assert enc.identities.tolist() == ["alice", "alice", "bob"]
    np.testing.assert_array_equal(enc.boxes_ltrb[0], [5, 10, 60, 70])
    enc.to_legacy_pickle(tmp_path / "out.pickle")
    back = safe_load((tmp_path / "out.pickle").read_bytes())
    assert [r["loc"] for r in back] == [r["loc"] for r in records]
    assert [r["imagePath"] for r in back] == [r["imagePath"] for r in records]
    np.testing.assert_allclose(np.stack([r["encoding"] for r in back]), np.stack([r["encoding"] for r in records]), atol=1e-6)
