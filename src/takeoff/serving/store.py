"""The models a server answers for: one bundle, a directory of bundles, or model objects
(tabular models, recommenders and search indexes side by side).

Serving only reads bundles (``takeoff.load``); it never imports training code.
"""

from __future__ import annotations

import logging
from pathlib import Path

from takeoff.bundle import MANIFEST
from takeoff.errors import BundleError, ConfigError, UnknownNameError
from takeoff.pipelines import Predictor, load

log = logging.getLogger("takeoff.serving")


class ModelStore:
    """Named models and the default one (served at ``/v1/predict``, or ``/v1/recommend`` for a
    recommender)."""

    def __init__(self, models: dict[str, Predictor], default: str | None = None):
        self.models = dict(models)
        if default is not None and default not in self.models:
            raise UnknownNameError("model", default, self.names())
        if default is None and len(self.models) == 1:
            default = next(iter(self.models))
        self.default = default

    def names(self) -> list[str]:
        return list(self.models)

    def get(self, name: str) -> Predictor | None:
        return self.models.get(name)


def load_store(source: Path | str | dict[str, Predictor], default: str | None = None) -> ModelStore:
    """Load the models to serve.

    Args:
        source: a bundle directory (served under its directory name, and the default), a
            directory whose subdirectories are bundles (each served under its name), or a
            dict of name → model (a :class:`~takeoff.Model`, a
            :class:`~takeoff.pipelines.recommendation.RecommenderModel` or a
            :class:`~takeoff.pipelines.search.SearchIndex`: any pipeline's
            :class:`~takeoff.pipelines.base.Predictor`).
        default: the name of the model answering ``/v1/predict`` (``/v1/recommend`` for a
            recommender; default: the only one).

    Raises:
        BundleError: the path is not a bundle and holds none, or a bundle cannot be loaded.
        UnknownNameError: ``default`` names no model.
    """
    if isinstance(source, dict):
        for name, model in source.items():
            if not isinstance(name, str) or not name or not isinstance(model, Predictor):
                raise ConfigError(f"models to serve must map names to takeoff.Model, RecommenderModel or SearchIndex objects; "
                                  f"got {name!r}: {type(model).__name__}")
        return ModelStore(source, default)
    path = Path(source)
    if not path.is_dir():
        raise BundleError(str(path), "does not exist or is not a directory", "pass a bundle directory (from `takeoff train --out`) or a directory of bundles")
    if (path / MANIFEST).exists():
        return ModelStore({path.resolve().name: load(path)}, default)
    subdirs = sorted(p for p in path.iterdir() if p.is_dir() and (p / MANIFEST).exists())
    if not subdirs:
        raise BundleError(
            str(path), f"is not a bundle and holds no bundles (no {MANIFEST} in it or in its subdirectories)",
            "pass a directory written by `takeoff train --out`, or a directory of such directories",
        )
    models = {}
    for sub in subdirs:
        models[sub.name] = load(sub)
        log.info("loaded model '%s' from %s", sub.name, sub)
    return ModelStore(models, default)
