"""``takeoff tune``: search a family's hyperparameters with Optuna, then refit the best.

Each trial fits the proposed params on the folds ``auto`` would use for this table (k-fold
cross-validation on small tables, the holdout split on large ones) and is judged by the run's
metric, exactly as ``auto`` judges a candidate. The first fold reports its validation loss
after every boosting round or epoch (``FitContext.report``), so the pruner can stop a trial
that is already worse than the median of the trials before it at that point. When the trials
are done (or the time left is what the refit needs) the best params are trained as an
ordinary run (:func:`takeoff.pipelines.prediction.train.train`, ``--family`` with those
params) whose report gains the search's sections.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from takeoff import registry
from takeoff.errors import BudgetError, ConfigError, TakeoffError
from takeoff.tuning import space
from takeoff.tuning.study import STUDY_FILE, connect, fingerprint, open_study, redact, storage_url

log = logging.getLogger("takeoff")

REFIT_SHARE = 0.15  # of the budget kept for the refit, at least
FAIR_SHARE = 2.0  # a trial may take this many times its even share of the search time left
MIN_SHARE = 0.25  # ...and at least this share of it (a trial cut short by time is judged unfairly)
WORKER = f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class TuneResult:
    """What :func:`tune` hands back: the refitted model (None with ``refit=False``), the
    Optuna study, and where things were written."""

    model: Any
    study: Any
    storage: str
    trials_run: int

    def __iter__(self):  # model, study = takeoff.tune(...)
        return iter((self.model, self.study))


def tune(data, cfg, out: Path, *, trials: int, storage: str | None = None, study_name: str | None = None,
         resume_study: bool = False, refit: bool = True, table=None, sql=None, encoding=None) -> TuneResult:
    """Search the hyperparameters of ``cfg.family`` (or, for "auto", of every family that
    declares a search space and applies to the table) within ``cfg.time_budget`` seconds.

    Args:
        data, table, sql, encoding: the training table (as for ``takeoff.train``).
        cfg: the run's Config; ``family``, ``metric``, ``seed``, ``folds`` and the families'
            params (the values a search does not set) apply.
        out: the run folder: ``study.db`` (the default storage) and ``model/`` (the bundle).
        trials: trials the study should have in all (across every worker sharing it).
        storage: an SQLAlchemy URL shared by workers; default an SQLite file in ``out``.
        study_name: the study to create or join; default the run folder's name.
        resume_study: carry on with a study started on other data or another target.
        refit: train the best params as a bundle in ``out/model`` at the end.

    Raises:
        ConfigError: ``trials`` below 1, a family without a search space, a study of another
            target or data (without ``resume_study``).
        DataSourceError: the storage cannot be reached.
    """
    if trials < 1:
        raise ConfigError(f"--trials must be at least 1, got {trials}. Fix: pass --trials 20 (or more).")
    if cfg.target is None:
        raise ConfigError("no target column given. Fix: pass --target COLUMN.")
    started = time.monotonic()
    deadline = started + cfg.time_budget
    families = _families(cfg)
    out = Path(out)
    if (out / "model").exists():
        raise ConfigError(f"{out / 'model'} already exists. Fix: choose another --out, or remove it.")
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        return _tune(data, cfg, out, trials, storage, study_name, resume_study, refit, table, sql, encoding,
                     families, deadline)
    except BaseException:
        # a run that failed before its first trial leaves nothing behind; a study with trials stays
        # (for --resume-study, or for the workers sharing it)
        if created and not _has_trials(out):
            shutil.rmtree(out, ignore_errors=True)
        raise


def _has_trials(out: Path) -> bool:
    db = out / STUDY_FILE
    if not db.is_file():
        return any(out.iterdir())
    import sqlite3

    try:
        with sqlite3.connect(db) as con:
            return con.execute("select count(*) from trials").fetchone()[0] > 0
    except sqlite3.Error:
        return False


def _tune(data, cfg, out: Path, trials: int, storage, study_name, resume_study: bool, refit: bool, table, sql,
          encoding, families: list[str], deadline: float) -> TuneResult:
    import optuna

    from takeoff.pipelines.prediction import automl
    from takeoff.pipelines.prediction.prepare import prepare
    from takeoff.pipelines.run_dir import read_data

    url = storage_url(storage, out)
    rdb = connect(url)
    df, name = read_data(data, table, sql, encoding)
    prep = prepare(df, cfg, name)
    metric = automl.run_metric(cfg, prep.task)
    facts = {"target": str(cfg.target), "task": prep.task.kind, "metric": metric, "families": families,
             "data_fingerprint": fingerprint(df)}
    del df
    study_name = study_name or out.resolve().name
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study, created = open_study(rdb, study_name, facts, cfg.seed, resume_study)
    log.info("%s study '%s' in %s: %s on %s, judged by %s", "created" if created else "joined", study_name, redact(url),
             " / ".join(families), name, metric)

    judge = _Judge(prep, cfg, families, metric)
    refit_seconds = max(REFIT_SHARE * cfg.time_budget, 2.0) if refit else 0.0
    seconds: list[float] = []
    ran = 0
    while True:
        done = _counted(study)
        if done >= trials:
            break
        left = deadline - time.monotonic() - _refit_estimate(refit_seconds, seconds, judge.k)
        if left <= (np.median(seconds) if seconds else 0.0) * 0.5 or left <= 0:
            log.info("time for trials is up after %d trial(s) in this worker", ran)
            break
        trial = study.ask()
        if _counted(study, below=trial.number) >= trials:  # another worker took the last one meanwhile
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            trial.set_user_attr("skipped", "the study already had its trials")
            break
        t0 = time.monotonic()
        # an even share of the time left (twice that for the early ones), but never so little that
        # a network cannot train: a search bound by time rather than by trials asks for many
        share = min(left, max(FAIR_SHARE * left / max(trials - done, 1), MIN_SHARE * left))
        try:
            value = judge(trial, time.monotonic() + share)
        except optuna.TrialPruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED, skip_if_finished=True)
            log.info("trial %d: pruned after %.1fs", trial.number, time.monotonic() - t0)
        except TakeoffError as exc:  # e.g. a configuration that cannot train in its share of time
            trial.set_user_attr("error", str(exc))
            study.tell(trial, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
            (log.info if isinstance(exc, BudgetError) else log.warning)("trial %d failed: %s", trial.number, exc)
        except BaseException:  # a bug, or Ctrl-C: the trial must not stay "running" in a shared study
            study.tell(trial, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
            raise
        else:
            study.tell(trial, value, skip_if_finished=True)
            log.info("trial %d: %s %.5f in %.1fs (best %.5f)", trial.number, metric, automl_shown(value, metric),
                     time.monotonic() - t0, automl_shown(study.best_value, metric))
        seconds.append(time.monotonic() - t0)
        ran += 1
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        raise BudgetError(f"no trial finished within the time budget ({cfg.time_budget:g}s). Fix: raise --time-budget.")
    model = None
    if refit:
        model = _refit(data, cfg, out, study, families, metric, judge.k, deadline, table, sql, encoding, url, study_name)
    return TuneResult(model, study, url, ran)


def automl_shown(value: float, metric: str) -> float:
    """A score (higher is better) as the metric reads (losses positive again)."""
    from takeoff.evaluation.metrics import greater_is_better

    return value if greater_is_better(metric) else -value


def _families(cfg) -> list[str]:
    if cfg.family != "auto":
        space.declared_space(cfg.family)  # raises for an unknown family or one without a space
        return [cfg.family]
    names = [n for n in registry.auto() if registry.get(n).search_space and not registry.get(n).needs_text]
    if not names:
        raise ConfigError("no installed family declares a search space. Fix: name one with --family.")
    return names


def _counted(study, below: int | None = None) -> int:
    """Trials that count towards the study's total: finished, pruned or running (not failed),
    only those numbered below ``below`` when given."""
    import optuna

    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.RUNNING)
    found = study.get_trials(deepcopy=False, states=states)
    return sum(1 for t in found if below is None or t.number < below)


def _refit_estimate(floor: float, seconds: list[float], k: int) -> float:
    """Seconds the refit will take: the slowest trial again, plus one more fit on all rows."""
    if floor == 0.0:
        return 0.0
    return max(floor, (max(seconds) * (k + 1) / k + 3.0) if seconds else floor)


class _Judge:
    """Fits one trial's params on the fold plan and scores it as ``auto`` would."""

    def __init__(self, prep, cfg, families: list[str], metric: str):
        from takeoff.features.block import Features
        from takeoff.models.base import Dataset
        from takeoff.pipelines.prediction.candidates import CV_ROWS, fold_plan

        self.prep, self.cfg, self.families, self.metric = prep, cfg, families, metric
        y_all = np.concatenate([prep.train.y, prep.valid.y])
        n_train = len(prep.train)
        k = cfg.folds
        if k is None and all(registry.get(f).cross_validates for f in families):
            k = next((folds for limit, folds in CV_ROWS if len(y_all) <= limit), 1)
        plan_cfg = cfg.model_copy(update={"folds": k or 1})
        folds = fold_plan(plan_cfg, prep.task, y_all, n_train, families, False)
        self.k = len(folds)
        if self.k > 1:
            X_all = Features.concat([prep.train.X, prep.valid.X])
            self.data = [(Dataset(X_all.take(tr), y_all[tr]), Dataset(X_all.take(va), y_all[va])) for tr, va in folds]
            self.scored = [va for _, va in folds]
            self.y = y_all
        else:
            self.data = [(prep.train, prep.valid)]
            self.scored = [np.arange(len(prep.valid))]
            self.y = prep.valid.y
        for family in families:
            registry.get(family).warm_up()

    def __call__(self, trial, deadline: float) -> float:
        import optuna

        from takeoff.evaluation.decision import decided_score
        from takeoff.pipelines.prediction.candidates import Candidate
        from takeoff.training.context import FitContext

        trial.set_user_attr("worker", WORKER)  # which process ran it (a shared study has several)
        prefix = len(self.families) > 1
        family = trial.suggest_categorical("family", self.families) if prefix else self.families[0]
        params = {**getattr(self.cfg.models, family).model_dump(), **space.suggest(trial, family, prefix)}
        cand = Candidate(f"trial{trial.number}", family, params)

        def report(step: int, loss: float) -> None:
            trial.report(-loss, step)  # the study maximises; a loss is better lower
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at step {step}")

        pred = None
        for i, ((train, valid), rows) in enumerate(zip(self.data, self.scored)):
            model = cand.create(self.prep.task)
            fold_deadline = time.monotonic() + (deadline - time.monotonic()) / (len(self.data) - i)  # an even share each
            ctx = FitContext(deadline=fold_deadline, seed=self.cfg.seed, progress=False, warn=log.warning,
                             device=self.cfg.device, report=report if i == 0 else None)
            stopped = model.fit(train, valid, ctx).stopped_by
            if stopped == "time_budget":
                trial.set_user_attr("cut_by_time", True)
            p = model.predict(valid.X)
            if pred is None:
                pred = np.zeros((len(self.y),) + p.shape[1:], dtype=np.float64)
            pred[rows] = p
        return float(decided_score(self.prep.task, self.y, pred, self.metric))


def _refit(data, cfg, out: Path, study, families, metric: str, k: int, deadline: float, table, sql, encoding,
           url: str, study_name: str):
    """Train the study's best params as an ordinary run into ``out/model``."""
    from takeoff.config import make_config
    from takeoff.pipelines.prediction import train as prediction
    from takeoff.tuning.report import report_sections, summary

    best = study.best_trial
    family = best.params.get("family", families[0])
    params = {**getattr(cfg.models, family).model_dump(mode="json"), **space.params_of(best.params, family)}
    data_cfg = cfg.model_dump(mode="json")
    data_cfg["models"] = {**data_cfg["models"], family: params}
    budget = max(deadline - time.monotonic(), 5.0)
    refit_cfg = make_config({**data_cfg, "family": family, "folds": k, "time_budget": budget})
    log.info("refitting trial %d's %s params on all rows (%.0fs)", best.number, family, budget)
    info = {"tuning": summary(study, metric, url, study_name)}
    return prediction.train(data, refit_cfg, out / "model", table, sql, encoding,
                            report_sections=report_sections(study, metric), info=info)
