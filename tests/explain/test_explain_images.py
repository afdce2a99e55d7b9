"""Explaining an image model: saliency maps (Integrated Gradients on the pixels) must point at
the part of the image that decides the class, and the image column must outrank a noise column."""

from __future__ import annotations

import base64
import io

import numpy as np
import pandas as pd
import pytest

import takeoff
from takeoff.explain import explain

PIL = pytest.importorskip("PIL")
pytest.importorskip("captum")
from PIL import Image  # noqa: E402

SIDE, PATCH = 32, 8


def _picture(rng, left: bool) -> tuple[np.ndarray, tuple[int, int]]:
    """Grey noise with one bright square: in the left half for class 'left', else the right."""
    pixels = rng.integers(40, 90, size=(SIDE, SIDE), dtype=np.uint8)
    top = int(rng.integers(2, SIDE - PATCH - 2))
    x = int(rng.integers(2, SIDE // 2 - PATCH)) if left else int(rng.integers(SIDE // 2, SIDE - PATCH - 2))
    pixels[top:top + PATCH, x:x + PATCH] = 230
    return pixels, (top, x)


@pytest.fixture(scope="module")
def patches(tmp_path_factory):
    """A table of real PNG files (only the square's side decides the class) and a noise column."""
    root = tmp_path_factory.mktemp("patches")
    rng = np.random.default_rng(0)
    rows, where = [], []
    for i in range(160):
        left = i % 2 == 0
        pixels, corner = _picture(rng, left)
        Image.fromarray(pixels).save(root / f"{i}.png")
        rows.append({"image": f"{i}.png", "noise": float(rng.normal()), "side": "left" if left else "right"})
        where.append(corner)
    pd.DataFrame(rows).to_csv(root / "table.csv", index=False)
    # a fixed number of epochs (not as many as fit a time budget): the model, and so the test,
    # must not depend on how busy the machine is
    model = takeoff.train(root / "table.csv", target="side", family="image-cnn", time_budget=300, seed=0,
                          out=root / "model", config={"models": {"image-cnn": {
                              "width": 8, "epochs": 12, "flip": False, "rotate_degrees": 0.0, "crop_scale": 0.9}},
                              "refit": False})
    return root, model, where


def test_saliency_points_at_the_deciding_square(patches):
    root, model, where = patches
    assert model.metrics["accuracy"] > 0.9, model.metrics
    explanation = explain(model, root / "table.csv", rows=6, global_importance=False)
    for entry in explanation.local:
        found = entry["images"]["image"]
        assert found["method"] == "integrated_gradients" and found["family"] == "image-cnn"
        grid = np.asarray(found["saliency"])
        assert grid.shape == (SIDE, SIDE) and grid.max() == pytest.approx(1.0, abs=1e-3)
        top, x = where[entry["row"]]
        inside = np.zeros_like(grid, dtype=bool)
        inside[max(top - 1, 0):top + PATCH + 1, max(x - 1, 0):x + PATCH + 1] = True
        assert grid[inside].mean() > 3 * grid[~inside].mean(), (entry["row"], grid[inside].mean(), grid[~inside].mean())
        # the overlay is a real PNG of the advertised size
        png = base64.b64decode(found["overlay"].split(",", 1)[1])
        assert Image.open(io.BytesIO(png)).size == (160, 160)
        # column attributions (occlusion by a grey image): the image decides, the noise does not
        ranked = [a["column"] for a in entry["attributions"]]
        assert ranked[0] == "image"


def test_saliency_is_stable_and_shown_in_the_html(patches, tmp_path):
    root, model, _ = patches
    first = explain(model, root / "table.csv", rows=2, global_importance=False)
    again = explain(model, root / "table.csv", rows=2, global_importance=False)
    assert [e["images"]["image"]["saliency"] for e in first.local] == [e["images"]["image"]["saliency"] for e in again.local]
    html = first.write_html(tmp_path / "explain.html").read_text()
    assert html.count('class="saliency"') == 2 and "data:image/png;base64," in html
    # global permutation importance shuffles images too, and ranks the image first
    full = explain(model, root / "table.csv", rows=1)
    assert full.top("permutation", 1) == ["image"]
