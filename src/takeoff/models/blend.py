"""Weighted blends of fitted families, with weights chosen on validation predictions."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from takeoff.features.block import Features
from takeoff.models.base import Family


class Blend:
    """A weighted average of family outputs (probabilities or values). Weights sum to 1."""

    def __init__(self, members: Sequence[Family], weights: Sequence[float]):
        kept = [(m, float(w)) for m, w in zip(members, weights) if w > 0]
        total = sum(w for _, w in kept)
        self.members = [m for m, _ in kept]
        self.weights = [w / total for _, w in kept]

    def predict(self, X: Features) -> np.ndarray:
        out = None
        for member, weight in zip(self.members, self.weights):
            pred = member.predict(X).astype(np.float64) * weight
            out = pred if out is None else out + pred
        return out


def greedy_weights(
    predictions: Sequence[np.ndarray], score: Callable[[np.ndarray], float], rounds: int = 25
) -> tuple[list[float], float]:
    """Ensemble selection with replacement (Caruana et al., 2004).

    Repeatedly adds the member whose inclusion most improves ``score`` (higher is better) of
    the running average; the weights are how often each member was picked.

    Returns:
        (weights, best score)
    """
    counts = np.zeros(len(predictions))
    running = np.zeros_like(predictions[0], dtype=np.float64)
    best_weights, best_score = None, -np.inf
    for step in range(1, rounds + 1):
        candidates = [score((running * (step - 1) + p) / step) for p in predictions]
        pick = int(np.argmax(candidates))
        counts[pick] += 1
        running = (running * (step - 1) + predictions[pick]) / step
        if candidates[pick] > best_score + 1e-12:
            best_score, best_weights = candidates[pick], counts / counts.sum()
    return [float(w) for w in best_weights], float(best_score)
