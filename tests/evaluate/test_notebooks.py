"""The notebooks run from top to bottom on the bundled sample (nbclient)."""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name", ["privacy_utility.ipynb", "clustering_comparison.ipynb"])
def test_notebook_executes(name, sample_encodings_path, tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("ANONFACES_NOTEBOOK_ENCODINGS", str(sample_encodings_path))
    monkeypatch.setenv("ANONFACES_NOTEBOOK_OUT", str(tmp_path))
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    # a notebook imports the library and defines none of it
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert "\ndef " not in "\n" + cell.source and "\nclass " not in "\n" + cell.source, cell.source
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
