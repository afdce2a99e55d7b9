"""The one declarative configuration schema (pydantic), YAML in and out, JSON Schema export.

Every parameter is declared once, next to the code that uses it: families declare their
``Params`` in their own file, features and checks theirs; this module assembles them, with the
families the registry discovers (one section per family, in the registry's order).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from takeoff import registry
from takeoff.errors import ConfigError, closest

CONFIG_VERSION = 1


def _models_section() -> type[BaseModel]:
    fields = {name: (cls.Params, Field(default_factory=cls.Params))
              for name, cls in ((name, registry.get(name)) for name in registry.names())}
    return create_model("ModelsConfig", __config__=ConfigDict(extra="forbid"), **fields)


def _recommenders_section() -> type[BaseModel]:
    fields = {name: (cls.Params, Field(default_factory=cls.Params))
              for name, cls in ((name, registry.get_recommender(name)) for name in registry.recommender_names())}
    return create_model("RecommendersConfig", __config__=ConfigDict(extra="forbid"), **fields)


class RecommendConfig(BaseModel):
    """Recommendation (task "recommend"): which columns make the interaction log."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    user: str | None = Field(None, description="Column of user IDs. With `item`, makes the task 'recommend'.")
    item: str | None = Field(None, description="Column of item IDs.")
    rating: str | None = Field(None, description="Optional column of interaction strength (non-negative); default: every interaction counts 1.")
    time: str | None = Field(None, description="Optional time column (numbers or dates): the held-out interaction is each user's last.")
    items: str | None = Field(None, description="Optional item feature table (a path) with the item column plus categories (a|b|c lists) and text.")
    users: str | None = Field(None, description="Optional user feature table (a path) with the user column plus categories and text; two-tower then answers new users from their features.")
    k: int = Field(10, ge=1, le=1000, description="Cut-off of the ranking metrics (HR@k, NDCG@k, MAP@k).")


class GenerateParams(BaseModel):
    """Fine-tuning a causal language model on prompt → answer pairs (task "generate")."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    prompt: str | None = Field(
        None, description="Column of prompts (the user's message); the answer column is `target`. Chat JSON lines "
        "(a 'messages' column) need neither.")
    base_model: str = Field(
        "smollm2", description="Base model: 'smollm2' (SmolLM2-135M-Instruct, the default), 'gemma3-270m' (Gemma 3 "
        "270M base; its terms are shown once), a Hugging Face folder, a .gguf file, or a model name found in the "
        "local Hugging Face cache. Never downloaded.")
    method: Literal["lora", "full", "none"] = Field(
        "lora", description="'lora': train low-rank adapters and merge them (default); 'full': train every weight; "
        "'none': no training (the base model as it is, evaluated and bundled).")
    lora_rank: int = Field(8, ge=1, le=256, description="LoRA rank r.")
    lora_alpha: int = Field(16, ge=1, description="LoRA scaling alpha.")
    lora_dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the LoRA inputs.")
    lora_targets: list[str] | Literal["auto"] = Field(
        "auto", description="Module names LoRA adapts; 'auto': the attention and MLP projections.")
    learning_rate: float | None = Field(
        None, gt=0, description="Peak learning rate (default 2e-4 for LoRA, 2e-5 for full fine-tuning).")
    epochs: int = Field(3, ge=1, le=100, description="Most passes over the training pairs (early stopping on the "
                        "validation loss and the time budget may end sooner).")
    batch_size: int = Field(8, ge=1, le=1024, description="Pairs per optimizer step.")
    max_length: int = Field(512, ge=16, le=131072, description="Most tokens of prompt + answer in training.")
    on_long: Literal["truncate", "refuse"] = Field(
        "truncate", description="Pairs longer than max_length: 'truncate' the prompt from its start (counted in the "
        "notes), or 'refuse' the data.")
    gradient_checkpointing: bool | Literal["auto"] = Field(
        "auto", description="Recompute activations in the backward pass to save memory ('auto': on a GPU only).")
    patience: int = Field(1, ge=0, description="Epochs without a better validation loss before stopping.")
    system: str | None = Field(None, description="A system message put before every prompt (chat templates only).")
    eval_samples: int = Field(
        16, ge=0, le=10_000, description="Held-out pairs the report generates answers for (base vs fine-tuned).")
    max_new_tokens: int = Field(128, ge=1, le=32768, description="Tokens generated per answer in the evaluation.")
    precision: Literal["auto", "fp32", "bf16", "int8"] = Field(
        "auto", description="How the bundle generates: 'auto' (the fastest form that keeps float32's greedy answers on "
        "a probe: on a CPU, 4-bit grid weights packed and an exact-argmax int8 vocabulary projection), 'fp32', 'bf16', "
        "or 'int8' (weight-only int8 linear layers: faster, lossy; see takeoff compress --quantize int8).")


DEFAULT_REFUSAL = "I could not find this in the documents."
DEFAULT_INSTRUCTIONS = (
    "Answer the question using only the numbered passages below. Cite the passages you use by "
    "their numbers, like [1]. If the passages do not contain the answer, reply exactly: {refusal}")
# Chosen on the Debian FAQ's training questions (docs/generate.md, "Grounded answers"): the
# cosine of all-MiniLM-L6-v2 that best separates answerable from unanswerable questions there
# (0.436), rounded.
DEFAULT_MIN_SCORE = 0.44
DEFAULT_KEYWORD_WEIGHT = 0.2  # the best hit@1 on the same training questions


class AnswerParams(BaseModel):
    """Grounded answers from documents (task "answer"): retrieval, refusal and generation."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    text: str | None = Field(
        None, description="A table of passages: the column holding them (default 'text'); optional 'source', "
        "'section' and 'title' columns name where each comes from. Not used for a folder of documents.")
    generator: str = Field(
        "smollm2", description="The model that writes the answers: a bundle of `takeoff train --task generate`, or a "
        "base model ('smollm2', the default; 'gemma3-270m'; a Hugging Face folder; a .gguf file). Never downloaded.")
    embed_generator: bool = Field(
        True, description="Copy the generator's weights into the bundle (default), or keep its name and sha256 only "
        "(loading then needs the same model on that machine).")
    encoder: str | None = Field(
        None, description="Encoder that embeds passages and questions: a name, alias or local folder (default "
        "all-MiniLM-L6-v2). Never downloaded.")
    embed_encoder: bool = Field(True, description="Copy the encoder into the bundle (default), or reference it.")
    k: int = Field(4, ge=1, le=50, description="Passages retrieved per question (those at or above min_score are "
                   "given to the generator and cited).")
    keyword_weight: float = Field(
        DEFAULT_KEYWORD_WEIGHT, ge=0.0, le=10.0, description="Weight of shared keywords (BM25, scaled to 0-1 per question) added to the "
        "cosine similarity when ranking passages; 0 ranks by meaning alone. Refusal uses the cosine only.")
    min_score: float = Field(
        DEFAULT_MIN_SCORE, ge=-1.0, le=1.0, description="Cosine similarity below which no passage is close enough: "
        "the answer is then the refusal text, and nothing is generated.")
    refusal: str = Field(DEFAULT_REFUSAL, min_length=1, description="What the answerer says when the documents do "
                         "not answer the question.")
    max_new_tokens: int = Field(256, ge=1, le=8192, description="Most tokens of a generated answer.")
    chunk_chars: int = Field(1200, ge=200, le=100_000, description="Longest passage when splitting documents: "
                             "longer sections are split at paragraph boundaries.")
    max_passage_chars: int = Field(1000, ge=100, le=100_000, description="Most characters of each passage put in "
                                   "the generator's prompt (shortened further when the prompt would not fit the "
                                   "model's context).")
    system: str | None = Field(None, description="A system message for the generator (default: the generator's own).")
    instructions: str = Field(
        DEFAULT_INSTRUCTIONS, min_length=1, description="What the prompt tells the generator before the passages; "
        "'{refusal}' is replaced by the refusal text.")
    questions: str | None = Field(
        None, description="Optional evaluation questions (a table: 'question', and 'source' and/or 'section' naming "
        "the passage that answers it; rows without either are questions the documents do not answer): retrieval "
        "hit@k, citation accuracy and refusal rates go into the report and the bundle's metrics.")


def _feature_params():
    from takeoff.features.pipeline import FeatureParams

    return FeatureParams


def _check_params():
    from takeoff.data.checks import CheckParams

    return CheckParams


def _dp_params():
    from takeoff.training.privacy import DPParams

    return DPParams


def _fairness_params():
    from takeoff.evaluation.fairness import FairnessParams

    return FairnessParams
def _pii_params():
    from takeoff.data.pii import PiiParams

    return PiiParams


def config_class() -> type[BaseModel]:
    """The Config model class: it pulls in every registered family's Params (built once per
    set of discovered families)."""
    return _config_class(tuple(registry.names()), tuple(registry.recommender_names()))


@lru_cache(maxsize=4)
def _config_class(families: tuple[str, ...], recommenders: tuple[str, ...]) -> type[BaseModel]:
    # ``families`` and ``recommenders`` key the cache: a newly discovered family gets its section
    ModelsSection, RecommendersSection = _models_section(), _recommenders_section()

    class Config(BaseModel):
        """Everything a training run can be told; every field has a default."""

        model_config = ConfigDict(extra="forbid", validate_assignment=True)

        version: Literal[1] = Field(CONFIG_VERSION, description="Config format version.")
        target: str | list[str] | None = Field(
            None, description="Column to predict; for a multilabel task, one column of '|'-joined labels or a list of 0/1 label columns."
        )
        task: Literal["binary", "multiclass", "multilabel", "regression", "recommend", "generate", "answer"] | None = Field(
            None, description="Learning task; inferred from the target (or 'recommend' from recommend.user and recommend.item) when not set. "
            "'generate': fine-tune a causal language model on prompt -> answer pairs; 'answer': grounded answers from a folder of documents."
        )
        positive_label: str | int | bool | None = Field(
            None, description="Binary tasks: the label counted as positive (default: a 'yes'-like label, else the minority class)."
        )
        drop: list[str] = Field(default_factory=list, description="Columns to ignore.")
        family: str = Field("auto", description="Model family, or 'auto' to try several and keep the best or a blend.")
        time_budget: float = Field(120.0, gt=0, description="Seconds the whole training run may take.")
        seed: int = Field(0, ge=0, description="Random seed; same data, config and seed give the same model on the CPU.")
        valid_fraction: float = Field(0.2, gt=0, lt=0.9, description="Share of rows held out for validation.")
        refit: bool = Field(True, description="After choosing, refit on all rows (train + validation) when time allows.")
        blend: bool = Field(True, description="auto: keep a weighted blend of families when it validates better.")
        metric: str | None = Field(
            None, description="Metric the run is judged by: it chooses the models, their blend and the decision rule "
            "(binary: roc_auc, pr_auc, log_loss, brier, accuracy, balanced_accuracy, f1, macro_f1; multiclass: log_loss, "
            "accuracy, balanced_accuracy, macro_f1, roc_auc; regression: rmse, mae, mape, r2; multilabel: log_loss, "
            "micro_f1, macro_f1...). Default: roc_auc (binary), log_loss (multiclass, multilabel), rmse (regression)."
        )
        threshold_metric: Literal["macro_f1", "f1", "accuracy", "balanced_accuracy"] = Field(
            "macro_f1", description="Binary tasks whose metric does not score labels (e.g. roc_auc): metric the "
            "decision threshold is tuned for."
        )
        folds: int | None = Field(
            None, ge=1, le=20, description="auto: cross-validation folds that choose and blend the models (their "
            "out-of-fold predictions); 1 = one holdout split of valid_fraction. Default: 5 up to 5,000 rows, 3 up to "
            "50,000, else 1; 1 on image tables or with a family too slow to fit per fold."
        )
        target_transform: Literal["auto", "none", "log"] = Field(
            "auto", description="Regression: fit on log(1 + y). 'auto' also tries it (as other candidates) when the "
            "target is positive and skewed, and keeps what scores best out of fold."
        )
        strict: bool = Field(False, description="Fail on data-check errors instead of warning.")
        drop_rare_classes: bool = Field(
            False, description="Drop rows of classes too small to split (instead of failing)."
        )
        device: str = Field("auto", description="'auto', 'cpu' or 'cuda[:N]'.")
        intended_use: str | None = Field(
            None, description="What the model is for, who uses it and what is out of scope: the model card's intended use."
        )
        devices: int = Field(
            1, ge=1, description="Processes training one torch family data-parallel (DistributedDataParallel; NCCL, "
            "one per GPU, or gloo, one per CPU core); see docs/distributed.md."
        )
        features: _feature_params() = Field(default_factory=_feature_params())
        checks: _check_params() = Field(default_factory=_check_params())
        pii: _pii_params() = Field(default_factory=_pii_params())
        models: ModelsSection = Field(default_factory=ModelsSection)
        recommend: RecommendConfig = Field(default_factory=RecommendConfig)
        recommenders: RecommendersSection = Field(default_factory=RecommendersSection)
        dp: _dp_params() = Field(default_factory=_dp_params())
        fairness: _fairness_params() = Field(default_factory=_fairness_params())
        generate: GenerateParams = Field(default_factory=GenerateParams)
        answer: AnswerParams = Field(default_factory=AnswerParams)

    return Config


def default_config(**overrides: Any):
    """A Config with defaults, updated by ``overrides`` (validated)."""
    return make_config(overrides)


def make_config(data: dict[str, Any], source: str = "config") -> Any:
    """Validate a dict into a Config, turning pydantic's errors into one clear ConfigError."""
    cls = config_class()
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, cls, source), path=source) from None


def load_config(path: str | Path | None = None, **overrides: Any):
    """Read a YAML config file (if given) and apply ``overrides`` (None values are skipped).

    Raises:
        ConfigError: the file is missing, not YAML, or a key or value is invalid.
    """
    import yaml

    data: dict[str, Any] = {}
    name = "options"
    if path is not None:
        path = Path(path)
        name = str(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} not found. Fix: check the path, or print the defaults with `takeoff config show`.", path=name)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}", path=name) from None
        if not isinstance(data, dict):
            raise ConfigError(f"config file {path} must hold a mapping of keys to values, got {type(data).__name__}", path=name)
    data.update({k: v for k, v in overrides.items() if v is not None})
    return make_config(data, name)


def to_yaml(config) -> str:
    import yaml

    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


def json_schema() -> dict[str, Any]:
    return config_class().model_json_schema()


def _explain(exc: ValidationError, cls: type[BaseModel], source: str) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            model = cls
            for part in err["loc"][:-1]:
                model = model.model_fields[part].annotation
            valid = list(getattr(model, "model_fields", {}))
            guess = closest(str(err["loc"][-1]), valid)
            hint = f" Did you mean '{guess}'?" if guess else ""
            lines.append(f"unknown key '{loc}'; valid keys here: {', '.join(valid)}.{hint}")
        else:
            lines.append(f"'{loc}': {err['msg']} (received: {err.get('input')!r})")
    return f"invalid {source}: " + "; ".join(lines)
