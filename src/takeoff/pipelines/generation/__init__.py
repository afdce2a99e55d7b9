"""Generative large models: fine-tune a causal language model on prompt → answer pairs
(LoRA by default), generate, stream, and bundle the merged weights.

Example:
    >>> import takeoff
    >>> model = takeoff.train("pairs.csv", task="generate", prompt="question", target="answer", out="runs/assistant")
    >>> model.generate("How do I reset my password?", max_new_tokens=64)
    >>> takeoff.load("runs/assistant").chat([{"role": "user", "content": "hi"}]).text
"""

from __future__ import annotations

__all__ = ["Completion", "GenerativeModel"]


def __getattr__(name: str):  # the model module imports torch: only on use
    if name in __all__:
        from takeoff.pipelines.generation import model

        return getattr(model, name)
    raise AttributeError(name)
