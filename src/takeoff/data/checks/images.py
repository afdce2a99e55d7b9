"""Checks of an image column: unreadable files, copies (with conflicting labels), tiny images,
mixed colour modes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from takeoff.data.checks.finding import CheckParams, Finding


def image_findings(series: pd.Series, name: str, params: CheckParams, labels: pd.Series | None) -> list[Finding]:
    """An image column: unreadable or truncated files, exact copies (the same bytes; with
    different labels), tiny images and a mix of colour modes."""
    from takeoff.data.images import GRAY_MODES, scan

    values = series.tolist()
    scanned = scan(values, verify=params.verify_images)
    out = []
    n_present = int(series.notna().sum())
    if scanned.failed:
        listed = "; ".join(f"row {series.index[i]}: {reason}" for i, reason in list(scanned.failed.items())[:5])
        checked = "" if scanned.verified >= len(values) else f" (the first {scanned.verified:,} fully decoded)"
        out.append(Finding("unreadable_image", "warning",
                           f"{len(scanned.failed)} of {n_present} image(s) cannot be read{checked}: {listed}",
                           "replace or remove those files; training skips them, predicting on them is an error",
                           column=name, count=len(scanned.failed)))
    groups: dict[str, list[int]] = {}
    for i, digest in enumerate(scanned.digests):
        if digest is not None:
            groups.setdefault(digest, []).append(i)
    copies = [g for g in groups.values() if len(g) > 1]
    if copies:
        n_copies = sum(len(g) - 1 for g in copies)
        example = ", ".join(str(series.index[i]) for i in copies[0][:3])
        out.append(Finding("duplicate_image", "warning",
                           f"{n_copies} image(s) are exact copies of another ({len(copies)} group(s); e.g. rows {example}); "
                           "a copy in training and one in validation makes the scores look better than they are",
                           "remove the copies, or keep one per group", column=name, count=n_copies))
        if labels is not None:
            conflicting = [g for g in copies if labels.iloc[g].map(str).nunique() > 1]
            if conflicting:
                g = conflicting[0]
                example = ", ".join(f"row {series.index[i]} ({labels.iloc[i]!r})" for i in g[:3])
                out.append(Finding("conflicting_duplicate_image", "warning",
                                   f"{len(conflicting)} group(s) of identical images carry different labels (e.g. {example})",
                                   "check those labels: the same picture cannot be two classes", column=name,
                                   count=len(conflicting)))
    sides = np.array([min(s) for s in scanned.sizes if s is not None])
    if len(sides):
        median = float(np.median(sides))
        tiny = int(((sides < params.tiny_image_px) | (sides < median / 4)).sum())
        if tiny:
            out.append(Finding("tiny_image", "warning",
                               f"{tiny} image(s) have a shorter side under {params.tiny_image_px} px or a quarter of "
                               f"the median ({median:.0f} px; smallest {int(sides.min())} px); they are scaled up and blurred",
                               "check those files (thumbnails, icons or crops by mistake?) and replace them with the "
                               "full-size images", column=name, count=tiny))
    modes = pd.Series([m for m in scanned.modes if m is not None]).value_counts()
    if len(modes) > 1:
        shares = ", ".join(f"{mode} {count}" for mode, count in modes.items())
        out.append(Finding("mixed_image_modes", "info",
                           f"images come in several colour modes ({shares}); all are converted to "
                           f"{'grayscale' if set(modes.index) <= GRAY_MODES else 'RGB'}",
                           "nothing to do; if colour matters, check that the grayscale images are not scans of colour ones",
                           column=name))
    return out


