"""One package per kind of pipeline, each prepare → select → model, behind one
:class:`~takeoff.pipelines.base.Predictor` (version, save/load, report):

- ``prediction/``: tables, text and images → a target column (the AutoML run).
- ``recommendation/``: an interaction log → items for users.
- ``search/``: a text column → an index answering queries by meaning.

``dispatch.py`` maps a bundle's task to its pipeline's model class; ``run_dir.py`` holds what
every training run shares (its directory, resuming, reading the data).
"""

from takeoff.pipelines.base import Predictor
from takeoff.pipelines.dispatch import load, predictor_class

__all__ = ["Predictor", "load", "predictor_class"]
