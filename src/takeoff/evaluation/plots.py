"""Charts for the evaluation report, each returned as an inline SVG string.

Every function draws on a bare :class:`matplotlib.figure.Figure` (no pyplot, so no global
backend, no figure registry to leak into) inside ``matplotlib.rc_context`` (so the global
``rcParams`` are left as they were), and returns ``<svg ...>...</svg>`` ready to paste into
HTML (:func:`takeoff.evaluation.svg.to_svg`): no XML declaration, no metadata, no namespace
URLs, element ids made unique per chart.
Text stays text (``svg.fonttype = "none"``) so charts are small and sharp at any size.

matplotlib is imported inside the functions so that importing ``takeoff.evaluation`` stays
fast. Inputs are capped: curves are computed on at most ``CURVE_ROWS`` rows and scatter plots
draw at most ``SCATTER_POINTS`` points (seeded subsamples), so a report on 1M rows stays fast
and small.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from takeoff.errors import DataError
from takeoff.evaluation.svg import to_svg

CURVE_ROWS = 200_000
SCATTER_POINTS = 5_000
MAX_LINE_POINTS = 400  # a drawn curve keeps at most this many vertices

# One palette for every chart (and the report's CSS): indigo, sky, amber, emerald, rose, ...
PRIMARY = "#4F46E5"
SECONDARY = "#0EA5E9"
PALETTE = [PRIMARY, SECONDARY, "#F59E0B", "#10B981", "#E11D48", "#8B5CF6", "#14B8A6", "#64748B"]
TEXT = "#1E293B"
MUTED = "#64748B"
FAINT = "#94A3B8"
GRID = "#E9EDF3"
AXIS = "#CBD5E1"

_STYLE = {
    "svg.fonttype": "none",
    "svg.hashsalt": "takeoff",
    "font.family": "sans-serif",
    "font.sans-serif": ["Inter", "Segoe UI", "Helvetica Neue", "Arial", "DejaVu Sans"],
    "font.size": 9,
    "text.color": TEXT,
    "axes.titlesize": 9.5,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.titlecolor": TEXT,
    "axes.titlepad": 8,
    "axes.labelsize": 8.5,
    "axes.labelcolor": MUTED,
    "axes.edgecolor": AXIS,
    "axes.linewidth": 0.8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.axisbelow": True,
    "axes.facecolor": "white",
    "grid.color": GRID,
    "grid.linewidth": 0.8,
    "xtick.color": MUTED,
    "ytick.color": MUTED,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "xtick.major.size": 0,
    "ytick.major.size": 0,
    "xtick.major.pad": 5,
    "ytick.major.pad": 5,
    "legend.frameon": False,
    "legend.fontsize": 8,
    "lines.linewidth": 1.8,
    "lines.solid_capstyle": "round",
    "figure.facecolor": "white",
    "path.simplify": True,
}


def _styled(fn):
    """Run a chart function under the takeoff style; rcParams are restored afterwards."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        import matplotlib

        with matplotlib.rc_context(_STYLE):
            return fn(*args, **kwargs)

    return wrapper


@_styled
def roc_curve_svg(y: np.ndarray, p_pos: np.ndarray, threshold: float | None = None) -> str:
    """ROC curve of a binary classifier, with the chance diagonal.

    Args:
        y: true codes (0/1), shape (n,); both classes must be present.
        p_pos: positive-class probabilities, shape (n,).
        threshold: when given, the operating point at this threshold is marked.

    Returns:
        An inline SVG string.

    Raises:
        DataError: lengths differ, no rows, or ``y`` holds a single class.

    Example:
        >>> svg = roc_curve_svg(np.array([0, 1, 0, 1]), np.array([0.1, 0.8, 0.4, 0.6]))
        >>> svg.startswith("<svg")
        True
    """
    from sklearn.metrics import roc_curve

    y, p = _binary_inputs(y, p_pos, "ROC curve")
    fpr, tpr, _ = roc_curve(y, p)
    fpr, tpr = _thin(fpr, tpr)
    fig, ax = _figure((4.6, 3.5))
    ax.plot([0, 1], [0, 1], color=FAINT, lw=1, ls=(0, (4, 3)), label="Chance")
    ax.fill_between(fpr, tpr, color=PRIMARY, alpha=0.07, lw=0)
    ax.plot(fpr, tpr, color=PRIMARY, label="Model")
    if threshold is not None:
        predicted = p >= threshold
        x = predicted[y == 0].mean()
        y_ = predicted[y == 1].mean()
        _mark(ax, x, y_, f"threshold {threshold:.2f}")
    ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="False positive rate",
           ylabel="True positive rate")
    ax.legend(loc="lower right")
    return to_svg(fig, "ROC curve")


@_styled
def pr_curve_svg(y: np.ndarray, p_pos: np.ndarray, threshold: float | None = None) -> str:
    """Precision-recall curve of a binary classifier, with the positive-rate baseline.

    Args:
        y: true codes (0/1), shape (n,); at least one positive.
        p_pos: positive-class probabilities, shape (n,).
        threshold: when given, the operating point at this threshold is marked.

    Returns:
        An inline SVG string.

    Raises:
        DataError: lengths differ, no rows, or ``y`` holds a single class.
    """
    from sklearn.metrics import precision_recall_curve

    y, p = _binary_inputs(y, p_pos, "precision-recall curve")
    precision, recall, _ = precision_recall_curve(y, p)
    recall, precision = _thin(recall[::-1], precision[::-1])
    base = float(y.mean())
    fig, ax = _figure((4.6, 3.5))
    ax.axhline(base, color=FAINT, lw=1, ls=(0, (4, 3)), label=f"Baseline ({_pct(base)} positive)")
    ax.fill_between(recall, precision, step="post", color=PRIMARY, alpha=0.07, lw=0)
    ax.step(recall, precision, where="post", color=PRIMARY, label="Model")
    if threshold is not None:
        predicted = p >= threshold
        hits = predicted & (y == 1)
        x = hits.sum() / max(int(y.sum()), 1)
        y_ = hits.sum() / predicted.sum() if predicted.any() else 1.0
        _mark(ax, x, y_, f"threshold {threshold:.2f}")
    ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="Recall", ylabel="Precision")
    ax.legend(loc="lower left")
    return to_svg(fig, "Precision-recall curve")


@_styled
def calibration_svg(y: np.ndarray, p_pos: np.ndarray, bins: int = 10) -> str:
    """Reliability diagram (mean predicted vs observed positive rate per bin) over the score
    distribution of each class.

    Bins are quantiles of ``p_pos``, so each holds about the same number of rows.

    Args:
        y: true codes (0/1), shape (n,).
        p_pos: positive-class probabilities, shape (n,).
        bins: number of quantile bins (fewer when scores repeat). Default 10.

    Returns:
        An inline SVG string.

    Raises:
        DataError: lengths differ or no rows.
    """
    y, p = _binary_inputs(y, p_pos, "calibration plot", need_both=False)
    edges = np.unique(np.quantile(p, np.linspace(0, 1, bins + 1)))
    which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, max(len(edges) - 2, 0))
    counts = np.bincount(which, minlength=max(len(edges) - 1, 1))
    keep = counts > 0
    mean_p = np.bincount(which, weights=p, minlength=len(counts))[keep] / counts[keep]
    rate = np.bincount(which, weights=y, minlength=len(counts))[keep] / counts[keep]

    fig = _new_figure((4.6, 3.9))
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1.1]})
    top.plot([0, 1], [0, 1], color=FAINT, lw=1, ls=(0, (4, 3)), label="Perfectly calibrated")
    top.plot(mean_p, rate, color=PRIMARY, marker="o", ms=4.5, mfc="white", mew=1.6,
             label="Model")
    top.set(xlim=(0, 1), ylim=(0, 1.02), ylabel="Observed positive rate")
    top.legend(loc="upper left")
    hist_bins = np.linspace(0, 1, 41)
    for code, color, name in ((0, FAINT, "negatives"), (1, PRIMARY, "positives")):
        values = p[y == code]
        if len(values):
            bottom.hist(values, bins=hist_bins, density=True, color=color, alpha=0.45, lw=0,
                        label=name)
    bottom.set(xlabel="Predicted probability", yticks=[])
    bottom.grid(False)
    bottom.legend(loc="upper center", ncols=2, fontsize=7.5)
    return to_svg(fig, "Calibration")


@_styled
def confusion_matrix_svg(y_codes: np.ndarray, pred_codes: np.ndarray,
                         labels: Sequence[Any]) -> str:
    """Confusion matrix: counts in the cells, colour by share of the true class (row).

    Args:
        y_codes: true class codes, shape (n,), in ``0 .. len(labels)-1``.
        pred_codes: predicted class codes, shape (n,).
        labels: the class labels; ``labels[i]`` names code ``i``. Readable up to ~20
            classes; past ~25, cells are drawn without numbers.

    Returns:
        An inline SVG string.

    Raises:
        DataError: lengths differ, no rows, or a code is out of range.
    """
    y = np.asarray(y_codes).astype(np.int64)
    pred = np.asarray(pred_codes).astype(np.int64)
    k = len(labels)
    if len(y) != len(pred) or len(y) == 0:
        raise DataError(f"confusion matrix needs equally long, non-empty code arrays; received "
                        f"{len(y)} and {len(pred)} rows.")
    if k == 0 or min(y.min(), pred.min()) < 0 or max(y.max(), pred.max()) >= k:
        raise DataError(f"confusion matrix: codes must be in 0..{k - 1} for {k} label(s).")
    cm = np.bincount(y * k + pred, minlength=k * k).reshape(k, k)
    share = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)

    from matplotlib.colors import LinearSegmentedColormap

    cmap = LinearSegmentedColormap.from_list("takeoff", ["#F5F7FB", "#C7D2FE", PRIMARY])
    side = float(np.clip(1.6 + 0.42 * k, 3.6, 9.5))
    fig, ax = _figure((side + 0.6, side))
    # One small embedded image for the cells (k*k paths would bloat the SVG), white grid.
    ax.imshow(share, cmap=cmap, vmin=0, vmax=1, interpolation="none", aspect="auto")
    ax.set_xticks(np.arange(k + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(k + 1) - 0.5, minor=True)
    ax.grid(False)
    ax.grid(which="minor", color="white", linewidth=2 if k <= 12 else 1.2)
    ax.tick_params(which="minor", length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if k <= 25:
        size = 9 if k <= 6 else (7.5 if k <= 12 else 6)
        for i in range(k):
            for j in range(k):
                dark = share[i, j] > 0.55
                color = "white" if dark else (TEXT if cm[i, j] else FAINT)
                text = _count(cm[i, j])
                if k <= 8:
                    text += f"\n{_pct(share[i, j])}"
                ax.text(j, i, text, ha="center", va="center", fontsize=size,
                        color=color, linespacing=1.25)
    names = [_label(v, 18) for v in labels]
    ax.set_xticks(np.arange(k), names, rotation=0 if k <= 4 and _short(names) else 40,
                  ha="center" if k <= 4 and _short(names) else "right", rotation_mode="anchor")
    ax.set_yticks(np.arange(k), names)
    ax.set_xlabel("Predicted")
    ax.set_ylabel("Actual")
    return to_svg(fig, "Confusion matrix")


@_styled
def residuals_svg(y: np.ndarray, pred: np.ndarray) -> str:
    """Regression diagnostics: predicted against actual values, and the residual histogram.

    Args:
        y: true values, shape (n,).
        pred: predicted values, shape (n,).

    Returns:
        An inline SVG string.

    Raises:
        DataError: lengths differ, no rows, or values are not finite.
    """
    y = np.asarray(y, dtype=np.float64).ravel()
    pred = np.asarray(pred, dtype=np.float64).ravel()
    if len(y) != len(pred) or len(y) == 0:
        raise DataError(f"residual plot needs equally long, non-empty arrays; received "
                        f"{len(y)} and {len(pred)} rows.")
    if not (np.isfinite(y).all() and np.isfinite(pred).all()):
        raise DataError("residual plot: values must be finite (no NaN or infinity).")
    rows = _sample(len(y), CURVE_ROWS)
    residual = (y - pred)[rows]
    dots = _sample(len(y), SCATTER_POINTS)

    fig = _new_figure((8.8, 3.6))
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.15, 1]})
    lo = float(min(y[rows].min(), pred[rows].min()))
    hi = float(max(y[rows].max(), pred[rows].max()))
    pad = (hi - lo) * 0.03 or 1.0
    left.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color=FAINT, lw=1, ls=(0, (4, 3)),
              label="Perfect prediction", zorder=1)
    left.scatter(y[dots], pred[dots], s=7, color=PRIMARY, alpha=0.35, lw=0, label="Rows",
                 rasterized=len(dots) > 1500, zorder=2)
    left.set(xlim=(lo - pad, hi + pad), ylim=(lo - pad, hi + pad), xlabel="Actual",
             ylabel="Predicted", title="Predicted vs actual")
    left.legend(loc="upper left", markerscale=1.6)
    # The middle 99% of residuals: a few huge errors would squash the histogram to one bar.
    lo_r, hi_r = np.quantile(residual, [0.005, 0.995]) if len(residual) > 200 else (
        residual.min(), residual.max())
    right.hist(residual, bins=40, range=(lo_r, hi_r) if hi_r > lo_r else None, color=PRIMARY,
               alpha=0.8, lw=0)
    right.axvline(0, color=TEXT, lw=1, ls=(0, (4, 3)))
    right.set(xlabel="Residual (actual − predicted)", ylabel="Rows", title="Residuals")
    right.grid(axis="x", visible=False)
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    for axis in (left.xaxis, left.yaxis, right.xaxis, right.yaxis):
        axis.set_major_formatter(FuncFormatter(lambda v, _: _tick(v)))
        axis.set_major_locator(MaxNLocator(6))
    return to_svg(fig, "Residual plots", dpi=144)


@_styled
def importance_svg(importance: Mapping[str, float], top: int = 20) -> str:
    """Horizontal bars of the most important features, largest on top.

    Args:
        importance: feature name -> importance (any scale; negative values, e.g. from
            permutation importance, are drawn in grey).
        top: how many features to show (by absolute value). Default 20.

    Returns:
        An inline SVG string.

    Raises:
        DataError: ``importance`` is empty or holds non-finite values.
    """
    items = [(str(k), float(v)) for k, v in importance.items()]
    if not items:
        raise DataError("feature importance is empty; there is nothing to plot.")
    if not all(np.isfinite(v) for _, v in items):
        raise DataError("feature importance holds NaN or infinite values.")
    items = sorted(items, key=lambda kv: -abs(kv[1]))[: max(int(top), 1)]
    names = [_label(k, 34) for k, _ in items][::-1]
    values = np.array([v for _, v in items][::-1])
    n = len(items)
    fig, ax = _figure((8.8, 0.9 + 0.25 * n))
    colors = [PRIMARY if v >= 0 else FAINT for v in values]
    ax.barh(np.arange(n), values, color=colors, height=0.66)
    ax.set_yticks(np.arange(n), names)
    ax.set_ylim(-0.6, n - 0.4)
    ax.grid(axis="y", visible=False)
    ax.spines["left"].set_visible(False)
    span = float(np.abs(values).max()) or 1.0
    for i, v in enumerate(values):
        ax.text(v + (0.012 * span if v >= 0 else -0.012 * span), i, _num(v), va="center",
                ha="left" if v >= 0 else "right", fontsize=7.5, color=MUTED)
    lo = min(0.0, float(values.min()) * 1.18)
    ax.set_xlim(lo, max(float(values.max()), 0.0) * 1.16 or 1.0)
    ax.set_xlabel("Importance")
    return to_svg(fig, "Feature importance")


@_styled
def learning_curve_svg(history: Mapping[str, Mapping[str, Sequence[float]]]) -> str:
    """Learning curves: one panel per model family, one line per series (train/valid loss...).

    The best point of each validation series (lowest for losses and errors, highest
    otherwise) is marked.

    Args:
        history: family -> series name -> values per iteration or epoch, e.g.
            ``{"lightgbm": {"train_loss": [...], "valid_loss": [...]}, "mlp": {...}}``.

    Returns:
        An inline SVG string.

    Raises:
        DataError: there is no non-empty series to plot.
    """
    panels = []
    for family, series in history.items():
        lines = [(str(name), np.asarray(values, dtype=np.float64))
                 for name, values in series.items() if len(values)]
        if lines:
            panels.append((str(family), lines))
    if not panels:
        raise DataError("learning curves: the history holds no values to plot.")
    ncols = min(len(panels), 3)
    nrows = -(-len(panels) // ncols)
    fig = _new_figure((8.8 if ncols > 1 else 6.0, 3.0 * nrows))
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax, (family, lines) in zip(axes, panels):
        for i, (name, values) in enumerate(lines):
            lowered = name.lower()
            color = (SECONDARY if "train" in lowered else
                     PRIMARY if "valid" in lowered or "val" in lowered else
                     PALETTE[(i + 2) % len(PALETTE)])
            x = np.arange(1, len(values) + 1)
            xs, vs = _thin(x.astype(np.float64), values)
            ax.plot(xs, vs, color=color, label=_label(name.replace("_", " "), 24))
            finite = np.isfinite(values)
            if ("valid" in lowered or "val" in lowered) and finite.any():
                lower_better = any(w in lowered for w in ("loss", "error", "rmse", "mae"))
                masked = np.where(finite, values, np.inf if lower_better else -np.inf)
                best = int(np.argmin(masked) if lower_better else np.argmax(masked))
                ax.axvline(best + 1, color=color, lw=0.9, ls=(0, (2, 3)), alpha=0.6)
                ax.plot([best + 1], [values[best]], "o", color=color, ms=4.5, mfc="white",
                        mew=1.6)
        ax.set_title(_label(family, 30))
        ax.set_xlabel("Iteration")
        ax.legend(loc="upper right")
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    return to_svg(fig, "Learning curves")


@_styled
def optimization_history_svg(values: Sequence[float | None], metric: str) -> str:
    """A hyperparameter search's history: each finished trial's score (pruned trials, None,
    are left out) and the best so far, in trial order.

    Raises:
        DataError: no trial has a score.
    """
    pairs = [(i, float(v)) for i, v in enumerate(values) if v is not None and np.isfinite(v)]
    if not pairs:
        raise DataError("optimisation history: no trial finished with a score.")
    x = np.array([i for i, _ in pairs], dtype=np.float64)
    v = np.array([s for _, s in pairs])
    fig, ax = _figure((8.8, 3.0))
    ax.plot(x, v, "o", color=SECONDARY, ms=4, label="trial")
    ax.step(x, np.maximum.accumulate(v), where="post", color=PRIMARY, label="best so far")
    ax.set_xlabel("Trial")
    ax.set_ylabel(_label(metric, 24))
    ax.legend(loc="lower right")
    return to_svg(fig, "Optimisation history")


# --- internals ------------------------------------------------------------------------------


def _new_figure(size: tuple[float, float]):
    """A bare Figure: not registered with pyplot, so no backend and nothing to close."""
    from matplotlib.figure import Figure

    return Figure(figsize=size, layout="constrained")


def _figure(size: tuple[float, float]):
    fig = _new_figure(size)
    return fig, fig.add_subplot()


def _binary_inputs(y, p_pos, what: str, need_both: bool = True):
    y = np.asarray(y).astype(np.int64).ravel()
    p = np.asarray(p_pos, dtype=np.float64)
    if p.ndim == 2:
        p = p[:, 1]
    if len(y) != len(p) or len(y) == 0:
        raise DataError(f"{what} needs equally long, non-empty y and probabilities; received "
                        f"{len(y)} and {len(p)} rows.")
    if not np.isfinite(p).all():
        raise DataError(f"{what}: probabilities must be finite (no NaN or infinity).")
    if need_both and (y.min() == y.max()):
        raise DataError(f"{what} needs both classes in y; only code {y[0]} is present.")
    rows = _sample(len(y), CURVE_ROWS)
    return y[rows], p[rows]


def _sample(n: int, cap: int) -> np.ndarray:
    """Row indices: all rows, or a seeded sorted sample of ``cap`` of them."""
    if n <= cap:
        return np.arange(n)
    return np.sort(np.random.default_rng(0).choice(n, size=cap, replace=False))


def _thin(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keep at most MAX_LINE_POINTS vertices of a curve (ends included)."""
    if len(x) <= MAX_LINE_POINTS:
        return x, y
    keep = np.unique(np.linspace(0, len(x) - 1, MAX_LINE_POINTS).round().astype(np.int64))
    return x[keep], y[keep]


def _mark(ax, x: float, y: float, text: str) -> None:
    ax.plot([x], [y], "o", color=PRIMARY, ms=6, mfc="white", mew=2, zorder=5)
    left = x > 0.6  # keep the label inside the axes and off the curve
    ax.annotate(_escape(text), (x, y), xytext=(-9 if left else 9, -13),
                textcoords="offset points", ha="right" if left else "left", fontsize=7.5,
                color=MUTED)


def _escape(text: str) -> str:
    """Keep user text literal: matplotlib would read $...$ as math."""
    return text.replace("$", r"\$")


def _label(value: Any, limit: int) -> str:
    text = str(value)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return _escape(text)


def _short(names: Sequence[str]) -> bool:
    return all(len(n) <= 8 for n in names)


def _pct(share: float) -> str:
    value = 100 * share
    return f"{value:.0f}%" if value >= 10 or value == 0 else f"{value:.1f}%"


def _count(n: int) -> str:
    if n < 10_000:
        return f"{n:,}"
    if n < 1_000_000:
        return f"{n / 1e3:.1f}k"
    return f"{n / 1e6:.1f}M"


def _tick(v: float) -> str:
    """Compact axis numbers: 250k, 1.2M, 0.35, with a real minus sign."""
    a = abs(v)
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e4, "k")):
        if a >= scale:
            text = f"{a / (scale if suffix != 'k' else 1e3):.3g}{suffix}"
            break
    else:
        text = f"{a:.4g}"
    return ("−" if v < 0 else "") + text


def _num(v: float) -> str:
    a = abs(v)
    if a == 0:
        return "0"
    if a >= 1000 or a < 0.001:
        return f"{v:.2e}" if a < 0.001 else f"{v:,.0f}"
    return f"{v:.3g}"


@_styled
def group_metrics_svg(records: Sequence[Mapping[str, Any]], metrics: Sequence[str], column: str,
                      reference: float | None = None) -> str:
    """Grouped horizontal bars: one block per group (the fairness audit's ``groups`` records),
    one bar per metric (rates in [0, 1]); ``reference`` draws a dashed line (e.g. the overall
    selection rate)."""
    shown = [m for m in metrics if any(r.get(m) is not None for r in records)]
    if not records or not shown:
        raise DataError(f"no per-group metrics to plot for '{column}'.")
    n, k = len(records), len(shown)
    fig, ax = _figure((8.8, 0.9 + 0.22 * n * k + 0.12 * n))
    height = 0.8 / k
    for j, metric in enumerate(shown):
        values = np.array([np.nan if r.get(metric) is None else float(r[metric]) for r in records])[::-1]
        y = np.arange(n) + (k - 1 - j - (k - 1) / 2) * height
        ax.barh(y, np.nan_to_num(values), height=height * 0.9, color=PALETTE[j % len(PALETTE)],
                label=metric.replace("_", " "))
        for yi, v in zip(y, values):
            if np.isfinite(v):
                ax.text(v + 0.01, yi, f"{v:.2f}", va="center", ha="left", fontsize=7, color=MUTED)
    labels = [f"{_label(r['group'], 24)} ({_count(int(r.get('count') or 0))})" for r in records][::-1]
    ax.set_yticks(np.arange(n), labels)
    ax.grid(axis="y", visible=False)
    ax.spines["left"].set_visible(False)
    top = max(1.0, float(np.nanmax([r.get(m) or 0.0 for r in records for m in shown])) * 1.12)
    ax.set_xlim(0, top)
    if reference is not None and np.isfinite(reference):
        ax.axvline(reference, color=FAINT, linestyle="--", linewidth=1)
    ax.legend(loc="lower right", ncols=min(k, 4))
    ax.set_xlabel(f"per group of '{_escape(column)}' (rows)")
    return to_svg(fig, f"Metrics per group of {column}")


@_styled
def rows_curve_svg(points: Mapping[str, tuple[Sequence[float], Sequence[float]]], metric: str,
                   fitted: tuple[Sequence[float], Sequence[float]] | None = None,
                   band: tuple[Sequence[float], Sequence[float], Sequence[float]] | None = None,
                   baseline: float | None = None) -> str:
    """A learning curve over training rows (log scale): measured scores per model (dots), the
    fitted curve (line) with its interval (band), and the constant-guess baseline (dashed)."""
    if not points:
        raise DataError("no learning-curve points to plot.")
    fig, ax = _figure((8.8, 3.6))
    if band is not None:
        ax.fill_between(band[0], band[1], band[2], color=PRIMARY, alpha=0.12, linewidth=0, label="90% interval")
    if fitted is not None:
        ax.plot(fitted[0], fitted[1], color=PRIMARY, linewidth=1.6, label="fitted curve")
    for i, (name, (rows, scores)) in enumerate(points.items()):
        ax.scatter(rows, scores, s=16, color=PALETTE[i % len(PALETTE)], zorder=3, label=_escape(name))
    if baseline is not None and np.isfinite(baseline):
        ax.axhline(baseline, color=FAINT, linestyle="--", linewidth=1, label="constant guess")
    ax.set_xscale("log")
    ax.set_xlabel("training rows")
    ax.set_ylabel(_escape(metric))
    ax.legend(loc="best")
    return to_svg(fig, f"{metric} against training rows")
