"""What a search adds to the bundle's report and manifest: the optimisation history, the
parameter importances and the per-trial table."""

from __future__ import annotations

import html
import json
import logging
from typing import Any

from takeoff.tuning.space import decode
from takeoff.tuning.study import redact

log = logging.getLogger("takeoff")

SHOWN_TRIALS = 200


def trial_rows(study, metric: str) -> list[dict[str, Any]]:
    """One row per trial: number, state, score (as the metric reads), seconds and params."""
    from takeoff.tuning.search import automl_shown

    rows = []
    for t in study.get_trials(deepcopy=False):
        seconds = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete and t.datetime_start else None
        rows.append({
            "trial": t.number,
            "state": t.state.name.lower(),
            metric: round(automl_shown(t.value, metric), 6) if _scored(t) else None,
            "seconds": None if seconds is None else round(seconds, 2),
            "last_step": t.last_step,
            "params": {k: decode(v) for k, v in t.params.items()},
        })
    return rows


def importances(study) -> dict[str, float]:
    """Optuna's fANOVA parameter importances, or {} with fewer than two finished trials (or
    when they cannot be computed, e.g. every trial scored the same)."""
    import optuna

    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(done) < 2:
        return {}
    try:
        found = optuna.importance.get_param_importances(study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))
    except Exception as exc:  # a degenerate study (one param value, equal scores): no section rather than no bundle
        log.info("parameter importances not computed: %s", exc)
        return {}
    return {k: round(float(v), 4) for k, v in found.items()}


def summary(study, metric: str, url: str, name: str) -> dict[str, Any]:
    """The search in the manifest's ``training.tuning``."""
    from takeoff.tuning.search import automl_shown

    states = [t.state.name.lower() for t in study.get_trials(deepcopy=False)]
    best = study.best_trial
    return {
        "study": name,
        "storage": redact(url),
        "trials": len(states),
        "complete": states.count("complete"),
        "pruned": states.count("pruned"),
        "failed": states.count("fail"),
        "best_trial": best.number,
        "best_score": round(automl_shown(best.value, metric), 6),
        "best_params": {k: decode(v) for k, v in best.params.items()},
        "importance": importances(study),
    }


def report_sections(study, metric: str) -> list[dict[str, str]]:
    """Report sections (for :func:`takeoff.evaluation.report.write_report`): optimisation
    history, parameter importances and the trial table."""
    from takeoff.evaluation import plots
    from takeoff.tuning.search import automl_shown

    trials = study.get_trials(deepcopy=False)
    values = [automl_shown(t.value, metric) if _scored(t) else None for t in trials]
    sections = []
    if any(v is not None for v in values):
        shown = values if _higher(metric) else [None if v is None else -v for v in values]
        caption = (f"Each finished trial's out-of-fold {metric} (dots) and the best so far (line)"
                   + ("" if _higher(metric) else f"; the axis shows −{metric}, so higher is better") + ".")
        sections.append({"anchor": "tuning-history", "title": "Hyperparameter search",
                         "html": _figure("Optimisation history", caption, plots.optimization_history_svg(shown, metric))})
    found = importances(study)
    if found:
        sections.append({"anchor": "tuning-importance", "title": "Parameter importances",
                         "html": _figure("What the score depends on", "fANOVA importance of each searched parameter "
                                         "over the finished trials (they sum to 1).", plots.importance_svg(found))})
    sections.append({"anchor": "tuning-trials", "title": "Trials", "html": _table(trial_rows(study, metric)[:SHOWN_TRIALS], metric)})
    return sections


def _scored(trial) -> bool:
    """A finished trial's value is its score (a pruned one's is its last intermediate loss)."""
    return trial.state.name == "COMPLETE" and trial.value is not None


def _higher(metric: str) -> bool:
    from takeoff.evaluation.metrics import greater_is_better

    return greater_is_better(metric)


def _figure(title: str, caption: str, svg: str) -> str:
    return (f'<div class="grid"><div class="card figure wide"><h3>{html.escape(title)}</h3>'
            f"<p>{html.escape(caption)}</p>{svg}</div></div>")


def _table(rows: list[dict[str, Any]], metric: str) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ("trial", "state", metric, "seconds", "params"))
    body = []
    for r in rows:
        score = "" if r[metric] is None else f"{r[metric]:.5f}"
        seconds = "" if r["seconds"] is None else f"{r['seconds']:.1f}"
        params = ", ".join(f"{k}={json.dumps(v)}" for k, v in r["params"].items())
        body.append(f"<tr><td>{r['trial']}</td><td>{html.escape(r['state'])}</td><td>{score}</td><td>{seconds}</td>"
                    f"<td>{html.escape(params)}</td></tr>")
    return f'<div class="card table-card"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'
