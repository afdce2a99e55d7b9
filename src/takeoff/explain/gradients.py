"""Integrated Gradients (Captum) for the members that declare ``explains_gradients``.

The attribution is taken on the network's input *after* the embeddings: the standardised
numeric block next to each categorical column's embedding vector. The baseline is the
"average" row: numbers at zero (the training mean, after standardisation; missing indicators
and hashed text off) and every category at the mean embedding of its known categories (codes
2 and up). Not the embedding of code 0 (missing): a column without missing values in training
never trained that vector, and a random baseline would credit the column with the distance
to it. The
member's ``attribution_module()`` is the network wrapped so that its forward returns the
explained output itself: the probability (as its ``predict`` gives it) or the value
(un-standardised). Attributions of the dimensions of one input column are summed.

Completeness: per row, the attributions sum to ``output - base`` up to the integral's
approximation error, reported as ``delta``. Captum and torch are imported only here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from takeoff.errors import MissingDependencyError
from takeoff.explain.rows import fold
from takeoff.features.block import Features

BATCH = 4096  # rows × steps evaluated per forward pass


def is_network(member) -> bool:
    """Whether Integrated Gradients explains ``member`` (it declares ``explains_gradients``)."""
    return bool(member.explains_gradients)


@dataclass
class Gradients:
    """Integrated Gradients of some rows for their explained class.

    Attributes:
        values: per input column (n, columns), in the explained output's unit.
        base: the explained output at the baseline (n,); output: at the row (n,).
        delta: sum of the attributions minus (output - base), per row (n,).
    """

    values: np.ndarray
    base: np.ndarray
    output: np.ndarray
    delta: np.ndarray


def integrated_gradients(member, X: Features, classes: np.ndarray | None, columns: Sequence[str],
                         steps: int = 50) -> Gradients:
    """Integrated Gradients of every row of ``X`` for its explained class, folded onto ``columns``.

    Raises:
        MissingDependencyError: captum is not installed.
    """
    try:
        from captum.attr import IntegratedGradients
    except ImportError:
        raise MissingDependencyError("captum", "explaining an MLP (Integrated Gradients)", "train") from None
    import torch

    net = member.attribution_module()
    numeric = torch.from_numpy(np.ascontiguousarray(X.numeric, dtype=np.float64))
    codes = torch.from_numpy(np.ascontiguousarray(X.categorical, dtype=np.int64))
    with torch.no_grad():
        inputs = net.embed(numeric, codes)  # (n, n_numeric + sum(embedding_dims))
        baseline = net.baseline(numeric.shape[1])  # (1, width)
    target = torch.from_numpy(classes) if classes is not None else 0
    per_call = max(1, BATCH // max(steps, 1)) * steps
    attributions, delta = IntegratedGradients(net).attribute(
        inputs, baselines=baseline, target=target, n_steps=steps, method="gausslegendre",
        internal_batch_size=per_call, return_convergence_delta=True)
    with torch.no_grad():
        output = _select(net(inputs), classes)
        base = _select(net(baseline.expand_as(inputs)), classes)
    sources = list(X.sources[: numeric.shape[1]])
    for name, dim in zip(X.categorical_names, net.embedding_dims):
        sources += [name] * dim  # each categorical column's embedding dimensions
    values = fold(attributions.detach().numpy(), sources, columns)
    return Gradients(values, base, output, delta.detach().numpy().astype(np.float64))


def _select(out, classes: np.ndarray | None) -> np.ndarray:
    out = out.detach().numpy().astype(np.float64)
    return out[:, 0] if classes is None else out[np.arange(len(out)), classes]
