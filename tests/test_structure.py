"""Data flows one way: no package of anonfaces imports a later one, not even lazily inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "anonfaces"

#: From the foundations to the commands; a package may import itself and anything before it.
ORDER = [
    {"errors", "registry", "_version", "utils"},
    {"detect"},
    {"encode"},
    {"face_api"},  # face_recognition's API over detect + encode
    {"cluster"},
    {"synthesize"},
    {"video"},
    {"evaluate"},
    {"release"},
    {"pipeline"},
    {"cli"},
]
RANK = {name: rank for rank, names in enumerate(ORDER) for name in names}


def _imports(path: Path):
    """(line, anonfaces package) for every absolute ``anonfaces.<package>`` import in ``path``, lazy ones included."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "anonfaces" and len(parts) > 1:
                yield node.lineno, parts[1]


def test_every_package_is_placed_in_the_order():
    packages = {p.name.removesuffix(".py") for p in PACKAGE.iterdir() if (p.is_dir() and (p / "__init__.py").is_file())
                or (p.suffix == ".py" and p.name != "__init__.py")}
    assert packages == set(RANK), "place the new package in ORDER (tests/test_structure.py)"


def test_no_package_imports_a_later_one():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        if rel == Path("__init__.py"):
            continue  # the package's front door re-exports from the stages
        source = rel.parts[0].removesuffix(".py")
        for line, target in _imports(path):
            if RANK[target] > RANK[source]:
                wrong.append(f"anonfaces/{rel}:{line} ({source}) imports anonfaces.{target}")
    assert not wrong, "a stage imports a later one:\n" + "\n".join(wrong)


def test_the_check_sees_lazy_imports(tmp_path):
    """The rule must fail on a lazy upward import (the one this test was written after: encode -> video)."""
    sample = tmp_path / "m.py"
    sample.write_text("def f():\n    from anonfaces.video.encode import encode_videos\n    return encode_videos\n")
    assert list(_imports(sample)) == [(2, "video")]
    assert RANK["video"] > RANK["encode"]
