"""One reader for both attribute-file formats (CelebA's list and CSV), used by evaluation and GNN training."""

import numpy as np
import pytest

from anonfaces.errors import BadInputError, FileFormatError
from anonfaces.evaluate.attributes import read_attributes
from anonfaces.utils.attributes import read_attribute_file, row_for


def test_celeba_and_csv_give_the_same_table(tmp_path):
    celeba = tmp_path / "list_attr.txt"
    celeba.write_text("2\nMale Smiling\n000001.jpg  1 -1\n000002.jpg -1  1\n")
    table_csv = tmp_path / "attr.csv"
    table_csv.write_text("path,Male,Smiling\n000001.jpg,1,0\n000002.jpg,0,1\n")
    a, b = read_attribute_file(celeba), read_attribute_file(table_csv)
    assert list(a.columns) == list(b.columns) == ["Male", "Smiling"]
    assert np.array_equal(a.to_numpy(), b.to_numpy()) and list(a.index) == list(b.index)
    assert read_attributes(celeba).equals(read_attributes(table_csv))  # the evaluation's boolean view
    assert read_attributes(celeba).loc["000001.jpg", "Male"] and not read_attributes(celeba).loc["000001.jpg", "Smiling"]


def test_soft_values_are_clipped_and_rows_found_by_path_or_name(tmp_path):
    f = tmp_path / "attr.csv"
    f.write_text("path,Smiling\nAnna/a.jpg,0.25\nBo/b.jpg,-1\n")
    t = read_attribute_file(f)
    assert t.loc["Anna/a.jpg", "Smiling"] == pytest.approx(0.25) and t.loc["Bo/b.jpg", "Smiling"] == 0
    assert row_for(t, "Anna/a.jpg") == "Anna/a.jpg" and row_for(t, "Cy/c.jpg") is None
    celeba = tmp_path / "list.txt"
    celeba.write_text("1\nSmiling\n000007.jpg 1\n")
    assert row_for(read_attribute_file(celeba), "4421/000007.jpg") == "000007.jpg"  # CelebA rows are keyed by file name


@pytest.mark.parametrize("text, message", [
    ("2\nMale Smiling\n000001.jpg  1\n", "1 values for 2"),
    ("path,Male\na.jpg,yes\n", "must be numbers"),
    ("1\n", "count and header"),
])
def test_bad_files_are_refused_with_the_line(tmp_path, text, message):
    f = tmp_path / "bad.txt"
    f.write_text(text)
    with pytest.raises(FileFormatError, match=message):
        read_attribute_file(f)


def test_missing_file(tmp_path):
    with pytest.raises(BadInputError, match="not found"):
        read_attribute_file(tmp_path / "nope.txt")


def test_gnn_face_set_reads_celebas_own_attribute_file(celeba_dir):
    """GNN training takes CelebA's list file as it is: rows keyed by file name meet photos under <identity>/."""
    from anonfaces.synthesize.gnn.data import load_face_set
    from anonfaces.utils.attributes import read_attribute_file

    attr_file = celeba_dir / "list_attr_celeba_subset.txt"
    faces = load_face_set(celeba_dir / "images", size=16, min_images=3, max_identities=2, align="center",
                          attributes=attr_file, progress=False)
    table = read_attribute_file(attr_file)
    assert faces.attribute_names == list(table.columns) and len(faces.attribute_names) == 40
    for rel, row in zip(faces.paths, faces.attributes):
        assert np.array_equal(row, table.loc[rel.split("/")[-1]].to_numpy(np.float32))
