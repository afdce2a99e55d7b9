"""``text-embed``: a frozen pretrained encoder turns each text column into a sentence vector,
and the vectors join the table's other columns in a tabular model.

Fast and CPU-friendly: the encoder runs once per distinct text (a process-wide cache keeps the
vectors, so the refit on all rows does not embed again), nothing is fine-tuned. Two heads are
fitted on the same inputs and the one with the better validation score is kept:

* ``linear``: logistic (classification) or ridge (regression) regression on the standardised
  vectors, numbers and one-hot categories: the strong choice for text with little data; its
  classes weigh alike by default (``class_weight``), so a rare class gets predicted;
* ``lightgbm``: the ``lightgbm`` family on the vectors plus the numeric and categorical
  features: better when other columns carry the signal.

The bundle holds the encoder (``encoder/``: config, weights and tokenizer files), so it loads
offline; with ``embed_encoder: false`` it keeps only the encoder's name and the sha256 of its
folder, and the same encoder must be found on the loading machine (see
:func:`takeoff.models.encoder.resolve_encoder`).
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from takeoff.bundle import write_json
from takeoff.data.schema import Task
from takeoff.errors import BudgetError, BundleError
from takeoff.features.block import Features
from takeoff.models.base import Dataset, Family, FitReport, Params
from takeoff.models.encoder import DEFAULT_ENCODER, TextEncoder, folder_digest, resolve_encoder
from takeoff.training.context import FitContext

SPEC_FILE, LINEAR_FILE, ENCODER_DIR = "text_embed.json", "linear.safetensors", "encoder"
HASHED = re.compile(r"__h\d+$")
_CACHE: dict[tuple[str, str], np.ndarray] = {}  # (encoder folder|precision, text) -> vector
_CACHE_MAX = 500_000
_ENCODERS: dict[tuple[str, int, str], TextEncoder] = {}
SKIP_FILES = {"README.md", ".gitattributes"}
LIGHTGBM_HEAD = {"learning_rate": 0.1, "feature_fraction": 0.5, "max_rounds": 1000, "early_stopping_rounds": 30}


# texts per second per CPU core the encoder embeds (MiniLM, reviews of ~100 tokens; short
# tweets go 2-3 times faster): what auto's estimate of an embedding assumes
CPU_TEXTS_PER_SECOND = 60

class TextEmbedParams(Params):
    """Hyperparameters of the text-embed family."""

    encoder: str = Field(DEFAULT_ENCODER, description="Encoder name (org/name), alias, or a local model folder.")
    embed_encoder: bool = Field(True, description="Copy the encoder into the bundle (else: its name and sha256 only).")
    max_length: int = Field(256, ge=8, le=8192, description="Tokens kept per text; longer texts are truncated.")
    head: Literal["auto", "linear", "lightgbm"] = Field("auto", description="Model on the vectors; auto keeps the better on validation.")
    C: float = Field(1.0, gt=0, description="Inverse regularisation of the linear head (alpha = 1/C for ridge).")
    class_weight: Literal["balanced", "none"] = Field(
        "balanced", description="Linear head, classification: balanced = every class weighs alike (rows weighted "
                                "n / (k * class count)); none = every row alike (probabilities keep the class shares).")
    head_rounds: int | None = Field(None, ge=1, description="Fixed rounds of the lightgbm head (the refit sets it).")
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto", description="Encoder arithmetic: auto = bf16 where the device computes it natively (vectors within "
                            "cosine 0.9999 of float32's), else float32; fp32 = the same vectors on every machine.")


class TextEmbedFamily(Family):
    name = "text-embed"
    auto_order: ClassVar[int | None] = 40
    Params = TextEmbedParams
    needs_text: ClassVar[bool] = True
    # embedding every text again per fold costs more than cross-validation gives on text tables
    cross_validates: ClassVar[bool] = False

    @classmethod
    def auto_skip(cls, rows: int, seconds: float, params: dict[str, Any] | None = None) -> str | None:
        """Leave it out of ``auto`` when embedding ``rows`` texts on this machine's CPU cores is
        estimated (:data:`CPU_TEXTS_PER_SECOND` per core, plus loading the encoder) to take over
        60% of the ``seconds`` left: the encoder cannot stop half-way through the texts."""
        import os

        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        needed = rows / (CPU_TEXTS_PER_SECOND * cores) + 5.0
        if needed > 0.6 * seconds:
            return (f"embedding {rows:,} texts would take about {needed:.0f}s on {cores} CPU core(s), more than 60% "
                    f"of the {seconds:.0f}s left. Fix: raise --time-budget, or choose it with --family text-embed.")
        return None

    def __init__(self, task: Task, params=None):
        super().__init__(task, params)
        self.head: str | None = None
        self.inner: Family | None = None  # the lightgbm head
        self.linear: dict[str, np.ndarray] | None = None
        self.folder: Path | None = None

    # ------------------------------------------------------------------ inputs
    def _encoder(self) -> TextEncoder:
        if self.folder is None:
            self.folder = resolve_encoder(self.params.encoder)
        key = (str(self.folder), self.params.max_length, self.params.precision)
        if key not in _ENCODERS:
            _ENCODERS[key] = TextEncoder(self.folder, max_length=self.params.max_length, precision=self.params.precision)
        return _ENCODERS[key]

    def _vectors(self, X: Features, deadline: float | None = None) -> np.ndarray:
        """The sentence vectors of every text column, side by side (each distinct text once);
        ``deadline`` is checked between the encoder's batches (BudgetError past it)."""
        encoder = self._encoder()
        key = f"{encoder.folder.as_posix()}|{self.params.precision}"
        blocks = []
        for column in sorted(X.text):
            texts = [str(t) for t in X.text[column]]
            todo = sorted({t for t in texts if (key, t) not in _CACHE})
            fresh = dict(zip(todo, encoder.embed(todo, deadline=deadline))) if todo else {}
            for text, vector in fresh.items():
                if len(_CACHE) < _CACHE_MAX:
                    _CACHE[(key, text)] = vector
            rows = [fresh[t] if t in fresh else _CACHE[(key, t)] for t in texts]
            blocks.append(np.stack(rows) if rows else np.zeros((0, encoder.dim), np.float32))
        return np.hstack(blocks).astype(np.float32) if blocks else np.zeros((len(X), 0), np.float32)

    @staticmethod
    def _kept(X: Features) -> np.ndarray:
        """Numeric columns other than the hashed bags of words (the vectors replace them)."""
        return np.array([i for i, n in enumerate(X.numeric_names) if not HASHED.search(n)], dtype=np.int64)

    def _augmented(self, X: Features, vectors: np.ndarray) -> Features:
        kept = self._kept(X)
        names = [X.numeric_names[i] for i in kept] + [f"emb{j}" for j in range(vectors.shape[1])]
        sources = [X.sources[i] for i in kept] + ["text"] * vectors.shape[1] + X.sources[len(X.numeric_names):]
        return Features(np.hstack([X.numeric[:, kept], vectors]).astype(np.float32), X.categorical, names,
                        X.categorical_names, X.cardinalities, sources)

    def _dense(self, X: Features, vectors: np.ndarray) -> np.ndarray:
        parts = [X.numeric[:, self._kept(X)], vectors]
        for j, size in enumerate(X.cardinalities):
            onehot = np.zeros((len(X), size), dtype=np.float32)
            onehot[np.arange(len(X)), np.minimum(X.categorical[:, j], size - 1)] = 1.0
            parts.append(onehot)
        return np.hstack(parts).astype(np.float64)

    # ------------------------------------------------------------------ fit
    @classmethod
    def warm_up(cls) -> None:
        import importlib.util

        if importlib.util.find_spec("transformers") is None:  # a missing extra is said by fit
            return
        import sklearn.linear_model  # noqa: F401 - seconds on a cold start

        # Loading the encoder (transformers imports its model code on first use) and checking
        # its fast path cost seconds that no deadline check can cut short: the default encoder is
        # made ready here, before a fit's clock starts (another encoder loads in fit).
        try:
            defaults = TextEmbedParams()
            folder = resolve_encoder(defaults.encoder)
            key = (str(folder), defaults.max_length, defaults.precision)
            if key not in _ENCODERS:
                _ENCODERS[key] = TextEncoder(folder, max_length=defaults.max_length, precision=defaults.precision)
            _ENCODERS[key].embed(["warm up"])
        except Exception:  # noqa: BLE001 (fit says what is wrong with the encoder)
            return

    def fit(self, train: Dataset, valid: Dataset | None, ctx: FitContext) -> FitReport:
        started = time.monotonic()
        if ctx.expired():
            raise BudgetError("no time left to embed the texts. Fix: raise --time-budget.")
        if not train.X.text:
            from takeoff.errors import ConfigError

            raise ConfigError("family 'text-embed' needs a free-text column; this table has none")
        # the encoder checks the deadline between its batches: embedding is most of the fit's time
        v_train = self._vectors(train.X, ctx.deadline)
        v_valid = self._vectors(valid.X, ctx.deadline) if valid is not None else None
        if ctx.expired():
            raise BudgetError("model family 'text-embed': the time budget ran out once the texts were embedded, "
                              "before a head was fitted. Fix: raise --time-budget.")
        heads = ["linear", "lightgbm"] if self.params.head == "auto" else [self.params.head]
        if self.params.head == "auto" and valid is None:
            heads = [self.head or "linear"]
        best, scores = None, {}
        for head in heads:
            if best is not None and ctx.expired():
                break
            fitted = self._fit_head(head, train, v_train, valid, v_valid, ctx)
            if valid is None:
                best = fitted
                break
            from takeoff.evaluation.metrics import score

            scores[head] = score(self.task, valid.y, fitted[1](valid.X, v_valid))
            if best is None or scores[head] > scores[best[0]]:
                best = fitted
        self.head, predict, state = best
        self.inner, self.linear = state if self.head == "lightgbm" else None, state if self.head == "linear" else None
        self.report = FitReport(best_iteration=(self.inner.report.best_iteration if self.inner is not None else 1),
                                history={f"valid_score_{h}": [s] for h, s in scores.items()},
                                stopped_by="converged", seconds=time.monotonic() - started)
        return self.report

    def _fit_head(self, head, train, v_train, valid, v_valid, ctx):
        if head == "lightgbm":
            from takeoff.models.lightgbm import LightGBMFamily

            # hundreds of dense vector columns: faster trees that each see half of them
            inner = LightGBMFamily(self.task, {**LIGHTGBM_HEAD, "rounds": self.params.head_rounds})
            inner.fit(Dataset(self._augmented(train.X, v_train), train.y),
                      Dataset(self._augmented(valid.X, v_valid), valid.y) if valid is not None else None, ctx)
            return "lightgbm", lambda X, v: inner.predict(self._augmented(X, v)), inner
        X = self._dense(train.X, v_train)
        mean, std = X.mean(axis=0), X.std(axis=0)
        std[std < 1e-9] = 1.0
        Z = (X - mean) / std
        if self.task.is_classification:
            from sklearn.linear_model import LogisticRegression

            balanced = self.params.class_weight == "balanced"
            model = LogisticRegression(C=self.params.C, max_iter=2000, class_weight="balanced" if balanced else None)
            model.fit(Z, train.y)
            coef = np.zeros((len(self.task.classes), Z.shape[1]))
            intercept = np.zeros(len(self.task.classes))
            if self.task.kind == "binary":
                coef[1], intercept[1] = model.coef_[0], model.intercept_[0]
            else:
                coef[model.classes_], intercept[model.classes_] = model.coef_, model.intercept_
        else:
            from sklearn.linear_model import Ridge

            model = Ridge(alpha=1.0 / self.params.C).fit(Z, train.y)
            coef, intercept = model.coef_[None, :], np.atleast_1d(model.intercept_)
        state = {"mean": mean, "std": std, "coef": coef, "intercept": intercept}
        return "linear", lambda X_, v: self._linear_predict(state, X_, v), state

    def _linear_predict(self, state, X: Features, vectors: np.ndarray) -> np.ndarray:
        Z = (self._dense(X, vectors) - state["mean"]) / state["std"]
        logits = Z @ state["coef"].T + state["intercept"]
        if not self.task.is_classification:
            return logits[:, 0]
        if self.task.kind == "binary":
            p = 1.0 / (1.0 + np.exp(-(logits[:, 1] - logits[:, 0])))
            return np.column_stack([1.0 - p, p])
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, X: Features) -> np.ndarray:
        vectors = self._vectors(X)
        if self.head == "lightgbm":
            return self.inner.predict(self._augmented(X, vectors))
        return self._linear_predict(self.linear, X, vectors)

    def refit_params(self, n_rows_ratio: float) -> dict[str, Any] | None:
        rounds = (self.inner.refit_params(n_rows_ratio) or {}).get("rounds") if self.inner is not None else None
        return {"head": self.head, "head_rounds": rounds}

    # ------------------------------------------------------------------ bundle
    def save(self, directory: Path) -> None:
        from safetensors.numpy import save_file

        directory = Path(directory)
        encoder = self._encoder()
        spec = {"format": "takeoff-text-embed", "format_version": 1, "head": self.head,
                "encoder": {"name": self.params.encoder, "embedded": self.params.embed_encoder,
                            "sha256": folder_digest(encoder.folder), **encoder.info()}}
        if self.params.embed_encoder:
            target = directory / ENCODER_DIR
            shutil.copytree(encoder.folder, target, ignore=lambda _d, names: [n for n in names if n in SKIP_FILES])
            spec["encoder"]["folder"] = ENCODER_DIR
        if self.head == "lightgbm":
            (directory / "lightgbm").mkdir()
            self.inner.save(directory / "lightgbm")
        else:
            save_file({k: np.ascontiguousarray(v, dtype=np.float64) for k, v in self.linear.items()},
                      str(directory / LINEAR_FILE))
        write_json(directory / SPEC_FILE, spec)

    @classmethod
    def load(cls, directory: Path, task: Task, params: dict[str, Any]) -> TextEmbedFamily:
        from safetensors.numpy import load_file

        directory = Path(directory)
        if not (directory / SPEC_FILE).is_file():
            raise BundleError(str(directory), f"'{SPEC_FILE}' is missing", "save the model again")
        spec = json.loads((directory / SPEC_FILE).read_text())
        if spec.get("format") != "takeoff-text-embed":
            raise BundleError(str(directory), f"{SPEC_FILE} is not a text-embed spec")
        family = cls(task, params)
        family.head = spec["head"]
        enc = spec["encoder"]
        if enc.get("embedded"):
            family.folder = directory / enc["folder"]
        else:
            family.folder = resolve_encoder(enc["name"])
            if folder_digest(family.folder) != enc["sha256"]:
                raise BundleError(str(directory), f"references encoder '{enc['name']}' with sha256 {enc['sha256'][:12]}…, "
                                  f"but the copy found at {family.folder} differs",
                                  "install the same encoder version, or retrain with the encoder embedded")
        if family.head == "lightgbm":
            from takeoff.models.lightgbm import LightGBMFamily

            family.inner = LightGBMFamily.load(directory / "lightgbm", task, {})
        else:
            family.linear = load_file(str(directory / LINEAR_FILE))
        return family
