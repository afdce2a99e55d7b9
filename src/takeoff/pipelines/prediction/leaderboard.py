"""The candidates a run tried, as a table (:meth:`Model.leaderboard`), and the model's notebook
view (:meth:`Model._repr_html_`)."""

from __future__ import annotations

import html
from typing import Any

import pandas as pd

COLUMNS = ("id", "family", "fit_seconds", "predict_seconds", "kept", "weight")


def leaderboard(manifest: dict[str, Any]) -> pd.DataFrame:
    """One row per candidate the run fitted and scored, best first.

    Columns: ``id`` (the candidate: family, then ``.2``, ``.log``, ``.s1``... for its variants),
    ``family``, the run's metric (e.g. ``roc_auc``: its out-of-fold or validation score),
    ``fit_seconds``, ``predict_seconds`` (when measured, else missing), ``kept`` (a member of the
    final model) and ``weight`` (its weight in the blend, 0 when not kept).
    """
    training = manifest.get("training", {})
    metric = training.get("metric") or "score"
    scores: dict[str, float] = dict(manifest.get("member_scores", {}))
    weights = {m.get("id", m["family"]): float(m["weight"]) for m in manifest.get("members", [])}
    for member in weights:
        scores.setdefault(member, float("nan"))
    fit = training.get("fit_seconds", {})
    predict = training.get("predict_seconds", {})
    rows = [{"id": cid, "family": cid.split(".")[0], metric: score, "fit_seconds": fit.get(cid),
             "predict_seconds": predict.get(cid), "kept": cid in weights, "weight": weights.get(cid, 0.0)}
            for cid, score in scores.items()]
    frame = pd.DataFrame(rows, columns=["id", "family", metric, *COLUMNS[2:]])
    frame[["fit_seconds", "predict_seconds"]] = frame[["fit_seconds", "predict_seconds"]].astype(float)
    if not frame.empty:
        from takeoff.evaluation.metrics import greater_is_better

        try:
            ascending = not greater_is_better(metric)
        except KeyError:  # no metric recorded, or one this version does not know: higher first
            ascending = False
        frame = frame.sort_values(metric, ascending=ascending, na_position="last", kind="stable")
    return frame.reset_index(drop=True)


def repr_html(model) -> str:
    """Task, target, metrics and leaderboard as a small HTML block (Jupyter's rich display)."""
    training = model.manifest.get("training", {})
    metrics = {k: v for k, v in model.metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    judged = (f"{training['folds']}-fold out-of-fold" if training.get("folds", 1) > 1 else "validation")
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{v:.4f}</td></tr>" for k, v in metrics.items())
    board = leaderboard(model.manifest)
    where = f" · bundle <code>{html.escape(str(model.path))}</code>" if model.path is not None else ""
    return (
        "<div class='takeoff-model'>"
        f"<p><b>takeoff.Model</b> · {html.escape(model.task.kind)} · target "
        f"<code>{html.escape(str(model.task.target))}</code> · judged by "
        f"{html.escape(str(training.get('metric', '?')))}{where}</p>"
        f"<p>{judged} metrics</p><table><tr><th>metric</th><th>value</th></tr>{rows}</table>"
        f"<p>leaderboard</p>{board.to_html(index=False, na_rep='', float_format=lambda v: f'{v:.4g}')}"
        "</div>"
    )
