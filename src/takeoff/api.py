"""The public Python API: ``train``, ``load``, ``inspect`` and :class:`Model`.

A façade: each call picks the pipeline of its task (:mod:`takeoff.pipelines`) and hands over.

Example:
    >>> import takeoff
    >>> model = takeoff.train("credit.csv", target="Status", time_budget=60, out="runs/credit")
    >>> model.predict(new_rows)          # labels
    >>> model.evaluate("holdout.csv")    # {"roc_auc": ..., ...}
    >>> same = takeoff.load("runs/credit")
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from takeoff.errors import ConfigError
from takeoff.pipelines import Predictor, dispatch
from takeoff.pipelines.prediction.model import Model

__all__ = ["Model", "inspect", "load", "monitor", "train", "tune"]


def train(
    data=None,
    target: str | list[str] | None = None,
    *,
    time_budget: float | None = None,
    config=None,
    out: str | Path | None = None,
    seed: int | None = None,
    drop: list[str] | None = None,
    task: str | None = None,
    family: str | None = None,
    metric: str | None = None,
    table: str | None = None,
    sql: str | None = None,
    encoding: str | None = None,
    resume: str | Path | None = None,
    strict: bool | None = None,
    user: str | None = None,
    item: str | None = None,
    rating: str | None = None,
    time_column: str | None = None,
    items: str | Path | None = None,
    users: str | Path | None = None,
    embed_encoder: bool | None = None,
    dp_epsilon: float | None = None,
    dp_delta: float | None = None,
    sensitive: str | list[str] | None = None,
    mitigate: str | None = None,
    redact_pii: str | list[str] | None = None,
    intended_use: str | None = None,
    devices: int | None = None,
    track: bool = False,
    tracking_uri: str | None = None,
    sep: str | None = None,
    decimal: str | None = None,
    prompt: str | None = None,
    base_model: str | None = None,
    accept_terms: bool = False,
    generator: str | Path | None = None,
    text: str | None = None,
) -> Model:
    """Train a model on a table and (with ``out``) write it as a bundle directory.

    Args:
        data: a path (CSV, TSV, Parquet, JSON lines, Excel), a SQLAlchemy URL (with ``table``
            or ``sql``), or a DataFrame.
        target: the column to predict.
        time_budget: seconds the whole run may take (default 120).
        config: a YAML path, a dict, or a Config; the keyword arguments override it.
        out: bundle directory to write; also holds checkpoints while training, so that an
            interrupted run can be resumed.
        seed, drop, task, family, metric, strict: see ``takeoff config show``. ``metric`` is what
            the run is judged by (e.g. "macro_f1", "mae"): it chooses the models, their blend and
            the decision rule.
        resume: an interrupted run directory to finish (``data`` and options are taken from it).
        table, sql, encoding, sep, decimal: how the data is read: a database table or query; a
            CSV file's text encoding (default UTF-8), delimiter and decimal mark (default:
            detected from its first lines; see docs/guide.md, "Reading CSV files").
        user, item, rating, time_column, items, users: recommendation (``task="recommend"``,
            also inferred from ``user`` + ``item``): the interaction log's columns and optional
            item and user feature tables (paths); see :mod:`takeoff.pipelines.recommendation`.
        dp_epsilon, dp_delta: train with differential privacy (DP-SGD through Opacus) to this
            (ε, δ); network families only (config ``dp``; docs/privacy.md).
        sensitive: column(s) to audit the predictions by (per-group metrics, parity ratios);
            not used as features unless ``fairness.keep_as_features`` (docs/fairness.md).
        mitigate: "threshold": per-group decision thresholds (fairlearn's ThresholdOptimizer).
        redact_pii: kinds of personal data to replace by type tokens (``"all"``, or some of
            email, phone, card, iban, ip, ssn) in every text and category column, before training
            and at prediction time (the step is saved in the bundle); see :mod:`takeoff.data.pii`.
        intended_use: the model card's intended use (what the model is for, and what not).
        prompt, base_model, accept_terms: text generation (``task="generate"``): the prompt column
            (the answer is ``target``; chat JSON lines with a ``messages`` column need neither), the
            base causal language model (default SmolLM2-135M-Instruct; see docs/generate.md) and
            acceptance of its terms where it has some (Gemma).
        generator, text: grounded answers (``task="answer"``; ``data`` a folder of .md, .html,
            .txt and .pdf files, or a table of passages with a ``text`` column): the model that
            writes the answers (a bundle of ``task="generate"``, or a base model; default
            "smollm2") and the passages' column of a table (default "text"). See
            :mod:`takeoff.pipelines.answers` and docs/generate.md, "Grounded answers".
        devices: processes that train one torch family data-parallel (config key ``devices``,
            default 1) on this machine: one per GPU (NCCL) or per CPU core (gloo); needs ``out``.
            Under ``torchrun`` (several machines) the processes are torchrun's. See docs/distributed.md.
        track, tracking_uri: log the finished run to MLflow (``tracking_uri``, else
            ``$MLFLOW_TRACKING_URI``, else ``./mlruns``). Off by default in Python (the CLI
            tracks unless ``--no-track``); a tracking failure is a warning, never an error.

    Returns:
        The trained :class:`Model` (a
        :class:`~takeoff.pipelines.recommendation.RecommenderModel` for
        recommendation, an :class:`~takeoff.pipelines.answers.AnswerModel` for answers).

    Raises:
        DataSourceError, DataError, ConfigError, BudgetError: nothing is written then.
    """
    _require_training()
    from takeoff.pipelines.run_dir import resume_state

    state = None
    if resume is not None:
        out, state = Path(resume), resume_state(Path(resume))
        cfg = _config(state["config"])
        src = state["source"]
        data, table, sql, encoding = src["data"], src.get("table"), src.get("sql"), src.get("encoding")
        sep, decimal = src.get("sep"), src.get("decimal")
    else:
        cfg = _config(config, target=target, time_budget=time_budget, seed=seed, drop=drop, task=task, family=family, metric=metric,
                      strict=strict, devices=devices)
        if intended_use is not None:
            cfg.intended_use = intended_use
        if redact_pii is not None:
            from takeoff.data.pii import parse_kinds

            cfg.pii.redact = parse_kinds([redact_pii] if isinstance(redact_pii, str) else redact_pii)
        given = {"user": user, "item": item, "rating": rating, "time": time_column,
                 "items": str(items) if items is not None else None,
                 "users": str(users) if users is not None else None}
        for key, value in given.items():
            if value is not None:
                setattr(cfg.recommend, key, value)
        if embed_encoder is not None:  # the text families' encoder: copied into the bundle, or referenced
            for name in ("text-embed", "text-finetune"):
                params = getattr(cfg.models, name, None)
                if params is not None and "embed_encoder" in type(params).model_fields:
                    params.embed_encoder = embed_encoder
        cfg = _trust_options(cfg, dp_epsilon, dp_delta, sensitive, mitigate)
        if prompt is not None:
            cfg.generate.prompt = str(prompt)
        if base_model is not None:
            cfg.generate.base_model = str(base_model)
        if generator is not None:
            cfg.answer.generator = str(generator)
        if text is not None:
            cfg.answer.text = str(text)
    if cfg.task == "answer":
        if cfg.devices > 1:
            raise ConfigError("--devices trains prediction models; an answer build runs in one process. "
                              "Fix: drop --devices", path="devices")
        from takeoff.pipelines.answers import train as answers

        model = answers.train(data, cfg, out, table, sql, encoding, sep=sep, decimal=decimal)
    elif cfg.task == "generate":
        if cfg.devices > 1:
            raise ConfigError("--devices trains prediction models; a generate run trains in one process. "
                              "Fix: drop --devices", path="devices")
        from takeoff.pipelines.generation import train as generation

        model = generation.train(data, cfg, out, table, sql, encoding, state, sep=sep, decimal=decimal,
                                 accept_terms=accept_terms)
    elif cfg.task == "recommend" or (cfg.task is None and cfg.target is None and cfg.recommend.user and cfg.recommend.item):
        if resume is not None:
            raise ConfigError("recommendation runs cannot be resumed; train again")
        if cfg.devices > 1:
            raise ConfigError("--devices trains prediction models; recommendation runs train in one process. "
                              "Fix: drop --devices", path="devices")
        from takeoff.pipelines.recommendation import train as recommendation

        model = recommendation.train(data, cfg, out, table, sql, encoding)
    else:
        from takeoff.pipelines.prediction import train as prediction
        from takeoff.training.distributed import launched_world

        if cfg.devices > 1 or launched_world() > 1:  # several processes: docs/distributed.md
            from takeoff.pipelines.prediction import distributed

            if distributed.wanted(cfg):
                model = distributed.launch(data, cfg, out, table, sql, encoding, resume is not None)
            else:
                # a rank under torchrun: ranks do not track (one run is not one per rank)
                return distributed.train_in_group(data, cfg, out, table, sql, encoding, state)
        else:
            model = prediction.train(data, cfg, out, table, sql, encoding, state, sep=sep, decimal=decimal)
    if track or tracking_uri:
        from takeoff.tracking import log_train

        log_train(model, uri=tracking_uri)
    return model


def tune(
    data,
    target: str | None = None,
    *,
    trials: int = 20,
    time_budget: float | None = None,
    family: str | None = None,
    storage: str | None = None,
    study: str | None = None,
    resume_study: bool = False,
    out: str | Path | None = None,
    refit: bool = True,
    config=None,
    seed: int | None = None,
    metric: str | None = None,
    drop: list[str] | None = None,
    table: str | None = None,
    sql: str | None = None,
    encoding: str | None = None,
    track: bool = False,
    tracking_uri: str | None = None,
):
    """Search a family's hyperparameters with Optuna (TPE, pruning) and refit the best as a
    bundle in ``out/model``; see docs/tuning.md.

    Args:
        data, target, time_budget, config, seed, metric, drop, table, sql, encoding: as for
            :func:`train` (``time_budget`` covers the search and the refit).
        trials: trials the study should have in all (every worker sharing it counted).
        family: the family to tune (``takeoff config show --space F`` shows its space);
            default "auto": every family that declares a space, the family itself searched.
        storage: an SQLAlchemy URL several workers share (``postgresql://...``); default an
            SQLite file ``study.db`` in ``out``.
        study: the study's name (default the run folder's name); workers with the same name
            and storage share its trials.
        resume_study: carry on with a study started on other data or another target.
        out: the run folder (default ``takeoff-runs/<time>-<name>-tune``).
        refit: train the best params as a bundle (``out/model``) at the end.
        track, tracking_uri: log the run to MLflow (off by default in Python; see
            docs/tracking.md).

    Returns:
        ``(model, study)``: the refitted :class:`Model` (None without ``refit``) and the
        ``optuna.Study``.

    Raises:
        ConfigError: ``trials`` below 1, a family without a search space, a study of other
            data or another target (without ``resume_study``).
        DataSourceError: the storage cannot be reached (the URL shown without its password).
    """
    _require_training()
    from takeoff.tuning.search import tune as run_tune

    cfg = _config(config, target=target, time_budget=time_budget, seed=seed, drop=drop, family=family, metric=metric)
    if out is None:
        from datetime import datetime

        stem = Path(table or (str(data).rsplit("/", 1)[-1] if isinstance(data, (str, Path)) else "table")).stem
        out = Path("takeoff-runs") / f"{datetime.now():%Y%m%d-%H%M%S}-{stem}-tune"
    result = run_tune(data, cfg, Path(out), trials=trials, storage=storage, study_name=study, resume_study=resume_study,
                      refit=refit, table=table, sql=sql, encoding=encoding)
    if track or tracking_uri:
        from takeoff.tracking import log_tune

        log_tune(result, cfg, uri=tracking_uri)
    return result.model, result.study


def _trust_options(cfg, dp_epsilon, dp_delta, sensitive, mitigate):
    """The config with the privacy and fairness options applied (validated)."""
    if dp_epsilon is None and dp_delta is None and sensitive is None and mitigate is None:
        return cfg
    from takeoff.config import make_config

    data = cfg.model_dump()
    if dp_epsilon is not None:
        data["dp"]["epsilon"] = dp_epsilon
    if dp_delta is not None:
        data["dp"]["delta"] = dp_delta
    if sensitive is not None:
        columns = [sensitive] if isinstance(sensitive, str) else list(sensitive)
        data["fairness"]["sensitive"] = [c.strip() for item in columns for c in str(item).split(",") if c.strip()]
    if mitigate is not None:
        data["fairness"]["mitigate"] = mitigate
    return make_config(data, "options")


def _require_training() -> None:
    """Training needs the `train` extra; the base and lite installs only predict and serve."""
    from importlib.util import find_spec

    from takeoff.errors import MissingDependencyError

    for module, package in (("sklearn", "scikit-learn"), ("lightgbm", "lightgbm"), ("torch", "torch")):
        try:
            found = find_spec(module) is not None
        except ImportError:
            found = False
        if not found:
            raise MissingDependencyError(package, "training", extra="train")


def load(path: str | Path) -> Predictor:
    """Load a bundle written by :meth:`Model.save` or ``takeoff train`` (a :class:`Model`, a
    recommender or a search index, as its manifest says).

    Raises:
        BundleError: missing, unfinished, tampered with, or of an unknown format version.
    """
    return dispatch.load(path)


def inspect(data, target: str | list[str] | None = None, *, table=None, sql=None, encoding=None, config=None,
            sep=None, decimal=None) -> dict[str, Any]:
    """The inferred schema, task and data findings of a table, as a JSON-ready dict."""
    from takeoff.pipelines.prediction.prepare import inspect_table
    from takeoff.pipelines.run_dir import read_data

    cfg = _config(config, target=target)
    df, name = read_data(data, table, sql, encoding, sep, decimal)
    return inspect_table(df, cfg, name)


def monitor(bundle: str | Path, data, *, report: str | Path | None = None, table=None, sql=None, encoding=None,
            thresholds: dict[str, float] | None = None) -> dict[str, Any]:
    """How far new data drifted from the training profile saved in a bundle (PSI and KS per
    column, new categories, missing-rate shifts, prediction shift); optionally an HTML report.
    See :func:`takeoff.pipelines.prediction.monitor.monitor`."""
    from takeoff.pipelines.prediction.monitor import monitor as run_monitor

    return run_monitor(bundle, data, report=report, table=table, sql=sql, encoding=encoding, thresholds=thresholds)


def _config(config, **overrides):
    from takeoff.config import config_class, load_config, make_config

    if config is None or isinstance(config, (str, Path)):
        return load_config(config, **overrides)
    if isinstance(config, dict):
        return make_config({**config, **{k: v for k, v in overrides.items() if v is not None}})
    if isinstance(config, config_class()):
        data = config.model_dump()
        data.update({k: v for k, v in overrides.items() if v is not None})
        return make_config(data)
    raise ConfigError(f"config must be a path, a dict or a Config, got {type(config).__name__}")
