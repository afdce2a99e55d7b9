"""Rows as the trainer takes them, and how an epoch cuts them into batches.

The batch order depends on (seed, epoch) only, so a resumed run sees the batches the
uninterrupted run would have. Under ``torch.distributed`` the trainer deals the same
permutation out with a ``DistributedSampler`` (rank r takes every world-th row), so the ranks
never see the same row twice in an epoch and every rank takes the same number of steps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch


@dataclass
class TensorSet:
    """Rows for the trainer: the model's inputs, the target, optional sample weights.

    ``model(*inputs)`` gives the outputs; ``loss_fn(outputs, target, weight)`` the mean loss.
    Every tensor has the rows along dimension 0.
    """

    inputs: tuple[torch.Tensor, ...]
    target: torch.Tensor
    weight: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.target.shape[0])

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> TensorSet:
        """The same rows with ``fn`` applied to every tensor."""
        return TensorSet(
            tuple(fn(t) for t in self.inputs),
            fn(self.target),
            None if self.weight is None else fn(self.weight),
        )

    def take(self, index: torch.Tensor) -> TensorSet:
        return self.map(lambda t: t.index_select(0, index))

    def slice(self, start: int, stop: int) -> TensorSet:
        return self.map(lambda t: t[start:stop])

    def to(self, device: torch.device, non_blocking: bool = False) -> TensorSet:
        return self.map(lambda t: t.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> TensorSet:
        return self.map(lambda t: t.pin_memory())

    def nbytes(self) -> int:
        tensors = [*self.inputs, self.target] + ([self.weight] if self.weight is not None else [])
        return sum(t.element_size() * t.nelement() for t in tensors)


def steps_per_epoch(n_rows: int, batch_size: int) -> int:
    """Optimizer steps in one epoch (a last batch of one row joins the one before it)."""
    return len(batch_bounds(n_rows, batch_size))


def batch_bounds(n_rows: int, batch_size: int) -> list[tuple[int, int]]:
    """(start, stop) of each batch of ``n_rows`` rows in order."""
    bounds = [(a, min(a + batch_size, n_rows)) for a in range(0, n_rows, batch_size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        # a batch of one row breaks BatchNorm and gives a very noisy step: fold it back
        bounds[-2] = (bounds[-2][0], n_rows)
        bounds.pop()
    return bounds


def epoch_order(n_rows: int, batch_size: int, seed: int, epoch: int, rank: int = 0, world_size: int = 1,
                ) -> tuple[torch.Tensor, list[tuple[int, int]]]:
    """This rank's rows of an epoch, shuffled, and its batch bounds in them.

    The permutation is drawn from ``seed + epoch``; with ``world_size`` ranks, rank ``r`` takes
    the ``r``-th of ``world_size`` equal slices (the last ``n_rows % world_size`` rows of the
    permutation wait for another epoch).
    """
    generator = torch.Generator().manual_seed(seed + epoch)
    order = torch.randperm(n_rows, generator=generator)
    if world_size > 1:
        share = n_rows // world_size
        order = order[rank * share : (rank + 1) * share]
    return order, batch_bounds(len(order), batch_size)


def joined(batches: Sequence[Sequence[int]]) -> tuple[torch.Tensor, list[tuple[int, int]]]:
    """A custom list of index batches as (order, bounds), the form :func:`epoch_order` gives."""
    order = torch.tensor([i for batch in batches for i in batch], dtype=torch.long)
    bounds, start = [], 0
    for batch in batches:
        bounds.append((start, start + len(batch)))
        start += len(batch)
    return order, bounds
