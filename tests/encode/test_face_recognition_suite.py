"""face_recognition's own public-API tests, unchanged, against `anonfaces.face_api`.

face_recognition's sdist (1.3.0 on PyPI) ships its tests and test images. This test
copies its package and tests into a temporary folder, replaces only
``face_recognition/api.py`` by ``from anonfaces.face_api import *`` and runs the
public-API tests there with pytest. Not in scope: the private ``_raw_*`` helpers and
the two command-line tools (``-k "not _raw and not command_line"``).

Where the sdist is (the test skips when it is absent; nothing of it is committed here)::

    pip download --no-deps --no-binary :all: face_recognition==1.3.0 -d ../shared/
    # or: export ANONFACES_FACE_RECOGNITION_SDIST=/path/to/face_recognition-1.3.0.tar.gz (or its folder)
"""

import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.conftest import REPO, SHARED_DATA

SELECTION = "not _raw and not command_line"
PUBLIC_TESTS = 14  # test_face_recognition.py's tests of the public functions


def _find_sdist() -> Path | None:
    given = os.environ.get("ANONFACES_FACE_RECOGNITION_SDIST")
    candidates = [Path(given)] if given else []
    for folder in (SHARED_DATA.parent, SHARED_DATA):
        candidates += sorted(folder.glob("face_recognition-1.3.0*"))
    return next((c for c in candidates if c.exists()), None)


def _unpack(sdist: Path, dest: Path) -> Path:
    if sdist.is_dir():
        return sdist
    with tarfile.open(sdist) as tar:
        tar.extractall(dest, filter="data")
    return next(dest.glob("face_recognition-*"))


@pytest.mark.slow
def test_face_recognitions_public_api_tests_pass(tmp_path):
    sdist = _find_sdist()
    if sdist is None:
        pytest.skip("face_recognition's sdist not found (see this file's docstring: pip download face_recognition==1.3.0)")
    source = _unpack(sdist, tmp_path / "sdist")
    work = tmp_path / "run"
    (work / "face_recognition").mkdir(parents=True)
    for name in ("__init__.py", "face_recognition_cli.py", "face_detection_cli.py"):
        (work / "face_recognition" / name).write_bytes((source / "face_recognition" / name).read_bytes())
    (work / "face_recognition" / "api.py").write_text("from anonfaces.face_api import *  # noqa: F403\n")
    tests = work / "tests"
    (tests / "test_images").mkdir(parents=True)
    (tests / "test_face_recognition.py").write_bytes((source / "tests" / "test_face_recognition.py").read_bytes())
    for image in (source / "tests" / "test_images").iterdir():
        (tests / "test_images" / image.name).write_bytes(image.read_bytes())

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(work), str(REPO)])}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", SELECTION, "tests/test_face_recognition.py"],
        check=False, cwd=work, env=env, capture_output=True, text=True, timeout=900,
    )
    tail = result.stdout[-3000:] + result.stderr[-2000:]
    passed = re.search(r"(\d+) passed", result.stdout)
    print(tail)
    assert result.returncode == 0, tail
    assert passed and int(passed.group(1)) == PUBLIC_TESTS, tail
