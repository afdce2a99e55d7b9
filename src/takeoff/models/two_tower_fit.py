"""Training the two towers on the shared :class:`~takeoff.training.loop.Trainer`.

Each interaction is a positive for its user, with the history made of the interactions
*before* it (so training matches scoring, where the history is the user's last
interactions). The loss is a sampled softmax over the batch's items plus ``negatives``
uniformly drawn items, with the logQ correction (the full softmax when the catalogue is no
larger than ``negatives``). Item and user IDs are randomly replaced by their unknown row
(``id_dropout``); with user features, an example whose user ID is dropped also loses its
history, so that it is trained as a new user described by features alone would be seen.

The rest is callbacks: :func:`ndcg_validation` logs NDCG@10 of each user's last interaction
(held out of the training log) after every epoch (and after an epoch the budget cut short),
``EarlyStopping`` keeps the best epoch's weights, :func:`reserved_budget` stops by the deadline
leaving time for the validation, and ``Checkpoint`` makes the fit resumable when the context
names a checkpoint folder.

Torch is imported inside functions, so importing this module stays cheap.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from takeoff.data.interactions import Interactions, leave_last_out
from takeoff.errors import DataSourceError
from takeoff.models.two_tower_inputs import Sequences
from takeoff.training.context import FitContext

VALID_USERS = 2000  # users scored for early stopping (a seeded sample beyond this)
VALID_KEY = "valid_ndcg_at_10"


def sampled_softmax(net: Any, sequences: Sequences, spec: dict[str, Any], params: Any, log_q: Any, cold: bool):
    """The training module: ``module(positions, targets)`` gives ``(logits, candidates)`` for
    the examples at ``positions`` of ``sequences`` (int64 (B,)) whose items are ``targets``:
    logits (B, C) of each user against the candidate items (C,) (sorted item codes)."""
    import torch
    from torch import nn

    n_users, n_items = spec["n_users"], spec["n_items"]
    full = params.negatives >= n_items
    temperature = params.temperature if params.similarity == "cosine" else 1.0
    drop = params.id_dropout

    class SampledSoftmax(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, positions, targets):
            device = positions.device
            # the towers were tuned in float32: bf16 would round cosine / temperature logits by ~0.04
            with torch.autocast(device_type=device.type, enabled=False):
                users = sequences.users[positions]
                history, valid = sequences.history(positions, users, params.history_length)
                rows = users
                if drop > 0:
                    dropped = torch.rand(users.shape, device=device) < drop
                    rows = users.masked_fill(dropped, n_users)  # the unknown user row
                    if cold:
                        valid = valid & ~dropped[:, None]
                if full:
                    candidates = torch.arange(n_items, device=device)
                else:
                    sample = torch.randperm(n_items, device=device)[: params.negatives]
                    candidates = torch.unique(torch.cat([targets, sample]))  # sorted
                id_rows = candidates
                if drop > 0:
                    id_rows = candidates.masked_fill(torch.rand(candidates.shape, device=device) < drop, n_items)
                items = self.net.items(id_rows, self.net.item_inputs(candidates))  # (C, d)
                users_ = self.net.users(rows, history, valid.float(), self.net.user_inputs(users))  # (B, d)
                logits = users_ @ items.T / temperature  # (B, C)
                if log_q is not None:
                    logits = logits - log_q[candidates]
                return logits, candidates

    return SampledSoftmax()


def ndcg_validation(evaluate: Callable[[], float], stopper: Any):
    """A callback adding ``valid_ndcg_at_10`` (``evaluate()``) to every epoch's logs and to the
    trainer's history; it runs before early stopping (``stopper``) reads the logs, and times
    itself (also once before training) so that the budget can leave room for it.

    An epoch the time budget cuts short is not lost: when training ends that way and one more
    validation fits before the deadline, the partial epoch is validated, recorded in the history
    and offered to ``stopper``, which keeps its weights if they are the best.
    """
    from takeoff.training.callbacks import Callback

    class NDCGValidation(Callback):
        order = -10

        def __init__(self) -> None:
            self.seconds = 0.0
            self.steps, self.loss_sum = 0, 0.0  # of the epoch under way

        def _timed(self) -> float:
            start = time.monotonic()
            value = evaluate()
            self.seconds = time.monotonic() - start
            return value

        def _record(self, trainer, epoch: int, logs: dict[str, float]) -> None:
            logs[VALID_KEY] = self._timed()
            trainer.history.setdefault(VALID_KEY, []).append(logs[VALID_KEY])

        def on_train_begin(self, trainer) -> None:
            self._timed()

        def on_epoch_begin(self, trainer, epoch: int) -> None:
            self.steps, self.loss_sum = 0, 0.0

        def on_batch_end(self, trainer, step: int, loss) -> None:
            self.steps += 1
            self.loss_sum = self.loss_sum + loss  # a tensor: no wait for the GPU here

        def on_epoch_end(self, trainer, epoch: int, logs: dict[str, float]) -> None:
            self.steps = 0
            self._record(trainer, epoch, logs)

        def on_train_end(self, trainer) -> None:
            if trainer.stop_reason != "time_budget" or not self.steps:
                return
            if trainer.ctx.remaining() < self.seconds + 0.02:
                return
            logs = {"train_loss": float(self.loss_sum) / self.steps}
            trainer.history.setdefault("train_loss", []).append(logs["train_loss"])
            self._record(trainer, trainer.epoch, logs)
            stopper.on_epoch_end(trainer, trainer.epoch, logs)
            trainer.stop_reason = "time_budget"  # the stopper may have called it early stopping

    return NDCGValidation()


def reserved_budget(validation_seconds: Callable[[], float]):
    """A callback that stops by ``ctx.deadline`` so that a started epoch's validation still
    fits: training goes on only while the time left covers 1.5 × the last step, 1.2 × the last
    validation (``validation_seconds()``) and 50 ms. The last step of an epoch is not checked
    again: its validation was already counted when it started."""
    from takeoff.training.callbacks import Callback

    class ReservedBudget(Callback):
        def __init__(self) -> None:
            self.step_seconds, self.tick = 0.0, time.monotonic()

        def _check(self, trainer) -> None:
            reserve = 1.5 * self.step_seconds + 1.2 * validation_seconds() + 0.05
            if trainer.ctx.remaining() < reserve:
                trainer.stop_reason = "time_budget"

        def on_epoch_begin(self, trainer, epoch: int) -> None:
            self._check(trainer)
            self.tick = time.monotonic()

        def on_batch_end(self, trainer, step: int, loss) -> None:
            now = time.monotonic()
            self.step_seconds, self.tick = now - self.tick, now
            if step + 1 < trainer.steps_per_epoch:
                self._check(trainer)

    return ReservedBudget()


def _fingerprint(log: Interactions, spec: dict[str, Any]) -> str:
    """A hash of the log and the architecture, so that a checkpoint resumes only the same fit."""
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode("utf-8"))
    for values in (log.user_codes, log.item_codes, log.weights, log.times):
        if values is not None:
            digest.update(np.ascontiguousarray(values).tobytes())
    return digest.hexdigest()


def train_towers(net: Any, log: Interactions, spec: dict[str, Any], params: Any, ctx: FitContext, device: Any,
                 *, cold: bool, name: str, extra_callbacks: Sequence[Any] = ()):
    """Fit ``net`` (on ``device``) to ``log``; its best epoch's weights are loaded at the end.

    Returns:
        (the trainer's ``TrainResult``, the best epoch or None, steps trained).
    """
    import torch
    import torch.nn.functional as F

    from takeoff.training.callbacks import Checkpoint, EarlyStopping, ProgressBar, TerminateOnNaN
    from takeoff.training.loop import TensorSet, Trainer

    rng = np.random.default_rng(ctx.seed)
    train, valid = leave_last_out(log, seed=ctx.seed)
    sequences = Sequences(train, device)
    valid_users = valid.user_codes.astype(np.int64)
    valid_items = valid.item_codes.astype(np.int64)
    if len(valid_users) > VALID_USERS:
        keep = np.sort(rng.choice(len(valid_users), VALID_USERS, replace=False))
        valid_users, valid_items = valid_users[keep], valid_items[keep]
    seen = train.matrix().tocsr()

    def evaluate() -> float:
        """NDCG@10 of each validation user's held-out item among the items it has not seen."""
        scores = net.scores(sequences, valid_users)
        scores[seen[valid_users].nonzero()] = -np.inf
        target = scores[np.arange(len(valid_users)), valid_items][:, None]
        rank = (scores > target).sum(1)
        return float(np.where(rank < 10, 1.0 / np.log2(rank + 2.0), 0.0).mean())

    n_items = spec["n_items"]
    # expected times an item is a candidate in a step (in-batch targets + uniform sample):
    # subtracting its log makes the sampled softmax estimate the full one
    share = np.bincount(train.item_codes, minlength=n_items) / max(len(train), 1)
    log_q = None
    if params.logq_correction and params.negatives < n_items:
        rate = np.clip(params.batch_size * share + params.negatives / n_items, 1e-6, 1.0)
        log_q = torch.from_numpy(np.log(rate)).float().to(device)
    model = sampled_softmax(net, sequences, spec, params, log_q, cold)
    optimizer = torch.optim.AdamW(net.parameters(), lr=params.learning_rate, weight_decay=params.weight_decay,
                                  fused=True)

    def loss_fn(outputs, target, weight):
        logits, candidates = outputs
        return F.cross_entropy(logits, torch.searchsorted(candidates, target))

    callbacks: list[Any] = [TerminateOnNaN(), ProgressBar(VALID_KEY)]
    stopper = None
    if len(valid_users):
        stopper = EarlyStopping(VALID_KEY, "max", patience=params.patience)
        validation = ndcg_validation(evaluate, stopper)
        callbacks += [validation, stopper, reserved_budget(lambda: validation.seconds)]
    else:
        callbacks.append(reserved_budget(lambda: 0.0))
    if ctx.checkpoint_dir is not None:
        callbacks.append(Checkpoint(ctx.checkpoint_dir))
    positions = torch.arange(len(sequences))
    trainer = Trainer(
        model, loss_fn, optimizer, train=TensorSet((positions, sequences.items.cpu()), sequences.items.cpu()),
        batch_size=params.batch_size, max_epochs=params.max_epochs, callbacks=[*callbacks, *extra_callbacks],
        ctx=ctx, device=device,
        meta={"family": name, "params": params.model_dump(mode="json"), "seed": ctx.seed,
              "data": _fingerprint(log, spec) if ctx.checkpoint_dir is not None else None},
    )
    if ctx.checkpoint_dir is not None:
        try:
            trainer.resume(ctx.checkpoint_dir)
        except DataSourceError as error:
            ctx.warn(f"{error}; {name} starts from scratch")
    result = trainer.fit()
    net.eval()
    best = stopper.best_epoch if stopper is not None and stopper.best_epoch else (trainer.epoch or None)
    return result, best, trainer.global_step
