"""Where runs are tracked: an MLflow tracking URI, and its ``takeoff`` experiment.

Default: ``./mlruns`` in the working directory, a local store with no server to start. MLflow 3
refuses its old file store (``./mlruns`` as folders of YAML) unless ``MLFLOW_ALLOW_FILE_STORE``
is set and defaults to ``sqlite:///mlflow.db``; takeoff keeps both in one folder:
``sqlite:///./mlruns/mlflow.db`` for runs and metrics, ``./mlruns/artifacts`` for the files.
``--tracking-uri`` or ``MLFLOW_TRACKING_URI`` point elsewhere (an MLflow server
``http://host:5000``, a database URL such as ``postgresql://...``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

DEFAULT_DIR = "mlruns"
EXPERIMENT = "takeoff"


def resolve_uri(uri: str | None = None) -> str:
    """``uri``, else ``$MLFLOW_TRACKING_URI``, else the SQLite file ``./mlruns/mlflow.db``."""
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{(Path(DEFAULT_DIR) / 'mlflow.db').resolve()}"


def redact(uri: str) -> str:
    """``uri`` without a password."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", uri)


def experiment_name() -> str:
    return os.environ.get("MLFLOW_EXPERIMENT_NAME", EXPERIMENT)


def client(uri: str, create: bool = True):
    """An MlflowClient on ``uri`` and the id of the takeoff experiment (None when it does not
    exist and ``create`` is False). A local SQLite store gets its folder and an artifact root
    beside it."""
    from mlflow import MlflowClient

    artifacts = None
    if uri.startswith("sqlite:///"):
        db = Path(uri[len("sqlite:///"):])
        db.parent.mkdir(parents=True, exist_ok=True)
        artifacts = (db.parent / "artifacts").resolve().as_uri()
    c = MlflowClient(tracking_uri=uri)
    name = experiment_name()
    found = c.get_experiment_by_name(name)
    if found is not None:
        return c, found.experiment_id
    if not create:
        return c, None
    try:
        return c, c.create_experiment(name, artifact_location=artifacts)
    except Exception:  # another process created it meanwhile
        found = c.get_experiment_by_name(name)
        if found is None:
            raise
        return c, found.experiment_id


def reachable(uri: str, timeout: float = 3.0) -> str | None:
    """Why an http(s) tracking server cannot be reached (one quick request), or None. Other
    stores are checked by using them."""
    if not uri.startswith(("http://", "https://")):
        return None
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout).close()
    except urllib.error.HTTPError:
        return None  # it answers (a server without /health, or behind auth)
    except Exception as exc:
        return f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
    return None
