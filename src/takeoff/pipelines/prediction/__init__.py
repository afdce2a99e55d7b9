"""The prediction pipeline: tables, text and images → a target column (classification,
multilabel, regression).

prepare (checks, split, feature fitting: ``prepare.py``) → select (families within the time
budget, blend, threshold, refit: ``automl.py``) → model (:class:`Model`, ``model.py``); a run
with its directory and report is ``train.py``; streaming prediction over files ``batch.py``.
"""

from takeoff.pipelines.prediction.model import Model

__all__ = ["Model"]
