"""What a generative run can be told (config section ``generate``), declared beside its code."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


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
