"""Reading prompt → answer pairs: a table with a prompt and a target column (CSV, Parquet, JSON
lines, Excel, SQL, DataFrame), or chat JSON lines ``{"messages": [{"role", "content"}, ...]}``
whose last message is the assistant's answer to learn."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from takeoff.errors import ConfigError, DataError, preview

MESSAGES = "messages"


@dataclass
class Pairs:
    """Conversations (each a list of messages ending with the user's turn) and their answers."""

    conversations: list[list[dict[str, str]]]
    answers: list[str]
    rows: list[int]  # each pair's row in the source, from 0
    prompt: str | None  # the prompt column (None for chat lines)
    target: str | None
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.answers)

    def take(self, index) -> Pairs:
        return Pairs([self.conversations[i] for i in index], [self.answers[i] for i in index],
                     [self.rows[i] for i in index], self.prompt, self.target, list(self.notes))

    @property
    def prompts(self) -> list[str]:
        """Each conversation's last user message."""
        return [next((m["content"] for m in reversed(c) if m["role"] == "user"), "") for c in self.conversations]


def read_pairs(df: pd.DataFrame, name: str, prompt: str | None, target: str | None) -> Pairs:
    """The pairs of a table already read.

    Raises:
        ColumnNotFoundError: the prompt or target column is missing (lists the columns).
        ConfigError: neither a prompt column nor a ``messages`` column.
        DataError: no usable pair; a chat line that does not end with the assistant.
    """
    from takeoff.data.schema import require_columns

    if prompt is None and target is None and MESSAGES in df.columns:
        return _chat(df, name)
    if prompt is None or target is None:
        raise ConfigError(f"a generate task needs --prompt COLUMN and --target COLUMN (the answer), or chat JSON lines "
                          f"with a '{MESSAGES}' column; {name} has columns: {', '.join(map(str, df.columns[:20]))}",
                          path="generate.prompt" if prompt is None else "target")
    require_columns(df, [prompt], name, role="prompt column")
    require_columns(df, [target], name, role="target column")
    prompts, answers = df[prompt].map(_text), df[target].map(_text)
    empty_prompt = [i for i, p in enumerate(prompts) if not p]
    empty_answer = [i for i, a in enumerate(answers) if not a]
    bad = sorted(set(empty_prompt) | set(empty_answer))
    notes = []
    if empty_answer:
        notes.append(f"{len(empty_answer)} row(s) with an empty '{target}' were skipped (rows {preview(empty_answer, 8)})")
    if empty_prompt:
        notes.append(f"{len(empty_prompt)} row(s) with an empty '{prompt}' were skipped (rows {preview(empty_prompt, 8)})")
    keep = [i for i in range(len(df)) if i not in set(bad)]
    if not keep:
        raise DataError(f"every row of {name} has an empty '{target}' or '{prompt}'; there is nothing to learn from. "
                        f"Fix: check the column names (--prompt, --target).", column=target)
    return Pairs([[{"role": "user", "content": prompts.iloc[i]}] for i in keep], [answers.iloc[i] for i in keep], keep,
                 prompt, target, notes)


def _chat(df: pd.DataFrame, name: str) -> Pairs:
    from takeoff.pipelines.generation.template import check_messages

    conversations, answers, rows, skipped = [], [], [], []
    for i, value in enumerate(df[MESSAGES].tolist()):
        messages = check_messages(list(value) if not isinstance(value, (list, str)) and value is not None else value,
                                  where=f"{name} line {i + 1}: messages")
        if messages[-1]["role"] != "assistant":
            raise DataError(f"{name} line {i + 1}: the last message is the {messages[-1]['role']}'s; each chat line must "
                            "end with the assistant's answer to learn", rows=[i])
        if not messages[-1]["content"].strip():
            skipped.append(i)
            continue
        conversations.append(messages[:-1])
        answers.append(messages[-1]["content"].strip())
        rows.append(i)
    notes = [f"{len(skipped)} chat line(s) whose answer is empty were skipped (lines {preview([s + 1 for s in skipped], 8)})"] if skipped else []
    if not answers:
        raise DataError(f"every chat line of {name} has an empty answer; there is nothing to learn from")
    return Pairs(conversations, answers, rows, None, None, notes)


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value) or value is pd.NA:
        return ""
    return str(value).strip()
