"""Data checks: findings about a table that a person should know before training on it.

Used by ``takeoff inspect`` and before every train. Each finding names the column (when there
is one), what was found, and the fix. Severities:

- ``error``: training on this data would give a broken or misleading model (target leakage,
  a class too small to stratify). Strict mode stops on these.
- ``warning``: training works, but something is off (duplicates, imbalance, bad values).
- ``info``: what takeoff does on its own (drops identifier, constant and empty columns).

Checks (the ``check`` field): ``missing_target``, ``leakage``, ``rare_class``, ``duplicates``,
``imbalance``, ``mixed_types``, ``infinite``, ``mostly_missing``, ``high_cardinality``,
``identifier``, ``constant``, ``empty``; text columns ``text_not_string``, ``empty_text``,
``long_text``, ``duplicate_text``, ``language_mix``; image columns ``unreadable_image``,
``duplicate_image``, ``conflicting_duplicate_image``, ``tiny_image``, ``mixed_image_modes``.

The leakage check scores each feature alone with a one-feature model: the column is cut into
at most 64 bins (quantile bins for numbers and dates, one bin per value for categories, one
bin for missing values), and each bin predicts the target mean (regression) or the class
shares (classification) seen in the training folds, smoothed toward the overall prior. The
out-of-fold predictions of a 3-fold split are scored with ROC-AUC (binary), macro
one-vs-rest ROC-AUC over the classes present (multiclass) or R² (regression). This is a
histogram "tree" with up to 65 leaves: cheap (about 1 ms per column on 5,000 rows) and
deterministic.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from takeoff.data.conform import parse_column
from takeoff.data.schema import Kind, Schema, Task, require_columns
from takeoff.errors import preview

SEVERITIES = ("error", "warning", "info")
_LEAK_BINS = 64
_LEAK_FOLDS = 3
_LEAK_MIN_ROWS = 30  # below this, a single-feature score says nothing reliable
_SEED = 0


@dataclass
class Finding:
    """One thing the data checks found."""

    check: str
    severity: str  # "error" | "warning" | "info"
    message: str
    fix: str
    column: str | None = None
    count: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        where = f" column '{self.column}'" if self.column is not None else ""
        message = self.message if self.message.endswith(".") else self.message + "."
        return f"{self.severity} [{self.check}]{where}: {message} Fix: {self.fix}"


class CheckParams(BaseModel):
    """Thresholds of the data checks."""

    model_config = ConfigDict(extra="forbid")

    leakage_threshold: float = Field(
        0.98,
        ge=0.5,
        le=1.0,
        description="Single-feature score above which a column leaks the target: out-of-fold "
        "ROC-AUC (macro one-vs-rest for multiclass) for classification, R² for regression.",
    )
    imbalance_ratio: float = Field(
        0.1, ge=0.0, le=1.0, description="Rows of the smallest class / rows of the largest below this warn."
    )
    mostly_missing: float = Field(
        0.5, ge=0.0, le=1.0, description="Share of missing values above which a column warns."
    )
    high_cardinality: int = Field(
        1000, ge=2, description="Distinct values of a categorical column above which it warns."
    )
    min_class_rows: int = Field(
        2, ge=1, description="A class with fewer rows than this is an error (cannot stratify)."
    )
    long_text_chars: int = Field(
        10_000, ge=100, description="A text longer than this many characters is reported (encoders truncate it)."
    )
    sample_rows: int = Field(
        5000, ge=100, le=1_000_000, description="Rows sampled (fixed seed) for the leakage check."
    )
    verify_images: int = Field(
        5000, ge=0, description="Images fully decoded to find truncated files (the first N; all are hashed and probed)."
    )
    tiny_image_px: int = Field(
        16, ge=1, description="An image whose shorter side has fewer pixels than this is reported as tiny."
    )


def run_checks(
    df: pd.DataFrame,
    schema: Schema,
    target: str | None,
    task: Task | None,
    params: CheckParams | None = None,
) -> list[Finding]:
    """Check a raw table and return the findings, errors first, then warnings, then info.

    Args:
        df: the table as read, target column included when ``target`` is given.
        schema: ``infer_schema(df, target)``.
        target: the target column, or None (then only the target-free checks run).
        task: ``infer_task(df[target], target)``, or None.
        params: thresholds; defaults to ``CheckParams()``.

    Returns:
        The findings, sorted by severity (stable within a severity).

    Example:
        >>> df = read_table("credit_risk.csv")
        >>> schema = infer_schema(df, "Status")
        >>> findings = run_checks(df, schema, "Status", infer_task(df["Status"], "Status"))
        >>> [str(f) for f in findings if f.severity == "error"]
        []
    """
    params = params or CheckParams()
    columns = {str(c): c for c in df.columns}
    findings: list[Finding] = []
    if target is not None:
        require_columns(df, [target], "the data", role="target")
        y = df[target]
        if task is None or not task.is_multilabel:  # a multilabel row without labels has the empty set
            findings += _missing_target(y, target)
        if task is not None:
            if task.is_classification:
                findings += _class_balance(y, task, params)
            if task.is_multilabel:
                findings += _label_balance(y, task, params)
                y = pd.Series(np.zeros(len(y)), index=y.index)  # every row has a (possibly empty) label set
            findings += _leakage(df, columns, schema, y, task, params)
    findings += _duplicates(df)
    for column in schema.columns:
        series = df[columns[column.name]]
        findings += _column_findings(series, column, len(df), params)
        if column.kind == Kind.IMAGE:
            labels = df[columns[target]] if target is not None and task is not None and task.is_classification else None
            findings += _image_findings(series, column.name, params, labels)
    order = {s: i for i, s in enumerate(SEVERITIES)}
    return sorted(findings, key=lambda f: order.get(f.severity, len(order)))


# --------------------------------------------------------------------------- target checks


def _rows(mask: np.ndarray, index: pd.Index, limit: int = 5) -> str:
    positions = np.flatnonzero(mask)[:limit]
    return preview([index[p] for p in positions], limit)


def _missing_target(y: pd.Series, target: str) -> list[Finding]:
    missing = y.isna().to_numpy()
    n = int(missing.sum())
    if not n:
        return []
    return [
        Finding(
            "missing_target",
            "warning",
            f"{n} row(s) have no value in target '{target}' (e.g. rows {_rows(missing, y.index)}); "
            "they are dropped before training",
            "fill in the target for those rows if it is known; otherwise nothing to do",
            column=target,
            count=n,
        )
    ]


_FEW_LABEL_ROWS = 10  # a label on fewer rows is reported (under 2: training refuses it)


def _label_balance(y: pd.Series, task: Task, params: CheckParams) -> list[Finding]:
    """Labels of a multilabel target seen on too few rows to learn (or on nearly every row)."""
    from takeoff.data.schema import label_sets

    sets = label_sets(y)
    counts = pd.Series([label for cell in sets for label in cell]).value_counts()
    out = []
    few = max(params.min_class_rows, _FEW_LABEL_ROWS)
    rare = counts[counts < few]
    if len(rare):
        listed = ", ".join(f"'{label}' ({k} row{'s' if k != 1 else ''})" for label, k in rare.items())
        out.append(Finding(
            "rare_label", "warning" if rare.min() >= 2 else "error",
            f"label(s) of target '{task.target}' on fewer than {few} rows: {listed}; "
            "a model cannot learn a label from so few examples, and its validation score is noise",
            "collect more rows with those labels, merge them into similar labels, or set drop_rare_classes: true "
            "(labels on fewer than 2 rows are dropped then)",
            column=task.target, count=len(rare),
        ))
    empty = sum(1 for cell in sets if not cell)
    if empty:
        out.append(Finding(
            "no_label", "info",
            f"{empty} of {len(sets)} row(s) of target '{task.target}' have no label (an empty label set); "
            "they teach the model when to predict none",
            "nothing to do if 'no label' is a real answer; otherwise fill those rows in",
            column=task.target, count=empty,
        ))
    return out


def _class_balance(y: pd.Series, task: Task, params: CheckParams) -> list[Finding]:
    counts = y.dropna().value_counts()
    if len(counts) < 2:
        return []
    out = []
    rare = counts[counts < params.min_class_rows]
    if len(rare):
        listed = ", ".join(f"'{label}' ({k} row{'s' if k != 1 else ''})" for label, k in rare.items())
        out.append(
            Finding(
                "rare_class",
                "error",
                f"class(es) of target '{task.target}' with fewer than {params.min_class_rows} "
                f"rows: {listed}; training cannot split such a class between training and "
                "validation (stratified split)",
                f"remove the rows of {preview([repr(str(v)) for v in rare.index])} or merge "
                "them into a similar class",
                column=task.target,
                count=len(rare),
            )
        )
    kept = counts[counts >= params.min_class_rows]
    if len(kept) >= 2:
        small, large = kept.idxmin(), kept.idxmax()
        ratio = kept.min() / kept.max()
        if ratio < params.imbalance_ratio:
            out.append(
                Finding(
                    "imbalance",
                    "warning",
                    f"target '{task.target}' is imbalanced: class '{small}' has {kept.min()} rows "
                    f"and class '{large}' has {kept.max()} (ratio {ratio:.3f} < "
                    f"{params.imbalance_ratio})",
                    "class weights are applied automatically; collecting more rows of class "
                    f"'{small}' helps most, and judge the model by ROC-AUC or F1 rather than accuracy",
                    column=task.target,
                    count=int(kept.min()),
                )
            )
    return out


def _leakage(
    df: pd.DataFrame,
    columns: dict[str, Any],
    schema: Schema,
    y: pd.Series,
    task: Task,
    params: CheckParams,
) -> list[Finding]:
    present = y.notna().to_numpy()
    rows = np.flatnonzero(present)
    if len(rows) < _LEAK_MIN_ROWS:
        return []
    rng = np.random.default_rng(_SEED)
    if len(rows) > params.sample_rows:
        rows = np.sort(rng.choice(rows, size=params.sample_rows, replace=False))
    sample = df.iloc[rows]
    if task.is_multilabel:
        from takeoff.data.schema import LABEL_SEP, label_sets

        known = set(task.classes)  # labels dropped as too rare are not learned, so not checked
        indicator = task.encode(pd.Series([LABEL_SEP.join(x for x in cell if x in known)
                                           for cell in label_sets(sample[task.target])]))
        target, metric = indicator.astype(np.float64), "macro ROC-AUC over labels"
    elif task.is_classification:
        codes = task.encode(sample[task.target])
        target = np.eye(len(task.classes))[codes]  # (n, K) one-hot
        metric = "ROC-AUC"
    else:
        target = task.encode(sample[task.target])[:, None]  # (n, 1)
        finite = np.isfinite(target[:, 0])
        if not finite.all():
            sample, target = sample[finite], target[finite]
        metric = "R²"
    if len(target) < _LEAK_MIN_ROWS:
        return []
    folds = rng.permutation(len(target)) % _LEAK_FOLDS
    out = []
    for column in schema.features:
        if column.name == task.target or column.kind == Kind.IMAGE:
            # a schema that kept the target is not a leak of itself; image paths are not binned
            continue
        bins = _bin_codes(sample[columns[column.name]], column.kind)
        predicted = _out_of_fold(bins, target, folds)
        if task.is_multilabel:
            aucs = [_macro_auc(indicator[:, k], np.column_stack([1 - predicted[:, k], predicted[:, k]]))
                    for k in range(indicator.shape[1])]
            aucs = [a for a in aucs if a is not None]
            score = float(np.mean(aucs)) if aucs else None
        elif task.is_classification:
            score = _macro_auc(codes, predicted)
        else:
            score = _r2(target[:, 0], predicted[:, 0])
        if score is not None and score > params.leakage_threshold:
            out.append(
                Finding(
                    "leakage",
                    "error",
                    f"this column alone predicts target '{task.target}' almost perfectly "
                    f"({metric} {score:.3f} > {params.leakage_threshold}, one-feature model, "
                    f"{_LEAK_FOLDS}-fold CV on {len(target)} rows); it is probably computed from "
                    "the target or recorded after the outcome, and a model trained on it fails "
                    "on new data",
                    f"drop column '{column.name}' from the inputs unless its value is truly known "
                    "at prediction time; if it is, raise leakage_threshold",
                    column=column.name,
                )
            )
    return out


def _bin_codes(series: pd.Series, kind: Kind) -> np.ndarray:
    """Codes 0..B for one column: value bins, and B for missing values."""
    values, _ = parse_column(series, kind)
    if kind in (Kind.CATEGORICAL, Kind.TEXT):
        codes, _ = pd.factorize(values, use_na_sentinel=True)
        codes = np.asarray(codes, dtype=np.int64)
        return np.where(codes < 0, codes.max(initial=0) + 1, codes)
    if kind == Kind.DATETIME:
        numbers = values.to_numpy(dtype="datetime64[ns]").astype(np.int64).astype(np.float64)
        numbers[values.isna().to_numpy()] = np.nan
    else:
        numbers = values.to_numpy(dtype=np.float64, na_value=np.nan)
    missing = ~np.isfinite(numbers)
    observed = numbers[~missing]
    codes = np.zeros(len(numbers), dtype=np.int64)
    if len(observed):
        distinct = np.unique(observed)
        if len(distinct) <= _LEAK_BINS:
            codes[~missing] = np.searchsorted(distinct, observed)
        else:
            edges = np.unique(np.quantile(observed, np.linspace(0, 1, _LEAK_BINS + 1)[1:-1]))
            codes[~missing] = np.searchsorted(edges, observed, side="right")
    codes[missing] = codes.max(initial=0) + 1
    return codes


def _out_of_fold(bins: np.ndarray, target: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """Each row's prediction from the other folds' rows of its bin, smoothed to the prior."""
    n_bins, n_out = int(bins.max()) + 1, target.shape[1]
    predicted = np.empty_like(target, dtype=np.float64)
    for fold in range(_LEAK_FOLDS):
        test = folds == fold
        train = ~test
        prior = target[train].mean(axis=0)
        counts = np.bincount(bins[train], minlength=n_bins).astype(np.float64)
        sums = np.stack(
            [np.bincount(bins[train], weights=target[train, k], minlength=n_bins) for k in range(n_out)],
            axis=1,
        )  # (n_bins, n_out)
        predicted[test] = ((sums + prior) / (counts[:, None] + 1.0))[bins[test]]
    return predicted


def _macro_auc(codes: np.ndarray, scores: np.ndarray) -> float | None:
    """Mean one-vs-rest ROC-AUC over classes with both positives and negatives (binary: the
    positive class's AUC)."""
    from scipy.stats import rankdata

    n_classes = scores.shape[1]
    classes = [1] if n_classes == 2 else range(n_classes)
    aucs = []
    for k in classes:
        positive = codes == k
        n_pos = int(positive.sum())
        n_neg = len(codes) - n_pos
        if n_pos == 0 or n_neg == 0:
            continue
        ranks = rankdata(scores[:, k])
        aucs.append((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
    return float(np.mean(aucs)) if aucs else None


def _r2(y: np.ndarray, predicted: np.ndarray) -> float | None:
    total = float(((y - y.mean()) ** 2).sum())
    if total == 0:
        return None
    return 1.0 - float(((y - predicted) ** 2).sum()) / total


# --------------------------------------------------------------------------- table and column checks


def _duplicates(df: pd.DataFrame) -> list[Finding]:
    try:
        duplicated = df.duplicated(keep="first").to_numpy()
    except TypeError:  # unhashable cells (lists from JSON): skip this check
        return []
    n = int(duplicated.sum())
    if not n:
        return []
    return [
        Finding(
            "duplicates",
            "warning",
            f"{n} row(s) are exact copies of an earlier row (e.g. rows {_rows(duplicated, df.index)})",
            "remove them if they are accidental copies: they count twice in training and can "
            "sit in both the training and validation split, flattering the scores; keep them if "
            "repeated rows are real",
            count=n,
        )
    ]


def _column_findings(series: pd.Series, column: Any, n_rows: int, params: CheckParams) -> list[Finding]:
    name = column.name
    if column.kind == Kind.EMPTY:
        return [Finding("empty", "info", "has no values; dropped", "nothing to do", column=name)]
    if column.kind == Kind.CONSTANT:
        value = series.dropna().iloc[0]
        return [
            Finding(
                "constant",
                "info",
                f"has one value ({value!r}) in every row with a value; carries no signal, dropped",
                "nothing to do",
                column=name,
            )
        ]
    if column.kind == Kind.IDENTIFIER:
        return [
            Finding(
                "identifier",
                "info",
                "is unique in every row (looks like an identifier); carries no signal, dropped",
                "nothing to do; if it does carry meaning (e.g. a number with a scale), convert "
                "it to that meaning before training",
                column=name,
            )
        ]
    out = []
    if n_rows and column.n_missing / n_rows > params.mostly_missing:
        out.append(
            Finding(
                "mostly_missing",
                "warning",
                f"{column.n_missing / n_rows:.0%} of values are missing ({column.n_missing} of "
                f"{n_rows} rows)",
                "missing values are imputed during training; fill the column from its source if "
                "you can, or drop it if the gaps carry no information",
                column=name,
                count=column.n_missing,
            )
        )
    if column.kind == Kind.CATEGORICAL and column.n_unique > params.high_cardinality:
        out.append(
            Finding(
                "high_cardinality",
                "warning",
                f"has {column.n_unique} distinct values (more than {params.high_cardinality}); "
                "only the most frequent are kept as categories, the rest share one 'other' code",
                "group rare values into broader ones, or drop the column if it is an identifier "
                "or free text",
                column=name,
                count=column.n_unique,
            )
        )
    if column.kind == Kind.NUMERIC and column.bad_values > 0:
        out += _bad_numbers(series, name)
    if column.kind == Kind.TEXT:
        out += _text_findings(series, name, params)
    return out


def _text_findings(series: pd.Series, name: str, params: CheckParams) -> list[Finding]:
    """Free text: values that are not strings, empty and very long texts, repeated texts, and a
    mix of scripts (a rough sign of several languages)."""
    out = []
    present = series.dropna()
    not_text = present[[not isinstance(v, str) for v in present]]
    if len(not_text):
        out.append(Finding("text_not_string", "info", f"{len(not_text)} value(s) are not text (e.g. {not_text.iloc[0]!r}); "
                           "they are read as their text form", "nothing to do, or clean the column at its source",
                           column=name, count=len(not_text)))
    text = present.astype(str)
    lengths = text.str.len()
    empty = int((text.str.strip() == "").sum())
    if empty:
        out.append(Finding("empty_text", "info", f"{empty} text(s) are empty; they are treated as missing text",
                           "nothing to do, or drop those rows if an empty text is a data error", column=name, count=empty))
    long = int((lengths > params.long_text_chars).sum())
    if long:
        out.append(Finding("long_text", "warning", f"{long} text(s) are longer than {params.long_text_chars:,} characters "
                           f"(longest {int(lengths.max()):,}); pretrained encoders truncate them to their first tokens",
                           "nothing to do if the beginning carries the meaning; else split long texts into parts",
                           column=name, count=long))
    repeated = int(text.duplicated().sum())
    if len(text) and repeated / len(text) > 0.05:
        out.append(Finding("duplicate_text", "warning", f"{repeated} text(s) ({repeated / len(text):.0%}) repeat an earlier "
                           "one; the same text in training and validation rows makes the scores look better than they are",
                           "drop exact repeats, or keep them if they are real (e.g. template messages)",
                           column=name, count=repeated))
    sample = text.head(2000)
    scripts = sample.map(_script).value_counts(normalize=True)
    mixed = scripts[(scripts.index != "other") & (scripts > 0.05)]
    if len(mixed) > 1:
        shares = ", ".join(f"{k} {v:.0%}" for k, v in mixed.items())
        out.append(Finding("language_mix", "info", f"texts are written in several scripts ({shares} of a sample)",
                           "the default encoder is English; for several languages set a multilingual encoder "
                           "(models.text-embed.encoder)", column=name))
    return out


def _image_findings(series: pd.Series, name: str, params: CheckParams, labels: pd.Series | None) -> list[Finding]:
    """An image column: unreadable or truncated files, exact copies (the same bytes; with
    different labels), tiny images and a mix of colour modes."""
    from takeoff.data.images import GRAY_MODES, scan

    values = series.tolist()
    scanned = scan(values, verify=params.verify_images)
    out = []
    n_present = int(series.notna().sum())
    if scanned.failed:
        listed = "; ".join(f"row {series.index[i]}: {reason}" for i, reason in list(scanned.failed.items())[:5])
        checked = "" if scanned.verified >= len(values) else f" (the first {scanned.verified:,} fully decoded)"
        out.append(Finding("unreadable_image", "warning",
                           f"{len(scanned.failed)} of {n_present} image(s) cannot be read{checked}: {listed}",
                           "replace or remove those files; training skips them, predicting on them is an error",
                           column=name, count=len(scanned.failed)))
    groups: dict[str, list[int]] = {}
    for i, digest in enumerate(scanned.digests):
        if digest is not None:
            groups.setdefault(digest, []).append(i)
    copies = [g for g in groups.values() if len(g) > 1]
    if copies:
        n_copies = sum(len(g) - 1 for g in copies)
        example = ", ".join(str(series.index[i]) for i in copies[0][:3])
        out.append(Finding("duplicate_image", "warning",
                           f"{n_copies} image(s) are exact copies of another ({len(copies)} group(s); e.g. rows {example}); "
                           "a copy in training and one in validation makes the scores look better than they are",
                           "remove the copies, or keep one per group", column=name, count=n_copies))
        if labels is not None:
            conflicting = [g for g in copies if labels.iloc[g].map(str).nunique() > 1]
            if conflicting:
                g = conflicting[0]
                example = ", ".join(f"row {series.index[i]} ({labels.iloc[i]!r})" for i in g[:3])
                out.append(Finding("conflicting_duplicate_image", "warning",
                                   f"{len(conflicting)} group(s) of identical images carry different labels (e.g. {example})",
                                   "check those labels: the same picture cannot be two classes", column=name,
                                   count=len(conflicting)))
    sides = np.array([min(s) for s in scanned.sizes if s is not None])
    if len(sides):
        median = float(np.median(sides))
        tiny = int(((sides < params.tiny_image_px) | (sides < median / 4)).sum())
        if tiny:
            out.append(Finding("tiny_image", "warning",
                               f"{tiny} image(s) have a shorter side under {params.tiny_image_px} px or a quarter of "
                               f"the median ({median:.0f} px; smallest {int(sides.min())} px); they are scaled up and blurred",
                               "check those files (thumbnails, icons or crops by mistake?) and replace them with the "
                               "full-size images", column=name, count=tiny))
    modes = pd.Series([m for m in scanned.modes if m is not None]).value_counts()
    if len(modes) > 1:
        shares = ", ".join(f"{mode} {count}" for mode, count in modes.items())
        out.append(Finding("mixed_image_modes", "info",
                           f"images come in several colour modes ({shares}); all are converted to "
                           f"{'grayscale' if set(modes.index) <= GRAY_MODES else 'RGB'}",
                           "nothing to do; if colour matters, check that the grayscale images are not scans of colour ones",
                           column=name))
    return out


def _script(text: str) -> str:
    """The dominant writing system of a text: latin, cyrillic, greek, arabic, hebrew, cjk or other."""
    counts: dict[str, int] = {}
    for ch in text[:500]:
        code = ord(ch)
        if ch.isascii():
            kind = "latin" if ch.isalpha() else None
        elif 0x0400 <= code <= 0x04FF:
            kind = "cyrillic"
        elif 0x0370 <= code <= 0x03FF:
            kind = "greek"
        elif 0x0600 <= code <= 0x06FF:
            kind = "arabic"
        elif 0x0590 <= code <= 0x05FF:
            kind = "hebrew"
        elif 0x3040 <= code <= 0x30FF or 0x4E00 <= code <= 0x9FFF or 0xAC00 <= code <= 0xD7AF:
            kind = "cjk"
        elif ch.isalpha():
            kind = "latin"
        else:
            kind = None
        if kind:
            counts[kind] = counts.get(kind, 0) + 1
    return max(counts, key=counts.get) if counts else "other"


def _bad_numbers(series: pd.Series, name: str) -> list[Finding]:
    present = series.notna().to_numpy()
    if pd.api.types.is_bool_dtype(series):
        return []
    numbers = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    infinite = np.isinf(numbers)
    unparsed = present & np.isnan(numbers)
    out = []
    if unparsed.any():
        n = int(unparsed.sum())
        examples = pd.unique(series[unparsed].astype(str))[:3]
        out.append(
            Finding(
                "mixed_types",
                "warning",
                f"mixed types: {n} value(s) like {preview([repr(e) for e in examples], 3)} do not "
                f"parse as numbers and are treated as missing (rows {_rows(unparsed, series.index)})",
                "correct those values at the source, or blank them; if the column is really a "
                "category, make all its values non-numeric",
                column=name,
                count=n,
            )
        )
    if infinite.any():
        n = int(infinite.sum())
        out.append(
            Finding(
                "infinite",
                "warning",
                f"{n} infinite value(s) (rows {_rows(infinite, series.index)}); they are treated "
                "as missing",
                "replace them at the source (often a division by zero) with a blank or a large "
                "finite value",
                column=name,
                count=n,
            )
        )
    return out
