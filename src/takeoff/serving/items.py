"""Readable labels of a recommender's items (a title), for the server's answers and the CLI:
thin wrappers over :meth:`takeoff.pipelines.recommendation.RecommenderModel.item_labels`."""

from __future__ import annotations

from typing import Any


def item_labels(model) -> tuple[str | None, list[str] | None]:
    """``(column, labels)``: a label per item code of ``model``, or ``(None, None)``."""
    return model.item_labels()


def label_of(model, labels: list[str] | None, item: Any) -> str | None:
    """The label of one item ID (as the model returns it), or None."""
    return model.label_of(item) if labels is not None else None
