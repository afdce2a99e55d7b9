"""A recommendation run: fit the configured recommender(s) on an interaction log, keep the best
on each user's held-out last interaction, refit it on every interaction when the budget allows,
and write the bundle with its validation report."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from takeoff import registry
from takeoff._version import __version__
from takeoff.data.interactions import Interactions, interactions_from_frame, leave_last_out
from takeoff.errors import BudgetError, ConfigError, DataError
from takeoff.evaluation.ranking import by_activity, ranking_metrics
from takeoff.models.popular import popularity
from takeoff.models.recommender import ItemFeatures, Recommender, UserFeatures
from takeoff.pipelines.recommendation.features import feature_args, item_features, user_features
from takeoff.pipelines.recommendation.model import RecommenderModel
from takeoff.pipelines.recommendation.ranking import recommend_top
from takeoff.pipelines.run_dir import new_output_dir, read_data, remove_unfinished
from takeoff.training.context import FitContext

log = logging.getLogger("takeoff")

REFIT_SHARE = 0.35  # budget kept back for refitting the chosen family on every interaction
MIN_FAMILY_SECONDS = 2.0


def train(data, cfg, out: str | Path | None, table: str | None = None, sql: str | None = None,
          encoding: str | None = None) -> RecommenderModel:
    """Read the interaction table ``data`` and train the recommender of ``cfg`` on it; write it
    as a bundle to ``out`` (nothing is left there when training fails)."""
    started = time.monotonic()
    df, name = read_data(data, table, sql, encoding)
    run_dir = new_output_dir(Path(out)) if out is not None else None
    try:
        return train_recommender(df, cfg, name, run_dir, started + cfg.time_budget)
    except BaseException:
        if run_dir is not None:
            remove_unfinished(run_dir)
        raise


def train_recommender(df: pd.DataFrame, cfg, source: str, out: Path | None, deadline: float) -> RecommenderModel:
    """Fit the configured recommender(s) on an interaction table; write a bundle to ``out``.

    ``auto`` fits every family of ``registry.auto_recommenders()`` on all but each user's last
    interaction, keeps the best NDCG@k on those held-out interactions, and refits it on every
    interaction when the budget allows.
    """
    rc = cfg.recommend
    if rc.user is None or rc.item is None:
        raise ConfigError("task 'recommend' needs the user and item columns. Fix: pass --user COLUMN --item COLUMN.")
    started = time.monotonic()
    full, notes = interactions_from_frame(df, rc.user, rc.item, rc.rating, rc.time, where=source)
    for note in notes:
        log.info("%s", note)
    items, item_notes = item_features(df, full, rc)
    users_, user_notes = user_features(df, full, rc)
    notes += item_notes + user_notes
    if full.n_items < 2:
        raise DataError(f"{source} has {full.n_items} distinct item(s); a recommender needs at least 2")
    train, valid = leave_last_out(full, seed=cfg.seed)
    if len(valid) == 0:
        raise DataError(f"no user in {source} has more than one interaction, so nothing can be held out to choose "
                        "and evaluate a model. Fix: provide more interactions per user.")
    names = registry.auto_recommenders() if cfg.family == "auto" else [cfg.family]
    for name in names:
        registry.get_recommender(name)  # unknown names fail before any work
    k = rc.k
    relevant = _relevant(valid)
    users = np.array(sorted(relevant), dtype=np.int64)
    truth = [relevant[u] for u in users]
    activity = np.bincount(train.user_codes, minlength=full.n_users)[users]

    leaderboard: dict[str, dict[str, Any]] = {}
    fitted: dict[str, tuple[Recommender, np.ndarray]] = {}
    search_until = started + (deadline - started) * (1 - REFIT_SHARE)
    for i, name in enumerate(names):
        remaining = search_until - time.monotonic()
        if remaining < MIN_FAMILY_SECONDS and fitted:
            log.warning("time budget spent: %s not tried", ", ".join(names[i:]))
            break
        share = max(remaining / (len(names) - i), MIN_FAMILY_SECONDS)
        ctx = FitContext(deadline=time.monotonic() + share, seed=cfg.seed, progress=False, device=cfg.device,
                         warn=lambda m, n=name: log.warning("%s: %s", n, m))
        family = _make(name, cfg)
        began = time.monotonic()
        family.fit(train, ctx, **feature_args(family, items, users_))
        top = recommend_top(family, train, users, k, exclude_seen=True)
        metrics = ranking_metrics(top, truth, full.n_items, k)
        metrics["fit_seconds"] = round(time.monotonic() - began, 2)
        leaderboard[name] = metrics
        fitted[name] = (family, top)
        log.info("%s: NDCG@%d %.4f, HR@%d %.4f (%.1fs)", name, k, metrics[f"ndcg@{k}"], k, metrics[f"hr@{k}"],
                 metrics["fit_seconds"])
    if not fitted:
        raise BudgetError("the time budget ran out before any recommender was fitted. Fix: raise --time-budget.")
    best = max(fitted, key=lambda n: (leaderboard[n][f"ndcg@{k}"], leaderboard[n][f"hr@{k}"]))
    family, top = fitted[best]
    metrics = {key: v for key, v in leaderboard[best].items() if key != "fit_seconds"}
    buckets = by_activity(top, truth, activity, full.n_items, k)

    # refit on every interaction (the held-out ones are each user's most recent: the most telling).
    # A family bound by the budget (two-tower) refits in what is left; a quick one needs its time.
    fit_seconds = leaderboard[best]["fit_seconds"]
    need = 0.5 * fit_seconds if family.report.stopped_by == "time_budget" else 1.2 * fit_seconds
    refitted = False
    if cfg.refit and deadline - time.monotonic() >= max(need, 0.5):
        ctx = FitContext(deadline=deadline, seed=cfg.seed, progress=False, device=cfg.device,
                         warn=lambda m: log.warning("%s: %s", best, m))
        family = _make(best, cfg)
        family.fit(full, ctx, **feature_args(family, items, users_))
        refitted = True
    else:
        if cfg.refit:
            log.info("no time left to refit %s on every interaction; it answers from the full history", best)
        family = _with_log(family, full, items, users_)
    manifest = {
        "takeoff_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "task": {"kind": "recommend", "target": None, "classes": []},
        "recommend": {"user": rc.user, "item": rc.item, "rating": rc.rating, "time": rc.time, "k": k},
        "family": best,
        "params": family.params.model_dump(mode="json"),
        "metrics": metrics,
        "leaderboard": leaderboard,
        "by_activity": buckets,
        "training": {
            "source": source, "interactions": len(full), "users": full.n_users, "items": full.n_items,
            "held_out": len(valid), "refit": refitted, "seconds": round(time.monotonic() - started, 2),
            "notes": notes,
        },
    }
    model = RecommenderModel(manifest, full, family, popularity(full), items, users_)
    if out is not None:
        import tempfile

        from takeoff.evaluation.report import write_recommend_report

        with tempfile.TemporaryDirectory(prefix="takeoff-report-") as tmp:
            report = Path(tmp) / "report.html"
            write_recommend_report(
                report, title=f"{rc.item} recommendations — validation report", metrics=metrics,
                leaderboard=leaderboard, buckets=buckets, data_name=f"{source} (each user's last interaction held out)",
                info={"family": best, "params": manifest["params"], "training": manifest["training"]},
            )
            model.attach("report.html", report)
            model.save(out)
    return model


def _with_log(family: Recommender, full: Interactions, items: ItemFeatures | None,
              users: UserFeatures | None) -> Recommender:
    """The family fitted on the training part, set up to answer from every interaction (each
    user's latest included): saved and loaded with the full log, as a bundle would be."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="takeoff-recommender-") as tmp:
        family.save(Path(tmp))
        return type(family).load(Path(tmp), family.params.model_dump(mode="json"), full,
                                 **feature_args(family, items, users))


def _make(name: str, cfg) -> Recommender:
    cls = registry.get_recommender(name)
    params = getattr(cfg.recommenders, name, None)
    return cls(params.model_dump() if params is not None else None)


def _relevant(held: Interactions) -> dict[int, set[int]]:
    out: dict[int, set[int]] = {}
    for u, i in zip(held.user_codes.tolist(), held.item_codes.tolist()):
        out.setdefault(u, set()).add(i)
    return out

