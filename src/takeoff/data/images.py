"""Images as data: reading an image folder as a table, and decoding image values into arrays.

An image folder with one subfolder per class reads as a table with an ``image`` column
(absolute paths) and a ``label`` column (the subfolder names); a folder of loose images reads
as an ``image`` column alone. A table file's relative image paths are resolved against the
table's own folder (see :func:`resolve_paths`).

:func:`decode` turns one value (a path, raw bytes, a PIL image or a numpy array) into a
``uint8`` array of shape (channels, size, size): the shorter side resized to ``size``, then
centre-cropped. PNG, JPEG, WebP, BMP, GIF and TIFF are read with Pillow; grayscale stays one
channel (or is repeated to three), RGBA and palette images are composited on white, 16-bit
images are scaled to 8 bits, CMYK is converted. Memory is bounded: a JPEG is decoded at a
reduced scale (``draft``) when it is far larger than needed, and an image over
:data:`MAX_PIXELS` that cannot be reduced while decoding is refused with a clear reason
instead of being expanded in memory.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from takeoff.errors import DataSourceError, MissingDependencyError, preview

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
# An image with more pixels than this is only decoded when its format can decode it at a
# reduced scale (JPEG); otherwise it is refused (a 20,000 x 20,000 PNG would need 1.2 GB).
MAX_PIXELS = 50_000_000
# PIL modes that decode to one channel (grayscale)
GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"})
IMAGE_COLUMN, LABEL_COLUMN = "image", "label"
# A string column is a column of image paths when this share of its values end in an image
# extension.
PATH_SHARE = 0.95


class ImageError(ValueError):
    """One image value could not be read; ``reason`` says why, for per-row messages."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _pil():
    try:
        from PIL import Image, ImageFile
    except ImportError as error:  # pragma: no cover - Pillow comes with the image extra
        raise MissingDependencyError("Pillow", "reading images", "image") from error
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    return Image


# ------------------------------------------------------------------------ folders
def is_image_path(value: Any) -> bool:
    return isinstance(value, (str, os.PathLike)) and str(value).lower().endswith(IMAGE_EXTENSIONS)


def looks_like_image_column(series: pd.Series) -> bool:
    """True when a column holds images: paths ending in an image extension (at least
    :data:`PATH_SHARE` of its values), raw bytes, PIL images or arrays."""
    values = series.dropna()
    if len(values) == 0 or not (series.dtype == object or pd.api.types.is_string_dtype(series)):
        return False
    sample = values.head(500)
    first = sample.iloc[0]
    if isinstance(first, (bytes, bytearray, np.ndarray)) or type(first).__module__.startswith("PIL."):
        return True
    return bool(np.mean([is_image_path(v) for v in sample]) >= PATH_SHARE)


def has_images(path: Path) -> bool:
    """True when ``path`` (a directory) holds image files, directly or one level down."""
    for child in path.iterdir():
        if child.is_file() and is_image_path(child.name):
            return True
        if child.is_dir() and not child.name.startswith("."):
            if any(f.is_file() and is_image_path(f.name) for f in child.iterdir()):
                return True
    return False


@dataclass
class FolderListing:
    """What :func:`read_folder` found: the table, and what it skipped."""

    frame: pd.DataFrame
    skipped: list[str] = field(default_factory=list)  # files that are not images
    empty_classes: list[str] = field(default_factory=list)  # class folders without images


def read_folder(path: Path) -> FolderListing:
    """The images under ``path`` as a table.

    One subfolder per class (``path/<label>/<image>``) gives ``image`` + ``label`` columns;
    images directly in ``path`` give ``image`` alone. Files without an image extension and
    hidden files are skipped (and listed); whether each image decodes is checked later,
    per row, when the images are read.

    Raises:
        DataSourceError: no images, images both loose and in class folders, or a single
            class folder (an image classifier needs two classes or more).
    """
    path = Path(path)
    loose, skipped = [], []
    classes: dict[str, list[str]] = {}
    empty: list[str] = []
    for child in sorted(path.iterdir()):
        if child.name.startswith("."):
            continue
        if child.is_dir():
            files = []
            for f in sorted(child.rglob("*")):
                if not f.is_file() or any(part.startswith(".") for part in f.relative_to(child).parts):
                    continue
                (files if is_image_path(f.name) else skipped).append(str(f.resolve()))
            if files:
                classes[child.name] = files
            else:
                empty.append(child.name)
        elif child.is_file():
            (loose if is_image_path(child.name) else skipped).append(str(child.resolve()))
    if not loose and not classes:
        raise DataSourceError(
            str(path), "holds no image files",
            fix=f"put the images ({', '.join(IMAGE_EXTENSIONS)}) in one subfolder per class, e.g. "
                f"{path}/cat/1.jpg and {path}/dog/2.jpg",
        )
    if loose and classes:
        raise DataSourceError(
            str(path), f"holds {len(loose)} image(s) directly and others in class folders "
                       f"({preview(sorted(classes))})",
            fix="move every image into its class folder, or keep only loose images to predict on",
        )
    if loose:
        return FolderListing(pd.DataFrame({IMAGE_COLUMN: loose}), skipped, empty)
    if len(classes) == 1:
        (only,) = classes
        raise DataSourceError(
            str(path), f"has a single class folder, '{only}' ({len(classes[only])} images); an "
                       "image classifier needs at least two classes"
                       + (f" (empty class folder(s): {preview(empty)})" if empty else ""),
            fix=f"add a folder of images for each other class beside '{only}'; to predict on these "
                f"images, pass {path / only} itself",
        )
    images = [f for files in classes.values() for f in files]
    labels = [label for label, files in classes.items() for _ in files]
    return FolderListing(pd.DataFrame({IMAGE_COLUMN: images, LABEL_COLUMN: labels}), skipped, empty)


def resolve_paths(df: pd.DataFrame, base: Path) -> pd.DataFrame:
    """Image-path columns of a table read from a file, made absolute against ``base`` (the
    table's folder), so the rows mean the same images wherever the process runs."""
    for name in df.columns:
        series = df[name]
        if not looks_like_image_column(series):
            continue
        df[name] = pd.Series([
            v if not isinstance(v, str) or os.path.isabs(v) else str((base / v).resolve()) for v in series
        ], index=df.index, dtype=object)
    return df


# ------------------------------------------------------------------------ decoding
@dataclass
class ImageInfo:
    """An image's header: what :func:`probe` reads without decoding the pixels."""

    width: int
    height: int
    mode: str
    format: str | None


def _open(value: Any):
    """A lazily-loaded PIL image for ``value``; raises ImageError with the reason."""
    Image = _pil()
    if isinstance(value, Image.Image):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        if len(value) == 0:
            raise ImageError("is empty (0 bytes)")
        stream: Any = io.BytesIO(bytes(value))
        where = "the bytes"
    elif isinstance(value, (str, os.PathLike)):
        path = Path(value)
        if not path.exists():
            raise ImageError(f"file {path} does not exist")
        if path.is_dir():
            raise ImageError(f"{path} is a directory, not an image")
        if path.stat().st_size == 0:
            raise ImageError(f"file {path} is empty (0 bytes)")
        stream = str(path)
        where = f"file {path}"
    else:
        raise ImageError(f"is a {type(value).__name__}, not an image (give a path, bytes or an array)")
    try:
        image = Image.open(stream)
    except Image.DecompressionBombError as error:
        raise ImageError(f"{where} is too large to decode safely ({error})") from None
    except (OSError, ValueError, SyntaxError) as error:
        raise ImageError(f"{where} is not a readable image ({type(error).__name__}: {error})") from None
    return image


def probe(value: Any) -> ImageInfo:
    """The size, mode and format of an image from its header (no pixels decoded).

    Raises:
        ImageError: the value is missing, not an image, or of an unknown format.
    """
    if isinstance(value, np.ndarray):
        array = _as_hwc(value)
        return ImageInfo(array.shape[1], array.shape[0], "L" if array.shape[2] == 1 else "RGB", None)
    image = _open(value)
    return ImageInfo(int(image.width), int(image.height), str(image.mode), image.format)


def decode(value: Any, size: int, channels: int) -> np.ndarray:
    """One image as uint8 (channels, size, size): shorter side resized to ``size``, then
    centre-cropped.

    Args:
        value: a file path, the encoded bytes, a PIL image, or a numpy array (H, W), (H, W, C)
            or (C, H, W) of uint8 (or floats in 0..1 or 0..255).
        size: the output side in pixels.
        channels: 1 (grayscale) or 3 (RGB).

    Raises:
        ImageError: unreadable, truncated, too large, or of an unexpected shape.
    """
    Image = _pil()
    if isinstance(value, np.ndarray):
        image = _array_image(value)
    else:
        image = _load(_open(value), size, "RGB" if channels == 3 else "L")
    image = _to_mode(image, channels, Image)
    w, h = image.size
    scale = size / min(w, h)
    new = (max(size, round(w * scale)), max(size, round(h * scale)))
    if new != (w, h):
        image = image.resize(new, Image.Resampling.BILINEAR, reducing_gap=3.0)
    left, top = (new[0] - size) // 2, (new[1] - size) // 2
    image = image.crop((left, top, left + size, top + size))
    array = np.asarray(image, dtype=np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    return np.ascontiguousarray(array.transpose(2, 0, 1))


def _load(image, size: int, mode: str, draft: bool = False):
    """Decode ``image``'s pixels, memory bounded: JPEGs over :data:`MAX_PIXELS` (or any JPEG
    with ``draft``) decode at 1/2, 1/4 or 1/8 scale, no smaller than ``size``; other images
    over the limit are refused."""
    if image.width * image.height > MAX_PIXELS or draft:
        if image.format == "JPEG":
            image.draft(mode, (size, size))
        if image.width * image.height > MAX_PIXELS:
            raise ImageError(
                f"is {image.width}x{image.height} pixels ({image.width * image.height / 1e6:.0f} Mpx), "
                f"over the {MAX_PIXELS / 1e6:.0f} Mpx that can be decoded safely; downscale it first"
            )
    try:
        image.load()
    except (OSError, ValueError, SyntaxError) as error:
        raise ImageError(f"could not be decoded, the file may be truncated or corrupt ({error})") from None
    return image


def _to_mode(image, channels: int, Image):
    """Grayscale (L) or RGB, whatever the source mode."""
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit (or 32-bit integer) grayscale: scale to 0..255 by the type's range
        array = np.asarray(image)
        top = 65535.0 if array.max(initial=0) > 255 or mode.startswith("I;16") else 255.0
        image = Image.fromarray(np.clip(array.astype(np.float64) / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
        mode = "L"
    elif mode == "F":
        array = np.asarray(image, dtype=np.float64)
        top = 1.0 if array.max(initial=0) <= 1.0 else 255.0
        image = Image.fromarray(np.clip(array / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
        mode = "L"
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    target = "L" if channels == 1 else "RGB"
    return image if image.mode == target else image.convert(target)


def _as_hwc(array: np.ndarray) -> np.ndarray:
    if array.ndim == 2:
        return array[:, :, None]
    if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[2] not in (1, 3, 4):
        return array.transpose(1, 2, 0)
    if array.ndim == 3 and array.shape[2] in (1, 3, 4):
        return array
    raise ImageError(f"is an array of shape {array.shape}; an image is (H, W), (H, W, C) or (C, H, W) with C in 1, 3, 4")


def _array_image(array: np.ndarray):
    Image = _pil()
    hwc = _as_hwc(array)
    if hwc.dtype != np.uint8:
        values = hwc.astype(np.float64)
        if not np.isfinite(values).all():
            raise ImageError("is an array with nan or infinite values")
        values = values * 255.0 if values.max(initial=0) <= 1.0 else values
        hwc = np.clip(values + 0.5, 0, 255).astype(np.uint8)
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[hwc.shape[2]]
    return Image.fromarray(hwc[:, :, 0] if mode == "L" else np.ascontiguousarray(hwc), mode)


@dataclass
class Decoded:
    """A column of images decoded: the pixels, and the rows that failed with their reasons."""

    pixels: np.ndarray  # uint8 (n, channels, size, size); failed rows are zeros
    failed: dict[int, str] = field(default_factory=dict)


def decode_many(values: Sequence[Any], size: int, channels: int, workers: int | None = None) -> Decoded:
    """Decode every value (see :func:`decode`) in a thread pool (Pillow releases the GIL
    while decoding); a value that fails leaves zeros and its reason in ``failed``."""
    n = len(values)
    pixels = np.zeros((n, channels, size, size), dtype=np.uint8)
    failed: dict[int, str] = {}

    def one(i: int) -> None:
        value = values[i]
        if value is None or (isinstance(value, float) and value != value):
            failed[i] = "is missing"
            return
        try:
            pixels[i] = decode(value, size, channels)
        except ImageError as error:
            failed[i] = error.reason

    _each(n, one, workers)
    return Decoded(pixels, dict(sorted(failed.items())))


def _each(n: int, one, workers: int | None) -> None:
    """``one(i)`` for i in 0..n-1, in a thread pool when there is enough to share (Pillow
    releases the GIL while decoding)."""
    workers = workers or min(8, os.cpu_count() or 1)
    if n < 16 or workers == 1:
        for i in range(n):
            one(i)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(one, range(n)))


@dataclass
class Scanned:
    """A column of images looked over for the data checks (nothing kept but the facts)."""

    digests: list[str | None]  # sha256 of the file bytes (or array bytes); None: unreadable
    sizes: list[tuple[int, int] | None]  # (width, height) from the header
    modes: list[str | None]
    failed: dict[int, str] = field(default_factory=dict)
    verified: int = 0  # how many were fully decoded (truncation shows only then)


def scan(values: Sequence[Any], verify: int = 5000, workers: int | None = None) -> Scanned:
    """Hash, probe and (the first ``verify``) fully decode every image of a column.

    A file is read once: its bytes are hashed (exact duplicates) and opened from memory for the
    header (size, mode); a full decode finds truncated files. Missing values are not failures.
    """
    n = len(values)
    digests: list[str | None] = [None] * n
    sizes: list[tuple[int, int] | None] = [None] * n
    modes: list[str | None] = [None] * n
    failed: dict[int, str] = {}

    def one(i: int) -> None:
        value = values[i]
        if value is None or (isinstance(value, float) and value != value):
            return
        try:
            if isinstance(value, np.ndarray):
                array = _as_hwc(value)
                digests[i] = hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()
                sizes[i], modes[i] = (array.shape[1], array.shape[0]), "L" if array.shape[2] == 1 else "RGB"
                return
            data = value
            if isinstance(value, (str, os.PathLike)):
                path = Path(value)
                if not path.is_file():
                    raise ImageError(f"file {path} does not exist" if not path.exists() else f"{path} is not a file")
                data = path.read_bytes()
                if not data:
                    raise ImageError(f"file {path} is empty (0 bytes)")
            image = _open(data)
            if isinstance(data, (bytes, bytearray, memoryview)):
                digests[i] = hashlib.sha256(bytes(data)).hexdigest()
            sizes[i], modes[i] = (int(image.width), int(image.height)), str(image.mode)
            if i < verify:
                _load(image, 224, image.mode, draft=True)
        except ImageError as error:
            digests[i] = sizes[i] = modes[i] = None
            failed[i] = error.reason

    _each(n, one, workers)
    return Scanned(digests, sizes, modes, dict(sorted(failed.items())), verified=min(n, verify))


# ------------------------------------------------------------------------ pictures for pages
def picture(pixels: np.ndarray, side: int):
    """Decoded pixels, uint8 (channels, h, w), as a PIL image whose longer side is ``side``
    px (nearest neighbour: small images stay sharp), for reports and explanations."""
    Image = _pil()
    array = np.ascontiguousarray(np.asarray(pixels, dtype=np.uint8).transpose(1, 2, 0))
    image = Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)
    scale = side / max(image.size)
    return image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.Resampling.NEAREST)


def png_data_uri(image) -> str:
    """A PIL image as a ``data:image/png;base64,...`` URI (self-contained HTML)."""
    import base64

    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
