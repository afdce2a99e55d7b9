"""The AutoML step of a prediction run, judged throughout by the run's metric:

1. every candidate (:mod:`.candidates`: each family's portfolio of configurations, on a log
   target too where the target is skewed) is fitted per fold of the fold plan, giving
   out-of-fold predictions for every row (or validation predictions on one holdout split);
2. ensemble selection on those predictions picks the blend; while time is left and it still
   helps, the best candidates are fitted again with other seeds;
3. the decision rule (binary threshold, multiclass class weights, multilabel thresholds) is
   tuned on the blend's out-of-fold predictions for the metric;
4. the kept candidates are refitted on all rows with the rounds/epochs the folds found, when
   time allows (else the first fold's model serves).

A candidate that raises (out of memory included), runs out of time or predicts non-finite
values is recorded in ``info["failed"]`` (its reason and the seconds it took) and the run goes
on with the others; it fails only when no candidate finished, naming every reason.

Progress is kept in the run directory (``run.json``, each finished candidate's first-fold
model and out-of-fold predictions, per-epoch checkpoints) so that an interrupted run resumes.
"""

from __future__ import annotations

import logging
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from takeoff import registry
from takeoff.bundle import RUN_STATE, write_json
from takeoff.data.schema import Kind, Task
from takeoff.errors import BudgetError, ConfigError, TakeoffError, TrainingError, UnknownNameError
from takeoff.evaluation.importance import validation_importance
from takeoff.features.block import Features
from takeoff.models.base import Dataset, Family
from takeoff.models.blend import Blend, greedy_weights
from takeoff.pipelines.prediction.candidates import Candidate, candidates, family_names, fold_plan, private_families
from takeoff.pipelines.prediction.prepare import Prepared
from takeoff.training.context import FitContext
from takeoff.training.distributed import agree, is_main_process, rank_and_world

log = logging.getLogger("takeoff")

__all__ = ["Outcome", "family_names", "fit", "run_metric"]

MAX_SHARE = 3  # a candidate may use at most 1/3 of the selection time left...
FIRST_SHARE = 0.6  # ...but the first, which every run must have, up to 60%
STALL = 2  # extra seeds stop after this many in a row that do not improve the blend...
GAIN = 1e-4  # ...by at least this share of its score
MAX_RESEEDS = 12
MIN_FIRST_SECONDS = 2.0  # the first candidate gets at least this long: a run returns a model
CV_SHARE = 0.3  # cross-validation gives way to one holdout fold when the first candidate's other folds would take more of the time left
IMPORTANCE_SHARE = 0.05


@dataclass
class Outcome:
    """What a finished run hands to :class:`~takeoff.pipelines.prediction.model.Model`."""

    prepared: Prepared
    blend: Blend
    threshold: float | list[float] | None
    metrics: dict[str, Any]
    member_scores: dict[str, float]
    valid_pred: np.ndarray
    importance: dict[str, float]
    history: dict[str, dict[str, list[float]]]
    info: dict[str, Any] = field(default_factory=dict)
    member_ids: list[str] = field(default_factory=list)
    transforms: list[str | None] = field(default_factory=list)
    valid_y: np.ndarray | None = None
    valid_X: Features | None = None
    scored_rows: np.ndarray | None = None  # positions of the scored rows in train + valid rows


@dataclass
class _Fitted:
    candidate: Candidate
    model: Family  # the first fold's model (until refitted on all rows)
    oof: np.ndarray  # predictions on the scored rows
    seconds: float
    best_iterations: list[int | None]
    fold_rows: int  # training rows of one fold
    score: float = float("-inf")  # the run's metric on ``oof`` (higher is better)


def run_metric(config, task: Task) -> str:
    """The metric the run is judged by: ``config.metric`` or the task's default.

    Raises:
        UnknownNameError: the metric does not apply to this task.
    """
    from takeoff.evaluation.metrics import PRIMARY_METRIC, TASK_METRICS

    metric = config.metric or PRIMARY_METRIC[task.kind]
    if metric not in TASK_METRICS[task.kind]:
        raise UnknownNameError(f"metric for a {task.kind} task", metric, list(TASK_METRICS[task.kind]))
    return metric


def fit(prep: Prepared, config, run_dir: Path | None, deadline: float, state: dict[str, Any]) -> Outcome:
    """Fit, select, blend, tune the decision and refit within ``deadline`` (a
    ``time.monotonic()`` value).

    ``state`` is the run's resumable state (saved to ``run_dir/run.json`` after each
    candidate); candidates it lists as done are loaded instead of refitted.
    """
    from takeoff.evaluation.decision import decided_score, tune_decision
    from takeoff.evaluation.metrics import compute_metrics, tune_label_thresholds

    task = prep.task
    metric = run_metric(config, task)
    if config.dp.enabled:
        # every fit on the training rows spends privacy: one candidate, one holdout split, no
        # reseeds, blend or refit, so the ε spent is exactly the one fit's (docs/privacy.md)
        log.info("differential privacy (ε = %g): one DP-SGD fit on one holdout split; no cross-validation, "
                 "blend, reseeds or refit, and no early stopping", config.dp.epsilon)
        config = config.model_copy(update={"refit": False, "blend": False, "folds": 1})
    started = time.monotonic()
    total = max(deadline - started, 0.0)
    # time at the end for the report and the bundle; the refit gets what selection leaves
    reserve = min(max(2.0, 0.08 * total), 0.3 * total)
    select_deadline = deadline - reserve

    n_train = len(prep.train)
    y_all = np.concatenate([prep.train.y, prep.valid.y])
    names = family_names(config, task, prep.schema, rows=len(y_all), seconds=select_deadline - time.monotonic())
    if not names and config.dp.enabled:
        raise ConfigError(f"no model family that trains with differential privacy ({', '.join(private_families())}) "
                          f"applies to this {task.kind} table. Fix: drop --dp-epsilon.")
    if not names:
        raise BudgetError(f"no model family can train on this table within the time budget ({config.time_budget:g}s). "
                          "Fix: raise --time-budget, or name a family with --family.")
    pool = candidates(config, task, names, y_all)
    if config.dp.enabled:
        pool = pool[:1]
    folds = fold_plan(config, task, y_all, n_train, names, bool(prep.schema.names(Kind.IMAGE)))
    X_all = Features.concat([prep.train.X, prep.valid.X]) if len(folds) > 1 else None
    if len(folds) > 1:
        log.info("judging %d candidate(s) by %s on %d-fold cross-validation of %d rows", len(pool), metric, len(folds), len(y_all))
    else:
        log.info("judging %d candidate(s) by %s on %d validation rows", len(pool), metric, len(prep.valid))
    _say_minimum(config, deadline, reserve)
    # the importance of each column, measured after choosing, gets a share of the time too
    importance_seconds = max(1.0, IMPORTANCE_SHARE * total)
    fitter = _Fitter(prep, config, run_dir, state, folds, X_all, select_deadline - importance_seconds, pool)

    def judge(pred: np.ndarray) -> float:
        return decided_score(task, fitter.scored_y, pred, metric)

    fitter.refit, fitter.judge = config.refit, judge
    fitted: dict[str, _Fitted] = {}
    for i, cand in enumerate(pool):
        left = len(pool) - i
        result = fitter.run(cand, share=FIRST_SHARE if not fitted else 1.0 / min(left, MAX_SHARE), first=not fitted)
        if result is not None:
            fitted[cand.id] = result
    if not fitted:
        _none_finished(fitter.failures, fitter.errors, config)
    scores = {cid: f.score for cid, f in fitted.items()}
    weights, blend_score = _select(fitted, scores, judge, config.blend)
    if config.blend and config.family == "auto":
        weights, blend_score = _reseed(fitter, fitted, scores, weights, blend_score, judge)
    kept = [cid for cid, w in weights.items() if w > 0]
    scored_y, folds = fitter.scored_y, fitter.folds
    log.info("out-of-fold %s: %s; kept %s", metric, ", ".join(f"{c} {_shown(v, metric):.4f}" for c, v in scores.items()),
             " + ".join(f"{c} ({weights[c]:.2f})" for c in kept))

    oof = sum(fitted[c].oof * weights[c] for c in kept) / sum(weights[c] for c in kept)
    if task.is_multilabel:  # one threshold per label, each at its best F1
        rule = tune_label_thresholds(scored_y, oof)
    else:
        rule = tune_decision(task, scored_y, oof, metric, config.threshold_metric)
    metrics = compute_metrics(task, scored_y, oof, rule)
    chosen = Blend([fitted[c].model for c in kept], [weights[c] for c in kept])
    held_out = fitter.data[0][1]  # rows the first fold's models did not see
    importance = validation_importance(chosen.predict, task, held_out.X, held_out.y, config.seed,
                                       seconds=max(select_deadline - time.monotonic(), 0.5))
    history = {c: f.model.report.history for c, f in fitted.items()}

    refitted = []
    refit_started = time.monotonic()
    if config.refit:
        refitted = _refit(fitted, kept, prep, config, deadline - reserve, fitter.failures)
    fit_seconds = {c: round(f.seconds, 2) for c, f in fitted.items()}
    dropped = fitter.spent - sum(f.seconds for f in fitted.values())
    final = Blend([fitted[c].model for c in kept], [weights[c] for c in kept])
    return Outcome(
        prepared=prep,
        blend=final,
        threshold=rule,
        metrics=metrics,
        member_scores={c: _shown(v, metric) for c, v in scores.items()},
        valid_pred=oof,
        importance=importance,
        history=history,
        info={
            **({"dp": getattr(getattr(final.members[0], "inner", final.members[0]), "privacy", None)}
               if config.dp.enabled else {}),
            "metric": metric,
            "folds": len(folds),
            "scored_rows": int(len(scored_y)),
            "weights": {c: weights[c] for c in kept},
            "refitted": refitted,
            "fit_seconds": fit_seconds,
            "failed": fitter.failures,
            "time": {
                "fitting candidates": round(fitter.spent, 2),
                "of which dropped candidates": round(dropped, 2),
                "blend, decision and importance": round(refit_started - started - fitter.spent, 2),
                "refit on all rows": round(time.monotonic() - refit_started, 2),
            },
        },
        member_ids=kept,
        transforms=[fitted[c].candidate.transform for c in kept],
        valid_y=scored_y,
        valid_X=fitter.scored_X,
        scored_rows=np.arange(len(scored_y)) if fitter.cv else folds[0][1],
    )


def _say_minimum(config, deadline: float, reserve: float) -> None:
    """Warn, naming the least budget this run needs, when the time left cannot fit one model:
    the first candidate still gets its few seconds (a run returns a model), so the run ends
    past the budget."""
    now = time.monotonic()
    spent = config.time_budget - (deadline - now)  # reading, checking and preparing the data
    if deadline - reserve - now >= MIN_FIRST_SECONDS:
        return
    needed = int(np.ceil(spent + MIN_FIRST_SECONDS + max(2.0, reserve)))
    log.warning("the time budget (%gs) is below the least this run needs, about %ds (%.1fs went to reading and "
                "checking the data, and the first model needs about %gs); the run will end past it. Fix: "
                "--time-budget %d or more", config.time_budget, needed, spent, MIN_FIRST_SECONDS, needed)


def _out_of_memory(error: BaseException) -> bool:
    """MemoryError, or the RuntimeError torch raises when an allocation fails (CPU or GPU)."""
    text = str(error)
    return isinstance(error, MemoryError) or (isinstance(error, RuntimeError) and (
        "can't allocate memory" in text or "out of memory" in text.lower()))


def _reason(error: BaseException) -> str:
    """One line saying why a candidate failed."""
    if _out_of_memory(error):
        if not isinstance(error, MemoryError):  # torch's message: the allocation's size is the part worth saying
            found = re.search(r"allocate (\d+) bytes", str(error))
            return "ran out of memory" + (f" (it tried to allocate {int(found.group(1)) / 2**30:,.1f} GiB)" if found else "")
        return "ran out of memory" + (f" ({error})" if str(error) else "")
    text = str(error).strip().splitlines()[0].rstrip(".") if str(error).strip() else ""
    if isinstance(error, BudgetError):
        fold = getattr(error, "fold", None)
        return "ran out of time" + (f" in fold {fold[0]} of {fold[1]}" if fold else "") + (f": {text}" if text else "")
    kind = "" if isinstance(error, TakeoffError) else f"{type(error).__name__}: "
    return (kind + text) or type(error).__name__


def _none_finished(failures: list[dict[str, Any]], errors: list[BaseException], config) -> None:
    """Raise the error of a run where no candidate finished: the one failure's own error, or
    every candidate's reason in one message."""
    if not failures:
        raise BudgetError(f"the time budget ({config.time_budget:g}s) ended before any model was fitted. "
                          "Fix: raise --time-budget.")
    if len(errors) == 1 and isinstance(errors[0], TakeoffError):  # its own message names the fix
        raise errors[0]
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}  # a family's candidates that failed alike, once
    for f in failures:
        grouped.setdefault((f["family"], f["reason"]), []).append(f)
    reasons = "; ".join(
        f"{group[0]['candidate'] if len(group) == 1 else f'{family} ({len(group)} candidates)'} {reason} "
        f"(after {sum(f['seconds'] for f in group):.2g}s)" for (family, reason), group in grouped.items())
    if all(f["kind"] == "time" for f in failures):
        raise BudgetError(f"no model finished within the time budget ({config.time_budget:g}s): {reasons}. "
                          "Fix: raise --time-budget, or name a faster family with --family.")
    fix = ("give the family smaller settings (hidden_sizes, batch_size, max_length) in the config, or choose "
           "another family with --family" if all(f["kind"] == "memory" for f in failures)
           else "address the first reason, or choose another family with --family")
    raise TrainingError(f"no model could be trained: {reasons}. Fix: {fix}.", failures=failures)


def _shown(value: float, metric: str) -> float:
    """A selection score (higher is better) as the metric reads (losses positive again)."""
    from takeoff.evaluation.metrics import greater_is_better

    return value if greater_is_better(metric) else -value


def _select(fitted: dict[str, _Fitted], scores: dict[str, float], judge, blend: bool) -> tuple[dict[str, float], float]:
    """The best single candidate, or the ensemble selection when it scores better."""
    best = max(scores, key=scores.get)
    weights = {cid: float(cid == best) for cid in fitted}
    if not blend or len(fitted) < 2:
        return weights, scores[best]
    order = list(fitted)
    blend_w, blend_score = greedy_weights([fitted[c].oof for c in order], judge)
    if blend_score > scores[best] + 1e-9:
        return dict(zip(order, blend_w)), blend_score
    return weights, scores[best]


def _reseed(fitter: _Fitter, fitted, scores, weights, blend_score, judge):
    """Use the time left: fit the best candidates again with other seeds while the blend
    improves (stop after :data:`STALL` additions in a row that do not help)."""
    stall, offset = 0, 1
    while stall < STALL and offset <= MAX_RESEEDS and fitter.time_left() > 0:
        ranked = sorted((c for c in fitted if fitted[c].candidate.seed_offset == 0), key=scores.get, reverse=True)
        base = fitted[ranked[(offset - 1) % min(len(ranked), 3)]]
        cand = base.candidate.reseeded(offset)
        offset += 1
        # the candidate's measured time, with some margin, or do not start it
        if base.seconds * 1.2 > fitter.time_left():
            stall += 1
            continue
        result = fitter.run(cand, share=1.0, first=False)
        if result is None:
            break
        fitted[cand.id] = result
        scores[cand.id] = result.score
        new_weights, new_score = _select(fitted, scores, judge, True)
        if new_score > blend_score + GAIN * max(1.0, abs(blend_score)):
            weights, blend_score, stall = new_weights, new_score, 0
            log.info("%s: the blend improves to %.5f", cand.id, blend_score)
        else:
            weights = {c: weights.get(c, 0.0) for c in fitted}
            stall += 1
    return weights, blend_score


class _WarmUp:
    """Each family's ``warm_up`` (imports: seconds each for torch, transformers, scikit-learn),
    run in order on a background thread while the first candidates fit, so that a family's
    imports are not on its candidates' clock nor spent before the first model."""

    def __init__(self, names: list[str], report: bool = False):
        import threading

        self.done = {n: threading.Event() for n in names}
        self.thread = threading.Thread(target=self._run, args=(names, report), name="takeoff-warm-up", daemon=True)
        self.thread.start()

    def _run(self, names: list[str], report: bool) -> None:
        for name in names:
            try:
                registry.get(name).warm_up()
            except Exception as error:  # noqa: BLE001 (the family's fit says what is wrong)
                log.debug("%s: warm-up failed: %s", name, error)
            finally:
                self.done[name].set()
        if report:  # the report's charts: matplotlib takes seconds to import, after the budget otherwise
            try:
                import matplotlib.backends.backend_svg  # noqa: F401
                import matplotlib.figure  # noqa: F401
            except ImportError:
                pass

    def ready(self, name: str, timeout: float | None = None) -> bool:
        """Wait at most ``timeout`` seconds for ``name``'s warm-up (run it here when it was not
        planned); whether it is done."""
        if name not in self.done:
            registry.get(name).warm_up()
            return True
        return self.done[name].wait(timeout)


class _Fitter:
    """Fits one candidate on every fold of the plan, within its share of the selection time,
    saving it in the run directory for a resume."""

    def __init__(self, prep: Prepared, config, run_dir: Path | None, state: dict[str, Any], folds, X_all, deadline: float,
                 pool: list[Candidate] = ()):
        self.prep, self.config, self.run_dir, self.state = prep, config, run_dir, state
        self.folds, self.deadline = folds, deadline
        self.done = state.setdefault("members", {})
        self.refit = True
        self.measured: dict[str, float] = {}  # family name → seconds of its last candidate
        self.fitted: list[_Fitted] = []
        self.span = max(deadline - time.monotonic(), 0.0)
        self.spent = 0.0  # seconds in candidate fits, the dropped ones included
        self.judge = None  # scores out-of-fold predictions (set by fit)
        # candidates that raised, ran out of time or memory: {candidate, family, reason, kind, seconds}
        self.failures: list[dict[str, Any]] = []
        self.errors: list[BaseException] = []  # their exceptions, in the same order
        self.warming = _WarmUp(list(dict.fromkeys(c.family for c in pool)), report=run_dir is not None)
        self.cand_started: float | None = None  # when the candidate being fitted started (after its warm-up)
        self.y_all, self.X_all = np.concatenate([prep.train.y, prep.valid.y]), X_all
        if state.get("folds") == 1 and len(folds) > 1:  # the interrupted run had given way to one fold
            self.folds = folds = folds[:1]
        if X_all is not None:
            self.data = [(Dataset(X_all.take(tr), self.y_all[tr]), Dataset(X_all.take(va), self.y_all[va])) for tr, va in folds]
        else:
            self.data = [(prep.train, prep.valid)]

    @property
    def cv(self) -> bool:
        return len(self.folds) > 1

    @property
    def scored_y(self) -> np.ndarray:
        """The targets of the rows candidates are scored on: all rows (cross-validation), or
        the holdout fold's."""
        return self.y_all if self.cv else self.data[0][1].y

    @property
    def scored_X(self) -> Features:
        return self.X_all if self.cv else self.data[0][1].X

    def _one_fold(self, first_fold_seconds: float) -> None:
        """Judge on the first fold's held-out rows only: cross-validation of this table would
        take too much of the budget (measured on the first candidate's first fold)."""
        log.info("the other %d folds would take ~%.0fs of the %.0fs left: judging on the first fold's %d held-out rows "
                 "instead", len(self.folds) - 1, first_fold_seconds * (len(self.folds) - 1), self.time_left(),
                 len(self.folds[0][1]))
        self.folds, self.data = self.folds[:1], self.data[:1]
        self.state["folds"] = 1

    def time_left(self) -> float:
        """Seconds left for fitting candidates: the selection deadline less the time the refit
        of the best candidates so far on all rows is estimated to take."""
        return self.deadline - self.refit_estimate() - time.monotonic()

    def refit_estimate(self) -> float:
        """The refit of the two best candidates so far (one fold's time, scaled to all rows),
        at most a quarter of the selection time: a candidate not refitted keeps its first
        fold's model, so the refit must not starve the search."""
        if not self.refit or not self.fitted:
            return 0.0
        best = sorted(self.fitted, key=lambda f: f.score, reverse=True)[:2]
        needed = sum(f.seconds / len(f.best_iterations) * len(self.y_all) / f.fold_rows for f in best)
        return min(1.3 * needed + 1.0, 0.25 * self.span)

    def run(self, cand: Candidate, share: float, first: bool) -> _Fitted | None:
        """The fitted candidate, or None when it was skipped or failed (recorded in
        :attr:`failures`: one candidate's failure never discards the others' results)."""
        started = time.monotonic()
        self.cand_started = None
        try:
            return self._run(cand, share, first)
        except Exception as error:  # noqa: BLE001 (any family, any library: MemoryError included)
            if rank_and_world()[1] > 1:  # under --devices a rank's failure ends the run: the ranks must agree
                raise
            self.failed(cand, error, time.monotonic() - (self.cand_started or started))
            return None
        finally:
            self.spent += time.monotonic() - started

    def failed(self, cand: Candidate, error: BaseException, seconds: float) -> None:
        """Record why ``cand`` did not finish (the error itself is re-raised when it is the
        run's only failure)."""
        kind = "time" if isinstance(error, BudgetError) else "memory" if _out_of_memory(error) else "error"
        entry = {"candidate": cand.id, "family": cand.family, "reason": _reason(error), "kind": kind,
                 "seconds": round(seconds, 2)}
        log.warning("%s: failed after %.1fs, %s; the run goes on with the other candidates", cand.id, seconds,
                    entry["reason"])
        if kind == "error" and not isinstance(error, TakeoffError):
            log.debug("%s: the failure's traceback", cand.id, exc_info=error)
        self.failures.append(entry)
        self.errors.append(error)

    def _run(self, cand: Candidate, share: float, first: bool) -> _Fitted | None:
        task = self.prep.task
        saved = self.run_dir / "candidates" / cand.id if self.run_dir else None
        if cand.id in self.done and saved is not None and (saved / "oof.npy").exists():
            log.info("%s: loaded from the interrupted run", cand.id)
            info = self.done[cand.id]
            oof = np.load(saved / "oof.npy", allow_pickle=False)
            result = _Fitted(cand, cand.restore(saved / "model", task), oof, info["seconds"], info["best_iterations"],
                             info["fold_rows"], self.judge(oof))
            self.fitted.append(result)
            return result
        # until a model is fitted, one candidate of each family gets its few seconds even past the
        # budget (a run returns a model when any family can make one); the rest wait for the time left
        failed_family = any(f["family"] == cand.family for f in self.failures)
        if not first or failed_family:
            expected = self.measured.get(cand.family)
            # agree(): under torch.distributed (--devices) every rank follows rank 0's clock
            if agree(self.time_left() <= 0 or (expected is not None and 1.2 * expected > self.time_left())):
                log.info("%s: skipped, %s", cand.id, "the time budget is spent" if self.time_left() <= 0 else
                         f"it needs ~{expected:.0f}s and {max(self.time_left(), 0):.0f}s are left")
                return None
        # its imports, done beside the candidates before it: waited for while time is left
        if not self.warming.ready(cand.family, None if first else max(self.time_left(), 0.0)):
            log.info("%s: skipped, its libraries were still loading when the time budget was spent", cand.id)
            return None
        started = self.cand_started = time.monotonic()
        cand_deadline = started + max(self.time_left(), 0.0) * share
        if first and not failed_family:  # something must come back: the first candidate gets at least a few seconds
            cand_deadline = max(cand_deadline, started + MIN_FIRST_SECONDS)
        first_model, preds, iterations = None, [], []
        j = 0
        while j < len(self.folds):
            (train, valid), k = self.data[j], len(self.folds)
            fold_started = time.monotonic()
            # the first fold may take twice its even share: later folds are given what it leaves
            fold_deadline = fold_started + max(cand_deadline - fold_started, 0.0) * min(1.0, (2 if j == 0 else 1) / (k - j))
            checkpoints = None
            if self.run_dir:
                checkpoints = self.run_dir / "checkpoints" / cand.id
                checkpoints = checkpoints / f"fold-{j}" if k > 1 else checkpoints
            ctx = FitContext(deadline=fold_deadline, seed=self.config.seed + cand.seed_offset, checkpoint_dir=checkpoints,
                             warn=log.warning, device=self.config.device,
                             dp=self.config.dp if self.config.dp.enabled else None)
            model = cand.create(task)
            try:
                model.fit(train, valid, ctx)
            except BudgetError as error:
                # what all folds would have needed, so the family's next candidates are not started in vain
                self.measured[cand.family] = (time.monotonic() - started) * k / (j + 1) * 2
                if k > 1:
                    error.fold = (j + 1, k)  # said in the reason
                raise
            pred = np.asarray(model.predict(valid.X), dtype=np.float64)
            if not np.isfinite(pred).all():
                raise TrainingError(f"{cand.id} predicts NaN or infinite values. Fix: check the data for extreme "
                                    "values, or choose another family with --family.")
            first_model = first_model or model
            preds.append(pred)
            iterations.append(model.report.best_iteration)
            if first and j == 0 and k > 1 and agree((time.monotonic() - fold_started) * (k - 1) > CV_SHARE * self.time_left()):
                self._one_fold(time.monotonic() - fold_started)
            j += 1
        if self.cv:
            oof = np.zeros((len(self.y_all),) + preds[0].shape[1:])
            for (_, scored), pred in zip(self.folds, preds):
                oof[scored] = pred
        else:
            oof = preds[0]
        seconds = time.monotonic() - started
        log.info("%s: fitted in %.1fs (%s, best iteration %s)", cand.id, seconds, first_model.report.stopped_by,
                 first_model.report.best_iteration)
        result = _Fitted(cand, first_model, oof, seconds, iterations, len(self.data[0][0]), self.judge(oof))
        self.measured[cand.family] = seconds
        self.fitted.append(result)
        if self.run_dir and is_main_process():
            tmp = saved.with_name(saved.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            (tmp / "model").mkdir(parents=True)
            first_model.save(tmp / "model")
            np.save(tmp / "oof.npy", oof, allow_pickle=False)
            shutil.rmtree(saved, ignore_errors=True)
            tmp.rename(saved)
            self.done[cand.id] = {"seconds": seconds, "best_iterations": iterations, "fold_rows": result.fold_rows}
            write_json(self.run_dir / RUN_STATE, self.state)
        return result


def _refit(fitted: dict[str, _Fitted], kept: list[str], prep: Prepared, config, deadline: float,
           failures: list[dict[str, Any]]) -> list[str]:
    """Refit the kept candidates on all rows with the rounds/epochs the folds found, while
    time allows; a candidate not refitted (out of time, or its refit failed: recorded in
    ``failures``) keeps its first fold's model."""
    full = Dataset(Features.concat([prep.train.X, prep.valid.X]), np.concatenate([prep.train.y, prep.valid.y]))
    refitted = []
    for cid in kept:
        old = fitted[cid]
        known = [i for i in old.best_iterations if i]
        if known:  # the mean over folds is a steadier estimate than the first fold's alone
            old.model.report.best_iteration = int(round(float(np.mean(known))))
        ratio = len(full) / old.fold_rows
        overrides = old.model.refit_params(ratio)
        needed = old.seconds / len(old.best_iterations) * ratio * 1.3 + 1.0
        if overrides is None or agree(time.monotonic() + needed > deadline):
            if overrides is not None:
                log.info("%s: not refitted on all rows (needs ~%.0fs, budget left %.0fs)", cid, needed, deadline - time.monotonic())
            continue
        cand = old.candidate
        params = {**old.model.params.model_dump(), **overrides}
        model = Candidate(cid, cand.family, params, cand.transform, cand.seed_offset).create(prep.task)
        ctx = FitContext(deadline=deadline, seed=config.seed + cand.seed_offset, warn=log.warning, device=config.device)
        log.info("%s: refitting on all %d rows", cid, len(full))
        began = time.monotonic()
        try:
            report = model.fit(full, None, ctx)
        except Exception as error:  # noqa: BLE001 (the validated first-fold model still serves)
            reason = _reason(error)
            log.warning("%s: the refit on all rows failed after %.1fs, %s; keeping the validated model", cid,
                        time.monotonic() - began, reason)
            failures.append({"candidate": cid, "family": cand.family, "reason": f"refit on all rows {reason}",
                             "kind": "refit", "seconds": round(time.monotonic() - began, 2)})
            continue
        if report.stopped_by == "time_budget":
            log.info("%s: refit cut by the time budget; keeping the validated model", cid)
            continue
        model.report.history = old.model.report.history  # the learning curve that was validated
        old.model = model
        refitted.append(cid)
    return refitted
