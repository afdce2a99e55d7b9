"""Bundles as MLflow models: :func:`log_model` logs a bundle as an MLflow pyfunc model, so that
``mlflow models serve``, ``mlflow.pyfunc.load_model`` and MLflow's model registry work with it.

Example:
    >>> import takeoff.mlflow
    >>> uri = takeoff.mlflow.log_model("runs/credit", registered_model_name="credit")
    >>> import mlflow
    >>> mlflow.pyfunc.load_model(uri).predict(rows)   # same as takeoff.load("runs/credit").predict(rows)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from takeoff._version import __version__

__all__ = ["log_model"]


def log_model(bundle, name: str = "model", *, registered_model_name: str | None = None,
              tracking_uri: str | None = None, run_id: str | None = None, input_example: Any = None,
              pip_requirements: list[str] | None = None) -> str:
    """Log ``bundle`` (a bundle folder, or a loaded model saved to one) as an MLflow pyfunc model.

    Args:
        bundle: the bundle's folder, or a model returned by ``takeoff.train``/``takeoff.load``.
        name: the model's name in the run's artifacts. Default "model".
        registered_model_name: also register it under this name in MLflow's model registry.
        tracking_uri: where (default ``$MLFLOW_TRACKING_URI``, else ``./mlruns``, as every
            tracked takeoff run).
        run_id: log into this existing run (e.g. the one ``takeoff train`` tracked); default a
            new run.
        input_example: a few input rows (a DataFrame), stored with the model and used to infer
            its signature.
        pip_requirements: the serving environment's requirements (default ``takeoff`` at this
            version with its ``train`` extra).

    Returns:
        The model's URI (``models:/...``), for ``mlflow.pyfunc.load_model`` or ``mlflow models
        serve -m URI``.

    Raises:
        BundleError: ``bundle`` is not a bundle folder.
        MissingDependencyError: MLflow is not installed (``pip install 'takeoff[track]'``).
    """
    from takeoff.bundle import MANIFEST
    from takeoff.errors import BundleError, MissingDependencyError
    from takeoff.tracking.store import client, resolve_uri

    path = Path(getattr(bundle, "path", None) or bundle)
    if not (path / MANIFEST).is_file():
        raise BundleError(str(path), f"has no {MANIFEST}", "give a bundle folder written by takeoff train (or save the model first)")
    try:
        import mlflow
    except ImportError:
        raise MissingDependencyError("mlflow-skinny", "logging models to MLflow", extra="track") from None
    uri = resolve_uri(tracking_uri)
    c, experiment = client(uri)
    mlflow.set_tracking_uri(uri)
    code = Path(__file__).with_name("tracking") / "pyfunc_model.py"
    with mlflow.start_run(run_id=run_id, experiment_id=None if run_id else experiment,
                          run_name=None if run_id else f"{path.name} (pyfunc)"):
        if not run_id:
            mlflow.set_tag("takeoff.kind", "model")
        info = mlflow.pyfunc.log_model(
            name=name, python_model=str(code), artifacts={"bundle": str(path.resolve())},
            registered_model_name=registered_model_name, input_example=input_example,
            pip_requirements=pip_requirements or [f"takeoff[train]=={__version__}"],
        )
    return info.model_uri
