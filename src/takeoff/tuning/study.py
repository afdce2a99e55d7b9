"""The Optuna study a search runs in: its storage (an SQLite file in the run folder by default,
or any SQLAlchemy URL that many workers share), and what it was started on.

A study records the target, the metric, the families searched and a fingerprint of the data in
its user attributes. A worker joining a study of the same name on the same data shares its
trials; one started on another target or other data is refused unless ``resume_study`` says
to carry on with it.
"""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path
from typing import Any

import pandas as pd

from takeoff.errors import ConfigError, DataSourceError

log = logging.getLogger("takeoff")

STUDY_FILE = "study.db"
CHECKED = ("target", "task", "metric", "families", "data_fingerprint")


def storage_url(storage: str | None, run_dir: Path) -> str:
    """``storage`` as given, or an SQLite file ``study.db`` in ``run_dir``."""
    if storage:
        return storage
    return f"sqlite:///{(run_dir / STUDY_FILE).resolve()}"


def redact(url: str) -> str:
    """``url`` without its password (for messages)."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def connect(url: str):
    """An Optuna RDB storage at ``url``, connected now (not at the first trial).

    Raises:
        DataSourceError: the URL is malformed, its driver is missing or the database cannot be
            reached; the message names the URL without its password.
    """
    import optuna

    shown = redact(url)
    if "://" not in url:
        raise DataSourceError(shown, "is not a storage URL", "give an SQLAlchemy URL such as sqlite:///study.db or "
                              "postgresql://user:password@host/db")
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        engine_kwargs = {"connect_args": {"timeout": 60}}  # workers wait for each other's writes
    elif url.startswith(("postgresql", "mysql")):
        engine_kwargs = {"connect_args": {"connect_timeout": 10}, "pool_pre_ping": True}
    try:
        return _with_retries(lambda: optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs))
    except ImportError:  # SQLAlchemy found no driver for the URL's dialect
        driver = {"postgresql": "psycopg2-binary", "mysql": "pymysql"}.get(url.split(":", 1)[0].split("+", 1)[0], "its driver")
        raise DataSourceError(shown, "cannot open the study storage: the database driver is not installed",
                              f"pip install {driver}, or use another storage URL") from None
    except Exception as exc:
        reason = str(exc).splitlines()[0].replace(url, shown)
        raise DataSourceError(shown, f"cannot open the study storage ({type(exc).__name__}: {reason})",
                              "check the URL, that the database server is up and reachable, and the credentials") from None


def _with_retries(make, attempts: int = 6):
    """``make()``, tried again while another worker is creating the same new database's tables
    (both see an empty database; the slower one's CREATE or version row collides)."""
    import time

    from sqlalchemy.exc import IntegrityError, OperationalError

    for attempt in range(attempts):
        try:
            return make()
        except (IntegrityError, OperationalError) as exc:
            collided = isinstance(exc, IntegrityError) or any(w in str(exc) for w in ("already exists", "locked"))
            if not collided or attempt == attempts - 1:
                raise
            time.sleep(0.5 * (attempt + 1))


def fingerprint(df: pd.DataFrame) -> str:
    """A digest of a table's columns and values (row order included)."""
    digest = hashlib.sha256("\x1f".join(map(str, df.columns)).encode())
    digest.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]


def open_study(storage, name: str, facts: dict[str, Any], seed: int, resume_study: bool, direction: str = "maximize"):
    """Create the study ``name`` in ``storage``, or join it when it exists with the same
    ``facts`` (target, task, metric, families, data fingerprint).

    The sampler is TPE seeded with ``seed`` in the worker that creates the study (so one worker
    gives the same trials run after run); a worker that joins gets another seed, so that two
    workers do not propose the same configurations.

    Raises:
        ConfigError: the study exists with other facts and ``resume_study`` is False.
    """
    import optuna

    created = True
    try:
        optuna.create_study(storage=storage, study_name=name, direction=direction)
    except optuna.exceptions.DuplicatedStudyError:
        created = False
    summary = storage.get_study_id_from_name(name)
    known = storage.get_study_user_attrs(summary)
    if not created and storage.get_study_directions(summary)[0].name.lower() != direction:
        raise ConfigError(f"study '{name}' maximises another direction. Fix: choose another --study name.")
    differ = {k: (known[k], facts[k]) for k in CHECKED if k in known and known[k] != facts[k]}
    if differ and not resume_study:
        what = "; ".join(f"{k}: study has {old!r}, this run {new!r}" for k, (old, new) in differ.items())
        raise ConfigError(f"study '{name}' was started on other data or another target ({what}). "
                          "Fix: choose another --study name, or pass --resume-study to continue it with this data.")
    if created or differ or not known:
        for key, value in facts.items():
            storage.set_study_user_attr(summary, key, value)
    worker_seed = seed if created else seed + 1 + _worker_salt()
    sampler = optuna.samplers.TPESampler(seed=worker_seed)
    # prune a trial whose validation loss is in the worst quarter of the earlier trials' at the
    # same round / epoch: the median would also stop slow learning rates that end up best
    pruner = optuna.pruners.PercentilePruner(25.0, n_startup_trials=5, n_warmup_steps=10)
    study = optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner)
    return study, created


def _worker_salt() -> int:
    import os
    import uuid

    return (os.getpid() * 7919 + uuid.uuid4().int) % 1_000_003
