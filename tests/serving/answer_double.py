"""A TEST DOUBLE of an answer bundle's model (kind "answer"), following the contract the server
is written against: ``stream_chat(messages, max_new_tokens=, temperature=, top_p=, stop=, seed=)``
returns a stream that iterates text pieces and has ``.completion`` once done, ``.cancel()``,
``.result()``, and, at once, ``.citations`` (source, section, text, score) and ``.refused``.

It retrieves nothing: its citations are fixed, and the text comes from a real
:class:`~takeoff.pipelines.generation.GenerativeModel` (the tiny test model), so the server's
streaming, cancellation and metrics paths run for real. A last user message containing
"refuse" gets a refusal (no citations, ``refused`` true).
"""

from __future__ import annotations

from dataclasses import dataclass

from takeoff.pipelines.base import Predictor

REFUSAL = "I cannot answer that from the documents."


@dataclass
class Citation:
    source: str
    section: str
    text: str
    score: float


CITATIONS = [
    Citation("docs/serving.md", "Limits", "Each request may ask for at most max_tokens_limit tokens.", 0.82),
    Citation("docs/generate.md", "", "Generative bundles are served over OpenAI's protocol.", 0.61),
]


class _Refusal:
    """A finished stream holding only the refusal text."""

    def __init__(self, prompt_tokens: int):
        from takeoff.pipelines.generation import Completion

        self.completion = Completion(REFUSAL, prompt_tokens, 0, "stop", 0.0, None)

    def __iter__(self):
        yield REFUSAL

    def cancel(self) -> None:
        pass


class AnswerStream:
    def __init__(self, inner, citations: list[Citation], refused: bool):
        self._inner, self.citations, self.refused = inner, citations, refused

    def __iter__(self):
        return iter(self._inner)

    @property
    def completion(self):
        return self._inner.completion

    def cancel(self) -> None:
        self._inner.cancel()

    def result(self):
        for _ in self:
            pass
        return self.completion


class FakeAnswerModel(Predictor):
    """Stands in for the answers pipeline's AnswerModel (not a real retrieval model)."""

    kind = "answer"

    def __init__(self, generator):
        super().__init__({"task": {"kind": "answer", "target": None, "classes": []},
                          "answer": {"method": "test double"}, "metrics": {}})
        self.generator = generator
        self.streams: list[AnswerStream] = []

    @property
    def context_length(self) -> int:
        return self.generator.context_length

    def stream_chat(self, messages, **options) -> AnswerStream:
        last = messages[-1].get("content", "") if messages else ""
        if isinstance(last, str) and "refuse" in last:
            stream = AnswerStream(_Refusal(len(last.split())), [], True)
        else:
            stream = AnswerStream(self.generator.stream_chat(messages, **options), list(CITATIONS), False)
        self.streams.append(stream)
        return stream
