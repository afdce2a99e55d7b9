"""The MLflow pyfunc model of a takeoff bundle, logged as code (MLflow's "models from code"),
so nothing is pickled: MLflow runs this file when loading the model, and the bundle (an
artifact of the logged model) is read by :func:`takeoff.load` as usual."""

from __future__ import annotations

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel


class TakeoffBundle(PythonModel):
    """``predict(DataFrame)`` gives what ``takeoff.load(bundle).predict`` gives: labels for
    classification, values for regression."""

    def load_context(self, context) -> None:
        from takeoff.pipelines.dispatch import load

        self.model = load(context.artifacts["bundle"])

    def predict(self, context, model_input: pd.DataFrame, params=None):
        return self.model.predict(model_input)


mlflow.models.set_model(TakeoffBundle())
