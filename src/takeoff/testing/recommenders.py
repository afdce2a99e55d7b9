"""The contract every recommender family passes, and helpers for the families' own tests.

:func:`check_recommender` fits a family on a small real log and checks what the model layer,
the bundle and the server rely on (see :mod:`takeoff.models.recommender`):

* ``fit`` returns a :class:`~takeoff.models.base.FitReport` (also kept as ``model.report``);
* ``score`` gives float32, finite (len(users), n_items) scores whose rows follow the user codes
  asked; ``similar`` and ``item_vectors`` give one row per item code asked, or None; a family
  with ``user_vectors`` scores on the scale of ``user_vectors @ item_vectors().T``;
* ``save`` writes JSON and safetensors only, and ``load`` gives identical outputs;
* the same seed gives the same model;
* bad input raises takeoff's errors: a model loaded with another log is a ``BundleError``; a
  fit with no time left is a ``BudgetError``, or still a usable model (a quick family).

Each check raises ``AssertionError`` naming the family and what broke.

Example:
    >>> from takeoff.models.itemknn import ItemKNNRecommender
    >>> check_recommender(ItemKNNRecommender, log)  # doctest: +SKIP
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from takeoff.data.interactions import Interactions
from takeoff.errors import BudgetError, BundleError
from takeoff.models.base import FitReport
from takeoff.models.recommender import ItemFeatures, Recommender, UserFeatures
from takeoff.training.context import FitContext

BUNDLE_SUFFIXES = {".json", ".safetensors"}  # what a recommender may write (never a pickle)


def feature_args(cls: type[Recommender], items: ItemFeatures | None, users: UserFeatures | None) -> dict[str, Any]:
    """The feature keywords of ``fit`` and ``load``: ``items`` for a family that uses item
    features, ``users`` only for one that declares ``uses_user_features``."""
    args: dict[str, Any] = {"items": items if cls.uses_item_features else None}
    if cls.uses_user_features:
        args["users"] = users
    return args


def hit_rate(model: Recommender, train: Interactions, test: Interactions, k: int = 10) -> float:
    """HR@k of each held-out interaction among the items its user has not seen in ``train``."""
    users = test.user_codes.astype(np.int64)
    scores = model.score(train, users).astype(np.float64)
    scores[train.matrix()[users].nonzero()] = -np.inf
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return float(np.mean([target in row for row, target in zip(top, test.item_codes)]))


def check_recommender(cls: type[Recommender], interactions: Interactions, *, params: dict[str, Any] | None = None,
                      items: ItemFeatures | None = None, users: UserFeatures | None = None, seed: int = 0) -> None:
    """Run every contract check on the family ``cls``.

    Args:
        cls: the recommender class.
        interactions: a small real log (a few thousand interactions fit in seconds).
        params: the family's hyperparameters (small ones keep the checks fast). Default None.
        items: item features aligned with the log's item codes, for a family that uses them.
        users: user features aligned with the log's user codes, for a family that uses them.
        seed: the fits' seed. Defaults to 0.

    Raises:
        AssertionError: a check failed (the message names the family and the check).
    """
    name = getattr(cls, "name", cls.__name__)
    assert isinstance(name, str) and name, f"{cls.__name__} has no family name"
    model = _fit(cls, interactions, params, items, users, seed)
    check_scores(model, interactions)
    check_save_load(model, interactions, items, users)
    check_same_seed(model, interactions, params, items, users, seed)
    check_bad_input(model, interactions, params, items, users, seed)


def _fit(cls: type[Recommender], log: Interactions, params: dict[str, Any] | None, items: ItemFeatures | None,
         users: UserFeatures | None, seed: int, deadline: float | None = None) -> Recommender:
    model = cls(params)
    ctx = FitContext(deadline=deadline, seed=seed, progress=False)
    report = model.fit(log, ctx, **feature_args(cls, items, users))
    assert isinstance(report, FitReport), f"{cls.name}: fit returned {type(report).__name__}, not a FitReport"
    assert model.report is report, f"{cls.name}: fit's report is not kept as model.report"
    return model


def check_scores(model: Recommender, log: Interactions) -> None:
    """Shapes, dtypes and alignment of ``score``, ``similar``, ``item_vectors`` and ``user_vectors``."""
    name = model.name
    users = np.arange(log.n_users)
    scores = model.score(log, users)
    assert scores.shape == (log.n_users, log.n_items), f"{name}: score shape {scores.shape}"
    assert scores.dtype == np.float32, f"{name}: score dtype {scores.dtype}, not float32"
    assert np.isfinite(scores).all(), f"{name}: score gives non-finite values"
    some = users[::-1][: max(1, min(7, log.n_users))]
    np.testing.assert_allclose(model.score(log, some), scores[some], rtol=1e-5, atol=1e-6,
                               err_msg=f"{name}: score rows do not follow the user codes asked")
    asked = np.array([log.n_items - 1, 0])
    similar = model.similar(asked)
    if similar is not None:
        assert similar.shape == (2, log.n_items), f"{name}: similar shape {similar.shape}"
        assert similar.dtype == np.float32 and np.isfinite(similar).all(), f"{name}: similar is not finite float32"
    vectors = model.item_vectors()
    if vectors is not None:
        assert vectors.ndim == 2 and len(vectors) == log.n_items, f"{name}: item_vectors shape {vectors.shape}"
        if callable(getattr(model, "user_vectors", None)):
            np.testing.assert_allclose(model.user_vectors(log, some) @ vectors.T, scores[some], rtol=1e-4,
                                       atol=1e-5, err_msg=f"{name}: user_vectors @ item_vectors.T is not score")


def _outputs(model: Recommender, log: Interactions, items: ItemFeatures | None) -> dict[str, Any]:
    """Everything a loaded model must give back identically."""
    out = {"score": model.score(log, np.arange(log.n_users)), "similar": model.similar(np.arange(min(5, log.n_items))),
           "item_vectors": model.item_vectors()}
    if items is not None and model.uses_item_features and callable(getattr(model, "embed_items", None)):
        # the first items' features, as new items
        first = ItemFeatures({c: v[:3] for c, v in items.categorical.items()},
                             {c: v[:3] for c, v in items.text.items()})
        out["embed_items"] = model.embed_items(first)
    return out


def check_save_load(model: Recommender, log: Interactions, items: ItemFeatures | None = None,
                    users: UserFeatures | None = None) -> None:
    """``save`` writes JSON + safetensors only; ``load`` with the same log gives identical outputs."""
    name, cls = model.name, type(model)
    with tempfile.TemporaryDirectory(prefix="takeoff-check-") as tmp:
        directory = Path(tmp)
        model.save(directory)
        written = {p.name for p in directory.rglob("*") if p.is_file()}
        assert written, f"{name}: save wrote nothing"
        odd = sorted(n for n in written if Path(n).suffix not in BUNDLE_SUFFIXES)
        assert not odd, f"{name}: save wrote {odd}; a bundle holds JSON and safetensors only"
        loaded = cls.load(directory, model.params.model_dump(mode="json"), log, **feature_args(cls, items, users))
    assert isinstance(loaded, cls), f"{name}: load returned {type(loaded).__name__}"
    before, after = _outputs(model, log, items), _outputs(loaded, log, items)
    for key, value in before.items():
        if value is None:
            assert after[key] is None, f"{name}: {key} is None before save and not after load"
        else:
            np.testing.assert_array_equal(after[key], value, err_msg=f"{name}: {key} differs after save/load")


def check_same_seed(model: Recommender, log: Interactions, params: dict[str, Any] | None,
                    items: ItemFeatures | None, users: UserFeatures | None, seed: int) -> None:
    """A second fit with the same data, params and seed gives the same scores."""
    again = _fit(type(model), log, params, items, users, seed)
    users_ = np.arange(log.n_users)
    np.testing.assert_array_equal(again.score(log, users_), model.score(log, users_),
                                  err_msg=f"{model.name}: the same seed gave another model")


def _other_catalogue(log: Interactions) -> Interactions:
    """``log`` without its last item: the same users, one item fewer."""
    keep = log.item_codes < log.n_items - 1
    return Interactions(log.users, log.items[:-1], log.user_codes[keep], log.item_codes[keep], log.weights[keep],
                        None if log.times is None else log.times[keep], dict(log.columns))


def check_bad_input(model: Recommender, log: Interactions, params: dict[str, Any] | None,
                    items: ItemFeatures | None, users: UserFeatures | None, seed: int) -> None:
    """Loading with another log is a ``BundleError``; a fit past its deadline is a ``BudgetError``
    or a usable model."""
    name, cls = model.name, type(model)
    with tempfile.TemporaryDirectory(prefix="takeoff-check-") as tmp:
        model.save(Path(tmp))
        try:
            cls.load(Path(tmp), model.params.model_dump(mode="json"), _other_catalogue(log),
                     **feature_args(cls, items, users))
        except BundleError:
            pass
        else:
            raise AssertionError(f"{name}: loading with a log of another catalogue did not raise BundleError")
    try:
        late = _fit(cls, log, params, items, users, seed, deadline=time.monotonic() - 1.0)
    except BudgetError:
        return
    scores = late.score(log, np.arange(log.n_users))
    assert scores.shape == (log.n_users, log.n_items) and np.isfinite(scores).all(), (
        f"{name}: a fit past its deadline neither raised BudgetError nor gave a usable model")
