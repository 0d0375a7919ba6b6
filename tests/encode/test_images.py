import numpy as np
import pytest

from anonfaces.detect import detect_faces
from anonfaces.utils.images import ImageReadError, list_images, read_image, write_image
from tests.encode.bad_inputs import make_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    return folder, make_corpus(folder)


def test_every_file_is_read_or_refused_with_a_reason(corpus):
    folder, expect = corpus
    for name, what in expect.items():
        if what in ("face", "no face"):
            image = read_image(folder / name)
            assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3, name
        else:
            with pytest.raises(ImageReadError, match=what):
                read_image(folder / name)


@pytest.mark.parametrize("name", ["cmyk.jpg", "grey16.png", "rgba.png", "grey.jpg", "palette.png", "exif_rotated.jpg"])
def test_converted_images_still_show_the_face(corpus, name):
    folder, _ = corpus
    faces = detect_faces(read_image(folder / name))
    assert len(faces) == 1, name


def test_exif_rotation_is_applied(corpus):
    folder, _ = corpus
    upright = read_image(folder / "plain.jpg")
    rotated = read_image(folder / "exif_rotated.jpg")
    assert rotated.shape == upright.shape
    assert np.abs(rotated.astype(int) - upright.astype(int)).mean() < 6  # only JPEG noise between them


def test_sixteen_bit_is_scaled_not_clipped(corpus):
    folder, _ = corpus
    image = read_image(folder / "grey16.png")
    assert 60 < image.mean() < 200  # clipping 16-bit values to 8 bits would give a white image


def test_max_pixels_is_configurable(tmp_path):
    path = tmp_path / "big.png"
    write_image(path, np.zeros((300, 300, 3), np.uint8))
    assert read_image(path).shape == (300, 300, 3)
    with pytest.raises(ImageReadError, match="too large"):
        read_image(path, max_pixels=10_000)


def test_missing_file(tmp_path):
    with pytest.raises(ImageReadError, match="cannot open"):
        read_image(tmp_path / "nope.jpg")


def test_written_images_carry_no_metadata(tmp_path, corpus):
    from PIL import Image

    folder, _ = corpus
    with Image.open(folder / "exif_rotated.jpg") as src:
        assert src.getexif()  # the input has EXIF
    out = tmp_path / "out.jpg"
    write_image(out, read_image(folder / "exif_rotated.jpg"))
    with Image.open(out) as img:
        assert not img.getexif() and "icc_profile" not in img.info and "exif" not in img.info


def test_list_images_is_sorted_relative_and_skips_hidden(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / ".hidden").mkdir()
    for p in ["b/2.jpg", "b/1.PNG", "a.jpeg", ".hidden/x.jpg", "b/notes.txt", "b/.x.jpg"]:
        (tmp_path / p).write_bytes(b"x")
    assert list_images(tmp_path) == ["a.jpeg", "b/1.PNG", "b/2.jpg"]


@pytest.mark.parametrize("suffix, fmt", [(".gif", "GIF"), (".ppm", "PPM"), (".pgm", "PPM"), (".webp", "WEBP"), (".tif", "TIFF")])
def test_written_files_hold_the_format_their_suffix_names(tmp_path, suffix, fmt):
    from PIL import Image

    path = tmp_path / f"x{suffix}"
    write_image(path, np.full((8, 8, 3), 100, np.uint8))
    with Image.open(path) as img:
        assert img.format == fmt
    assert read_image(path).shape == (8, 8, 3)
