"""A folder of images (one sub-folder per class, or a flat folder) read as a table."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from takeoff.data.sources.source import Source
from takeoff.errors import preview


def read_image_folder(src: Source) -> pd.DataFrame:
    """An image folder as a table (see :func:`takeoff.data.images.read_folder`)."""
    import logging

    from takeoff.data.images import read_folder

    listing = read_folder(src.path)
    log = logging.getLogger("takeoff")
    if listing.skipped:
        log.warning("%s: skipped %d file(s) that are not images: %s", src.name, len(listing.skipped),
                    preview([Path(f).name for f in listing.skipped]))
    if listing.empty_classes:
        log.warning("%s: class folder(s) without images, ignored: %s", src.name, preview(listing.empty_classes))
    return listing.frame
