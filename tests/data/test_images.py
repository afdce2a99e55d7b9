"""Image folders and image decoding, on real files written with Pillow."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pandas as pd
import pytest

from takeoff.data import images
from takeoff.data.sources import iter_chunks, read_table
from takeoff.errors import DataSourceError

PIL = pytest.importorskip("PIL")
from PIL import Image  # noqa: E402


def _png_header(width: int, height: int) -> bytes:
    """A PNG that claims ``width`` x ``height`` pixels but holds almost no data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 10)) + chunk(b"IEND", b"")


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    for label, value in (("cat", 30), ("dog", 220)):
        (tmp_path / label).mkdir()
        for i in range(3):
            pixels = np.clip(rng.normal(value, 10, (20, 24, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / label / f"{i}.png")
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    (tmp_path / "empty").mkdir()
    return tmp_path


def test_class_folders_read_as_image_and_label(folder, caplog):
    df = read_table(folder)
    assert list(df.columns) == ["image", "label"]
    assert sorted(df["label"].unique()) == ["cat", "dog"] and len(df) == 6
    assert all(p.startswith("/") and p.endswith(".png") for p in df["image"])
    assert "notes.txt" in caplog.text and "empty" in caplog.text  # skipped file and empty class named
    assert sum(len(c) for c in iter_chunks(folder)) == 6


def test_loose_images_read_as_one_column(folder):
    df = read_table(folder / "dog")
    assert list(df.columns) == ["image"] and len(df) == 3


def test_one_class_folder_is_refused_with_the_fix(tmp_path):
    (tmp_path / "only").mkdir()
    Image.new("L", (8, 8)).save(tmp_path / "only" / "a.png")
    Image.new("L", (8, 8)).save(tmp_path / "only" / "b.png")
    with pytest.raises(DataSourceError, match="single class folder, 'only'.*at least two classes"):
        read_table(tmp_path)


def test_folder_without_images_keeps_the_directory_error(tmp_path):
    (tmp_path / "a.csv").write_text("x,y\n1,2\n")
    with pytest.raises(DataSourceError, match="is a directory, not a data file"):
        read_table(tmp_path)


def test_table_paths_resolve_against_the_tables_folder(folder, tmp_path):
    table = folder / "pets.csv"
    pd.DataFrame({"photo": ["cat/0.png", "dog/1.png"], "y": [0, 1]}).to_csv(table, index=False)
    df = read_table(table)
    assert df["photo"].tolist() == [str(folder / "cat" / "0.png"), str(folder / "dog" / "1.png")]
    assert images.looks_like_image_column(df["photo"]) and not images.looks_like_image_column(df["y"])


@pytest.mark.parametrize("mode,fmt", [("RGB", "PNG"), ("RGB", "JPEG"), ("RGB", "WEBP"), ("L", "PNG"),
                                      ("RGBA", "PNG"), ("P", "PNG"), ("I;16", "PNG"), ("CMYK", "JPEG")])
def test_modes_and_formats_decode_to_uint8(tmp_path, mode, fmt):
    path = tmp_path / f"x.{fmt.lower()}"
    if mode == "I;16":
        Image.fromarray(np.full((30, 40), 65535, dtype=np.uint16)).save(path)
    else:
        Image.new(mode, (40, 30), 200 if mode in ("L", "P") else None).save(path, fmt)
    for channels in (1, 3):
        out = images.decode(path, 16, channels)
        assert out.shape == (channels, 16, 16) and out.dtype == np.uint8
    if mode == "I;16":
        assert images.decode(path, 16, 1).min() == 255  # full 16-bit scale is white, not clipped noise


def test_transparent_pixels_composite_on_white(tmp_path):
    Image.new("RGBA", (10, 10), (0, 0, 0, 0)).save(tmp_path / "clear.png")
    assert images.decode(tmp_path / "clear.png", 10, 3).min() == 255


def test_shorter_side_resized_then_centre_cropped():
    array = np.zeros((20, 40), dtype=np.uint8)
    array[:, 10:30] = 255  # a white middle band, half the width
    out = images.decode(array, 10, 1)[0]
    assert out.shape == (10, 10) and out.min() > 200  # the crop keeps the middle


def test_bytes_arrays_and_pil_images_decode(tmp_path):
    Image.new("RGB", (12, 12), (10, 20, 30)).save(tmp_path / "a.png")
    raw = (tmp_path / "a.png").read_bytes()
    for value in (raw, Image.open(tmp_path / "a.png"), np.full((3, 12, 12), 0.5), np.zeros((12, 12, 4), np.uint8)):
        assert images.decode(value, 8, 3).shape == (3, 8, 8)


def test_bad_values_fail_per_row_with_reasons(tmp_path):
    Image.new("RGB", (64, 64), (1, 2, 3)).save(tmp_path / "ok.jpg", quality=95)
    data = (tmp_path / "ok.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])  # a truncated JPEG
    (tmp_path / "fake.png").write_text("this is text, not a picture")
    (tmp_path / "huge.png").write_bytes(_png_header(20_000, 20_000))
    values = [str(tmp_path / "ok.jpg"), str(tmp_path / "cut.jpg"), str(tmp_path / "fake.png"),
              str(tmp_path / "missing.png"), str(tmp_path / "huge.png"), None, np.zeros((2, 2, 2, 2))]
    decoded = images.decode_many(values, 16, 3)
    assert decoded.pixels.shape == (7, 3, 16, 16)
    assert set(decoded.failed) == {1, 2, 3, 4, 5, 6}
    assert "truncated" in decoded.failed[1].lower()
    assert "not a readable image" in decoded.failed[2]
    assert "does not exist" in decoded.failed[3]
    assert "too large" in decoded.failed[4] or "Mpx" in decoded.failed[4]
    assert decoded.failed[5] == "is missing" and "shape" in decoded.failed[6]
    assert decoded.pixels[0].max() > 0 and decoded.pixels[1].max() == 0


def test_a_large_jpeg_decodes_at_reduced_scale(tmp_path):
    Image.new("L", (9000, 9000), 128).save(tmp_path / "big.jpg")  # 81 Mpx, over MAX_PIXELS
    assert 9000 * 9000 > images.MAX_PIXELS
    out = images.decode(tmp_path / "big.jpg", 32, 1)
    assert out.shape == (1, 32, 32) and abs(int(out.mean()) - 128) <= 2


def test_inspect_finds_unreadable_truncated_duplicate_tiny_and_mixed_images(datasets, tmp_path):
    """Real digits with the problems a scraped or hand-sorted folder has, through takeoff inspect's API."""
    import shutil

    import takeoff

    for label in ("3", "8"):
        (tmp_path / label).mkdir()
        for path in sorted((datasets / "digits" / label).glob("*.png"))[:30]:
            shutil.copy(path, tmp_path / label / path.name)
    first3 = sorted((tmp_path / "3").glob("*.png"))[0]
    shutil.copy(first3, tmp_path / "3" / "copy-of-first.png")  # same bytes, same label
    shutil.copy(first3, tmp_path / "8" / "mislabelled.png")  # same bytes, another label
    data = (tmp_path / "8" / sorted(p.name for p in (tmp_path / "8").glob("*.png"))[1]).read_bytes()
    (tmp_path / "8" / "truncated.png").write_bytes(data[: len(data) // 2])  # the header survives
    Image.fromarray(np.full((6, 6), 200, np.uint8)).save(tmp_path / "3" / "thumb.png")
    Image.fromarray(np.full((32, 32, 3), (200, 30, 30), np.uint8)).save(tmp_path / "8" / "colour.png")

    report = takeoff.inspect(tmp_path, target="label")
    found = {f["check"]: f for f in report["findings"] if f["column"] == "image"}
    assert found["unreadable_image"]["count"] == 1
    assert "truncated" in found["unreadable_image"]["message"] or "corrupt" in found["unreadable_image"]["message"]
    assert found["duplicate_image"]["count"] == 2
    assert found["conflicting_duplicate_image"]["count"] == 1
    assert "'3'" in found["conflicting_duplicate_image"]["message"] and "'8'" in found["conflicting_duplicate_image"]["message"]
    assert found["tiny_image"]["count"] == 1 and "smallest 6 px" in found["tiny_image"]["message"]
    assert "L 63" in found["mixed_image_modes"]["message"] and "RGB 1" in found["mixed_image_modes"]["message"]


def test_a_clean_image_folder_has_no_image_findings(datasets, tmp_path):
    import shutil

    import takeoff

    for label in ("0", "1"):
        (tmp_path / label).mkdir()
        for path in sorted((datasets / "digits" / label).glob("*.png"))[:20]:
            shutil.copy(path, tmp_path / label / path.name)
    report = takeoff.inspect(tmp_path, target="label")
    assert [f for f in report["findings"] if f["column"] == "image"] == []
