"""The learning curve: a power law ``score(n) = a - b · (n / N)^(-c)`` fitted to scores
measured on growing shares of the rows, with a bootstrap interval.

Scores are "higher is better" here (losses and errors enter negated). ``b >= 0`` makes the
curve rise with the rows and flatten towards ``a``, the score with unlimited rows of this kind;
``c`` (0.05 to 3) is how fast it gets there. With three shares and three parameters the fit
passes through the means exactly, so the interval comes from resampling the repeated fits at
each share (each share's repeats drawn with replacement, the curve refitted, 300 times), then
widened by one standard deviation of the repeats, pooled over the shares (one model's score
varies about that much around its curve: another subsample, another inner split for early
stopping).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

BOOTSTRAP = 300
LEVEL = 0.90  # the interval's nominal coverage
C_BOUNDS = (0.05, 3.0)


@dataclass
class Curve:
    """A fitted learning curve: the parameters of the central fit and the bootstrap's."""

    a: float
    b: float
    c: float
    rows: float  # N: the row count the curve is scaled to (x = n / N)
    samples: np.ndarray = field(repr=False)  # (B, 3) bootstrap parameters
    noise: float = 0.0  # spread of one model's score around the curve (sd of the repeats)

    def predict(self, n: float | np.ndarray) -> np.ndarray:
        return _law(np.asarray(n, dtype=np.float64) / self.rows, self.a, self.b, self.c)

    def interval(self, n: float, level: float = LEVEL, noise: bool = True) -> tuple[float, float]:
        """The interval of the score at ``n`` rows: the bootstrap's central ``level`` share,
        widened by ``noise`` (the repeats' spread) when asked."""
        values = _law(n / self.rows, self.samples[:, 0], self.samples[:, 1], self.samples[:, 2])
        lo, hi = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
        pad = self.noise if noise else 0.0
        return float(lo - pad), float(hi + pad)

    def gain(self, n: float, factor: float = 2.0, level: float = LEVEL) -> tuple[float, float, float]:
        """(central, low, high) change of the score from ``n`` to ``factor · n`` rows."""
        x0, x1 = n / self.rows, factor * n / self.rows
        s = self.samples
        values = _law(x1, s[:, 0], s[:, 1], s[:, 2]) - _law(x0, s[:, 0], s[:, 1], s[:, 2])
        lo, hi = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
        central = float(_law(x1, self.a, self.b, self.c) - _law(x0, self.a, self.b, self.c))
        return central, float(lo), float(hi)


def _law(x, a, b, c):
    return a - b * np.power(x, -c)


def fit_curve(rows: list[int], scores: list[list[float]], scale: float, upper: float | None = None,
              seed: int = 0) -> Curve:
    """Fit the power law to the repeated ``scores`` (one list per entry of ``rows``).

    Args:
        rows: training rows of each share, increasing.
        scores: the scores (higher is better) of the repeats at each share.
        scale: N, the rows the curve is expressed against (x = n / N).
        upper: the best score possible (1 for ROC AUC or accuracy, 0 for a negated loss), a
            bound on ``a``; None when unbounded.
        seed: the bootstrap's seed.
    """
    x = np.asarray(rows, dtype=np.float64) / scale
    means = np.array([np.mean(s) for s in scores])
    central = _fit(x, means, upper)
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(BOOTSTRAP):
        drawn = np.array([np.mean(rng.choice(s, size=len(s), replace=True)) for s in scores])
        samples.append(_fit(x, drawn, upper))
    # one model's spread around the curve: the repeats' standard deviation, pooled over the shares
    spread = [float(np.var(s, ddof=1)) for s in scores if len(s) > 1]
    noise = float(np.sqrt(np.mean(spread))) if spread else 0.0
    return Curve(*central, rows=float(scale), samples=np.array(samples), noise=noise)


def _fit(x: np.ndarray, y: np.ndarray, upper: float | None) -> tuple[float, float, float]:
    """Least-squares power law through (x, y): for each ``c`` on a grid the law is linear in
    ``(a, b)``, solved in closed form under ``b >= 0`` and ``a <= upper``; the ``c`` with the
    smallest squared error wins. A flat line when the scores do not rise."""
    if y[-1] <= y[0] or np.ptp(y) == 0:
        return float(np.mean(y[-2:])), 0.0, 1.0  # no gain measured: a flat curve at the last scores
    z = np.power(x[None, :], -_C_GRID[:, None])  # (grid, points)
    zm, ym = z.mean(axis=1), y.mean()
    zc = z - zm[:, None]
    # y = a - b z: slope of y on z is -b
    b = -(zc * (y - ym)).sum(axis=1) / np.maximum((zc ** 2).sum(axis=1), 1e-300)
    b = np.maximum(b, 0.0)
    a = ym + b * zm
    if upper is not None:
        over = a > upper
        if over.any():  # a at its bound: b by least squares of (upper - y) on z, through the origin
            a = np.where(over, upper, a)
            b_bound = np.maximum(((upper - y)[None, :] * z).sum(axis=1) / (z ** 2).sum(axis=1), 0.0)
            b = np.where(over, b_bound, b)
    sse = ((a[:, None] - b[:, None] * z - y[None, :]) ** 2).sum(axis=1)
    i = int(np.argmin(sse))
    return float(a[i]), float(b[i]), float(_C_GRID[i])


_C_GRID = np.geomspace(C_BOUNDS[0], C_BOUNDS[1], 120)
