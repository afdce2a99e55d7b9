"""A grounded answerer as a bundle: a search index of passages and a causal language model
that answers from the passages it retrieves, citing them, or refuses.

:meth:`AnswerModel.answer` embeds the question and ranks the passages by meaning and shared
keywords (:mod:`~takeoff.pipelines.answers.retrieval`). When some passage is at least
``min_score`` close in meaning (cosine), the generator gets the best-ranked passage and the
other retrieved ones at or above ``min_score`` (``k`` at most), numbered [1]..[n] with their
source and section, under an instruction to answer from them alone; those are the answer's
citations. Otherwise the answer is the refusal text and nothing is generated.

The bundle holds ``index/`` (a :class:`~takeoff.pipelines.search.SearchIndex`'s files: vectors
in safetensors, passages in JSON, the encoder) and ``generator/`` (a
:class:`~takeoff.pipelines.generation.GenerativeModel`'s ``model/`` folder), each described in
the manifest's ``answer`` section and hashed with every other file.

Example:
    >>> answerer = takeoff.load("runs/support")
    >>> reply = answerer.answer("How do I install a .deb file?")
    >>> reply.text, reply.citations[0].source, reply.refused
    >>> stream = answerer.stream_chat([{"role": "user", "content": "How do I install a .deb file?"}])
    >>> stream.citations          # known before the first token
    >>> for piece in stream: print(piece, end="")
    >>> stream.completion.citations
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from takeoff.errors import BundleError, DataError
from takeoff.pipelines.answers.documents import SECTION_SEP
from takeoff.pipelines.base import Predictor, check_k
from takeoff.pipelines.generation.engine import Completion
from takeoff.pipelines.generation.template import check_messages

INDEX_DIR, GENERATOR_DIR = "index", "generator"
MIN_PASSAGE_CHARS = 120  # passages are not cut below this to fit the context (fewer passages instead)

__all__ = ["Answer", "AnswerModel", "AnswerStream", "Citation", "GroundedCompletion"]


@dataclass(frozen=True)
class Citation:
    """A passage an answer rests on: where it is, its text and how close it is to the question
    (cosine similarity, -1 to 1)."""

    source: str
    section: str
    text: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "section": self.section, "text": self.text, "score": round(self.score, 6)}


@dataclass
class Answer:
    """The answer to one question: its ``text``, the passages it was given (``citations``, best
    first; empty when refused) and whether it ``refused`` (then ``text`` is the refusal text)."""

    text: str
    citations: list[Citation]
    refused: bool

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "citations": [c.to_dict() for c in self.citations], "refused": self.refused}


@dataclass
class GroundedCompletion(Completion):
    """A :class:`~takeoff.pipelines.generation.engine.Completion` with the passages it rests on
    and whether the answerer refused (then nothing was generated: 0 tokens, finish_reason "stop")."""

    citations: list[Citation] = field(default_factory=list)
    refused: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "citations": [c.to_dict() for c in self.citations], "refused": self.refused}


class AnswerStream:
    """One answer in flight. ``citations`` and ``refused`` are known as soon as it is returned
    (retrieval comes first); iterate it for the text pieces as they are generated (a refusal is
    one piece); then :attr:`completion` is a :class:`GroundedCompletion`. :meth:`cancel` stops
    the generation (a client went away); :meth:`result` waits for the end."""

    def __init__(self, citations: list[Citation], refused: bool, request=None, text: str = ""):
        self.citations, self.refused = citations, refused
        self._request = request
        self._text = text
        self._given = False
        self._completion: GroundedCompletion | None = None
        if request is None:  # a refusal: done before it starts
            self._completion = GroundedCompletion(text, 0, 0, "stop", 0.0, 0.0, citations=citations, refused=refused)

    @property
    def done(self) -> bool:
        return self._request is None or self._request.done

    @property
    def completion(self) -> GroundedCompletion | None:
        """The finished answer (None while it is being generated)."""
        if self._completion is None and self._request is not None and self._request.completion is not None:
            c = self._request.completion
            self._completion = GroundedCompletion(c.text, c.prompt_tokens, c.completion_tokens, c.finish_reason,
                                                  c.seconds, c.first_token_s, citations=self.citations,
                                                  refused=self.refused)
        return self._completion

    def __iter__(self) -> Iterator[str]:
        if self._request is not None:
            if not self._given:  # a request's end marker is read once: iterate it once to its end
                yield from self._request
                self._given = True
        elif not self._given:
            self._given = True
            yield self._text

    def cancel(self) -> None:
        """Stop generating (safe from any thread; nothing to stop for a refusal)."""
        if self._request is not None:
            self._request.cancel()

    close = cancel

    def result(self) -> GroundedCompletion:
        """Wait for the end; the :class:`GroundedCompletion`."""
        for _ in self:
            pass
        completion = self.completion
        assert completion is not None
        return completion


class AnswerModel(Predictor):
    """Grounded answers from a folder of documents: retrieval, refusal, cited generation.

    Get one from ``takeoff.train(folder, task="answer")`` or :func:`takeoff.load`.
    """

    kind = "answer"

    def __init__(self, manifest: dict[str, Any], index, generator=None):
        super().__init__(manifest)
        self.index = index
        self._generator = generator
        self._keywords = None
        self._lock = threading.Lock()
        self._embed_lock = threading.Lock()

    # ------------------------------------------------------------------ facts
    @property
    def spec(self) -> dict[str, Any]:
        return self.manifest["answer"]

    @property
    def notes(self) -> list[str]:
        return self.manifest.get("training", {}).get("notes", [])

    @property
    def generator(self):
        """The :class:`~takeoff.pipelines.generation.GenerativeModel` that writes answers (a
        referenced one is found and checked on first use)."""
        with self._lock:
            if self._generator is None:
                self._generator = _referenced_generator(self.path, self.spec["generator"])
            return self._generator

    @property
    def engine(self):
        """The generator's loaded model (a server touches it to load the weights at start)."""
        return self.generator.engine

    @property
    def context_length(self) -> int:
        """Most tokens of prompt + answer the generator reads."""
        return self.generator.context_length

    def __len__(self) -> int:
        return len(self.index)

    def __repr__(self) -> str:
        gen = self.spec.get("generator", {})
        return (f"<takeoff.AnswerModel passages={len(self)} generator={gen.get('name')!r} "
                f"min_score={self.spec['min_score']}>")

    # ------------------------------------------------------------------ retrieval
    @property
    def keywords(self):
        """The BM25 index of the passages (built on first use; see :mod:`.retrieval`)."""
        from takeoff.pipelines.answers.retrieval import KeywordIndex

        with self._lock:
            if self._keywords is None:
                self._keywords = KeywordIndex(self.index.texts)
            return self._keywords

    def search(self, question: str, k: int | None = None) -> list[Citation]:
        """The ``k`` passages that best match ``question`` (default the bundle's ``k``), best
        first, whatever their score; each citation's ``score`` is its cosine similarity (the
        order also weighs shared keywords: ``answer.keyword_weight``)."""
        return self.search_batch([question], k)[0]

    def search_batch(self, questions: Sequence[str], k: int | None = None) -> list[list[Citation]]:
        """:meth:`search` for several questions (one embedding pass)."""
        return [hits for hits, _ in self.rank_passages(questions, k)]

    def rank_passages(self, questions: Sequence[str], k: int | None = None) -> list[tuple[list[Citation], float]]:
        """For each question: the ``k`` best passages (as :meth:`search`) and the best cosine
        of any passage (what refusal is decided on)."""
        from takeoff.pipelines.answers.retrieval import hybrid_search

        k = check_k(self.spec["k"] if k is None else k)
        if isinstance(questions, str) or not all(isinstance(q, str) for q in questions):
            raise DataError(f"questions must be a list of texts, got {str(questions)[:80]!r}")
        if not questions:
            return []
        weight = float(self.spec.get("keyword_weight", 0.0))
        keywords = self.keywords if weight > 0 else None
        with self._embed_lock:  # a fast tokenizer is not safe to call from two threads at once
            queries = self.index.encoder.embed(list(questions))
        found = hybrid_search(self.index.vectors, keywords, queries, list(questions), k, weight)
        meta = self.index.metadata or [{}] * len(self.index)
        return [([Citation(meta[i].get("source") or "", meta[i].get("section") or "", self.index.answers[i], score)
                  for i, score in zip(rows, cosines)], best) for rows, cosines, best in found]

    def retrieve(self, question: str, k: int | None = None, min_score: float | None = None) -> tuple[list[Citation], bool]:
        """``(citations, refused)``: refused when no passage is ``min_score`` (default the
        bundle's) close in cosine; else the best passage and the others retrieved at or above
        ``min_score``."""
        hits, best = self.rank_passages([_question(question)], k)[0]
        return self._ground(hits, best, min_score)

    def _ground(self, hits: list[Citation], best: float, min_score: float | None) -> tuple[list[Citation], bool]:
        threshold = self.spec["min_score"] if min_score is None else _number("min_score", min_score, -1.0, 1.0)
        if best < threshold or not hits:
            return [], True
        return [hits[0], *(c for c in hits[1:] if c.score >= threshold)], False

    # ------------------------------------------------------------------ answers
    def answer(self, question: str, *, k: int | None = None, min_score: float | None = None,
               max_new_tokens: int | None = None, temperature: float = 0.0, top_p: float = 1.0,
               seed: int | None = None) -> Answer:
        """Answer ``question`` from the documents, or refuse.

        Args:
            question: the user's question.
            k: passages retrieved (default the bundle's ``answer.k``).
            min_score: cosine below which it refuses (default the bundle's ``answer.min_score``).
            max_new_tokens: most tokens of the answer (default the bundle's).
            temperature, top_p, seed: sampling (default greedy: the same answer every time).

        Returns:
            An :class:`Answer`: text, citations (best first; empty when refused), refused.

        Raises:
            DataError: ``question`` is not text, or an option is out of range.

        Example:
            >>> takeoff.load("runs/support").answer("How do I install a .deb file?").text
        """
        return self.answer_batch([_question(question)], k=k, min_score=min_score, max_new_tokens=max_new_tokens,
                                 temperature=temperature, top_p=top_p, seed=seed)[0]

    def answer_batch(self, questions: Sequence[str], **options: Any) -> list[Answer]:
        """:meth:`answer` for several questions: one retrieval pass, answers generated together."""
        if isinstance(questions, str):
            raise DataError("questions must be a list of texts; for one question use answer()")
        questions = [_question(q) for q in questions]
        k, min_score = options.pop("k", None), options.pop("min_score", None)
        streams = [self._stream([{"role": "user", "content": q}], q, found, min_score, **options)
                   for q, found in zip(questions, self.rank_passages(questions, k))]
        return [Answer(s.result().text.strip(), s.citations, s.refused) for s in streams]

    def chat(self, messages: Sequence[dict[str, Any]], **options: Any) -> GroundedCompletion:
        """The answer to the last user message of ``messages``, once generated: a
        :class:`GroundedCompletion` (a Completion with ``citations`` and ``refused``). Options as
        for :meth:`stream_chat`."""
        return self.stream_chat(messages, **options).result()

    def stream_chat(self, messages: Sequence[dict[str, Any]], *, max_new_tokens: int | None = None,
                    temperature: float = 0.0, top_p: float = 1.0, stop: str | Sequence[str] | None = None,
                    seed: int | None = None, k: int | None = None, min_score: float | None = None) -> AnswerStream:
        """Start answering the last user message of ``messages`` (the earlier turns are kept as
        context for the generator; retrieval uses the last question alone).

        Returns:
            An :class:`AnswerStream`: ``citations`` and ``refused`` at once; iterate it for text
            pieces; ``completion`` once done; ``cancel()``; ``result()``.

        Raises:
            DataError: malformed messages, no user message, or an option out of range.
        """
        checked = check_messages(messages)
        users = [m for m in checked if m["role"] == "user"]
        if not users:
            raise DataError("messages hold no user message; the question is the last message with role 'user'")
        question = users[-1]["content"]
        return self._stream(checked, question, self.rank_passages([question], k)[0], min_score,
                            max_new_tokens=max_new_tokens,
                            temperature=temperature, top_p=top_p, stop=stop, seed=seed)

    def _stream(self, messages: list[dict[str, str]], question: str, found: tuple[list[Citation], float],
                min_score: float | None,
                max_new_tokens: int | None = None, temperature: float = 0.0, top_p: float = 1.0,
                stop: str | Sequence[str] | None = None, seed: int | None = None) -> AnswerStream:
        max_new_tokens = self.spec["max_new_tokens"] if max_new_tokens is None else max_new_tokens
        options = {"max_new_tokens": _number("max_new_tokens", max_new_tokens, 1, 8192, whole=True),
                   "temperature": _number("temperature", temperature, 0.0, 10.0),
                   "top_p": _number("top_p", top_p, 1e-6, 1.0), "stop": stop, "seed": seed}
        if stop is not None and not isinstance(stop, str) and not all(isinstance(s, str) for s in stop):
            raise DataError(f"stop must be text or a list of texts, got {stop!r}")
        citations, refused = self._ground(*found, min_score)
        if refused:
            return AnswerStream([], True, text=self.spec["refusal"])
        prompt = self.prompt_messages(messages, question, citations, options["max_new_tokens"])
        return AnswerStream(citations, False, self.generator.stream_chat(prompt, **options))

    # ------------------------------------------------------------------ the prompt
    def prompt_messages(self, messages: list[dict[str, str]], question: str, citations: list[Citation],
                        max_new_tokens: int) -> list[dict[str, str]]:
        """The conversation the generator reads: ``messages`` with its last user message
        replaced by the instructions, the numbered passages and the question; passages are cut
        (then dropped, then earlier turns) until it fits the generator's context with room for
        ``max_new_tokens``."""
        last = max(i for i, m in enumerate(messages) if m["role"] == "user")
        earlier = messages[:last]
        limit = self.spec["max_passage_chars"]
        shown = list(citations)
        generator = self.generator
        room = generator.context_length - max_new_tokens
        while True:
            grounded = self.grounded_prompt(question, shown, limit)
            conversation = [*earlier, {"role": "user", "content": grounded}]
            size = len(generator.engine.encode(generator.template.prompt(conversation)))
            if size <= room:
                return conversation
            if limit > MIN_PASSAGE_CHARS:  # cut every passage in proportion to the excess
                limit = max(MIN_PASSAGE_CHARS, int(limit * room / size * 0.95))
            elif len(shown) > 1:
                shown = shown[:-1]
            elif any(m["role"] != "system" for m in earlier):
                earlier = [m for m in earlier if m["role"] == "system"]
            else:
                return conversation  # the question alone is too long: the generator says so

    def grounded_prompt(self, question: str, citations: list[Citation], passage_chars: int | None = None) -> str:
        """The user message the generator answers: instructions, passages [1]..[n], question."""
        limit = self.spec["max_passage_chars"] if passage_chars is None else passage_chars
        instructions = self.spec["instructions"].replace("{refusal}", self.spec["refusal"])
        blocks = []
        for number, c in enumerate(citations, 1):
            where = " — ".join(x for x in (c.source, c.section.split(SECTION_SEP)[-1]) if x)  # the last heading
            text = c.text if len(c.text) <= limit else c.text[:limit].rsplit(" ", 1)[0] + " …"
            blocks.append(f"[{number}] ({where})\n{text}")
        return instructions + "\n\n" + "\n\n".join(blocks) + f"\n\nQuestion: {question.strip()}"

    # ------------------------------------------------------------------ bundle
    def write_files(self, directory: Path, manifest: dict[str, Any]) -> None:
        """The index's files into ``index/``, the generator's model folder into ``generator/``
        (or its name and sha256 only, when not embedded)."""
        spec = manifest["answer"] = dict(manifest["answer"])
        index_spec = {k: v for k, v in spec["index"].items() if k != "folder"}
        (directory / INDEX_DIR).mkdir()
        self.index.write_files(directory / INDEX_DIR, index_spec)
        spec["index"] = {**index_spec, "folder": INDEX_DIR}
        gen = dict(spec["generator"])
        if gen.get("embedded", True):
            (directory / GENERATOR_DIR).mkdir()
            inner = {"generate": dict(self.generator.manifest["generate"])}
            self.generator.write_files(directory / GENERATOR_DIR, inner)
            gen.update(generate=inner["generate"], folder=GENERATOR_DIR, embedded=True)
        spec["generator"] = gen

    def saved(self, path: Path) -> None:
        self.index.saved(path / INDEX_DIR)
        if self.spec["generator"].get("embedded", True) and self._generator is not None:
            self._generator.saved(path / GENERATOR_DIR)

    @classmethod
    def from_bundle(cls, path: Path, manifest: dict[str, Any]) -> AnswerModel:
        from takeoff.bundle_manifest import confined
        from takeoff.pipelines.search.index import SearchIndex

        spec = manifest["answer"]
        for name in ("index", "generator", "k", "min_score", "refusal", "instructions"):
            if name not in spec:
                raise BundleError(str(path), f"takeoff.json has no 'answer.{name}'", "build the answerer again")
        index_spec = spec["index"]
        folder = confined(path, index_spec.get("folder", INDEX_DIR), "answer.index.folder")
        enc_folder = index_spec.get("encoder", {}).get("folder")
        if enc_folder is not None:
            confined(folder, enc_folder, "answer.index.encoder.folder")
        index = SearchIndex.from_bundle(folder, index_spec)
        generator = None
        gen = spec["generator"]
        if gen.get("embedded", True):
            from takeoff.pipelines.generation.model import GenerativeModel

            gen_folder = confined(path, gen.get("folder", GENERATOR_DIR), "answer.generator.folder")
            confined(gen_folder, gen.get("generate", {}).get("folder", "model"), "answer.generator.generate.folder")
            generator = GenerativeModel.from_bundle(gen_folder, {"task": {"kind": "generate", "target": None,
                                                                         "classes": []}, **gen})
        return cls(manifest, index, generator)


def _referenced_generator(path: Path | None, gen: dict[str, Any]):
    """The generator a bundle references by name (``embed_generator: false``), checked against
    its recorded sha256."""
    from takeoff.models.encoder import folder_digest
    from takeoff.pipelines.generation.model import GenerativeModel

    folder = generator_folder(gen["name"])[0]
    if gen.get("sha256") and folder_digest(folder) != gen["sha256"]:
        raise BundleError(str(path), f"references generator '{gen['name']}' with sha256 {gen['sha256'][:12]}…, but the "
                          f"copy found at {folder} differs", "install the same model, or build again with the "
                          "generator embedded")
    return GenerativeModel({"task": {"kind": "generate", "target": None, "classes": []},
                            "generate": dict(gen["generate"])}, folder)


def generator_folder(name: str) -> tuple[Path, dict[str, Any]]:
    """``(model folder, its generate section)`` of a generator: a bundle of ``takeoff train
    --task generate`` (its model folder and settings), else a base model for
    :func:`~takeoff.pipelines.generation.base_models.resolve_base`.

    Raises:
        BundleError: ``name`` is a bundle of another kind.
        BaseModelNotFoundError: no such base model on this machine.
    """
    from takeoff import bundle
    from takeoff.pipelines.generation.base_models import resolve_base

    where = Path(name)
    if (where / bundle.MANIFEST).is_file():
        from takeoff.pipelines import dispatch

        model = dispatch.load(where)
        if model.kind != "generate":
            raise BundleError(str(where), f"is a bundle of kind '{model.kind}', not a generator",
                              "pass a bundle of `takeoff train --task generate`, or a base model such as 'smollm2'")
        return Path(model.folder), dict(model.manifest["generate"])
    folder = resolve_base(name)
    return folder, {"base_model": name, "method": "none", "system": None, "precision": "auto", "device": "auto"}


def _question(question: Any) -> str:
    if not isinstance(question, str) or not question.strip():
        raise DataError(f"a question must be non-empty text, got {str(question)[:80]!r}")
    return question


def _number(name: str, value: Any, low: float, high: float, whole: bool = False):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (not whole or float(value).is_integer())
    if not ok or not (low <= value <= high):
        raise DataError(f"{name} must be {'a whole number' if whole else 'a number'} from {low:g} to {high:g}, "
                        f"got {value!r}")
    return int(value) if whole else float(value)
