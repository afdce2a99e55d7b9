"""Which pipeline a bundle belongs to: the task kind of its manifest → the pipeline's model
class. ``takeoff.load`` reads the manifest once, here, and hands it to that class."""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import Any

from takeoff import bundle
from takeoff.pipelines.base import Predictor

# task kind → "module:Class"; imported on use, so loading a bundle imports its pipeline only.
# Every other kind (binary, multiclass, multilabel, regression) is the prediction pipeline's.
PREDICTORS = {
    "recommend": "takeoff.pipelines.recommendation.model:RecommenderModel",
    "search": "takeoff.pipelines.search.index:SearchIndex",
    "generate": "takeoff.pipelines.generation.model:GenerativeModel",
    "answer": "takeoff.pipelines.answers.model:AnswerModel",
}
PREDICTION = "takeoff.pipelines.prediction.model:Model"


def predictor_class(manifest: dict[str, Any]) -> type[Predictor]:
    """The model class of the pipeline that wrote a bundle with this manifest."""
    kind = manifest.get("task", {}).get("kind")
    module, name = PREDICTORS.get(kind, PREDICTION).split(":")
    return getattr(import_module(module), name)


def load(path: str | Path) -> Predictor:
    """The model of the bundle at ``path`` (its manifest read and checked once).

    Raises:
        BundleError: missing, unfinished, tampered with, or of an unknown format version.
    """
    path = Path(path)
    manifest = bundle.read_manifest(path)
    return predictor_class(manifest).load(path, manifest)
