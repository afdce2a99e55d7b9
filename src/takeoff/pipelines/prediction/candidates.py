"""What ``auto`` tries, and on which rows it judges them.

A *candidate* is one family with one set of params (an entry of the family's ``portfolio``
over the user's params), optionally on a transformed target and with a seed offset. The
*fold plan* says how candidates are scored: k-fold cross-validation over all rows (every row
gets an out-of-fold prediction, so a 1,000-row table is judged on 1,000 rows and not 200), or
the one holdout split the run prepared.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from takeoff import registry
from takeoff.data.schema import Kind, Schema, Task
from takeoff.errors import ConfigError, DataError
from takeoff.models.base import Family
from takeoff.models.target_transform import skewed_positive, wrap

log = logging.getLogger("takeoff")

CV_ROWS = ((5_000, 5), (50_000, 3))  # up to this many rows: this many folds; more rows: one holdout


@dataclass(frozen=True)
class Candidate:
    """One model ``auto`` fits and scores.

    Attributes:
        id: unique in the run, also the member's folder in the bundle: the family name, then
            ``.2``... for its later portfolio entries, ``.log`` on a log target, ``.s1``... for
            a repeat with another seed.
        family: registered family name.
        params: the family's params (the user's, with the portfolio entry over the ones the
            user left at their default).
        transform: target transform ("log1p") or None.
        seed_offset: added to the run's seed.
    """

    id: str
    family: str
    params: dict[str, Any] = field(hash=False)
    transform: str | None = None
    seed_offset: int = 0

    def create(self, task: Task) -> Family:
        return wrap(registry.get(self.family).create(task, self.params), self.transform)

    def restore(self, directory, task: Task) -> Family:
        return wrap(registry.get(self.family).restore(directory, task, self.params), self.transform)

    def reseeded(self, offset: int) -> Candidate:
        return Candidate(f"{self.id}.s{offset}", self.family, self.params, self.transform, self.seed_offset + offset)


def family_names(config, task: Task, schema: Schema | None = None, rows: int | None = None,
                 seconds: float | None = None) -> list[str]:
    """The families a run fits: the one named, or for ``auto`` those that apply to the task and
    the table (text families only with text, image families on image tables), are installed,
    and (given ``rows`` and ``seconds``) can fit in the time."""
    private = config.dp.enabled
    if config.family != "auto":
        cls = registry.get(config.family)  # raises UnknownNameError listing the valid names
        if private and not cls.trains_private:
            raise ConfigError(f"model family '{config.family}' cannot train with differential privacy (--dp-epsilon); "
                              f"families that can: {', '.join(private_families())}. Gradient-boosted trees, linear and "
                              "tf-idf models have no DP-SGD path here. Fix: choose one of those families (or auto), "
                              "or drop --dp-epsilon.")
        return [config.family]
    images = schema is not None and bool(schema.names(Kind.IMAGE))
    has_text = schema is not None and bool(schema.names(Kind.TEXT))
    names = []
    for n in registry.auto(images=images):
        cls = registry.get(n)
        if not cls.supports(task.kind) or (cls.needs_text and not has_text):
            continue
        if private and not cls.trains_private:
            log.info("%s: skipped, it cannot train with differential privacy", n)
            continue
        params = getattr(config.models, n).model_dump()
        problem = cls.unavailable(params)
        if problem is None and rows is not None and seconds is not None:
            problem = cls.auto_skip(rows, seconds, params)
        if problem is not None:
            log.warning("%s: skipped; %s", n, problem)
            continue
        names.append(n)
    return names


def private_families() -> list[str]:
    """Families that train with differential privacy (DP-SGD)."""
    return [n for n in registry.names() if registry.get(n).trains_private]


def candidates(config, task: Task, names: list[str], y: np.ndarray) -> list[Candidate]:
    """Every candidate of the run, best-first: entry i of each family's portfolio before entry
    i + 1 of any; on a skewed positive regression target each also on ``log(1 + y)``."""
    transforms = _transforms(config, task, y)
    auto = config.family == "auto"
    out: list[Candidate] = []
    seen: set[tuple] = set()
    rounds = max(len(registry.get(n).portfolio) for n in names) if auto else 1
    for r in range(rounds):
        for name in names:
            portfolio = registry.get(name).portfolio if auto else ({},)
            if r >= len(portfolio):
                continue
            section = getattr(config.models, name)
            chosen = section.model_fields_set  # the user's own settings win over the portfolio's
            params = {**section.model_dump(), **{k: v for k, v in portfolio[r].items() if k not in chosen}}
            key = (name, tuple(sorted((k, repr(v)) for k, v in params.items())))
            if key in seen:
                continue
            seen.add(key)
            for transform in transforms:
                cid = name + (f".{r + 1}" if r else "") + (".log" if transform else "")
                out.append(Candidate(cid, name, params, transform))
    return out


def _transforms(config, task: Task, y: np.ndarray) -> list[str | None]:
    if task.kind != "regression" or config.target_transform == "none":
        return [None]
    if config.target_transform == "log":
        if (np.asarray(y) < 0).any():
            raise DataError(f"target_transform: log needs a target of 0 or more; '{task.target}' has values below 0. "
                            "Fix: set target_transform: none (or auto).")
        return ["log1p"]
    return [None, "log1p"] if skewed_positive(y) else [None]


def fold_plan(config, task: Task, y_all: np.ndarray, n_train: int, names: list[str],
              images: bool) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train rows, scored rows) per fold, as indices into train + validation rows.

    One entry (the prepared split: rows ``< n_train`` train, the rest validate) unless
    cross-validation is on: ``config.folds``, or for ``auto`` by table size (:data:`CV_ROWS`),
    never on image tables or with a family that does not cross-validate. Classification folds
    are stratified, and never more than the rarest class has rows.
    """
    n = len(y_all)
    holdout = [(np.arange(n_train), np.arange(n_train, n))]
    k = config.folds
    if k is None:
        if config.family != "auto" or images or not all(registry.get(m).cross_validates for m in names):
            return holdout
        k = next((folds for limit, folds in CV_ROWS if n <= limit), 1)
    if task.kind in ("binary", "multiclass"):
        k = min(k, int(np.bincount(np.asarray(y_all, dtype=np.int64)).min()))
    if k < 2:
        return holdout
    from sklearn.model_selection import KFold, StratifiedKFold

    if task.kind in ("binary", "multiclass"):
        splitter = StratifiedKFold(k, shuffle=True, random_state=config.seed)
        return [(tr, va) for tr, va in splitter.split(np.zeros(n), y_all)]
    return [(tr, va) for tr, va in KFold(k, shuffle=True, random_state=config.seed).split(np.zeros(n))]
