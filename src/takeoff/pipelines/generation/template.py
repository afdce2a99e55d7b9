"""How a conversation becomes the text a causal language model reads.

A tokenizer with a chat template (SmolLM2-Instruct, most instruction-tuned models) formats the
messages itself. A base model without one (Gemma 3 270M base, a plain GPT-2-style folder) gets
takeoff's plain template, documented here and in docs/generate.md::

    <system message, if any>

    ### User:
    <the user's message>

    ### Assistant:
    <the answer><end-of-text token>

Several turns repeat the User/Assistant blocks. Training puts the loss on the answer's tokens
only (and on the end marker that closes it), so the model learns to answer, not to ask.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

ROLES = ("system", "user", "assistant")
PLAIN_HEADINGS = {"user": "### User:\n", "assistant": "### Assistant:\n"}


def check_messages(messages: Any, where: str = "messages") -> list[dict[str, str]]:
    """``messages`` as a list of ``{"role", "content"}`` dicts with known roles and text contents.

    Raises:
        DataError: anything else (names the message and what is wrong).
    """
    from takeoff.errors import DataError

    if not isinstance(messages, Sequence) or isinstance(messages, (str, bytes)) or not messages:
        raise DataError(f"{where} must be a non-empty list of {{'role', 'content'}} objects, got {str(messages)[:80]!r}")
    checked = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or "role" not in message or "content" not in message:
            raise DataError(f"{where}[{i}] must be an object with 'role' and 'content', got {str(message)[:80]!r}")
        role, content = message["role"], message["content"]
        if role not in ROLES:
            raise DataError(f"{where}[{i}].role is {role!r}; use one of {', '.join(ROLES)}")
        if isinstance(content, list):  # OpenAI's content parts: keep the text ones
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
        if not isinstance(content, str):
            raise DataError(f"{where}[{i}].content must be text, got {type(content).__name__}")
        checked.append({"role": role, "content": content})
    return checked


class Template:
    """Formats conversations for one tokenizer: its chat template, or the plain one."""

    def __init__(self, tokenizer, system: str | None = None):
        self.tokenizer = tokenizer
        self.system = system
        self.chat = bool(getattr(tokenizer, "chat_template", None))
        self.kind = "chat" if self.chat else "plain"
        self.eos = tokenizer.eos_token or ""

    def _with_system(self, messages: list[dict[str, str]]) -> list[dict[str, str]]:
        if self.system and not any(m["role"] == "system" for m in messages):
            return [{"role": "system", "content": self.system}, *messages]
        return messages

    def prompt(self, messages: list[dict[str, str]]) -> str:
        """The text up to where the assistant's answer starts."""
        messages = self._with_system(messages)
        if self.chat:
            return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        parts = [m["content"].strip() + "\n\n" for m in messages if m["role"] == "system"]
        for m in messages:
            if m["role"] == "user":
                parts.append(PLAIN_HEADINGS["user"] + m["content"].strip() + "\n\n")
            elif m["role"] == "assistant":
                parts.append(PLAIN_HEADINGS["assistant"] + m["content"].strip() + self.eos + "\n\n")
        return "".join(parts) + PLAIN_HEADINGS["assistant"]

    def answer(self, messages: list[dict[str, str]], answer: str) -> tuple[str, str]:
        """``(prompt, completion)``: the prompt text and the answer's text as the model must write
        it (with the marker that ends the turn), so that ``prompt + completion`` is the whole
        conversation."""
        prompt = self.prompt(messages)
        if self.chat:
            full = self.tokenizer.apply_chat_template(
                [*self._with_system(messages), {"role": "assistant", "content": answer}], tokenize=False)
            if full.startswith(prompt):
                return prompt, full[len(prompt):]
        return prompt, answer.strip() + self.eos
